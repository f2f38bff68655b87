"""docs/config.md documents every key of every conveyor.toml table that a part of conveyor
reads ([pipelines], [data], [gates.*], [monitoring], [monitors.*], [serving],
[model_cards.*]), checked against the pydantic models that validate them.

After adding a key: `python tests/test_config_docs.py` rewrites the tables of docs/config.md
(descriptions come from the code; MEANINGS below fills the keys whose model has none)."""

from __future__ import annotations

import re
import sys
from pathlib import Path
from typing import Any

DOC = Path(__file__).resolve().parents[1] / "docs" / "config.md"

#: Meanings of keys whose pydantic field carries no description (from the module docstrings).
MEANINGS = {
    ("monitoring", "webhook"): "URL POSTed a JSON body for every alert.",
    ("monitoring", "webhook_retries"): "Attempts after the first, with exponential backoff.",
    ("monitoring", "webhook_backoff"): "Seconds before the first retry (doubles each time).",
    ("monitoring", "webhook_timeout"): "Seconds per attempt.",
    ("monitoring", "cooldown"): "Minimum time between two retrainings of a model.",
    ("monitoring", "retrain_lease"): "A retraining whose process stops heartbeating this long is abandoned.",
    ("monitoring", "retrain_backoff"): "Wait after a failed retraining (doubles per failure in a row, at most the cool-down).",
    ("monitoring", "retrain_retries"): "Failed retrainings retried by themselves (reason \"retry\") before waiting.",
    ("monitors.<name>", "name"): "The monitor's name (the table name; set for you).",
    ("monitors.<name>", "model"): "Registered model whose traffic is watched (required).",
    ("monitors.<name>", "alias"): "Which version's traffic.",
    ("monitors.<name>", "reference"): "Reference data (data:/name@version); default: the version's first training data set.",
    ("monitors.<name>", "target"): "Label column of the reference (for label drift).",
    ("monitors.<name>", "prediction"): "Column of the prediction log holding the prediction.",
    ("monitors.<name>", "window"): "The current window: this much of the newest prediction log.",
    ("monitors.<name>", "schedule"): "How often `conveyor monitor watch` evaluates.",
    ("monitors.<name>", "method"): "Drift method for every column (auto, ks, psi, …).",
    ("monitors.<name>", "threshold"): "Its threshold (default: the method's).",
    ("monitors.<name>", "methods"): "Per-column methods, e.g. { age = \"psi\" }.",
    ("monitors.<name>", "drift_share"): "Share of drifted features that makes a data-set drift.",
    ("monitors.<name>", "columns"): "Columns checked; default: the reference's columns.",
    ("monitors.<name>", "rules"): "Alert rules, e.g. \"drift_share > 0.3\" (see the rule grammar).",
    ("monitors.<name>", "score"): "Log column with the positive-class score (for live ROC AUC).",
    ("monitors.<name>", "retrain"): "An alert triggers the training pipeline.",
    ("monitors.<name>", "retrain_every"): "Also retrain on a schedule (default: never).",
    ("monitors.<name>", "retrain_on_new_data"): "Also retrain when the training data set has a newer version.",
    ("monitors.<name>", "pipeline"): "MODULE:PIPELINE run on a retraining trigger.",
    ("monitors.<name>", "gate"): "The [gates.<name>] the retrained candidate must pass.",
    ("monitors.<name>", "webhook"): "Overrides [monitoring] webhook.",
    ("monitors.<name>", "cooldown"): "Overrides [monitoring] cooldown.",
    ("gates.<name>", "name"): "The gate's name (the table name; set for you).",
    ("gates.<name>", "task"): "classification or regression: which metrics apply.",
    ("gates.<name>", "compare"): "The paired comparison with the champion: the [gates.<name>.compare] table.",
    ("gates.<name>", "slices"): "Per-slice checks: the [gates.<name>.slices] table.",
    ("gates.<name>", "baseline"): "Beat a trivial model: the [gates.<name>.baseline] table.",
    ("gates.<name>", "operational"): "Size and speed limits: the [gates.<name>.operational] table.",
    ("gates.<name>", "features"): "Every feature must help: the [gates.<name>.features] table.",
    ("gates.<name>", "staleness"): "Quality lost by older versions on today's data: the [gates.<name>.staleness] table.",
    ("gates.<name>", "privacy"): "Scan the evaluation data for personal data: the [gates.<name>.privacy] table.",
}


def sections() -> list[tuple[str, Any]]:
    """(table, pydantic model) of every table documented in docs/config.md."""
    from conveyor.data._config import DataSettings
    from conveyor.gates._spec import (
        BaselineSpec,
        CompareSpec,
        FeatureSpec,
        GateSpec,
        OperationalSpec,
        PrivacySpec,
        SliceSpec,
        StalenessSpec,
    )
    from conveyor.monitoring._config import MonitorConfig, MonitoringDefaults
    from conveyor.pipelines._settings import PipelineSettings
    from conveyor.registry._card import CardSettings
    from conveyor.serving._config import ServingConfig

    return [
        ("pipelines", PipelineSettings),
        ("data", DataSettings),
        ("gates.<name>", GateSpec),
        ("gates.<name>.compare", CompareSpec),
        ("gates.<name>.slices", SliceSpec),
        ("gates.<name>.baseline", BaselineSpec),
        ("gates.<name>.operational", OperationalSpec),
        ("gates.<name>.features", FeatureSpec),
        ("gates.<name>.privacy", PrivacySpec),
        ("gates.<name>.staleness", StalenessSpec),
        ("monitoring", MonitoringDefaults),
        ("monitors.<name>", MonitorConfig),
        ("serving", ServingConfig),
        ("model_cards.<model>", CardSettings),
    ]


def _default(info: Any) -> str:
    from pydantic_core import PydanticUndefined

    if info.default_factory is not None:
        try:
            value = info.default_factory()
        except TypeError:
            return "(computed)"
        if info.default_factory.__name__ == "<lambda>" and not isinstance(value, (list, dict)):
            return "(computed)"
    elif info.default is PydanticUndefined:
        return "required"
    else:
        value = info.default
    if value is None:
        return "unset"
    if hasattr(value, "model_dump"):
        return "(table)"
    return f"`{value!r}`".replace("|", "\\|")


def render(table: str, model: Any) -> str:
    rows = [f"### `[{table}]`", "", "| key | default | meaning |", "|---|---|---|"]
    for key, info in model.model_fields.items():
        meaning = info.description or MEANINGS.get((table, key), "")
        if not meaning:
            raise AssertionError(f"[{table}] {key} has no description: add one to the model or MEANINGS")
        escaped = meaning.replace("|", "\\|")
        rows.append(f"| `{key}` | {_default(info)} | {escaped} |")
    return "\n".join(rows)


def test_every_table_key_is_documented_with_its_default() -> None:
    text = DOC.read_text(encoding="utf-8")
    for table, model in sections():
        assert render(table, model) in text, f"docs/config.md [{table}] is out of date: python tests/test_config_docs.py"


def test_no_documented_key_is_unknown_to_the_code() -> None:
    text = DOC.read_text(encoding="utf-8")
    known = {table: set(model.model_fields) for table, model in sections()}
    for block in re.split(r"^### ", text, flags=re.M)[1:]:
        table = re.match(r"`\[([^\]]+)\]`", block)
        assert table, block[:80]
        keys = set(re.findall(r"^\| `([^`]+)` \|", block, flags=re.M))
        assert keys <= known.get(table.group(1), set()), (table.group(1), keys - known.get(table.group(1), set()))


def _write() -> None:
    text = DOC.read_text(encoding="utf-8")
    head, _, _ = text.partition("\n### ")
    body = "\n\n".join(render(table, model) for table, model in sections())
    DOC.write_text(head.rstrip("\n") + "\n\n" + body + "\n", encoding="utf-8")


if __name__ == "__main__":
    sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))
    _write()
