from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import pandas as pd
import pytest

import conveyor.data as cd
from conveyor.data import ColumnSchema, DataSettings, Schema, check_frame, infer_schema
from conveyor.data._profile import profile_frame
from conveyor.errors import ConfigError, InvalidInput, NotFound

BASE = pd.DataFrame({"age": [30, 40, 50, 60], "color": ["red", "blue", "red", "blue"], "score": [0.1, 0.5, 0.9, None]})


def _kinds(anomalies: list[cd.Anomaly]) -> dict[tuple[str | None, str], str]:
    return {(a.column, a.kind): a.severity for a in anomalies}


def _against(new: pd.DataFrame, **config: object) -> list[cd.Anomaly]:
    old = profile_frame(BASE)
    return check_frame(new, infer_schema(old), DataSettings(**config), old_profile=old, ranges_warn=True)


def test_same_data_has_no_anomalies() -> None:
    assert _against(BASE) == []


@pytest.mark.parametrize(
    ("change", "expected"),
    [
        (lambda f: f.drop(columns=["color"]), {("color", "missing_column"): "error"}),
        (lambda f: f.assign(extra=1), {("extra", "extra_column"): "warning"}),
        (lambda f: f.assign(age=["a", "b", "c", "d"]), {("age", "type_change"): "error"}),
        (lambda f: f.assign(color=["red", "green", "red", "blue"]), {("color", "new_category"): "warning"}),
        (lambda f: f.assign(age=[30, 40, 50, 999]), {("age", "out_of_range"): "warning"}),
        (lambda f: f.assign(age=[30.0, None, 50.0, 60.0]),
         {("age", "type_change"): "warning", ("age", "unexpected_nulls"): "error"}),
        (lambda f: f.assign(score=[None, None, 0.2, None]), {("score", "null_rate_jump"): "warning"}),
        (lambda f: f.iloc[0:0], {(None, "empty_table"): "error"}),
    ],
)
def test_each_anomaly_kind(change: Callable[[pd.DataFrame], pd.DataFrame], expected: dict[tuple[str | None, str], str]) -> None:
    found = _kinds(_against(change(BASE.copy())))
    assert found == expected


def test_anomaly_names_column_expectation_and_found() -> None:
    [anomaly] = _against(BASE.assign(color=["red", "green", "red", "mauve"]))
    assert anomaly.column == "color"
    assert "'blue'" in anomaly.expected and "'red'" in anomaly.expected
    assert "2 values" in anomaly.found and "'green'" in anomaly.found and "'mauve'" in anomaly.found
    assert "new_category" in str(anomaly)


def test_severity_overrides_and_settings_errors() -> None:
    found = _kinds(_against(BASE.assign(color=["red", "green", "red", "blue"]), severity={"new_category": "error"}))
    assert found == {("color", "new_category"): "error"}
    with pytest.raises(ConfigError) as info:
        DataSettings.from_section({"severity": {"nope": "error"}})
    assert info.value.field == "data.severity.nope"
    with pytest.raises(ConfigError) as info:
        DataSettings.from_section({"fail_on": "sometimes"})
    assert info.value.field == "data.fail_on"
    with pytest.raises(ConfigError):
        DataSettings.from_section({"unknown_key": 1})


def test_explicit_schema_ranges_are_errors(tmp_path: Path) -> None:
    schema = Schema((ColumnSchema("age", "int", nullable=False, min=0, max=120), ColumnSchema("color", "string")),
                    allow_extra_columns=True)
    bad = pd.DataFrame({"age": [-1, 30, 130], "color": ["x", None, "y"]})
    [anomaly] = check_frame(bad, schema)
    assert (anomaly.kind, anomaly.severity, anomaly.expected) == ("out_of_range", "error", "0 ≤ value ≤ 120")
    assert "-1" in anomaly.found and "130" in anomaly.found


@pytest.mark.parametrize("suffix", [".toml", ".json"])
def test_schema_files_round_trip(tmp_path: Path, suffix: str) -> None:
    schema = infer_schema(profile_frame(BASE))
    path = schema.write(tmp_path / f"schema{suffix}")
    back = Schema.read(path)
    assert back == schema
    assert back.column("color") == ColumnSchema("color", "string", nullable=False, categories=("blue", "red"))


@pytest.mark.parametrize(
    ("text", "field"),
    [
        ('[columns.a]\ntype = "int"\nmaximum = 3\n', "columns.a.maximum"),
        ('[columns.a]\ntype = "integer"\n', "columns.a.type"),
        ('[columns.a]\ntype = "int"\nnullable = "no"\n', "nullable"),
        ('strict = true\n[columns.a]\ntype = "int"\n', "strict"),
        ("min_rows = 1\n", "columns"),
    ],
)
def test_bad_schema_files_name_the_key(tmp_path: Path, text: str, field: str) -> None:
    path = tmp_path / "s.toml"
    path.write_text(text)
    with pytest.raises(InvalidInput) as info:
        Schema.read(path)
    assert info.value.field == field


def test_missing_schema_file(tmp_path: Path) -> None:
    with pytest.raises(NotFound):
        Schema.read(tmp_path / "nope.toml")


def test_validate_versions_end_to_end(project: Path, write_csv: Callable[[str, str], Path]) -> None:
    cd.add(write_csv("v1.csv", "age,color\n30,red\n40,blue\n"), name="people")
    with pytest.raises(InvalidInput, match="first version"):
        cd.validate("people@1")
    cd.add(write_csv("v2.csv", "age,color\n30,red\n41,green\n"), name="people")
    found = _kinds(cd.validate("people@2"))  # against the previous version
    assert found == {("age", "out_of_range"): "warning", ("color", "new_category"): "warning"}
    assert cd.validate("people@2", against="people@2") == []
    path = cd.schema_of("people@1").write(project / "schemas" / "people.toml")
    text = path.read_text().replace("max = 40", "max = 100")
    path.write_text(text)
    assert _kinds(cd.validate("people@2", schema=path)) == {("color", "new_category"): "warning"}
    # a DataFrame (e.g. a batch seen in serving) against the kept schema
    live = pd.DataFrame({"age": [30, 200], "color": ["red", "red"]})
    assert _kinds(cd.validate(live, schema=path)) == {("age", "out_of_range"): "error"}
    (project / "f.txt").write_text("x")
    cd.add(project / "f.txt", name="notatable")
    with pytest.raises(InvalidInput, match="not a table"):
        cd.validate("notatable", against="people@1")


def test_diff_of_tables(project: Path, write_csv: Callable[[str, str], Path]) -> None:
    cd.add(write_csv("a.csv", "x,y\n1,a\n2,b\n"), name="t")
    cd.add(write_csv("b.csv", "x,z\n1,5\n9,6\n3,7\n"), name="t")
    d = cd.diff("t@1", "t@2")
    assert d.rows == (2, 3)
    assert set(d.schema_changes) == {"+ z (int)", "- y (string)"}
    assert d.changed_columns["x"]["max"] == (2, 9)
    assert json.dumps(d.to_dict())
