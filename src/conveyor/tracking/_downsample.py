"""Downsampling of long metric histories for charts: min/max per pixel bucket.

A chart ``width`` pixels wide cannot show more than one value range per pixel column, so a
history of any length is cut into ``buckets`` equal spans of x; each span keeps its first
and last x, the lowest and highest value and the mean. Drawing the min–max band and the
mean line of the buckets looks like drawing every point (spikes included: a bucket's
extremes are kept), while the answer stays a few thousand numbers for 1,000,000 points.
A pure function over arrays: the UI and ``/api/v1`` share it.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

#: The most buckets one request may ask for (a 4K screen is 3,840 pixels wide).
MAX_BUCKETS = 4096


@dataclass(frozen=True)
class Series:
    """A metric history ready to draw: one entry per bucket (or per point when short).

    ``x`` is each bucket's mean x; ``y`` the mean value; ``low``/``high`` the extremes
    (NaN values are left out of all three; a bucket of only NaN has NaN there). ``count`` is
    the number of raw points in the requested range, ``total`` in the whole history;
    ``exact`` is true when every point is returned as is.
    """

    x: list[float]
    y: list[float]
    low: list[float]
    high: list[float]
    count: int
    total: int
    exact: bool

    def to_dict(self) -> dict[str, Any]:
        def clean(values: list[float]) -> list[float | None]:
            return [None if v != v or v in (float("inf"), float("-inf")) else v for v in values]

        return {"x": self.x, "y": clean(self.y), "low": clean(self.low), "high": clean(self.high),
                "count": self.count, "total": self.total, "exact": self.exact}


def downsample(
    xs: Any, ys: Any, buckets: int, *, lo: float | None = None, hi: float | None = None
) -> Series:
    """The points with ``lo <= x <= hi`` (all when None) in at most ``buckets`` buckets.

    ``xs`` must be sorted ascending (metric histories are read ordered by step or time).
    Raises ``ValueError`` for ``buckets`` outside 1..MAX_BUCKETS or arrays of different length.
    """
    if not 1 <= int(buckets) <= MAX_BUCKETS:
        raise ValueError(f"buckets must be between 1 and {MAX_BUCKETS}, not {buckets!r}")
    x = np.asarray(xs, dtype=np.float64)
    y = np.asarray(ys, dtype=np.float64)
    if x.shape != y.shape or x.ndim != 1:
        raise ValueError("xs and ys must be 1-d arrays of the same length")
    total = int(x.size)
    if lo is not None or hi is not None:
        start = 0 if lo is None else int(np.searchsorted(x, lo, side="left"))
        stop = total if hi is None else int(np.searchsorted(x, hi, side="right"))
        x, y = x[start:stop], y[start:stop]
    n = int(x.size)
    if n <= buckets:
        values = y.tolist()
        return Series(x.tolist(), values, values, values, n, total, True)
    first, last = x[0], x[-1]
    span = last - first
    if span <= 0:
        index = np.zeros(n, dtype=np.int64)
    else:
        index = np.minimum(((x - first) / span * buckets).astype(np.int64), buckets - 1)
    # bucket boundaries in the sorted arrays
    starts = np.flatnonzero(np.r_[True, index[1:] != index[:-1]])
    counts = np.diff(np.r_[starts, n])
    finite = ~np.isnan(y)
    y_low = np.where(finite, y, np.inf)
    y_high = np.where(finite, y, -np.inf)
    low = np.minimum.reduceat(y_low, starts)
    high = np.maximum.reduceat(y_high, starts)
    sums = np.add.reduceat(np.where(finite, y, 0.0), starts)
    kept = np.add.reduceat(finite.astype(np.int64), starts)
    with np.errstate(invalid="ignore", divide="ignore"):
        mean = np.where(kept > 0, sums / np.maximum(kept, 1), np.nan)
    low = np.where(kept > 0, low, np.nan)
    high = np.where(kept > 0, high, np.nan)
    mid_x = np.add.reduceat(x, starts) / counts
    return Series(mid_x.tolist(), mean.tolist(), low.tolist(), high.tolist(), n, total, False)
