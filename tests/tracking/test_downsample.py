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
