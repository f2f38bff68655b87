"""The drift engine: statistics against SciPy / Evidently's definitions, the automatic choice,
the sketch approximation, and the faults (columns, empty, all-NaN, constant, tiny)."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from scipy import stats

from conveyor.errors import CorruptObject, InvalidInput
from conveyor.monitoring import Summary, auto_method, compare, summarize


@pytest.fixture
def frames():
    def make(n_ref: int = 800, n_cur: int = 600, shift: float = 0.0, seed: int = 0):
        rng = np.random.default_rng(seed)
        ref = pd.DataFrame({
            "x": rng.normal(0, 1, n_ref),
            "y": rng.exponential(2.0, n_ref),
            "c": rng.choice(["a", "b", "c", "d"], n_ref),
        })
        cur = pd.DataFrame({
            "x": rng.normal(shift, 1, n_cur),
            "y": rng.exponential(2.0 + shift, n_cur),
            "c": rng.choice(["a", "b", "c", "d"], n_cur, p=[0.25 + shift / 8, 0.25, 0.25, 0.25 - shift / 8]),
        })
        return ref, cur

    return make


def _evidently_binned(ref: np.ndarray, cur: np.ndarray, fill: bool) -> tuple[np.ndarray, np.ndarray]:
    """Evidently's numeric binning, restated: Sturges edges over both, zero bins filled."""
    edges = np.histogram_bin_edges(np.concatenate([ref, cur]), bins="sturges")
    r = np.histogram(ref, edges)[0] / len(ref)
    c = np.histogram(cur, edges)[0] / len(cur)
    if fill:
        r = np.where(r == 0, 0.0001, r)
        c = np.where(c == 0, 0.0001, c)
    return r, c


@pytest.mark.parametrize("shift", [0.0, 0.15, 0.6])
def test_exact_statistics_match_scipy_and_evidently_definitions(frames, shift):
    ref, cur = frames(shift=shift)
    report = compare(ref, cur, methods={"x": "ks", "y": "wasserstein"})
    x, y = report.column("x"), report.column("y")
    assert x.exact and y.exact
    assert x.value == pytest.approx(stats.ks_2samp(ref.x, cur.x).pvalue)
    expected = stats.wasserstein_distance(ref.y, cur.y) / np.std(ref.y)
    assert y.value == pytest.approx(expected)
    for method in ("psi", "jensenshannon"):
        got = compare(ref, cur, columns=["x"], method=method).column("x").value
        r, c = _evidently_binned(ref.x.to_numpy(), cur.x.to_numpy(), fill=method == "psi")
        want = np.sum((r - c) * np.log(r / c)) if method == "psi" else _js(r, c)
        assert got == pytest.approx(want, rel=1e-9)


def _js(p: np.ndarray, q: np.ndarray) -> float:
    from scipy.spatial import distance

    return float(distance.jensenshannon(p, q))


def test_chisquare_is_scipys_two_sample_contingency_test(frames):
    ref, cur = frames(shift=0.5)
    got = compare(ref, cur, columns=["c"], method="chisquare").column("c")
    r, c = ref.c.value_counts(), cur.c.value_counts()
    keys = sorted(set(r.index) | set(c.index))
    want = stats.chi2_contingency([[r.get(k, 0) for k in keys], [c.get(k, 0) for k in keys]], correction=False)
    assert got.value == pytest.approx(want.pvalue)
    assert got.statistics == pytest.approx({"chi2": want.statistic, "dof": 3, "p_value": want.pvalue})
    assert got.drifted == (want.pvalue < 0.05)
    gof = compare(ref, cur, columns=["c"], method="chisquare_gof").column("c")  # the old one, by name
    old = stats.chisquare([c.get(k, 0) for k in keys], [r.get(k, 0) * len(cur) / len(ref) for k in keys])
    assert gof.value == pytest.approx(old.pvalue) and gof.statistics["chi2"] == pytest.approx(old.statistic)


def test_small_counts_get_a_permutation_p_value():
    ref = pd.DataFrame({"c": list("aaaaaaaabbbbbccd")})  # expected counts below 5
    cur = pd.DataFrame({"c": list("aaabbbbbccccdd")})
    got = compare(ref, cur, method="chisquare").column("c")
    assert got.statistics["permutations"] == 2000 and 0 < got.value <= 1
    want = stats.chi2_contingency([[8, 5, 2, 1], [3, 5, 4, 2]], correction=False)
    assert got.statistics["chi2"] == pytest.approx(want.statistic)
    # the permutation law of the statistic, by brute force over row labels
    pooled = np.array(list("aaaaaaaabbbbbccd") + list("aaabbbbbccccdd"))
    rng = np.random.default_rng(1)
    null = []
    for _ in range(3000):
        rng.shuffle(pooled)
        r, c = pd.Series(pooled[:16]).value_counts(), pd.Series(pooled[16:]).value_counts()
        table = [[r.get(k, 0) for k in "abcd"], [c.get(k, 0) for k in "abcd"]]
        null.append(stats.chi2_contingency(table, correction=False).statistic)
    assert got.value == pytest.approx(np.mean(np.array(null) >= want.statistic - 1e-9), abs=0.03)


def test_every_statistic_is_exposed(frames):
    ref, cur = frames(shift=0.3)
    report = compare(ref, cur, methods={"x": "ks", "y": "wasserstein"})
    ks = stats.ks_2samp(ref.x, cur.x)
    assert report.column("x").statistics == pytest.approx({"D": ks.statistic, "p_value": ks.pvalue})
    y = report.column("y").statistics
    assert y["distance"] == pytest.approx(stats.wasserstein_distance(ref.y, cur.y))
    assert report.to_dict()["columns"][0]["statistics"]["D"] == pytest.approx(ks.statistic)
    assert compare(ref, cur, columns=["x"], method="psi").column("x").statistics["bins"] > 2


@pytest.mark.parametrize("method", ["ks", "wasserstein", "psi", "jensenshannon"])
@pytest.mark.parametrize("shift", [0.0, 0.3])
def test_sketch_approximates_exact_values(frames, method, shift):
    ref, cur = frames(n_ref=20_000, n_cur=15_000, shift=shift, seed=3)
    exact = compare(summarize(ref, exact_limit=10**6), summarize(cur, exact_limit=10**6),
                    columns=["x", "y"], method=method)
    sketch = compare(summarize(ref, exact_limit=10), summarize(cur, exact_limit=10), columns=["x", "y"], method=method)
    for name in ("x", "y"):
        a, b = exact.column(name), sketch.column(name)
        assert a.exact and not b.exact
        assert a.drifted == b.drifted
        if method == "ks":
            assert abs(np.log10(max(a.value, 1e-300)) - np.log10(max(b.value, 1e-300))) < 1.0 or a.value < 1e-10
        else:
            # sparse tail bins hold a few rows exactly but a smooth share in the sketch
            assert b.value == pytest.approx(a.value, rel=0.05, abs=5e-3)


def test_auto_choice_follows_evidentlys_rule():
    rng = np.random.default_rng(1)
    small = summarize(pd.DataFrame({"n": rng.normal(size=500), "k": rng.integers(0, 4, 500),
                                    "b": rng.choice(["y", "n"], 500), "c": rng.choice(list("abc"), 500)}))
    big = summarize(pd.DataFrame({"n": rng.normal(size=5000), "k": rng.integers(0, 4, 5000),
                                  "c": rng.choice(list("abc"), 5000)}))
    assert [auto_method(small[c], small[c]) for c in ("n", "k", "b", "c")] == ["ks", "chisquare", "z", "chisquare"]
    assert [auto_method(big[c], big[c]) for c in ("n", "k", "c")] == ["wasserstein", "jensenshannon", "jensenshannon"]


def test_drift_detected_and_dataset_verdict(frames):
    ref, cur = frames(shift=1.0)
    report = compare(ref, cur, drift_share=0.5)
    assert report.n_drifted == 3 and report.drift_share == 1.0 and report.dataset_drift
    calm = compare(*frames(shift=0.0, seed=5))
    assert calm.drift_share is not None and calm.drift_share < 0.5 and not calm.dataset_drift


def test_prediction_and_label_drift_are_reported_apart(frames):
    ref, cur = frames(shift=1.0)
    ref["score"], cur["score"] = ref.x * 2, cur.x * 2
    report = compare(ref, cur, prediction="score", target="c")
    assert report.prediction is not None and report.prediction.drifted
    assert report.label is not None and report.label.column == "c"
    assert report.n_features == 2  # x and y; score and c are not features
    assert report.to_dict()["prediction_drift"]["column"] == "score"


def test_different_columns_are_named(frames):
    ref, cur = frames()
    cur = cur.rename(columns={"x": "x_renamed"})
    with pytest.raises(InvalidInput) as info:
        compare(ref, cur)
    assert "['x']" in str(info.value) and "x_renamed" in str(info.value)
    report = compare(ref, cur.rename(columns={"x_renamed": "x"}), columns=["x", "c"])
    assert [c.column for c in report.columns] == ["x", "c"]


def test_changed_type_is_named(frames):
    ref, cur = frames()
    cur["x"] = cur.x.astype(str)
    with pytest.raises(InvalidInput, match="x \\(numeric vs categorical\\)"):
        compare(ref, cur)


def test_empty_window_gives_no_verdict(frames):
    ref, cur = frames()
    report = compare(ref, cur.iloc[:0])
    assert report.drift_share is None and not report.dataset_drift
    assert all(c.status == "empty" and "no values" in c.note for c in report.columns)


def test_all_nan_and_constant_columns(frames):
    ref, cur = frames(n_ref=3000, n_cur=3000)
    ref["nan"], cur["nan"] = np.nan, np.nan
    ref["const"], cur["const"] = 1.0, 1.0
    report = compare(ref, cur)
    assert report.column("nan").status == "empty"
    const = report.column("const")
    assert const.status == "ok" and not const.drifted
    assert report.quality.columns["nan"].missing_rate == 1.0
    cur["const"] = 2.0
    assert compare(ref, cur).column("const").drifted


def test_tiny_window_falls_back_and_says_so(frames):
    ref, cur = frames(n_ref=5000, n_cur=12, shift=2.0)
    report = compare(ref, cur)
    x, c = report.column("x"), report.column("c")
    assert x.method == "ks" and "fell back to ks" in x.note and "12 current values" in x.note
    assert c.method == "chisquare" and "fell back" in c.note
    assert x.drifted


def test_unknown_method_names_the_choices(frames):
    with pytest.raises(InvalidInput, match="wasserstein"):
        compare(*frames(), method="kolmogorov")
    with pytest.raises(InvalidInput, match="does not apply to categorical"):
        compare(*frames(), columns=["c"], method="ks")


def test_quality_against_reference_and_schema(frames):
    ref, cur = frames()
    cur.loc[:59, "x"] = np.nan
    cur.loc[:9, "y"] = 1e6
    cur.loc[:29, "c"] = "zzz"
    quality = compare(ref, cur, schema={"y": {"min": 0, "max": 100}}).quality.columns
    assert quality["x"].missing_rate == pytest.approx(0.1)
    assert quality["y"].out_of_range_rate == pytest.approx(10 / 600) and quality["y"].high == 100
    assert quality["c"].new_categories == ("zzz",) and quality["c"].new_category_rate == pytest.approx(0.05)


def test_summary_roundtrip_and_corruption(frames):
    ref, _ = frames()
    summary = summarize(ref, label="data:/train@1")
    again = Summary.from_bytes(summary.to_bytes())
    assert again.label == "data:/train@1" and again["c"].counts == summary["c"].counts
    assert np.array_equal(again["x"].values, summary["x"].values)
    with pytest.raises(CorruptObject):
        Summary.from_bytes(b"not a summary")


def test_parquet_source_streams_the_same_summary(frames, tmp_path):
    ref, cur = frames()
    path = tmp_path / "ref.parquet"
    ref.to_parquet(path)
    from_file = summarize(path, chunk=1)
    from_frame = summarize(ref)
    for name in ref.columns:
        assert from_file[name].n_unique == from_frame[name].n_unique
        assert from_file[name].mean == pytest.approx(from_frame[name].mean)
    assert compare(from_file, cur).drift_share == compare(from_frame, cur).drift_share


@pytest.mark.parametrize("kind", ["normal", "heavy tail", "ties", "outliers", "with inf and nan"])
def test_sketch_quantiles_are_exact(kind):
    rng = np.random.default_rng(9)
    x = {
        "normal": rng.normal(size=60_000),
        "heavy tail": rng.lognormal(0, 4, 60_000),
        "ties": rng.integers(0, 300, 60_000).astype(float),
        "outliers": np.r_[rng.normal(size=59_990), np.full(10, 1e15)],
        "with inf and nan": np.r_[rng.normal(size=59_000), np.full(500, np.inf), np.full(500, np.nan)],
    }[kind]
    column = summarize(pd.DataFrame({"x": x}), exact_limit=10)["x"]
    finite = x[np.isfinite(x)]
    # the same order statistics; only NumPy's interpolation formula rounds differently
    np.testing.assert_allclose(column.quantiles, np.quantile(finite, np.linspace(0, 1, 2001)), rtol=1e-12, atol=1e-12)
    assert column.n_missing == len(x) - len(finite) and column.values is None
    assert column.mean == pytest.approx(finite.mean())
