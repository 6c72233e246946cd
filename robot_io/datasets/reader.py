"""Read a dataset written in the LeRobot v3.0 layout: metadata, an episode's frames, its videos."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pyarrow.parquet as pq

from robot_io.datasets.errors import DatasetError
from robot_io.datasets.schema import CODEBASE_VERSION, EPISODES_PATH, FeatureSpec, data_path, video_path
from robot_io.datasets.video import decode_frames


@dataclass
class Dataset:
    root: Path
    info: dict
    tasks: list[str]
    episodes: list[dict]  # the rows of meta/episodes, in episode order

    @property
    def fps(self) -> int:
        return int(self.info["fps"])

    @property
    def num_episodes(self) -> int:
        return len(self.episodes)

    @property
    def num_frames(self) -> int:
        return int(self.info["total_frames"])

    def features(self) -> dict[str, FeatureSpec]:
        return {key: FeatureSpec.from_info(entry) for key, entry in self.info["features"].items()}

    def video_keys(self) -> list[str]:
        return [key for key, spec in self.features().items() if spec.is_video]

    def frames(self, episode_index: int) -> dict[str, np.ndarray]:
        """Every non-video feature of one episode as arrays (frames first)."""
        path = self.root / data_path(self._checked(episode_index))
        try:
            table = pq.read_table(path)
        except OSError as error:
            raise DatasetError(f"{path}: {error}") from None
        return {name: _as_array(table.column(name).to_pylist()) for name in table.column_names}

    def video_frames(self, episode_index: int, key: str) -> np.ndarray:
        """One camera's decoded frames of one episode, uint8 (T, H, W, 3)."""
        if key not in self.video_keys():
            raise DatasetError(f"{self.root}: no video feature {key!r}; it has {self.video_keys()}")
        return decode_frames(self.root / video_path(key, self._checked(episode_index)))

    def _checked(self, episode_index: int) -> int:
        if not 0 <= episode_index < self.num_episodes:
            raise DatasetError(f"{self.root}: no episode {episode_index} (it has {self.num_episodes})")
        return episode_index


def _as_array(values: list) -> np.ndarray:
    return np.asarray(values)


def load_dataset(root: Path) -> Dataset:
    """The committed dataset in `root`; DatasetError naming the file when it is not a dataset."""
    root = Path(root)
    info_path = root / "meta" / "info.json"
    if not info_path.is_file():
        raise DatasetError(f"{info_path} is missing: {root} is not a dataset")
    try:
        info = json.loads(info_path.read_text())
    except json.JSONDecodeError as error:
        raise DatasetError(f"{info_path}: {error}") from None
    if info.get("codebase_version") != CODEBASE_VERSION:
        raise DatasetError(
            f"{info_path}: codebase_version {info.get('codebase_version')!r}, expected {CODEBASE_VERSION}"
        )
    tasks_table = pq.read_table(root / "meta" / "tasks.parquet").to_pylist()
    # LeRobot indexes tasks.parquet by the task's text (pandas); the column is then __index_level_0__
    text = "__index_level_0__" if tasks_table and "__index_level_0__" in tasks_table[0] else "task"
    tasks = [row[text] for row in sorted(tasks_table, key=lambda row: row["task_index"])]
    episodes = pq.read_table(root / EPISODES_PATH).to_pylist()
    return Dataset(root=root, info=info, tasks=tasks, episodes=sorted(episodes, key=lambda r: r["episode_index"]))
