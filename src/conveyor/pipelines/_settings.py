"""The ``[pipelines]`` table of conveyor.toml, validated (unknown keys are named)."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from conveyor.errors import ConfigError


class PipelineSettings(BaseModel):
    """Defaults for ``conveyor pipeline run``/``sweep``; command-line options win."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    executor: Literal["local", "ray"] = Field("local", description="Where steps run: local processes or Ray.")
    ray_address: str | None = Field(None, description="host:port of the Ray cluster (GCS) for executor=ray.")
    max_workers: int | None = Field(None, ge=1, description="Steps running at once (default: the cores).")
    experiment: str | None = Field(None, description="Experiment of pipeline runs (default: the pipeline's name).")

    @classmethod
    def from_section(cls, raw: Any) -> PipelineSettings:
        """Validate ``settings.section("pipelines")``.

        Example::

            PipelineSettings.from_section(Settings.load().section("pipelines"))
        """
        if not isinstance(raw, dict):
            raise ConfigError("[pipelines] in conveyor.toml must be a table", field="pipelines", value=raw)
        try:
            return cls.model_validate(raw)
        except ValidationError as exc:
            first = exc.errors()[0]
            key = ".".join(str(p) for p in first["loc"]) or "?"
            known = ", ".join(cls.model_fields)
            raise ConfigError(
                f"bad setting [pipelines] {key} = {raw.get(key)!r}: {first['msg']}",
                field=f"pipelines.{key}", value=raw.get(key), hint=f"known keys: {known}",
            ) from None
