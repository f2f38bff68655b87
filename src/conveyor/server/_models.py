"""MLflow's model registry endpoints over conveyor's registry (the first subset).

Registered models, versions and aliases are conveyor's: ``conveyor models`` shows them, the
alias history records each move, ``models:/name@alias`` resolves the same. A version's
``source`` is a run artifact (``runs:/<run>/<path>`` or the run's ``mlflow-artifacts:/``
URI). When the mlflow client uploaded a model folder file by file, the version is built
from those files: conveyor records one folder artifact (a manifest of the same stored
objects, nothing copied) at that path, as ``conveyor.log_artifacts`` would have.
"""

from __future__ import annotations

import fnmatch
from typing import TYPE_CHECKING, Any

from conveyor.blobs import MANIFEST_MEDIA_TYPE, Digest, Manifest, ManifestEntry
from conveyor.entities import Artifact
from conveyor.errors import NotFound
from conveyor.server import _access
from conveyor.server._errors import ApiError, invalid
from conveyor.server._http import Fields, integer, key_values, text
from conveyor.server._paging import page, page_token
from conveyor.server._paths import safe_path
from conveyor.store import parse_filter
from conveyor.tracking import Tracker

if TYPE_CHECKING:  # the registry loads on the first registry request, not at server start
    from conveyor.registry import ModelVersion, RegisteredModel, Registry


def _registry(tracker: Tracker) -> Registry:
    from conveyor.registry import Registry

    return Registry(tracker)


def version_json(v: ModelVersion) -> dict[str, Any]:
    return {
        "name": v.name, "version": str(v.version), "creation_timestamp": v.created_at,
        "last_updated_timestamp": v.updated_at, "user_id": v.user,
        "current_stage": "Archived" if v.status == "ARCHIVED" else "None", "description": v.description,
        "source": v.source, "run_id": v.run_id or "", "status": "READY",
        "tags": [{"key": k, "value": val} for k, val in v.tags.items()], "aliases": list(v.aliases),
    }


def model_json(registry: Registry, m: RegisteredModel) -> dict[str, Any]:
    out: dict[str, Any] = {
        "name": m.name, "creation_timestamp": m.created_at, "last_updated_timestamp": m.updated_at,
        "description": m.description, "aliases": [{"alias": a, "version": str(v)} for a, v in m.aliases.items()],
    }
    if m.latest_version:
        out["latest_versions"] = [version_json(registry.get_version(m.name, m.latest_version))]
    return out


def _name(fields: Fields) -> str:
    name = text(fields, "name", required=True)
    assert name is not None
    return name


def create_model(tracker: Tracker, fields: Fields) -> dict[str, Any]:
    registry, name = _registry(tracker), _name(fields)
    if key_values(fields, "tags"):
        raise invalid("Tags on registered models are not supported by conveyor yet; tag model versions instead.")
    try:
        registry.get_model(name)
    except NotFound:
        pass
    else:
        raise ApiError("RESOURCE_ALREADY_EXISTS", f"Registered Model (name={name}) already exists.")
    if not name.strip() or any(c in name for c in "/@\x00") or len(name) > 256:
        raise invalid(f"Invalid value {name!r} for parameter 'name': no '/', '@', at most 256 characters.")
    tracker.store.transaction(lambda conn: registry.repo.ensure_model(conn, name),  # idempotent
                              what=f"creating registered model {name!r}")
    description = text(fields, "description")
    if description:
        registry.set_description(name, description)
    return {"registered_model": model_json(registry, registry.get_model(name))}


def get_model(tracker: Tracker, fields: Fields) -> dict[str, Any]:
    registry = _registry(tracker)
    return {"registered_model": model_json(registry, registry.get_model(_name(fields)))}


def _matches(name: str, node: Any) -> bool:
    """``name`` comparisons (=, !=, LIKE, ILIKE) joined by AND; registered models carry no tags
    in conveyor, so a tag compares as absent (only ``!=`` holds, as the MLflow 3 client's
    own ``tags.`mlflow.prompt.is_prompt` != 'true'`` expects)."""
    if node is None:
        return True
    if type(node).__name__ == "And":
        return all(_matches(name, p) for p in node.parts)
    if type(node).__name__ != "Compare" or node.op not in ("=", "!=", "like", "ilike"):
        raise invalid("A registered model filter joins `name` comparisons (=, !=, LIKE, ILIKE) with AND.")
    if node.field.kind == "tag":
        return bool(node.op == "!=")
    if node.field.kind != "attribute" or node.field.key != "name":
        raise invalid(f"Invalid key '{node.field.key}' in a registered model filter: use name.")
    value = str(node.value)
    if node.op in ("=", "!="):
        return (name == value) == (node.op == "=")
    glob = value.replace("%", "*").replace("_", "?")
    if node.op == "ilike":
        return fnmatch.fnmatchcase(name.lower(), glob.lower())
    return fnmatch.fnmatchcase(name, glob)


def search_models(tracker: Tracker, fields: Fields) -> dict[str, Any]:
    registry = _registry(tracker)
    max_results = integer(fields, "max_results", default=100)
    assert max_results is not None
    if not 1 <= max_results <= 1000:
        raise invalid(f"Invalid value {max_results} for parameter 'max_results': between 1 and 1000.")
    offset = page_token(text(fields, "page_token"))
    wanted = registry.list_models()
    allowed = _access.readable("model", [m.name for m in wanted])  # only what the caller may read
    wanted = [m for m in wanted if m.name in allowed]
    node = parse_filter(text(fields, "filter") or "")
    wanted = [m for m in wanted if _matches(m.name, node)]
    chosen, token = page(wanted, offset, max_results)
    out: dict[str, Any] = {"registered_models": [model_json(registry, m) for m in chosen]}
    if token:
        out["next_page_token"] = token
    return out


def _source(tracker: Tracker, source: str, run_id: str | None) -> tuple[str, str]:
    """(run id, artifact path) of a version source."""
    if source.startswith("runs:/"):
        run, _, path = source.removeprefix("runs:/").partition("/")
    elif source.startswith("mlflow-artifacts:/"):
        rest = source.removeprefix("mlflow-artifacts:").lstrip("/")
        parts = rest.split("/", 3)
        if len(parts) < 4 or parts[2] != "artifacts":
            raise invalid(f"Invalid source {source!r}: expected mlflow-artifacts:/<exp>/<run>/artifacts/<path>.")
        run, path = parts[1], parts[3]
    else:
        raise invalid(f"Unsupported source {source!r}: conveyor registers run artifacts "
                      "(runs:/<run id>/<path> or the run's mlflow-artifacts:/ URI).")
    safe_path(run)
    safe_path(path.rstrip("/"))
    if run_id and run_id != run:
        raise invalid(f"Invalid run_id {run_id!r}: the source {source!r} belongs to run {run}.")
    return run, path.rstrip("/")


def _ensure_package(tracker: Tracker, run_id: str, path: str) -> None:
    """A folder of individually uploaded files becomes one folder artifact (a manifest)."""
    artifacts = tracker.list_artifacts(run_id)
    if any(a.path == path for a in artifacts):
        return
    inside = [a for a in artifacts if a.path.startswith(path + "/") and not a.is_dir]
    if not inside:
        raise ApiError("RESOURCE_DOES_NOT_EXIST", f"Run {run_id} has no artifact at {path!r}.")
    manifest = Manifest.of(ManifestEntry(a.path[len(path) + 1:], Digest.parse(a.digest), a.size) for a in inside)
    blob = tracker.blobs.put_bytes(manifest.to_bytes())
    tracker.store.transaction(  # an upsert: a plain retry through a database blink
        lambda conn: tracker.store.artifacts.record(
            conn, Artifact(run_id, path, str(blob.digest), manifest.total_size, MANIFEST_MEDIA_TYPE, True)),
        what=f"recording artifact {path!r} of run {run_id}")


def create_version(tracker: Tracker, fields: Fields) -> dict[str, Any]:
    registry, name = _registry(tracker), _name(fields)
    source = text(fields, "source", required=True)
    assert source is not None
    run_id, path = _source(tracker, source, text(fields, "run_id"))
    registry.get_model(name)  # MLflow requires the registered model to exist
    _ensure_package(tracker, run_id, path)
    version = registry.register(f"runs:/{run_id}/{path}", name, description=text(fields, "description") or "",
                                tags=key_values(fields, "tags") or None, data_versions=(),
                                user=_access.user_name())
    return {"model_version": version_json(version)}


def _version(fields: Fields) -> int:
    version = integer(fields, "version", required=True)
    assert version is not None
    if version < 1:
        raise invalid(f"Invalid value {version} for parameter 'version': a version number starts at 1.")
    return version


def get_version(tracker: Tracker, fields: Fields) -> dict[str, Any]:
    return {"model_version": version_json(_registry(tracker).get_version(_name(fields), _version(fields)))}


def _alias(fields: Fields) -> str:
    alias = text(fields, "alias", required=True)
    assert alias is not None
    return alias


def set_alias(tracker: Tracker, fields: Fields) -> dict[str, Any]:
    _registry(tracker).set_alias(_name(fields), _alias(fields), _version(fields), reason="set through the MLflow API",
                                 user=_access.user_name())
    return {}


def get_alias(tracker: Tracker, fields: Fields) -> dict[str, Any]:
    registry, name, alias = _registry(tracker), _name(fields), _alias(fields)
    holder = registry.get_model(name).aliases.get(alias)
    if holder is None:
        raise ApiError("RESOURCE_DOES_NOT_EXIST", f"Registered model alias {alias} not found.")
    return {"model_version": version_json(registry.get_version(name, holder))}


def delete_alias(tracker: Tracker, fields: Fields) -> dict[str, Any]:
    _registry(tracker).delete_alias(_name(fields), _alias(fields), reason="deleted through the MLflow API",
                                    user=_access.user_name())
    return {}


def _version_matches(v: ModelVersion, node: Any) -> bool:
    """``name``, ``run_id``, ``source`` and ``version_number`` comparisons joined by AND."""
    if node is None:
        return True
    if type(node).__name__ == "And":
        return all(_version_matches(v, p) for p in node.parts)
    if type(node).__name__ != "Compare" or node.op not in ("=", "!=", "like", "ilike", "in"):
        raise invalid("A model version filter joins name, run_id, source or version_number comparisons with AND.")
    if node.field.kind == "tag":
        actual: str | None = v.tags.get(node.field.key)
    elif node.field.kind == "attribute" and node.field.key in ("name", "run_id", "run_name", "id"):
        actual = {"name": v.name}.get(node.field.key, v.run_id)
    elif node.field.kind == "attribute" and node.field.key in ("source", "version_number"):
        actual = v.source if node.field.key == "source" else str(v.version)
    else:
        raise invalid(f"Invalid key '{node.field.key}' in a model version filter: "
                      "use name, run_id, source, version_number or tags.<key>.")
    if node.op == "in":
        return actual in {str(x) for x in node.value}
    if actual is None:
        return bool(node.op == "!=")
    value = str(node.value)
    if node.op in ("=", "!="):
        return (actual == value) == (node.op == "=")
    glob = value.replace("%", "*").replace("_", "?")
    if node.op == "ilike":
        return fnmatch.fnmatchcase(actual.lower(), glob.lower())
    return fnmatch.fnmatchcase(actual, glob)


def search_versions(tracker: Tracker, fields: Fields) -> dict[str, Any]:
    from conveyor.registry import ModelVersion

    registry = _registry(tracker)
    max_results = integer(fields, "max_results", default=10000)
    assert max_results is not None
    if not 1 <= max_results <= 200000:
        raise invalid(f"Invalid value {max_results} for parameter 'max_results': between 1 and 200000.")
    offset = page_token(text(fields, "page_token"))
    node = parse_filter(text(fields, "filter") or "")
    _version_matches(ModelVersion("", 0, "", None, "", 0, "READY"), node)  # a bad key is a 400 even with no versions
    models = registry.list_models()
    allowed = _access.readable("model", [m.name for m in models])  # only what the caller may read
    found = [v for m in models if m.name in allowed for v in registry.list_versions(m.name) if _version_matches(v, node)]
    found.sort(key=lambda v: (v.name, -v.version))
    chosen, token = page(found, offset, max_results)
    out: dict[str, Any] = {"model_versions": [version_json(v) for v in chosen]}
    if token:
        out["next_page_token"] = token
    return out
