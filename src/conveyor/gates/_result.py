"""What a gate evaluation produces: every check with its evidence, and the verdict."""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import Any


@dataclass(frozen=True)
class Check:
    """One check of a gate. ``passed`` is ``None`` when it was skipped (e.g. a threshold
    relative to a champion that does not exist yet); skipped checks do not veto."""

    name: str
    kind: str  # threshold | compare | slices | baseline | data | operational
    passed: bool | None
    summary: str
    evidence: dict[str, Any] = field(default_factory=dict)

    @property
    def failed(self) -> bool:
        return self.passed is False

    def to_dict(self) -> dict[str, Any]:
        return {"name": self.name, "kind": self.kind, "passed": self.passed, "summary": self.summary,
                "evidence": self.evidence}


@dataclass(frozen=True)
class Evaluation:
    """A gate's verdict on a candidate: passed when no check failed."""

    gate: str
    checks: tuple[Check, ...]
    metrics: dict[str, float]
    n_rows: int
    champion_metrics: dict[str, float] | None = None
    baseline_metrics: dict[str, float] | None = None
    slices: tuple[dict[str, Any], ...] = ()
    model: str | None = None
    version: int | None = None
    champion_version: int | None = None
    dataset: str = ""
    schema: tuple[dict[str, str], ...] = ()
    id: str | None = None
    created_at: int = 0

    @property
    def passed(self) -> bool:
        return not any(check.failed for check in self.checks)

    @property
    def failures(self) -> list[Check]:
        return [check for check in self.checks if check.failed]

    def with_(self, **changes: Any) -> Evaluation:
        return replace(self, **changes)

    def to_dict(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "gate": self.gate,
            "passed": self.passed,
            "model": self.model,
            "version": self.version,
            "champion_version": self.champion_version,
            "dataset": self.dataset,
            "n_rows": self.n_rows,
            "metrics": self.metrics,
            "champion_metrics": self.champion_metrics,
            "baseline_metrics": self.baseline_metrics,
            "checks": [c.to_dict() for c in self.checks],
            "slices": list(self.slices),
            "schema": list(self.schema),
            "created_at": self.created_at,
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Evaluation:
        return cls(
            gate=data["gate"],
            checks=tuple(Check(c["name"], c["kind"], c["passed"], c["summary"], c.get("evidence", {}))
                         for c in data.get("checks", [])),
            metrics=data.get("metrics", {}),
            n_rows=int(data.get("n_rows", 0)),
            champion_metrics=data.get("champion_metrics"),
            baseline_metrics=data.get("baseline_metrics"),
            slices=tuple(data.get("slices", [])),
            model=data.get("model"),
            version=data.get("version"),
            champion_version=data.get("champion_version"),
            dataset=data.get("dataset", ""),
            schema=tuple(data.get("schema", [])),
            id=data.get("id"),
            created_at=int(data.get("created_at") or 0),
        )
