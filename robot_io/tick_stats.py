"""Fixed-size ring buffers for per-tick timing statistics: adding a sample allocates nothing."""

from __future__ import annotations

import math

import numpy as np

# np.percentile's first call imports numpy.ma and numpy.random lazily: 20-80 ms under the GIL. Inside the policy
# node's first diagnostics callback that held the executor off /joint_states long enough for a STALE_JOINT_STATE
# fault at start-up (CI, 2-core machine); here it is paid at import, before any control loop runs.
np.percentile(np.zeros(2), 50.0)


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


class StreamGaps:
    """Silences of one stream of events (arrivals or publishes): the longest since the last `take_max_gap_ms`,
    and the time since the last event. Tells a sender that stopped from a message that was late."""

    def __init__(self) -> None:
        self.count = 0
        self._last_s = math.nan  # time.monotonic() of the last event
        self._max_gap_s = 0.0

    def mark(self, now_s: float) -> None:
        """One event at monotonic time now_s."""
        if self.count:
            self._max_gap_s = max(self._max_gap_s, now_s - self._last_s)
        self._last_s = now_s
        self.count += 1

    def since_last_ms(self, now_s: float) -> float:
        """Milliseconds since the last event; NaN before the first."""
        return (now_s - self._last_s) * 1e3

    def take_max_gap_ms(self, now_s: float) -> float:
        """The longest silence since the previous call, the ongoing one included, in ms (NaN before the first
        event); then start over."""
        if not self.count:
            return math.nan
        gap_s, self._max_gap_s = max(self._max_gap_s, now_s - self._last_s), 0.0
        return gap_s * 1e3
