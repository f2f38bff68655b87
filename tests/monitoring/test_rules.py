"""The rule grammar and the conveyor.toml monitor tables."""

from __future__ import annotations

import pytest

from conveyor.errors import ConfigError, FilterSyntaxError
from conveyor.monitoring import load_monitors, parse_duration, parse_rule
from conveyor.settings import Settings


@pytest.mark.parametrize(("text", "metrics", "fired", "status"), [
    ("drift_share > 0.3", {"drift_share": 0.5}, True, "fired"),
    ("drift_share > 0.3", {"drift_share": 0.1}, False, "ok"),
    ("accuracy < 0.85", {}, False, "no data"),
    ("missing_rate(age) > 0.05", {"missing_rate(age)": 0.06}, True, "fired"),
    ('drifted("zip code") == 1', {"drifted(zip code)": 1.0}, True, "fired"),
    ("p95_latency_ms > 50 and rows >= 100", {"p95_latency_ms": 60, "rows": 99}, False, "ok"),
    ("(accuracy < 0.8 or f1 < 0.7) and not rows < 10", {"accuracy": 0.9, "f1": 0.5, "rows": 20}, True, "fired"),
    ("mae >= 1e-1", {"mae": 0.1}, True, "fired"),
])
def test_rules_evaluate(text, metrics, fired, status):
    result = parse_rule(text).evaluate(metrics)
    assert (result.fired, result.status) == (fired, status)


@pytest.mark.parametrize(("text", "message", "position"), [
    ("drift_shar > 0.3", "unknown metric 'drift_shar'", 0),
    ("missing_rate > 0.1", "needs a column", 0),
    ("accuracy <", "expected a number", 10),
    ("accuracy < 0.8 extra", "unexpected text", 15),
    ("accuracy ~ 1", "unexpected character", 9),
    ("__import__('os') > 1", "unknown metric", 0),
    ("drift_share 0.3", "expected a comparison", 12),
])
def test_bad_rules_point_at_the_problem(text, message, position):
    with pytest.raises(FilterSyntaxError) as info:
        parse_rule(text)
    assert message in str(info.value)
    assert info.value.position == position


def test_durations():
    assert parse_duration("10m") == 600 and parse_duration("1.5h") == 5400 and parse_duration(30) == 30
    with pytest.raises(ConfigError, match="not a duration"):
        parse_duration("soon")


def _settings(tmp_path, text: str) -> Settings:
    (tmp_path / "conveyor.toml").write_text(text, encoding="utf-8")
    return Settings.load(tmp_path, env={})


def test_monitors_load_from_toml(tmp_path):
    defaults, monitors = load_monitors(_settings(tmp_path, """
[monitoring]
webhook = "http://127.0.0.1:9/x"
cooldown = "1h"
[monitors.churn]
model = "churn"
reference = "data:/train@1"
window = "30m"
rules = ["drift_share > 0.3", "missing_rate(age) > 0.05"]
retrain = true
"""))
    assert defaults.cooldown == "1h" and defaults.webhook_retries == 3
    churn = monitors["churn"]
    assert churn.window_seconds == 1800 and len(churn.parsed_rules()) == 2 and churn.retrain


@pytest.mark.parametrize(("body", "message"), [
    ('[monitors.m]\nmodel = "x"\nwindwo = "1h"\n', "unknown key [monitors.m] windwo"),
    ('[monitors.m]\nmodel = "x"\nrules = ["acc < 1"]\n', "unknown metric 'acc'"),
    ('[monitors.m]\nmodel = "x"\nwindow = "soon"\n', "not a duration"),
    ('[monitors.m]\nwindow = "1h"\n', "[monitors.m] model"),
    ('[monitoring]\nwebhook_retries = -1\n', "[monitoring] webhook_retries"),
])
def test_bad_monitor_tables_name_the_key(tmp_path, body, message):
    with pytest.raises((ConfigError, FilterSyntaxError)) as info:
        load_monitors(_settings(tmp_path, body))
    assert message in str(info.value)
