"""The staleness check of a gate: how much quality does a model lose as it ages? (ML Test
Score Model 4.)

The older registered versions of the model (the newest ``versions`` of them, registered
before the candidate; archived ones included, failed registrations not) are scored on the
candidate's evaluation data: each was trained on the data of its day, so its loss against
the candidate on today's rows is what serving a model that old would cost. The loss per
day of age is the least-squares slope through the origin of (age in days, loss), estimated
once the oldest scored version is at least a day older than the candidate; with
``max_age_days`` (the longest the team lets a model serve: its retraining cadence) the
check fails when slope × max_age_days exceeds ``max_loss``. Without it, the check records
the measurement and passes. Fewer than one older version: skipped.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from conveyor.errors import ConveyorError
from conveyor.gates._result import Check
from conveyor.gates._spec import GateSpec

_DAY_MS = 86_400_000
#: the oldest version must be at least this much older for a loss per day to be estimated
_MIN_SPAN_DAYS = 1.0


def staleness_check(spec: GateSpec, registry: Any, name: str | None, version: int | None,
                    measure: Any, candidate_value: float | None, trusted: Any = None) -> Check:
    """``measure(model) -> metric value`` scores one loaded version on the evaluation data."""
    from conveyor.gates._metrics import improvement

    stale = spec.staleness
    assert stale is not None
    metric = stale.metric or spec.compare_metric
    title = f"staleness: {metric} of older versions on today's data"
    if registry is None or name is None or version is None or candidate_value is None:
        return Check(title, "staleness", None, "skipped: the candidate is not a registered version", {})
    versions = registry.list_versions(name)
    me = next((v for v in versions if v.version == version), None)
    older = [v for v in versions if v.version < version][-stale.versions:]
    if me is None or not older:
        return Check(title, "staleness", None, "skipped: no older version to compare with", {})
    rows, errors = [], []
    for old in older:
        try:
            value = float(measure(registry.load_model(old.uri, trusted=trusted)))
        except ConveyorError as exc:  # a version that no longer loads cannot be measured; say so
            errors.append(f"v{old.version}: {exc.message}")
            continue
        age = max(0.0, (me.created_at - old.created_at) / _DAY_MS)
        loss = float(improvement(metric, np.float64(candidate_value), np.float64(value)))
        rows.append({"version": old.version, "age_days": age, metric: value, "loss": loss})
    if not rows:
        return Check(title, "staleness", None, "skipped: no older version could be scored: " + "; ".join(errors),
                     {"errors": errors})
    ages = np.array([r["age_days"] for r in rows])
    losses = np.array([r["loss"] for r in rows])
    # a rate per day from versions registered minutes apart would be noise divided by ~0
    slope = float(ages @ losses / (ages @ ages)) if float(ages.max()) >= _MIN_SPAN_DAYS else None
    evidence: dict[str, Any] = {"metric": metric, "candidate": candidate_value, "versions": rows,
                                "loss_per_day": slope, "errors": errors, "max_age_days": stale.max_age_days,
                                "max_loss": stale.max_loss}
    worst = max(rows, key=lambda r: r["loss"])
    summary = (f"{len(rows)} older version(s) on today's data: worst v{worst['version']} "
               f"({worst['age_days']:.2f} days older) loses {worst['loss']:+.4f} {metric}")
    if slope is not None:
        summary += f"; {slope:+.4g} {metric} per day of age"
    passed = True
    if stale.max_age_days is not None and slope is not None:
        expected = slope * stale.max_age_days
        evidence["expected_loss_at_max_age"] = expected
        passed = expected <= stale.max_loss
        summary += (f"; at {stale.max_age_days:g} days: {expected:+.4f}, needs ≤ {stale.max_loss:g}")
    return Check(title, "staleness", passed, summary, evidence)
