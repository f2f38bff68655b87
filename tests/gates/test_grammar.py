from __future__ import annotations

import pytest

from conveyor.errors import InvalidInput
from conveyor.gates import parse_threshold

VALUES = {"candidate": {"f1": 0.9, "rmse": 2.0}, "champion": {"f1": 0.905, "rmse": 2.5}, "baseline": {"rmse": 3.0}}


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("f1 >= 0.8", True),
        ("f1 >= champion.f1 - 0.01", True),
        ("f1 > champion.f1", False),
        ("candidate.f1 >= (champion.f1 + 0.1) / 2", True),
        ("rmse <= baseline.rmse * 0.9", True),
        ("rmse <= -1 + 2 * 1.5", True),
        ("rmse < -1 + 2 * 1.5", False),
        ("f1 >= 1e-1", True),
    ],
)
def test_thresholds_evaluate(text: str, expected: bool) -> None:
    assert parse_threshold(text).check(VALUES)[0] is expected


def test_relative_threshold_is_skipped_without_a_champion() -> None:
    passed, actual, bound = parse_threshold("f1 >= champion.f1 - 0.01").check({"candidate": {"f1": 0.5}, "champion": None})
    assert (passed, actual, bound) == (None, 0.5, None)


@pytest.mark.parametrize(
    ("text", "fragment"),
    [
        ("f1 >=", "unexpected end"),
        ("0.5 <= f1", "left side"),
        ("f1 >= other.f1", "unknown subject"),
        ("f1 == 0.5", "unexpected"),
        ("f1 >= 0.5 0.6", "unexpected"),
        ("f1 >= __import__('os')", "unexpected"),
        ("f1 >= (0.5", "unexpected end"),
        ("", "empty"),
    ],
)
def test_bad_thresholds_name_the_field_and_position(text: str, fragment: str) -> None:
    with pytest.raises(InvalidInput, match=fragment) as info:
        parse_threshold(text, field="gates.g.metrics[0]")
    assert info.value.field == "gates.g.metrics[0]"


def test_unknown_metric_lists_the_known_ones() -> None:
    with pytest.raises(InvalidInput, match="unknown metric 'f2'") as info:
        parse_threshold("f2 >= champion.f1", field="gates.g.metrics[1]", known={"f1", "accuracy"})
    assert "accuracy, f1" in str(info.value.hint)
