"""Feature statistics as LeRobot v3.0 keeps them: per episode (`stats/<feature>/<stat>` columns of
meta/episodes) and over the dataset (meta/stats.json).

Every feature, the five index features included, gets min, max, mean, std, count and the quantiles
q01, q10, q50, q90, q99, per component; count is the number of frames. Images (video features) are per
channel over all pixels scaled to [0, 1] and shaped (3, 1, 1); LeRobot samples some frames, we count
every frame through a per-channel 256-level histogram, which is exact. bool features keep bool min and
max, integer features integer min and max. The dataset's statistics aggregate the episodes' as LeRobot
does (count-weighted mean and quantiles, pooled variance), so an append by either tool agrees.
"""

from __future__ import annotations

import numpy as np

QUANTILES = {"q01": 0.01, "q10": 0.10, "q50": 0.50, "q90": 0.90, "q99": 0.99}
STAT_NAMES = ("min", "max", "mean", "std", "count", *QUANTILES)
IMAGE_LEVELS = 256

Summary = dict[str, np.ndarray]


class EpisodeStats:
    """One feature's values over an episode; `summary()` gives its statistics."""

    def __init__(self, dtype: str, width: int) -> None:
        self.dtype, self.width = dtype, width
        self.rows: list[np.ndarray] = []
        self.histogram = np.zeros((width, IMAGE_LEVELS), dtype=np.int64) if dtype == "video" else None
        self.frames = 0

    def add(self, value: np.ndarray) -> None:
        """One frame's value (an HxWx3 uint8 image for a video feature)."""
        self.frames += 1
        if self.histogram is None:
            self.rows.append(np.asarray(value).reshape(-1))
            return
        pixels = np.asarray(value).reshape(-1, self.width)
        for channel in range(self.width):
            self.histogram[channel] += np.bincount(pixels[:, channel], minlength=IMAGE_LEVELS)

    def summary(self) -> Summary:
        if self.histogram is not None:
            return image_summary(self.histogram, self.frames)
        return vector_summary(np.stack(self.rows), self.dtype)


def vector_summary(values: np.ndarray, dtype: str) -> Summary:
    """Statistics of (frames, components) values of a numeric or bool feature."""
    as_float = np.asarray(values, dtype=np.float64)
    extreme_type = {"bool": bool, "int64": np.int64}.get(dtype, np.float64)
    summary = {
        "min": values.min(axis=0).astype(extreme_type),
        "max": values.max(axis=0).astype(extreme_type),
        "mean": as_float.mean(axis=0),
        "std": as_float.std(axis=0),
        "count": np.array([len(values)], dtype=np.int64),
    }
    for name, q in QUANTILES.items():
        summary[name] = np.quantile(as_float, q, axis=0)
    return summary


def image_summary(histogram: np.ndarray, frames: int) -> Summary:
    """Per-channel statistics, in [0, 1] and shaped (3, 1, 1), from (channels, 256) pixel counts."""
    levels = np.arange(IMAGE_LEVELS) / (IMAGE_LEVELS - 1)
    pixels = histogram.sum(axis=1)
    mean = histogram @ levels / pixels
    second_moment = histogram @ np.square(levels) / pixels
    cumulative = np.cumsum(histogram, axis=1)
    present = histogram > 0
    values = {
        "min": levels[np.argmax(present, axis=1)],
        "max": levels[IMAGE_LEVELS - 1 - np.argmax(present[:, ::-1], axis=1)],
        "mean": mean,
        "std": np.sqrt(np.maximum(second_moment - np.square(mean), 0.0)),
    }
    for name, q in QUANTILES.items():
        # the lowest level below which at least the fraction q of the channel's pixels lie
        values[name] = levels[np.argmax(cumulative >= q * pixels[:, None], axis=1)]
    summary = {name: value.reshape(-1, 1, 1) for name, value in values.items()}
    return {**summary, "count": np.array([frames], dtype=np.int64)}


def aggregate(summaries: list[Summary]) -> Summary:
    """The statistics of several episodes together, combined as LeRobot combines them."""
    counts = np.stack([s["count"] for s in summaries]).astype(np.float64)  # (episodes, 1)
    means = np.stack([s["mean"] for s in summaries])
    weights = counts.reshape(-1, *([1] * (means.ndim - 1)))
    total = weights.sum(axis=0)
    mean = (means * weights).sum(axis=0) / total
    variances = np.stack([np.square(s["std"]) for s in summaries])
    variance = ((variances + np.square(means - mean)) * weights).sum(axis=0) / total
    result = {
        "min": np.min(np.stack([s["min"] for s in summaries]), axis=0),
        "max": np.max(np.stack([s["max"] for s in summaries]), axis=0),
        "mean": mean,
        "std": np.sqrt(variance),
        "count": np.array([int(counts.sum())], dtype=np.int64),
    }
    for name in QUANTILES:
        result[name] = (np.stack([s[name] for s in summaries]) * weights).sum(axis=0) / total
    return result


def as_lists(summary: Summary) -> dict[str, list]:
    """JSON- and parquet-ready: nested lists of Python numbers (bool stays bool)."""
    return {name: np.asarray(summary[name]).tolist() for name in STAT_NAMES}


def from_lists(values: dict[str, list]) -> Summary:
    """Back from `as_lists` (an episode row read from parquet)."""
    return {name: np.asarray(values[name]) for name in STAT_NAMES}
