"""`simreal dataset check | recover | info`: is a dataset sound, sweep what a crash left, summarize it."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np

from robot_io.datasets.errors import DatasetError
from robot_io.datasets.reader import load_dataset
from robot_io.datasets.schema import CODEBASE_VERSION, INDEX_FEATURES, data_path, video_path
from robot_io.datasets.video import count_frames
from robot_io.datasets.writer import META_VERSIONS, STAGING

INFO_FIELDS = (
    "codebase_version", "robot_type", "total_episodes", "total_frames", "total_tasks", "chunks_size",
    "data_files_size_in_mb", "video_files_size_in_mb", "fps", "splits", "data_path", "video_path", "features",
)  # fmt: skip


def check_dataset(root: Path) -> list[str]:
    """The problems found ([] when sound): metadata, index continuity, lengths, every video's frame count."""
    try:
        ds = load_dataset(root)
    except (DatasetError, OSError) as error:
        return [str(error)]
    problems = [f"meta/info.json lacks {name}" for name in INFO_FIELDS if name not in ds.info]
    if ds.info.get("codebase_version") != CODEBASE_VERSION:
        problems.append(f"codebase_version is {ds.info.get('codebase_version')!r}")
    if ds.info.get("total_episodes") != ds.num_episodes:
        problems.append(
            f"info.json says {ds.info.get('total_episodes')} episodes, meta/episodes lists {ds.num_episodes}"
        )
    next_index = 0
    for expected, row in enumerate(ds.episodes):
        problems += _check_episode(ds, expected, row, next_index)
        next_index += int(row["length"])
    if ds.info.get("total_frames") != next_index:
        problems.append(f"info.json says {ds.info.get('total_frames')} frames, the episodes hold {next_index}")
    if not (Path(root) / "meta" / "stats.json").is_file():
        problems.append("meta/stats.json is missing")
    return problems


def _check_episode(ds, expected: int, row: dict, first_index: int) -> list[str]:
    index, length = int(row["episode_index"]), int(row["length"])
    where = f"episode {index}"
    if index != expected:
        return [f"{where}: expected episode index {expected}"]
    problems = []
    if (row["dataset_from_index"], row["dataset_to_index"]) != (first_index, first_index + length):
        problems.append(f"{where}: dataset_from/to_index do not continue the previous episode")
    try:
        frames = ds.frames(index)
    except DatasetError as error:
        return [f"{where}: {error}"]
    for key in (*ds.features(), *INDEX_FEATURES):
        if key not in frames and not ds.features()[key].is_video:
            problems.append(f"{where}: {data_path(index)} lacks column {key}")
    if len(frames.get("frame_index", [])) != length:
        problems.append(
            f"{where}: {data_path(index)} holds {len(frames.get('frame_index', []))} frames, length {length}"
        )
    elif not np.array_equal(frames["index"], np.arange(first_index, first_index + length)):
        problems.append(f"{where}: global index is not continuous")
    for key in ds.video_keys():
        path = Path(ds.root) / video_path(key, index)
        try:
            decoded = count_frames(path) if path.is_file() else None
        except DatasetError as error:
            problems.append(f"{where}: {error}")
            continue
        if decoded != length:
            problems.append(f"{where}: {video_path(key, index)} has {decoded} frames, length {length}")
    return problems


def recover_dataset(root: Path) -> dict:
    """Remove what an interrupted recording left (staging, unfinished metadata, unlisted files)."""
    root = Path(root)
    ds = load_dataset(root)  # the committed dataset is whatever `meta` points at
    removed = []
    if (root / STAGING).exists():
        removed += [str(p.relative_to(root)) for p in (root / STAGING).iterdir()]
        shutil.rmtree(root / STAGING)
    current = (root / "meta").resolve()
    for version in (root / META_VERSIONS).iterdir():
        if version.resolve() != current:
            removed.append(str(version.relative_to(root)))
            shutil.rmtree(version)
    (root / ".meta-link.tmp").unlink(missing_ok=True)
    listed = {data_path(i) for i in range(ds.num_episodes)}
    listed |= {video_path(key, i) for key in ds.video_keys() for i in range(ds.num_episodes)}
    for folder in ("data", "videos"):
        for path in sorted((root / folder).rglob("*")) if (root / folder).exists() else []:
            if path.is_file() and str(path.relative_to(root)) not in listed:
                removed.append(str(path.relative_to(root)))
                path.unlink()
    return {"dataset": str(root), "episodes": ds.num_episodes, "removed": removed}


def dataset_info(root: Path) -> dict:
    """What `simreal dataset info` prints."""
    ds = load_dataset(root)
    features = {key: f"{spec.dtype} {list(spec.shape)}" for key, spec in ds.features().items()}
    return {
        "dataset": str(root),
        "codebase_version": ds.info["codebase_version"],
        "robot_type": ds.info["robot_type"],
        "fps": ds.fps,
        "episodes": ds.num_episodes,
        "frames": ds.num_frames,
        "seconds": round(ds.num_frames / ds.fps, 2),
        "tasks": ds.tasks,
        "features": features,
    }
