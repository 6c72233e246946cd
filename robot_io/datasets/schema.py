"""The LeRobot v3.0 layout (DESIGN.md §6): paths, info.json, feature specs, parquet types.

What we match, from LeRobot's v3.0 dataset format (lerobot/datasets/utils.py and the v3.0 format notes):
- `meta/info.json`: codebase_version "v3.0", robot_type, total_episodes, total_frames, total_tasks,
  chunks_size, data_files_size_in_mb, video_files_size_in_mb, fps, splits {"train": "0:N"},
  data_path "data/chunk-{chunk_index:03d}/file-{file_index:03d}.parquet",
  video_path "videos/{video_key}/chunk-{chunk_index:03d}/file-{file_index:03d}.mp4", features.
- features: {dtype, shape, names}; video features add an `info` block (video.height, video.width,
  video.codec, video.pix_fmt, video.is_depth_map, video.fps, video.channels, has_audio).
- `meta/tasks.parquet`: a task_index column indexed by the task's text, as pandas writes it
  (`__index_level_0__` with pandas metadata); `meta/episodes/chunk-000/file-000.parquet` (one row per
  episode: episode_index, tasks, length, data/chunk_index, data/file_index, dataset_from_index,
  dataset_to_index, videos/<key>/{chunk_index,file_index,from_timestamp,to_timestamp},
  meta/episodes/{chunk_index,file_index}, stats/<feature>/<stat>); `meta/stats.json`: min, max, mean, std,
  count, q01, q10, q50, q90, q99 of every feature and index feature (stats.py).
Checked against LeRobot 0.4.4's own loader and writer: it opens our datasets, indexes frames and decodes
video at the recorded timestamps; its episodes table and ours have the same columns and types.
Our choice inside that layout: one episode per data file and per video file (LeRobot packs several into
one file up to a size limit; both are valid v3.0), so an episode is committed by renaming whole files.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import pyarrow as pa

CODEBASE_VERSION = "v3.0"
CHUNKS_SIZE = 1000
DATA_PATH = "data/chunk-{chunk_index:03d}/file-{file_index:03d}.parquet"
VIDEO_PATH = "videos/{video_key}/chunk-{chunk_index:03d}/file-{file_index:03d}.mp4"
EPISODES_PATH = "meta/episodes/chunk-000/file-000.parquet"
DTYPES = ("float32", "float64", "int64", "bool", "video")
# filled in by the writer for every frame
INDEX_FEATURES = {
    "timestamp": ("float32", (1,)),
    "frame_index": ("int64", (1,)),
    "episode_index": ("int64", (1,)),
    "index": ("int64", (1,)),
    "task_index": ("int64", (1,)),
}


@dataclass
class FeatureSpec:
    """One recorded feature: dtype ("float32", "float64", "int64", "bool" or "video"), shape, component names."""

    dtype: str
    shape: tuple[int, ...]
    names: list[str] | None = field(default=None)

    @property
    def is_video(self) -> bool:
        return self.dtype == "video"

    def to_info(self, fps: int) -> dict:
        entry: dict = {"dtype": self.dtype, "shape": list(self.shape), "names": self.names}
        if self.is_video:
            height, width, channels = self.shape
            entry["info"] = {
                "video.height": height,
                "video.width": width,
                "video.codec": "h264",
                "video.pix_fmt": "yuv420p",
                "video.is_depth_map": False,
                "video.fps": fps,
                "video.channels": channels,
                "has_audio": False,
            }
        return entry

    @classmethod
    def from_info(cls, entry: dict) -> FeatureSpec:
        return cls(entry["dtype"], tuple(entry["shape"]), entry.get("names"))


def chunk_and_file(episode_index: int) -> tuple[int, int]:
    """Where an episode's own data and video files sit (one episode per file)."""
    return divmod(episode_index, CHUNKS_SIZE)


def data_path(episode_index: int) -> str:
    chunk, file = chunk_and_file(episode_index)
    return DATA_PATH.format(chunk_index=chunk, file_index=file)


def video_path(video_key: str, episode_index: int) -> str:
    chunk, file = chunk_and_file(episode_index)
    return VIDEO_PATH.format(video_key=video_key, chunk_index=chunk, file_index=file)


def arrow_type(spec: FeatureSpec) -> pa.DataType:
    """Shape (1,) features are scalar columns, longer vectors fixed-size lists (as LeRobot stores them)."""
    scalar = {"float32": pa.float32(), "float64": pa.float64(), "int64": pa.int64(), "bool": pa.bool_()}[spec.dtype]
    return scalar if tuple(spec.shape) == (1,) else pa.list_(scalar, spec.shape[0])


def info_json(robot_type: str, fps: int, features: dict[str, FeatureSpec], episodes: int, frames: int, tasks: int):
    """The meta/info.json content."""
    all_features = {**features, **{k: FeatureSpec(d, s) for k, (d, s) in INDEX_FEATURES.items()}}
    return {
        "codebase_version": CODEBASE_VERSION,
        "robot_type": robot_type,
        "total_episodes": episodes,
        "total_frames": frames,
        "total_tasks": tasks,
        "chunks_size": CHUNKS_SIZE,
        "data_files_size_in_mb": 100,
        "video_files_size_in_mb": 200,
        "fps": fps,
        "splits": {"train": f"0:{episodes}"},
        "data_path": DATA_PATH,
        "video_path": VIDEO_PATH if any(s.is_video for s in features.values()) else None,
        "features": {key: spec.to_info(fps) for key, spec in all_features.items()},
    }
