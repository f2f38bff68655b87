"""Downsampling metric histories for charts: the pure function and the store's aggregation
agree bucket for bucket, keep spikes, honour ranges and reject bad arguments."""

from __future__ import annotations

import math
import numpy as np
import pytest

from conveyor.errors import InvalidInput, NotFound
from conveyor.tracking import MAX_BUCKETS, Tracker, downsample


def test_short_histories_come_back_exact() -> None:
    series = downsample([0, 1, 2], [3.0, float("nan"), 1.0], 10)
    assert series.exact and series.x == [0, 1, 2] and series.count == 3 == series.total
    assert series.to_dict()["y"] == [3.0, None, 1.0]


def test_min_max_per_bucket_keeps_a_single_spike() -> None:
    x = np.arange(1_000_000)
    y = np.sin(x / 1000.0)
    y[654_321] = 50.0
    series = downsample(x, y, 800)
    assert not series.exact and len(series.x) == 800 and series.count == 1_000_000
    assert max(series.high) == 50.0 and min(series.low) == pytest.approx(-1.0, abs=1e-6)
    assert series.x == sorted(series.x)


def test_range_and_bad_arguments() -> None:
    series = downsample(range(100), range(100), 5, lo=10.5, hi=20)
    assert series.count == 10 and series.total == 100 and not series.exact
    assert series.low == [11, 13, 15, 17, 19] and series.high == [12, 14, 16, 18, 20]
    with pytest.raises(ValueError, match="buckets"):
        downsample([1], [1], 0)
    with pytest.raises(ValueError, match="buckets"):
        downsample([1], [1], MAX_BUCKETS + 1)
    with pytest.raises(ValueError, match="same length"):
        downsample([1, 2], [1], 3)


def test_store_aggregation_matches_the_pure_function(embedded_only: None, tracker: Tracker) -> None:
    run = tracker.create_run("ds")
    steps = np.arange(0, 30_000, 3)
    values = np.cos(steps / 500.0) + (steps % 7) * 0.01
    values[1234] = float("nan")
    tracker._write_points([(run.id, "m", float(v), int(s), 1_700_000_000_000 + int(s) * 2) for s, v in zip(steps, values)])
    for buckets, lo, hi in [(300, None, None), (64, 3000.0, 9000.4), (7, None, 100.0)]:
        got = tracker.metric_series(run.id, "m", buckets=buckets, lo=lo, hi=hi)
        want = downsample(steps, values, buckets, lo=lo, hi=hi)
        assert got.count == want.count and got.total == want.total == len(steps) and got.exact == want.exact
        assert got.x == pytest.approx(want.x) and got.low == pytest.approx(want.low, nan_ok=True)
        assert got.high == pytest.approx(want.high, nan_ok=True) and got.y == pytest.approx(want.y, nan_ok=True)
    by_time = tracker.metric_series(run.id, "m", x="time", buckets=100)
    assert by_time.x[0] >= 1_700_000_000_000 and len(by_time.x) == 100
    assert tracker.metric_series(run.id, "m", lo=10**9).count == 0
    with pytest.raises(InvalidInput, match="x axis"):
        tracker.metric_series(run.id, "m", x="epoch")
    with pytest.raises(InvalidInput, match="buckets"):
        tracker.metric_series(run.id, "m", buckets=0)
    with pytest.raises(InvalidInput, match="lo"):
        tracker.metric_series(run.id, "m", lo=math.inf)
    with pytest.raises(NotFound):
        tracker.metric_series(run.id, "nope")


def test_extremes_keep_the_low_and_high_of_each_downsample_bucket() -> None:
    """One bucketing: the points ``extremes`` keeps are, bucket for bucket, the lows and highs
    that ``downsample`` (and so the database's aggregation and the UI's charts) reports."""
    from conveyor.tracking import extremes

    rng = np.random.default_rng(3)
    steps = np.cumsum(rng.integers(1, 9, size=5000))  # uneven gaps: equal spans of step, not of count
    values = rng.normal(size=steps.size)
    values[17] = float("nan")
    values[4000] = 99.0
    buckets = 50
    kept = extremes(steps, values, buckets)
    assert kept == sorted(set(kept)) and len(kept) <= 2 * buckets and 4000 in kept
    series = downsample(steps, values, buckets)
    # group the kept points by the x-span of each downsample bucket (its points' mean x is inside it)
    owner = np.minimum(np.floor((steps - steps[0]) * buckets / (steps[-1] - steps[0])).astype(int), buckets - 1)
    lows, highs = [], []
    for b in sorted(set(owner[kept].tolist())):
        mine = [values[i] for i in kept if owner[i] == b]
        lows.append(min(mine))
        highs.append(max(mine))
    assert lows == pytest.approx(series.low) and highs == pytest.approx(series.high)
    assert extremes(range(10), range(10), 5) == list(range(10))  # short histories come back whole
    assert extremes([0, 1, 2, 3, 4], [float("nan")] * 5, 1) == [0]  # a bucket of only NaN keeps its first point
    with pytest.raises(ValueError, match="buckets"):
        extremes([1], [1], 0)
    with pytest.raises(ValueError, match="same length"):
        extremes([1, 2], [1], 3)
