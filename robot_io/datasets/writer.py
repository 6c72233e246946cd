"""Write demonstrations episode by episode; an episode appears whole or not at all.

The commit invariant: `meta` is a symbolic link to one complete, immutable metadata version
(`.meta/v<N>/`: info.json, tasks.parquet, episodes/chunk-000/file-000.parquet, stats.json), and every
episode that version lists has its data and video files in place. A commit (1) finishes the episode's
files in `.staging/`, (2) renames them into `data/` and `videos/` (files no metadata lists yet are
harmless), (3) writes the next metadata version, (4) swaps the `meta` link to it with one atomic
rename. A SIGKILL at any moment therefore leaves either the old or the new dataset, both loadable;
`recover` (and `DatasetWriter.open`) only sweeps leftovers. Everything is fsynced before the swap.
"""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from robot_io.datasets.errors import DatasetError
from robot_io.datasets.schema import (
    EPISODES_PATH,
    INDEX_FEATURES,
    FeatureSpec,
    arrow_type,
    chunk_and_file,
    data_path,
    info_json,
    video_path,
)
from robot_io.datasets.stats import STAT_NAMES, EpisodeStats, Summary, aggregate, as_lists, from_lists, vector_summary
from robot_io.datasets.video import VideoEncoder

META_VERSIONS = ".meta"
STAGING = ".staging"


def _fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _fsync_file(path: Path) -> None:
    with open(path, "rb") as handle:
        os.fsync(handle.fileno())


def _write_json(path: Path, data: dict) -> None:
    path.write_text(json.dumps(data, indent=2))
    _fsync_file(path)


class DatasetWriter:
    """Appends episodes to a dataset in the LeRobot v3.0 layout (see schema.py)."""

    def __init__(self, root: Path, fps: int, robot_type: str, features: dict[str, FeatureSpec]) -> None:
        self.root, self.fps, self.robot_type = Path(root), int(fps), robot_type
        self.features = dict(features)
        self.tasks: list[str] = []
        self.episodes: list[dict] = []  # the rows of meta/episodes, committed
        self._episode_stats: list[dict[str, Summary]] = []  # per episode: feature -> statistics
        self._recording: _Episode | None = None

    # ---- opening ---------------------------------------------------------------------------------------------

    @classmethod
    def create(cls, root: Path, fps: int, robot_type: str, features: dict[str, FeatureSpec]) -> DatasetWriter:
        """A new, empty dataset in `root` (which must not exist or be empty)."""
        root = Path(root)
        if root.exists() and any(root.iterdir()):
            raise DatasetError(f"{root} exists and is not empty: open it to append, or choose a new folder")
        _check_features(features)
        if fps < 1:
            raise DatasetError(f"fps must be a positive integer, got {fps}")
        writer = cls(root, fps, robot_type, features)
        root.mkdir(parents=True, exist_ok=True)
        writer._publish_meta()
        return writer

    @classmethod
    def open(cls, root: Path) -> DatasetWriter:
        """Append to an existing dataset; leftovers of an interrupted recording are swept first."""
        from robot_io.datasets.integrity import recover_dataset
        from robot_io.datasets.reader import load_dataset

        recover_dataset(root)
        ds = load_dataset(root)
        features = {k: FeatureSpec.from_info(v) for k, v in ds.info["features"].items() if k not in INDEX_FEATURES}
        writer = cls(Path(root), ds.fps, ds.info["robot_type"], features)
        writer.tasks = list(ds.tasks)
        writer.episodes = [dict(row) for row in ds.episodes]
        writer._episode_stats = [_stats_from_row(row, root) for row in writer.episodes]
        return writer

    @property
    def num_episodes(self) -> int:
        return len(self.episodes)

    @property
    def num_frames(self) -> int:
        return sum(int(row["length"]) for row in self.episodes)

    # ---- recording -------------------------------------------------------------------------------------------

    def start_episode(self, task: str) -> None:
        if self._recording is not None:
            raise DatasetError("an episode is already being recorded: commit or discard it first")
        staging = self.root / STAGING / f"episode-{self.num_episodes:06d}"
        if staging.exists():
            shutil.rmtree(staging)
        staging.mkdir(parents=True)
        self._recording = _Episode(staging, task, self.features, self.fps)

    def add_frame(self, frame: dict[str, object]) -> None:
        if self._recording is None:
            raise DatasetError("add_frame before start_episode")
        self._recording.add(frame)

    def discard_episode(self) -> None:
        """Drop the episode being recorded (nothing of it reaches the dataset)."""
        if self._recording is not None:
            self._recording.close()
            shutil.rmtree(self._recording.staging, ignore_errors=True)
            self._recording = None

    def commit_episode(self) -> int:
        """Make the recorded episode part of the dataset, atomically; its index."""
        episode = self._recording
        if episode is None or episode.length == 0:
            raise DatasetError("commit_episode needs a started episode with at least one frame")
        index = self.num_episodes
        if episode.task not in self.tasks:
            self.tasks.append(episode.task)
        task_index = self.tasks.index(episode.task)
        staged = episode.finish(index, self.num_frames, task_index)
        for relative in staged:  # (2) into place; unlisted until the metadata swap
            final = self.root / relative
            final.parent.mkdir(parents=True, exist_ok=True)
            os.replace(staged[relative], final)
            _fsync_dir(final.parent)
        self.episodes.append(self._episode_row(index, episode))
        self._episode_stats.append(episode.summaries)
        self._recording = None
        self._publish_meta()  # (3) and (4)
        shutil.rmtree(episode.staging, ignore_errors=True)
        return index

    def close(self) -> None:
        """Discard an uncommitted episode; the dataset stays as last committed."""
        self.discard_episode()

    # ---- metadata --------------------------------------------------------------------------------------------

    def _episode_row(self, index: int, episode: _Episode) -> dict:
        chunk, file = chunk_and_file(index)
        start = self.num_frames
        row = {
            "episode_index": index,
            "tasks": [episode.task],
            "length": episode.length,
            "data/chunk_index": chunk,
            "data/file_index": file,
            "dataset_from_index": start,
            "dataset_to_index": start + episode.length,
        }
        for key, spec in self.features.items():
            if spec.is_video:
                row |= {f"videos/{key}/chunk_index": chunk, f"videos/{key}/file_index": file}
                row |= {f"videos/{key}/from_timestamp": 0.0, f"videos/{key}/to_timestamp": episode.length / self.fps}
        row |= {"meta/episodes/chunk_index": 0, "meta/episodes/file_index": 0}
        for key, summary in episode.summaries.items():
            row |= {f"stats/{key}/{name}": values for name, values in as_lists(summary).items()}
        return row

    def _dataset_stats(self) -> dict:
        if not self._episode_stats:
            return {}
        keys = self._episode_stats[0].keys()
        return {key: as_lists(aggregate([episode[key] for episode in self._episode_stats])) for key in keys}

    def _publish_meta(self) -> None:
        """Write the next metadata version and point `meta` at it with one atomic rename."""
        versions = self.root / META_VERSIONS
        version = versions / f"v{self.num_episodes:06d}"
        if version.exists():
            shutil.rmtree(version)  # an unfinished version left by a crash: never pointed at
        (version / "episodes" / "chunk-000").mkdir(parents=True)
        info = info_json(self.robot_type, self.fps, self.features, self.num_episodes, self.num_frames, len(self.tasks))
        _write_json(version / "info.json", info)
        _write_json(version / "stats.json", self._dataset_stats())
        pq.write_table(tasks_table(self.tasks), version / "tasks.parquet")
        _fsync_file(version / "tasks.parquet")
        episodes_file = version / Path(EPISODES_PATH).relative_to("meta")
        pq.write_table(pa.Table.from_pylist(self.episodes) if self.episodes else _empty_episodes(), episodes_file)
        _fsync_file(episodes_file)
        for folder in (version / "episodes" / "chunk-000", version / "episodes", version, versions):
            _fsync_dir(folder)
        link = self.root / "meta"
        temporary = self.root / ".meta-link.tmp"
        temporary.unlink(missing_ok=True)
        os.symlink(Path(META_VERSIONS) / version.name, temporary)
        os.replace(temporary, link)
        _fsync_dir(self.root)
        for old in versions.iterdir():
            if old != version:
                shutil.rmtree(old, ignore_errors=True)


class _Episode:
    """The episode being recorded: columns in memory, videos streaming to the staging folder."""

    def __init__(self, staging: Path, task: str, features: dict[str, FeatureSpec], fps: int) -> None:
        self.staging, self.task, self.features, self.fps = staging, task, features, fps
        self.columns: dict[str, list] = {key: [] for key, spec in features.items() if not spec.is_video}
        self.encoders = {
            key: VideoEncoder(staging / f"{key}.mp4", fps, spec.shape[0], spec.shape[1])
            for key, spec in features.items()
            if spec.is_video
        }
        self.stats = {key: EpisodeStats(spec.dtype, _width(spec)) for key, spec in features.items()}
        self.summaries: dict[str, Summary] = {}  # filled by finish(), the index features included
        self.length = 0

    def add(self, frame: dict[str, object]) -> None:
        missing = sorted(set(self.features) - set(frame))
        unknown = sorted(set(frame) - set(self.features))
        if missing or unknown:
            raise DatasetError(f"frame {self.length}: missing features {missing}, unknown features {unknown}")
        values = {key: _checked(key, spec, frame[key]) for key, spec in self.features.items()}
        for key, value in values.items():
            spec = self.features[key]
            if spec.is_video:
                self.encoders[key].add(value)
            else:
                self.columns[key].append(value)
            self.stats[key].add(value)
        self.length += 1

    def finish(self, index: int, first_frame: int, task_index: int) -> dict[str, Path]:
        """Close the videos, write the data parquet; {final relative path: staged file}."""
        self.close()
        n = self.length
        table = {
            key: pa.array(_column(self.features[key], rows), arrow_type(self.features[key]))
            for key, rows in self.columns.items()
        }
        index_columns = {
            "timestamp": (np.arange(n, dtype=np.float32) / np.float32(self.fps)).astype(np.float32),
            "frame_index": np.arange(n, dtype=np.int64),
            "episode_index": np.full(n, index, dtype=np.int64),
            "index": first_frame + np.arange(n, dtype=np.int64),
            "task_index": np.full(n, task_index, dtype=np.int64),
        }
        table |= {key: pa.array(values) for key, values in index_columns.items()}
        self.summaries = {key: stats.summary() for key, stats in self.stats.items()}
        for key, values in index_columns.items():
            self.summaries[key] = vector_summary(values[:, None], str(values.dtype))
        staged_data = self.staging / "data.parquet"
        pq.write_table(pa.table(table), staged_data)
        _fsync_file(staged_data)
        staged = {data_path(index): staged_data}
        for key, encoder in self.encoders.items():
            _fsync_file(encoder.path)
            staged[video_path(key, index)] = encoder.path
        return staged

    def close(self) -> None:
        for encoder in self.encoders.values():
            encoder.close()


def _width(spec: FeatureSpec) -> int:
    return spec.shape[-1] if spec.is_video else int(np.prod(spec.shape))


def _checked(key: str, spec: FeatureSpec, value: object) -> np.ndarray:
    """The value as an array of the feature's dtype and shape; DatasetError naming the feature otherwise."""
    array = np.asarray(value)
    if spec.is_video:
        if array.dtype != np.uint8 or array.shape != tuple(spec.shape):
            raise DatasetError(
                f"{key}: expected a uint8 image of shape {tuple(spec.shape)}, got {array.dtype} {array.shape}"
            )
        return array
    if array.size != int(np.prod(spec.shape)):
        raise DatasetError(f"{key}: expected shape {tuple(spec.shape)}, got {array.shape}")
    if spec.dtype == "bool":
        return array.astype(bool).reshape(spec.shape)
    if not np.issubdtype(array.dtype, np.number) and array.dtype != bool:
        raise DatasetError(f"{key}: expected numbers ({spec.dtype}), got {array.dtype}")
    return array.astype(spec.dtype).reshape(spec.shape)


def _column(spec: FeatureSpec, rows: list[np.ndarray]) -> list:
    stacked = np.stack(rows)
    return stacked[:, 0].tolist() if tuple(spec.shape) == (1,) else stacked.tolist()


def _check_features(features: dict[str, FeatureSpec]) -> None:
    for key, spec in features.items():
        if key in INDEX_FEATURES:
            raise DatasetError(f"feature {key!r} is written by the dataset itself; do not declare it")
        if spec.dtype not in ("float32", "float64", "int64", "bool", "video"):
            raise DatasetError(f"feature {key!r}: unknown dtype {spec.dtype!r}")
        if spec.is_video and (len(spec.shape) != 3 or spec.shape[2] != 3):
            raise DatasetError(f"feature {key!r}: a video is (height, width, 3), got {tuple(spec.shape)}")
        if not spec.is_video and len(spec.shape) != 1:
            raise DatasetError(f"feature {key!r}: numeric features are vectors (n,), got {tuple(spec.shape)}")


def _empty_episodes() -> pa.Table:
    return pa.table({"episode_index": pa.array([], pa.int64()), "length": pa.array([], pa.int64())})


def _stats_from_row(row: dict, root: Path) -> dict[str, Summary]:
    """An episode row's statistics, by feature; DatasetError if the row lacks some (an older writer's)."""
    keys = [column.split("/")[1] for column in row if column.startswith("stats/") and column.endswith("/mean")]
    try:
        return {key: from_lists({name: row[f"stats/{key}/{name}"] for name in STAT_NAMES}) for key in keys}
    except KeyError as missing:
        raise DatasetError(
            f"{root}: episode {row['episode_index']} has no {missing} statistics (written before the LeRobot "
            "stats schema): record into a new dataset"
        ) from None


def tasks_table(tasks: list[str]) -> pa.Table:
    """meta/tasks.parquet as LeRobot writes it with pandas: task_index, indexed by the task's text."""
    pandas_metadata = {
        "index_columns": ["__index_level_0__"],
        "column_indexes": [
            {"name": None, "field_name": None, "pandas_type": "unicode", "numpy_type": "str",
             "metadata": {"encoding": "UTF-8"}}
        ],
        "columns": [
            {"name": "task_index", "field_name": "task_index", "pandas_type": "int64", "numpy_type": "int64",
             "metadata": None},
            {"name": None, "field_name": "__index_level_0__", "pandas_type": "object", "numpy_type": "str",
             "metadata": None},
        ],
        "attributes": {},
        "creator": {"library": "pyarrow", "version": pa.__version__},
        "pandas_version": "3.1.1",
    }  # fmt: skip
    schema = pa.schema(
        [("task_index", pa.int64()), ("__index_level_0__", pa.large_string())],
        metadata={b"pandas": json.dumps(pandas_metadata).encode()},
    )
    return pa.table([pa.array(range(len(tasks)), pa.int64()), pa.array(tasks, pa.large_string())], schema=schema)
