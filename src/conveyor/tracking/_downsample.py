"""Downsampling of long metric histories for charts: min/max per pixel bucket.

A chart ``width`` pixels wide cannot show more than one value range per pixel column, so a
history of any length is cut into ``buckets`` equal spans of x (from the first to the last x
present); each non-empty span keeps its mean x, the lowest and highest value and the mean. Drawing the min–max band and the
mean line of the buckets looks like drawing every point (spikes included: a bucket's
extremes are kept), while the answer stays a few thousand numbers for 1,000,000 points.

One bucketing for every consumer: :func:`downsample` (aggregates per bucket),
:func:`extremes` (picks the stored points to keep: ``/api/v1``'s ``max_points``) and
``Tracker.metric_series`` (the same buckets computed by the database, for the UI's charts)
all cut x the same way, so a chart and an API answer over the same history agree.
numpy is imported on first use: the server starts without it.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

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
    import numpy as np

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
    starts = _bucket_starts(x, buckets)
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


def _bucket_starts(x: Any, buckets: int) -> Any:
    """Where each non-empty bucket starts in the sorted float array ``x`` (at least two
    values): ``buckets`` equal spans from the first x to the last, the last x in the last
    bucket. Multiplying first keeps whole-number x exact, the same bucket as the database's
    integer arithmetic in ``Tracker.metric_series``."""
    import numpy as np

    n = int(x.size)
    span = x[-1] - x[0]
    if span <= 0:
        index = np.zeros(n, dtype=np.int64)
    else:
        index = np.minimum(np.floor((x - x[0]) * buckets / span).astype(np.int64), buckets - 1)
    return np.flatnonzero(np.r_[True, index[1:] != index[:-1]])


def extremes(xs: Any, ys: Any, buckets: int) -> list[int]:
    """Indices (ascending) of the points to keep so that at most ``2 * buckets`` remain: in
    each bucket of :func:`downsample` the lowest and the highest value (NaN ignored; a bucket
    of only NaN keeps its first point). All indices when there are at most ``2 * buckets``
    points. ``xs`` sorted ascending, as for :func:`downsample`; any ``buckets`` ≥ 1.
    """
    import numpy as np

    if isinstance(buckets, bool) or int(buckets) < 1:
        raise ValueError(f"buckets must be at least 1, not {buckets!r}")
    x = np.asarray(xs, dtype=np.float64)
    y = np.asarray(ys, dtype=np.float64)
    if x.shape != y.shape or x.ndim != 1:
        raise ValueError("xs and ys must be 1-d arrays of the same length")
    n = int(x.size)
    if n <= 2 * buckets:
        return list(range(n))
    starts = _bucket_starts(x, buckets)
    owner = np.repeat(np.arange(starts.size), np.diff(np.r_[starts, n]))  # each point's bucket
    finite = ~np.isnan(y)
    low = np.minimum.reduceat(np.where(finite, y, np.inf), starts)
    high = np.maximum.reduceat(np.where(finite, y, -np.inf), starts)
    at = np.arange(n)
    # the first point of each bucket holding its lowest (highest) value; a bucket of only NaN
    # has no such point and keeps its first one
    first_low = np.minimum.reduceat(np.where(finite & (y == low[owner]), at, n), starts)
    first_high = np.minimum.reduceat(np.where(finite & (y == high[owner]), at, n), starts)
    first_low = np.where(first_low == n, starts, first_low)
    first_high = np.where(first_high == n, starts, first_high)
    return np.unique(np.r_[first_low, first_high]).tolist()  # type: ignore[no-any-return]
