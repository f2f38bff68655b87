"""The ``[data]`` table of conveyor.toml, validated here (the foundation passes it raw)."""

from __future__ import annotations

import os
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from conveyor.errors import ConfigError

__all__ = ["ANOMALY_KINDS", "DataSettings", "Severity"]

Severity = Literal["warning", "error"]

#: Anomaly kinds and their default severity (TFDV marks most anomalies as errors).
ANOMALY_KINDS: dict[str, Severity] = {
    "missing_column": "error",
    "extra_column": "warning",
    "type_change": "error",
    "unexpected_nulls": "error",
    "null_rate_jump": "warning",
    "out_of_range": "error",
    "new_category": "warning",
    "empty_table": "error",
}


class DataSettings(BaseModel):
    """``[data]`` settings; every key is optional."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    hash_workers: int = Field(
        default_factory=lambda: max(2, 2 * (os.cpu_count() or 1)), ge=1, le=256,
        description="Threads that hash and store files in parallel.",
    )
    fail_on: Severity = Field("error", description="Lowest anomaly severity that makes `data validate` exit 1.")
    null_rate_jump: float = Field(
        0.1, ge=0, le=1, description="Null-rate increase (absolute) against the old version that is an anomaly."
    )
    severity: dict[str, Severity] = Field(
        default_factory=dict, description="Per-kind severity overrides, e.g. {new_category = \"error\"}."
    )

    @classmethod
    def from_section(cls, raw: object) -> DataSettings:
        if not isinstance(raw, dict):
            raise ConfigError("[data] in conveyor.toml must be a table", field="data", value=raw)
        try:
            settings = cls.model_validate(raw)
        except ValidationError as exc:
            first = exc.errors()[0]
            key = ".".join(str(p) for p in first["loc"]) or "?"
            raise ConfigError(
                f"bad setting [data] {key}: {first['msg']}", field=f"data.{key}", value=first.get("input"),
                hint=f"known keys: {', '.join(sorted(cls.model_fields))}",
            ) from exc
        unknown = sorted(set(settings.severity) - set(ANOMALY_KINDS))
        if unknown:
            raise ConfigError(
                f"unknown anomaly kind [data.severity] {unknown[0]}", field=f"data.severity.{unknown[0]}",
                value=unknown[0], hint=f"known kinds: {', '.join(sorted(ANOMALY_KINDS))}",
            )
        return settings

    def severity_of(self, kind: str) -> Severity:
        return self.severity.get(kind, ANOMALY_KINDS[kind])
