"""Monitors declared in conveyor.toml, validated with pydantic (a bad key is named).

::

    [monitoring]                       # defaults for every monitor (all optional)
    webhook = "https://hooks.example/x"  # POSTed JSON for every alert
    webhook_retries = 3                # attempts after the first, with exponential backoff
    webhook_backoff = 0.5              # seconds before the first retry (doubles each time)
    webhook_timeout = 5.0              # seconds per attempt
    cooldown = "6h"                    # minimum time between two completed retrainings of a model
    retrain_lease = "5m"               # a retraining whose process stops heartbeating this long is abandoned
    retrain_backoff = "5m"             # wait after a failed retraining (doubles per failure in a row, ≤ cooldown)
    retrain_retries = 3                # failed retrainings retried by themselves (reason "retry") before waiting
                                       # for the next trigger

    [monitors.churn]
    model = "churn"                    # registered model whose traffic is watched
    alias = "champion"                 # which version's traffic (default champion)
    reference = "data:/train@3"        # default: the first training data set of that version
    target = "churned"                 # label column of the reference (for label drift)
    window = "1h"                      # the current window: the last hour of the prediction log
    schedule = "10m"                   # how often `conveyor monitor watch` evaluates
    method = "auto"                    # drift method for every column (ks, psi, …)
    threshold = 0.1                    # its threshold (default: the method's)
    methods = { age = "psi" }          # per-column methods
    drift_share = 0.5                  # share of drifted features for a data-set drift
    columns = ["age", "plan"]          # default: the reference's columns
    rules = ["drift_share > 0.3", "accuracy < 0.85", "missing_rate(age) > 0.05"]
    score = "proba"                    # log column with the positive-class score (for live ROC AUC)
    retrain = true                     # an alert triggers the training pipeline
    retrain_every = "7d"               # also retrain on a schedule (default: never)
    retrain_on_new_data = true         # also retrain when the training data set has a newer version
    pipeline = "training:train"        # MODULE:PIPELINE run by `conveyor monitor` on a trigger
    gate = "default"                   # the [gates.<name>] the candidate must pass
    webhook = "…"                      # overrides [monitoring] webhook
    skew_sample = 200                  # logged rows re-predicted with the package (skew_mismatch_rate; 0: off)
    skew_tolerance = 1e-6              # relative and absolute tolerance of a numeric match
"""

from __future__ import annotations

import re
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from conveyor.errors import ConfigError
from conveyor.monitoring._rules import Rule, parse_rules

_DURATION = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(ms|s|m|h|d|w)?\s*$")
_UNITS = {"ms": 0.001, "s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800, None: 1}


def parse_duration(text: str | float | int, *, field: str = "duration") -> float:
    """Seconds in ``"90s"``, ``"10m"``, ``"1h"``, ``"2d"`` (a bare number is seconds)."""
    if isinstance(text, (int, float)) and not isinstance(text, bool):
        return float(text)
    match = _DURATION.match(str(text))
    if not match:
        raise ConfigError(f"{field}: {text!r} is not a duration", field=field, value=text,
                          hint='write e.g. "30s", "10m", "1h", "2d"')
    return float(match.group(1)) * _UNITS[match.group(2)]


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class MonitoringDefaults(_Model):
    webhook: str | None = None
    webhook_retries: int = Field(3, ge=0, le=10)
    webhook_backoff: float = Field(0.5, ge=0)
    webhook_timeout: float = Field(5.0, gt=0)
    cooldown: str = "6h"
    retrain_lease: str = "5m"
    retrain_backoff: str = "5m"
    retrain_retries: int = Field(3, ge=0, le=100)

    @field_validator("cooldown", "retrain_lease", "retrain_backoff")
    @classmethod
    def _duration(cls, value: str) -> str:
        parse_duration(value)
        return value


class MonitorConfig(_Model):
    name: str
    model: str
    alias: str = "champion"
    reference: str | None = None
    target: str | None = None
    prediction: str = "prediction"
    window: str = "1h"
    schedule: str = "10m"
    method: str = "auto"
    threshold: float | None = None
    methods: dict[str, str] = Field(default_factory=dict)
    drift_share: float = Field(0.5, gt=0, le=1)
    columns: list[str] | None = None
    rules: list[str] = Field(default_factory=list)
    score: str | None = None
    retrain: bool = False
    retrain_every: str | None = None
    retrain_on_new_data: bool = False
    pipeline: str | None = None
    gate: str = "default"
    webhook: str | None = None
    cooldown: str | None = None
    skew_sample: int = Field(200, ge=0, le=100_000, description=(
        "Logged rows re-predicted offline with the served version's package (skew_mismatch_rate); 0 turns it off."))
    skew_tolerance: float = Field(1e-6, ge=0, description="Relative and absolute tolerance of a numeric match.")

    @field_validator("window", "schedule", "cooldown", "retrain_every")
    @classmethod
    def _duration(cls, value: str | None) -> str | None:
        if value is not None:
            parse_duration(value)
        return value

    def parsed_rules(self) -> list[Rule]:
        return parse_rules(self.rules, field=f"monitors.{self.name}.rules")

    @property
    def window_seconds(self) -> float:
        return parse_duration(self.window)

    @property
    def schedule_seconds(self) -> float:
        return parse_duration(self.schedule)


def load_monitors(settings: Any) -> tuple[MonitoringDefaults, dict[str, MonitorConfig]]:
    """The ``[monitoring]`` defaults and every ``[monitors.<name>]`` of the settings."""
    defaults = _validate(MonitoringDefaults, dict(settings.section("monitoring")), "monitoring")
    raw = settings.section("monitors")
    if not isinstance(raw, dict):
        raise ConfigError("[monitors] must be a table of [monitors.<name>] tables", field="monitors", value=raw)
    monitors = {}
    for name, table in raw.items():
        if not isinstance(table, dict):
            raise ConfigError(f"[monitors.{name}] must be a table", field=f"monitors.{name}", value=table)
        config = _validate(MonitorConfig, {"name": name, **table}, f"monitors.{name}")
        config.parsed_rules()  # a bad rule fails at load time, not at the first evaluation
        monitors[name] = config
    return defaults, monitors


def _validate(model: type[_Model], data: dict[str, Any], section: str) -> Any:
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        first = exc.errors()[0]
        key = ".".join(str(p) for p in first["loc"])
        if first["type"] == "extra_forbidden":
            raise ConfigError(f"unknown key [{section}] {key}", field=f"{section}.{key}", value=data.get(key),
                              hint=f"known keys: {', '.join(sorted(model.model_fields))}") from exc
        raise ConfigError(f"bad value for [{section}] {key}: {first['msg']}", field=f"{section}.{key}",
                          value=data.get(key.split(".")[0]), hint="see conveyor.monitoring._config") from exc
