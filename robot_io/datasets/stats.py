"""Feature statistics (min, max, mean, std, count) per episode and over the dataset, as LeRobot keeps them.

Numbers per component; images per channel over all pixels, scaled to [0, 1] and shaped (3, 1, 1).
An episode's statistics are kept as sums so that the dataset's are exact without rereading any file.
"""

from __future__ import annotations

import numpy as np

STAT_NAMES = ("min", "max", "mean", "std", "count")


class RunningStats:
    """Sums over samples of one feature (vectors of `width` components)."""

    def __init__(self, width: int) -> None:
        self.count = 0
        self.total = np.zeros(width)
        self.total_sq = np.zeros(width)
        self.low = np.full(width, np.inf)
        self.high = np.full(width, -np.inf)

    def add(self, samples: np.ndarray) -> None:
        """samples: (n, width)."""
        samples = np.asarray(samples, dtype=np.float64)
        self.count += len(samples)
        self.total += samples.sum(axis=0)
        self.total_sq += np.square(samples).sum(axis=0)
        self.low = np.minimum(self.low, samples.min(axis=0))
        self.high = np.maximum(self.high, samples.max(axis=0))

    def add_image(self, image_rgb: np.ndarray) -> None:
        """One HxWx3 uint8 frame: every pixel is a sample of its channel, scaled to [0, 1]."""
        self.add(image_rgb.reshape(-1, image_rgb.shape[-1]) / 255.0)

    def merge(self, other: RunningStats) -> None:
        self.count += other.count
        self.total += other.total
        self.total_sq += other.total_sq
        self.low = np.minimum(self.low, other.low)
        self.high = np.maximum(self.high, other.high)

    def summary(self, image: bool = False) -> dict[str, list]:
        """min, max, mean, std, count; an image's shaped (3, 1, 1) like LeRobot's."""
        mean = self.total / max(self.count, 1)
        std = np.sqrt(np.maximum(self.total_sq / max(self.count, 1) - np.square(mean), 0.0))
        values = {"min": self.low, "max": self.high, "mean": mean, "std": std}
        shaped = {k: (v.reshape(-1, 1, 1) if image else v).tolist() for k, v in values.items()}
        return {**shaped, "count": [self.count]}

    @classmethod
    def from_summary(cls, summary: dict) -> RunningStats:
        """Back from an episode's summary (LeRobot keeps per-episode min/max/mean/std/count) to sums."""
        mean = np.asarray(summary["mean"], dtype=np.float64).reshape(-1)
        std = np.asarray(summary["std"], dtype=np.float64).reshape(-1)
        stats = cls(len(mean))
        stats.count = int(np.asarray(summary["count"]).reshape(-1)[0])
        stats.total = mean * stats.count
        stats.total_sq = (np.square(std) + np.square(mean)) * stats.count
        stats.low = np.asarray(summary["min"], dtype=np.float64).reshape(-1)
        stats.high = np.asarray(summary["max"], dtype=np.float64).reshape(-1)
        return stats
