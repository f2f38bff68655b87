"""The model registry: numbered versions of named models, aliases and an audit trail.

``register("runs:/<id>/model", "churn")`` makes version N (monotonic per name, safe under
concurrent registration); aliases (``champion``, ``challenger``, any name) point at
versions; ``models:/churn@champion``, ``models:/churn/3`` and ``models:/churn/latest``
resolve everywhere. Every alias move and status change is an event (who, when, why,
from → to), so ``aliases_at("churn", "2026-10-01")`` answers which version was champion.

Model cards read ``[model_cards.<model name>]`` in conveyor.toml: ``intended_use``,
``out_of_scope``, ``limitations``, ``ethical_considerations``, ``caveats``, ``owners``
(strings; a list for owners).
"""

from conveyor.registry._aliases import current_user as current_user_name
from conveyor.registry._aliases import parse_instant
from conveyor.registry._card import CardSettings, model_card
from conveyor.registry._entities import Event, ModelVersion, RegisteredModel, Status
from conveyor.registry._fluent import (
    aliases_at,
    archive,
    delete_alias,
    delete_version,
    get_registry,
    get_version,
    history,
    list_models,
    list_versions,
    load_model,
    register,
    resolve,
    rollback,
    set_alias,
    set_tags,
)
from conveyor.registry._registry import Registry
from conveyor.registry._signature import package_signature
from conveyor.registry._uris import ModelURI, parse_model_uri

__all__ = [
    "CardSettings",
    "Event",
    "ModelURI",
    "ModelVersion",
    "RegisteredModel",
    "Registry",
    "Status",
    "aliases_at",
    "archive",
    "current_user_name",
    "delete_alias",
    "delete_version",
    "get_registry",
    "get_version",
    "history",
    "list_models",
    "list_versions",
    "load_model",
    "model_card",
    "package_signature",
    "parse_instant",
    "parse_model_uri",
    "register",
    "resolve",
    "rollback",
    "set_alias",
    "set_tags",
]
