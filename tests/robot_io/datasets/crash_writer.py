"""Writes episodes into a dataset until killed (the crash-safety test's victim); prints each commit."""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np

from robot_io.datasets import DatasetWriter, FeatureSpec

FEATURES = {
    "observation.state": FeatureSpec("float32", (3,)),
    "observation.images.cam": FeatureSpec("video", (32, 32, 3)),
    "next.done": FeatureSpec("bool", (1,)),
}

if __name__ == "__main__":
    root = Path(sys.argv[1])
    exists = (root / "meta" / "info.json").is_file()
    writer = DatasetWriter.open(root) if exists else DatasetWriter.create(root, 30, "arm", FEATURES)
    rng = np.random.default_rng(writer.num_episodes)
    while True:
        writer.start_episode("crash test")
        for _ in range(int(rng.integers(3, 12))):
            image = rng.integers(0, 255, (32, 32, 3), dtype=np.uint8)
            writer.add_frame(
                {"observation.state": rng.normal(size=3), "observation.images.cam": image, "next.done": [False]}
            )
        print(f"committed {writer.commit_episode()}", flush=True)
