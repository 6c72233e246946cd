"""The dataset files follow the LeRobot v3.0 layout (paths, info.json, episode metadata, dtypes, videos)."""

from __future__ import annotations

import json
import subprocess
import sys

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from robot_io.datasets import DatasetError, DatasetWriter, FeatureSpec, check_dataset, load_dataset, recover_dataset
from robot_io.datasets.schema import INDEX_FEATURES
from robot_io.datasets.stats import STAT_NAMES, EpisodeStats, aggregate, vector_summary

FPS = 30
FEATURES = {
    "observation.state": FeatureSpec("float32", (5,), names=[f"s{i}" for i in range(5)]),
    "observation.images.wrist_cam": FeatureSpec("video", (48, 64, 3), names=["height", "width", "channels"]),
    "observation.images.scene_cam": FeatureSpec("video", (48, 64, 3), names=["height", "width", "channels"]),
    "action": FeatureSpec("float32", (7,)),
    "action.joint_target": FeatureSpec("float32", (8,)),
    "next.reward": FeatureSpec("float32", (1,)),
    "next.done": FeatureSpec("bool", (1,)),
    "next.success": FeatureSpec("bool", (1,)),
    "complementary_info.is_intervention": FeatureSpec("bool", (1,)),
}
INFO_FIELDS = {
    "codebase_version", "robot_type", "total_episodes", "total_frames", "total_tasks", "chunks_size",
    "data_files_size_in_mb", "video_files_size_in_mb", "fps", "splits", "data_path", "video_path", "features",
}  # fmt: skip


def frame(rng: np.random.Generator, last: bool) -> dict:
    image = rng.integers(0, 255, (48, 64, 3), dtype=np.uint8)
    return {
        "observation.state": rng.normal(size=5),
        "observation.images.wrist_cam": image,
        "observation.images.scene_cam": 255 - image,
        "action": rng.uniform(-1, 1, 7),
        "action.joint_target": rng.normal(size=8),
        "next.reward": [0.5],
        "next.done": [last],
        "next.success": [last],
        "complementary_info.is_intervention": [False],
    }


def write_episodes(root, lengths, task="lift the cube") -> DatasetWriter:
    writer = DatasetWriter.create(root, fps=FPS, robot_type="arm", features=FEATURES)
    rng = np.random.default_rng(0)
    for length in lengths:
        writer.start_episode(task)
        for i in range(length):
            writer.add_frame(frame(rng, i == length - 1))
        writer.commit_episode()
    return writer


def test_files_follow_the_lerobot_v3_layout(tmp_path):
    root = tmp_path / "ds"
    write_episodes(root, [20, 31])
    info = json.loads((root / "meta" / "info.json").read_text())
    assert info.keys() >= INFO_FIELDS and info["codebase_version"] == "v3.0"
    assert (info["total_episodes"], info["total_frames"], info["total_tasks"], info["fps"]) == (2, 51, 1, FPS)
    assert info["splits"] == {"train": "0:2"}
    assert info["data_path"] == "data/chunk-{chunk_index:03d}/file-{file_index:03d}.parquet"
    assert info["video_path"] == "videos/{video_key}/chunk-{chunk_index:03d}/file-{file_index:03d}.mp4"
    video = info["features"]["observation.images.wrist_cam"]
    assert video["dtype"] == "video" and video["shape"] == [48, 64, 3]
    assert video["info"]["video.fps"] == FPS and video["info"]["video.pix_fmt"] == "yuv420p"
    for key in ("timestamp", "frame_index", "episode_index", "index", "task_index"):
        assert key in info["features"]
    for episode in range(2):
        assert (root / f"data/chunk-000/file-{episode:03d}.parquet").is_file()
        for camera in ("wrist_cam", "scene_cam"):
            assert (root / f"videos/observation.images.{camera}/chunk-000/file-{episode:03d}.mp4").is_file()
    # tasks.parquet as pandas writes LeRobot's DataFrame: task_index, indexed by the task's text
    tasks = pq.read_table(root / "meta" / "tasks.parquet")
    assert tasks.schema.names == ["task_index", "__index_level_0__"]
    assert tasks.schema.field("__index_level_0__").type == pa.large_string()
    assert json.loads(tasks.schema.metadata[b"pandas"])["index_columns"] == ["__index_level_0__"]
    assert tasks.to_pylist() == [{"task_index": 0, "__index_level_0__": "lift the cube"}]
    episodes = pq.read_table(root / "meta/episodes/chunk-000/file-000.parquet").to_pylist()
    assert [(e["episode_index"], e["length"], e["dataset_from_index"], e["dataset_to_index"]) for e in episodes] == [
        (0, 20, 0, 20),
        (1, 31, 20, 51),
    ]
    for column in ("tasks", "data/chunk_index", "data/file_index", "meta/episodes/chunk_index"):
        assert column in episodes[0]
    assert episodes[1]["videos/observation.images.scene_cam/to_timestamp"] == pytest.approx(31 / FPS)
    check_episode_stats_columns(pq.read_table(root / "meta/episodes/chunk-000/file-000.parquet"))
    data = pq.read_table(root / "data/chunk-000/file-001.parquet")
    state_type = data.schema.field("observation.state").type
    assert pa.types.is_fixed_size_list(state_type) and state_type.list_size == 5
    assert state_type.value_type == pa.float32() and data.schema.field("next.done").type == pa.bool_()
    assert data.column("index").to_pylist() == list(range(20, 51))
    assert data.column("timestamp").to_pylist()[1] == pytest.approx(1 / FPS)
    stats = json.loads((root / "meta" / "stats.json").read_text())
    assert set(stats) == set(FEATURES) | set(INDEX_FEATURES)
    for key, feature_stats in stats.items():
        assert list(feature_stats) == list(STAT_NAMES), key
    assert stats["observation.state"]["count"] == [51] and stats["index"]["max"] == [50]
    assert stats["observation.images.wrist_cam"]["count"] == [51]  # frames, as LeRobot counts them
    assert np.array(stats["observation.images.wrist_cam"]["q50"]).shape == (3, 1, 1)
    assert stats["next.done"]["max"] == [True] and stats["next.done"]["min"] == [False]
    check_videos_seek_fast(root / "videos/observation.images.wrist_cam/chunk-000/file-001.mp4", 31)
    ds = load_dataset(root)
    for episode, length in enumerate([20, 31]):
        for camera in ds.video_keys():
            assert ds.video_frames(episode, camera).shape == (length, 48, 64, 3)
    assert check_dataset(root) == []


def check_episode_stats_columns(episodes: pa.Table) -> None:
    """LeRobot's per-episode stats columns: every feature and index feature, every statistic, its types."""
    for key in [*FEATURES, *INDEX_FEATURES]:
        for name in STAT_NAMES:
            column = f"stats/{key}/{name}"
            assert column in episodes.schema.names, column
    image = episodes.schema.field("stats/observation.images.wrist_cam/q01").type
    assert pa.types.is_list(image.value_type) and pa.types.is_list(image.value_type.value_type)  # (3, 1, 1)
    assert episodes.schema.field("stats/next.done/min").type.value_type == pa.bool_()
    assert episodes.schema.field("stats/frame_index/max").type.value_type == pa.int64()
    assert episodes.schema.field("stats/observation.state/q99").type.value_type == pa.float64()
    assert episodes.schema.field("stats/observation.state/count").type.value_type == pa.int64()


def check_videos_seek_fast(path, frames: int) -> None:
    """A keyframe every 2 frames and the index (moov) before the data (faststart), as LeRobot encodes."""
    import av

    with av.open(str(path)) as container:
        keyframes = sum(packet.is_keyframe for packet in container.demux(video=0) if packet.size)
    assert keyframes == (frames + 1) // 2
    boxes, data, offset = [], path.read_bytes(), 0
    while offset + 8 <= len(data):
        size = int.from_bytes(data[offset : offset + 4], "big")
        boxes.append(data[offset + 4 : offset + 8].decode())
        offset += size if size else len(data)
    assert boxes.index("moov") < boxes.index("mdat"), boxes


def test_image_statistics_from_known_pixels():
    stats = EpisodeStats("video", 3)
    for level in (0, 51, 102, 255):  # four frames of uniform colour per channel
        stats.add(np.full((2, 2, 3), [level, 255 - level, 128], dtype=np.uint8))
    summary = stats.summary()
    assert summary["count"].tolist() == [4]
    np.testing.assert_allclose(summary["min"].ravel(), [0.0, 0.0, 128 / 255])
    np.testing.assert_allclose(summary["max"].ravel(), [1.0, 1.0, 128 / 255])
    np.testing.assert_allclose(summary["mean"].ravel(), [102 / 255, 153 / 255, 128 / 255])
    np.testing.assert_allclose(summary["q50"].ravel(), [51 / 255, 153 / 255, 128 / 255])  # lowest level with half
    assert summary["std"][2, 0, 0] == 0.0


def test_dataset_statistics_aggregate_the_episodes_like_lerobot():
    rng = np.random.default_rng(3)
    episodes = [rng.normal(size=(n, 4)) for n in (10, 25, 7)]
    combined = aggregate([vector_summary(e, "float32") for e in episodes])
    everything = np.concatenate(episodes)
    np.testing.assert_allclose(combined["mean"], everything.mean(axis=0))
    np.testing.assert_allclose(combined["std"], everything.std(axis=0))
    np.testing.assert_allclose(combined["min"], everything.min(axis=0))
    np.testing.assert_allclose(combined["max"], everything.max(axis=0))
    assert combined["count"].tolist() == [42]
    # quantiles: LeRobot's count-weighted mean of the episodes' quantiles
    weighted_q50 = sum(len(e) * np.quantile(e, 0.5, axis=0) for e in episodes) / 42
    np.testing.assert_allclose(combined["q50"], weighted_q50)
    images = []
    for level in (10, 200):
        frames = EpisodeStats("video", 3)
        for _ in range(2 if level == 10 else 6):
            frames.add(np.full((4, 4, 3), level, dtype=np.uint8))
        images.append(frames.summary())
    image = aggregate(images)
    assert image["mean"].shape == (3, 1, 1) and image["count"].tolist() == [8]
    np.testing.assert_allclose(image["mean"].ravel(), [(2 * 10 + 6 * 200) / 8 / 255] * 3)


def test_a_discarded_episode_leaves_nothing_and_reopening_appends(tmp_path):
    root = tmp_path / "ds"
    writer = write_episodes(root, [10])
    writer.start_episode("lift the cube")
    writer.add_frame(frame(np.random.default_rng(1), False))
    writer.discard_episode()
    writer.close()
    assert load_dataset(root).num_episodes == 1
    reopened = DatasetWriter.open(root)
    reopened.start_episode("another task")
    for i in range(5):
        reopened.add_frame(frame(np.random.default_rng(i), i == 4))
    assert reopened.commit_episode() == 1
    ds = load_dataset(root)
    assert ds.num_episodes == 2 and ds.tasks == ["lift the cube", "another task"]
    assert ds.frames(1)["task_index"].tolist() == [1] * 5 and check_dataset(root) == []


@pytest.mark.parametrize(
    ("key", "value", "message"),
    [
        ("observation.state", np.zeros(4), "observation.state: expected shape"),
        ("observation.images.wrist_cam", np.zeros((48, 64, 3), np.float32), "observation.images.wrist_cam: expected"),
        ("unknown.feature", np.zeros(1), "unknown features \\['unknown.feature'\\]"),
    ],
)
def test_bad_frames_are_refused_naming_the_feature(tmp_path, key, value, message):
    writer = DatasetWriter.create(tmp_path / "ds", fps=FPS, robot_type="arm", features=FEATURES)
    writer.start_episode("t")
    bad = frame(np.random.default_rng(0), False)
    bad[key] = value
    with pytest.raises(DatasetError, match=message):
        writer.add_frame(bad)


def test_a_missing_feature_and_odd_image_sizes_are_refused(tmp_path):
    writer = DatasetWriter.create(tmp_path / "ds", fps=FPS, robot_type="arm", features=FEATURES)
    writer.start_episode("t")
    partial = frame(np.random.default_rng(0), False)
    del partial["action"]
    with pytest.raises(DatasetError, match="missing features \\['action'\\]"):
        writer.add_frame(partial)
    odd = {"observation.images.cam": FeatureSpec("video", (47, 64, 3))}
    with pytest.raises(DatasetError, match="even width and height"):
        DatasetWriter.create(tmp_path / "odd", fps=FPS, robot_type="arm", features=odd).start_episode("t")
    with pytest.raises(DatasetError, match="not empty"):
        DatasetWriter.create(tmp_path / "ds", fps=FPS, robot_type="arm", features=FEATURES)


def test_recover_sweeps_leftovers_of_an_interrupted_recording(tmp_path):
    root = tmp_path / "ds"
    write_episodes(root, [8])
    (root / ".staging" / "episode-000001").mkdir(parents=True)
    orphan = root / "data/chunk-000/file-001.parquet"
    orphan.write_bytes(b"half a file")
    report = recover_dataset(root)
    assert "data/chunk-000/file-001.parquet" in report["removed"] and not orphan.exists()
    assert not (root / ".staging").exists() and check_dataset(root) == []


def test_check_finds_a_video_with_missing_frames(tmp_path):
    root = tmp_path / "ds"
    write_episodes(root, [12, 9])
    video = root / "videos/observation.images.scene_cam/chunk-000/file-001.mp4"
    (root / "videos/observation.images.scene_cam/chunk-000/file-000.mp4").replace(video)
    assert any("has 12 frames, length 9" in problem for problem in check_dataset(root))


def test_the_dataset_package_does_not_import_torch():
    probe = "import sys, robot_io.datasets; print('torch' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"
