"""Module-level registry functions over the default tracker (``conveyor.tracking.get_tracker``)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any

from conveyor.entities import ModelRef
from conveyor.registry._entities import Event, ModelVersion, RegisteredModel
from conveyor.registry._registry import Registry


def get_registry() -> Registry:
    """The registry over the project's stores (the same ones ``conveyor.start_run`` uses)."""
    from conveyor.tracking import get_tracker

    return Registry(get_tracker())


def register(
    source: str,
    name: str,
    *,
    description: str = "",
    tags: Mapping[str, Any] | None = None,
    data_versions: Sequence[str] | None = None,
) -> ModelVersion:
    """Register ``runs:/<run_id>/<path>`` as the next version of ``name``.

    Example::

        v = conveyor.registry.register(f"runs:/{run.id}/model", "churn")
        v.version   # 1, 2, 3 … per name, never reused
    """
    return get_registry().register(source, name, description=description, tags=tags, data_versions=data_versions)


def resolve(uri: str) -> ModelRef:
    """``resolve("models:/churn@champion")`` → ``ModelRef("churn", 3, "champion", digest, run_id)``."""
    return get_registry().resolve(uri)


def get_version(uri: str) -> ModelVersion:
    """The version a URI names: ``get_version("models:/churn/latest")``."""
    return get_registry().get(uri)


def load_model(uri: str, **options: Any) -> Any:
    """Load a registered model: ``load_model("models:/churn@champion").predict(frame)``."""
    return get_registry().load_model(uri, **options)


def list_models() -> list[RegisteredModel]:
    """Every registered model with its latest version and aliases."""
    return get_registry().list_models()


def list_versions(name: str) -> list[ModelVersion]:
    """The versions of ``name``, oldest first: ``list_versions("churn")``."""
    return get_registry().list_versions(name)


def set_alias(name: str, alias: str, version: int, *, reason: str = "") -> Event:
    """Point an alias at a version, recorded: ``set_alias("churn", "challenger", 4, reason="A/B")``."""
    return get_registry().set_alias(name, alias, version, reason=reason)


def delete_alias(name: str, alias: str, *, reason: str = "") -> None:
    """Remove an alias, recorded: ``delete_alias("churn", "challenger")``."""
    get_registry().delete_alias(name, alias, reason=reason)


def rollback(name: str, alias: str = "champion", *, reason: str = "") -> Event:
    """Move ``alias`` back to its previous holder: ``rollback("churn", reason="bad deploy")``."""
    return get_registry().rollback(name, alias, reason=reason)


def history(name: str, *, alias: str | None = None) -> list[Event]:
    """The audit trail of ``name``: ``history("churn", alias="champion")``."""
    return get_registry().history(name, alias=alias)


def aliases_at(name: str, at: str | int | datetime) -> dict[str, int]:
    """Which version held each alias then: ``aliases_at("churn", "2026-10-01")["champion"]``."""
    return get_registry().aliases_at(name, at)


def archive(name: str, version: int, *, reason: str = "") -> None:
    """Archive a version (no alias may point at it), recorded: ``archive("churn", 2)``."""
    get_registry().archive(name, version, reason=reason)


def delete_version(name: str, version: int, *, reason: str = "") -> None:
    """Remove a version from the registry (its events stay): ``delete_version("churn", 2)``."""
    get_registry().delete_version(name, version, reason=reason)


def set_tags(name: str, version: int, tags: Mapping[str, Any]) -> None:
    """Tag a version: ``set_tags("churn", 3, {"reviewed": "yes"})``."""
    get_registry().set_tags(name, version, tags)
