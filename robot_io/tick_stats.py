"""Fixed-size ring buffers for per-tick timing statistics: adding a sample allocates nothing."""

from __future__ import annotations

import math

import numpy as np


class RingBuffer:
    """The last `capacity` float samples; percentiles and max over them on demand."""

    def __init__(self, capacity: int) -> None:
        if capacity < 1:
            raise ValueError(f"ring buffer capacity must be >= 1, got {capacity}")
        self._values = np.zeros(capacity, dtype=np.float64)
        self._next = 0
        self._count = 0

    @property
    def capacity(self) -> int:
        return len(self._values)

    def __len__(self) -> int:
        return self._count

    def add(self, value: float) -> None:
        """Store one sample, overwriting the oldest once full (the tick thread's only call: no allocation)."""
        self._values[self._next] = value
        self._next += 1
        if self._next == len(self._values):
            self._next = 0
        if self._count < len(self._values):
            self._count += 1

    def clear(self) -> None:
        self._next = 0
        self._count = 0

    def values(self) -> np.ndarray:
        """A copy of the stored samples (order not preserved); safe to use while another thread keeps adding."""
        count = self._count  # read once: the writer may advance it meanwhile
        return self._values[:count].copy()

    def summary(self, *percentiles: float) -> tuple[float, ...]:
        """The given percentiles (0..100) and then the max, from one copy of the samples; NaNs when empty."""
        values = self.values()
        if not len(values):
            return (math.nan,) * (len(percentiles) + 1)
        return (*(float(v) for v in np.percentile(values, percentiles)), float(values.max()))

    def percentile(self, q: float) -> float:
        """The q-th percentile (0..100) of the stored samples; NaN when there are none."""
        return self.summary(q)[0]

    def max(self) -> float:
        return self.summary()[-1]
