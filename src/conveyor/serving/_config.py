"""The ``[serving]`` table of conveyor.toml, validated, plus traffic-split specs."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from conveyor.errors import ConfigError, InvalidInput


class ServingConfig(BaseModel):
    """Knobs of the inference server; every key may appear under ``[serving]``."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    batching: bool = Field(default=True, description="Coalesce concurrent requests into one predict call.")
    max_batch_size: int = Field(default=64, ge=1, description="Most rows one predict call receives.")
    max_wait_ms: float = Field(default=2.0, ge=0, description="Longest a request waits for others to join its batch.")
    inline_predict_ms: float = Field(
        default=1.0, ge=0, description="Models whose predict takes less run on the event loop, not a thread."
    )
    queue_size: int = Field(default=1024, ge=1, description="Requests waiting per model version before 503s.")
    max_body_bytes: int = Field(default=8 * 1024 * 1024, ge=1, description="Largest request body (413 above).")
    body_timeout_s: float = Field(default=30.0, gt=0, description="Seconds a client may take to send its body (408).")
    log_predictions: bool = Field(default=True, description="Write the prediction log (needs a store).")
    log_sample_rate: float = Field(default=1.0, ge=0, le=1, description="Share of requests written to the log.")
    log_flush_s: float = Field(default=1.0, gt=0, description="Seconds between log flushes.")
    log_flush_rows: int = Field(default=5000, ge=1, description="Buffered rows that trigger a flush early.")
    log_buffer_rows: int = Field(default=100_000, ge=1, description="Buffer bound; rows beyond it are dropped and counted.")
    follow_interval_s: float = Field(default=2.0, gt=0, description="Seconds between registry checks with --follow.")
    sticky_header: str | None = Field(default=None, description="Request header whose value pins a client to a version.")
    access_log: bool = Field(default=True, description="One JSON line per request on the conveyor.serving.access logger.")
    header_timeout_s: float = Field(
        default=10.0, gt=0, description="Seconds a client may take to send a request's headers (the connection closes after)."
    )
    feedback_max_age_s: float = Field(
        default=7 * 86400.0, gt=0, description="Oldest answered request (seconds) that feedback may still label."
    )

    @classmethod
    def from_mapping(cls, data: Mapping[str, Any], **overrides: Any) -> ServingConfig:
        """Validate a raw ``[serving]`` table; the error names the bad key.

        Example::

            >>> ServingConfig.from_mapping({"max_batch_size": 16}).max_batch_size
            16
        """
        merged = {**dict(data), **{k: v for k, v in overrides.items() if v is not None}}
        try:
            return cls.model_validate(merged)
        except ValidationError as exc:
            first = exc.errors()[0]
            key = ".".join(str(p) for p in first["loc"]) or "?"
            if first["type"] == "extra_forbidden":
                raise ConfigError(
                    f"unknown setting [serving] {key}", field=f"serving.{key}", value=merged.get(key),
                    hint="known keys: " + ", ".join(sorted(cls.model_fields)),
                ) from None
            raise ConfigError(
                f"bad value {merged.get(key)!r} for [serving] {key}: {first['msg']}",
                field=f"serving.{key}", value=merged.get(key),
                hint=cls.model_fields[key].description if key in cls.model_fields else None,
            ) from None


@dataclass(frozen=True, slots=True)
class CanarySpec:
    """``name@alias:percent`` — send ``percent`` % of ``name``'s traffic to ``alias``."""

    name: str
    ref: str
    percent: float

    @classmethod
    def parse(cls, text: str) -> CanarySpec:
        """Parse ``name@challenger:10`` (or ``name/3:10`` for a fixed version).

        Example::

            >>> CanarySpec.parse("iris@challenger:10")
            CanarySpec(name='iris', ref='iris@challenger', percent=10.0)
        """
        ref, sep, pct = text.rpartition(":")
        hint = "write name@alias:percent, e.g. iris@challenger:10"
        if not sep or not ref:
            raise InvalidInput(f"canary {text!r} has no ':percent'", field="canary", value=text, hint=hint)
        try:
            percent = float(pct)
        except ValueError:
            raise InvalidInput(f"canary percent {pct!r} is not a number", field="canary", value=text, hint=hint) from None
        if not 0 <= percent <= 100:
            raise InvalidInput(f"canary percent {percent} is outside 0–100", field="canary", value=text, hint=hint)
        return cls(model_name(ref), ref.removeprefix("models:/"), percent)


def model_name(ref: str) -> str:
    """The registered name in ``models:/name@alias``, ``name@alias`` or ``name/3``.

    Example::

        >>> model_name("models:/iris@champion")
        'iris'
    """
    body = ref.removeprefix("models:/")
    name = body.split("@", 1)[0].split("/", 1)[0]
    if not name:
        raise InvalidInput(f"model reference {ref!r} names no model", field="model", value=ref,
                           hint="write models:/name@alias or models:/name/3")
    return name


def model_uri(ref: str) -> str:
    """Normalise ``name@alias`` to ``models:/name@alias``."""
    return ref if ref.startswith("models:/") else f"models:/{ref}"
