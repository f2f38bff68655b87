"""Validation of what users log: metric values, steps, artifact paths."""

from __future__ import annotations

import numbers
from typing import Any

from conveyor.blobs import check_relative_path
from conveyor.errors import InvalidMetric, UnsafePath


def metric_value(key: str, value: Any) -> float:
    """A real number as float (NaN and ±inf are kept); anything else names the key."""
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise InvalidMetric(
            f"metric {key!r} must be a real number, got {type(value).__name__} {value!r}",
            field=key,
            value=value,
            hint="log numbers only (int, float, numpy scalar); log text as a tag or an artifact",
        )
    return float(value)


def metric_step(key: str, step: Any) -> int:
    if step is None:
        return 0
    if isinstance(step, bool) or not isinstance(step, numbers.Integral):
        raise InvalidMetric(
            f"step of metric {key!r} must be an integer, got {step!r}", field=f"{key}.step", value=step
        )
    return int(step)


def artifact_path(path: str | None, name: str | None = None) -> str:
    """Join an optional artifact folder and a file name into a checked relative path."""
    # Only a trailing slash is forgiven: a leading one would make the path absolute.
    folder = (path or "").rstrip("/") if path not in (None, "") and path.strip("/") else (path or "")
    parts = [p for p in (folder, name or "") if p]
    joined = "/".join(parts)
    if not joined:
        raise UnsafePath("an artifact needs a path", field="artifact_path", value=path)
    return check_relative_path(joined)
