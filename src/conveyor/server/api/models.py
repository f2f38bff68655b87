"""``/api/v1/models``: the model registry — registered models, versions (status, signature,
card, lineage), aliases with their audit history, and gate evaluations.

Everything is read from and written through :class:`conveyor.registry.Registry` and
:mod:`conveyor.gates`, exactly as the Python API and ``conveyor models`` do. Permissions
(kind ``model``, the registered model's name): reading is ``read``; registering, describing,
tagging, archiving and restoring are ``edit``; moving or deleting an alias (set, promote,
rollback) and deleting a version are ``manage``. Creating a model is ``edit`` on models as
a whole; the list leaves out models the caller may not read.
"""

from __future__ import annotations

import json
from typing import Any, Literal

from fastapi import APIRouter, Body, Path, Query, Request
from pydantic import BaseModel, ConfigDict, Field
from sqlalchemy import select

from conveyor.errors import AlreadyExists, NotFound
from conveyor.registry import Event, ModelVersion, RegisteredModel, Registry
from conveyor.server.api import _deps
from conveyor.server.api._listing import MAX_PAGE, Lineage, allowed, caller, lineage_of, page
from conveyor.store import gate_evaluations, registered_models

router = APIRouter(prefix="/models", tags=["models"])

ModelName = Path(..., description="Registered model name.", min_length=1, max_length=256)
VersionNumber = Path(..., description="Version number.", ge=1, le=2**31 - 1)
AliasName = Path(..., description="Alias name, e.g. champion.", min_length=1, max_length=256)


# -- shapes -------------------------------------------------------------------------------------
class RegisteredModelOut(BaseModel):
    name: str
    description: str
    latest_version: int = Field(description="Newest READY or ARCHIVED version (0: none yet).")
    aliases: dict[str, int] = Field(description="Alias → version it points at now.")
    created_at: int
    updated_at: int


class ModelPage(BaseModel):
    models: list[RegisteredModelOut]
    next_page_token: str | None = None


class ModelCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")
    name: str = Field(min_length=1, max_length=256)
    description: str = ""


class ModelUpdate(BaseModel):
    model_config = ConfigDict(extra="forbid")
    description: str


class ModelVersionOut(BaseModel):
    name: str
    version: int
    uri: str = Field(description="models:/<name>/<version>")
    source: str = Field(description="runs:/<run_id>/<path> of the registered package.")
    run_id: str | None
    digest: str
    size: int
    status: Literal["PENDING_REGISTRATION", "READY", "FAILED_REGISTRATION", "ARCHIVED"]
    status_message: str
    description: str
    git_commit: str | None
    data_versions: list[str] = Field(description="Data set versions the producing run read.")
    user: str
    created_at: int
    updated_at: int
    tags: dict[str, str]
    aliases: list[str]


class ColumnOut(BaseModel):
    name: str | None
    dtype: str
    shape: list[int] = []
    nullable: bool = False
    classes: list[Any] | None = Field(None, description="A probability output's class label per position.")


class SignatureOut(BaseModel):
    inputs: list[ColumnOut]
    outputs: list[ColumnOut]
    probabilities: ColumnOut | None = Field(None, description="A classifier's second output (predict_proba).")


class ModelVersionDetail(ModelVersionOut):
    flavor: str | None = Field(None, description="The package's flavor (sklearn, xgboost, onnx …).")
    signature: SignatureOut | None = Field(None, description="What the model takes and returns.")
    requirements: list[str] = Field(default_factory=list, description="Pinned packages the package needs.")


class VersionList(BaseModel):
    versions: list[ModelVersionOut]


class VersionCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")
    source: str = Field(description="runs:/<run_id>/<path> of a model package logged by a run.")
    description: str = ""
    tags: dict[str, str] = Field(default_factory=dict)
    data_versions: list[str] | None = Field(None, description="Default: the data set versions the run read.")
    user: str | None = Field(None, max_length=256, description="Who to record when the server does not "
                                                                 "authenticate (ignored when it does).")


class VersionUpdate(BaseModel):
    model_config = ConfigDict(extra="forbid")
    description: str | None = None
    tags: dict[str, str] = Field(default_factory=dict, description="Tags to set (added or overwritten).")
    delete_tags: list[str] = Field(default_factory=list, description="Tag keys to remove.")


class Reason(BaseModel):
    model_config = ConfigDict(extra="forbid")
    reason: str = Field("", description="Why: recorded in the history.")
    user: str | None = Field(None, max_length=256, description="Who to record when the server does not "
                                                                 "authenticate (ignored when it does).")


class AliasSet(BaseModel):
    model_config = ConfigDict(extra="forbid")
    version: int = Field(ge=1, le=2**31 - 1)
    reason: str = Field("", description="Why: recorded in the history.")
    user: str | None = Field(None, max_length=256, description="Who to record when the server does not "
                                                                 "authenticate (ignored when it does).")


class Promotion(BaseModel):
    model_config = ConfigDict(extra="forbid")
    alias: str = Field("champion", min_length=1, max_length=256)
    force: bool = Field(False, description="Move without a passing gate evaluation (needs a reason).")
    reason: str = ""
    user: str | None = Field(None, max_length=256, description="Who to record when the server does not "
                                                                 "authenticate (ignored when it does).")


class CheckOut(BaseModel):
    name: str
    kind: str = Field(description="threshold | compare | slices | baseline | data | operational")
    passed: bool | None = Field(description="null: skipped (e.g. relative to a champion that does not exist).")
    summary: str
    evidence: dict[str, Any]


class GateEvaluationOut(BaseModel):
    id: str
    gate: str
    passed: bool
    model: str
    version: int
    champion_version: int | None
    dataset: str
    n_rows: int
    metrics: dict[str, Any]
    champion_metrics: dict[str, Any] | None
    baseline_metrics: dict[str, Any] | None
    checks: list[CheckOut]
    slices: list[dict[str, Any]]
    data_schema: list[dict[str, Any]] = Field(description="Columns of the evaluation data with their dtypes.")
    user: str
    created_at: int


class EvaluationList(BaseModel):
    evaluations: list[GateEvaluationOut]


class EventOut(BaseModel):
    id: int
    name: str
    kind: str = Field(description="register, register_failed, alias, rollback, alias_deleted, status, deleted, "
                                  "description, promote_refused, promote_lost")
    version: int | None
    alias: str | None
    from_value: str | None = Field(description="Version the alias pointed at before (or the old status).")
    to_value: str | None
    user: str = Field(description="Who made the change.")
    at: int = Field(description="When (ms since the epoch).")
    reason: str
    forced: bool = Field(description="A promotion without a passing gate evaluation.")
    evaluation_id: str | None
    evaluation: GateEvaluationOut | None = Field(
        None, description="The gate evaluation the registry recorded as the evidence of this move.")


class History(BaseModel):
    events: list[EventOut]


class AliasesAt(BaseModel):
    name: str
    at: int = Field(description="The instant asked about (ms).")
    aliases: dict[str, int]


class Card(BaseModel):
    name: str
    version: int
    markdown: str


# -- conversions --------------------------------------------------------------------------------
def _registry(request: Request) -> Registry:
    return Registry(_deps.tracker(request))


def _model(m: RegisteredModel) -> RegisteredModelOut:
    return RegisteredModelOut.model_validate(m.to_dict())


def _version(v: ModelVersion) -> ModelVersionOut:
    return ModelVersionOut.model_validate(v.to_dict())


def package_meta(tracker: Any, version: ModelVersion) -> dict[str, Any] | None:
    """``conveyor-model.json`` of a version's package, read from the artifact store without
    loading the model (None when the package has none)."""
    from conveyor.blobs import Digest
    from conveyor.models._meta import META_FILE

    try:
        manifest = tracker.blobs.read_manifest(Digest.parse(version.digest))
    except Exception:  # a single-file artifact is no package folder
        return None
    for entry in manifest.entries:
        if entry.path == META_FILE:
            return dict(json.loads(tracker.blobs.read_bytes(entry.digest)))
    return None


def _detail(tracker: Any, v: ModelVersion) -> ModelVersionDetail:
    meta = package_meta(tracker, v) or {}
    return ModelVersionDetail.model_validate({
        **v.to_dict(), "flavor": meta.get("flavor"), "signature": meta.get("signature"),
        "requirements": list(meta.get("requirements") or []),
    })


def _evaluation(row: Any, name: str) -> GateEvaluationOut:
    data = json.loads(row.evidence)
    return GateEvaluationOut(
        id=row.id, gate=row.gate, passed=bool(row.passed), model=name, version=int(row.version),
        champion_version=row.champion_version, dataset=row.dataset, n_rows=int(row.n_rows),
        metrics=data.get("metrics") or {}, champion_metrics=data.get("champion_metrics"),
        baseline_metrics=data.get("baseline_metrics"), checks=[CheckOut.model_validate(c) for c in data.get("checks", [])],
        slices=list(data.get("slices") or []), data_schema=list(data.get("schema") or []), user=row.user,
        created_at=int(row.created_at),
    )


def _evaluations(registry: Registry, name: str, *, version: int | None = None,
                 ids: list[str] | None = None) -> list[GateEvaluationOut]:
    """Stored gate evaluations of ``name`` (one version, or some ids), newest first."""
    t = gate_evaluations

    def read(conn: Any) -> list[Any]:
        model = registry.repo.model_row(conn, name)
        query = select(t).where(t.c.model_id == model.id)
        if version is not None:
            registry.repo.version_row(conn, model.id, name, version)
            query = query.where(t.c.version == version)
        if ids is not None:
            if not ids:
                return []
            query = query.where(t.c.id.in_(ids))
        return list(conn.execute(query.order_by(t.c.created_at.desc(), t.c.id)).all())

    rows = registry.store.query(read, what=f"reading the gate evaluations of {name!r}")
    return [_evaluation(r, name) for r in rows]


def _events(registry: Registry, name: str, events: list[Event]) -> list[EventOut]:
    """Events with the gate evaluation each one recorded as its evidence."""
    wanted = sorted({e.evaluation_id for e in events if e.evaluation_id})
    found = {e.id: e for e in _evaluations(registry, name, ids=wanted)} if wanted else {}
    return [EventOut(**e.to_dict(), evaluation=found.get(e.evaluation_id or "")) for e in events]


# -- registered models --------------------------------------------------------------------------
@router.get("", response_model=ModelPage, summary="List or search registered models")
def list_models(
    request: Request,
    search: str | None = Query(None, max_length=256, description="Only names containing this text (case-insensitive)."),
    include_failed: bool = Query(False, description="Also models whose only versions failed registration."),
    max_results: int = Query(100, ge=1, le=MAX_PAGE),
    page_token: str | None = Query(None),
) -> Any:
    found = [m for m in _registry(request).list_models(include_failed=include_failed)
             if allowed(request, "model", m.name, "read")]  # leave out what the caller may not read
    if search:
        found = [m for m in found if search.lower() in m.name.lower()]
    chosen, token = page(found, page_token, max_results)
    return ModelPage(models=[_model(m) for m in chosen], next_page_token=token)


@router.post("", response_model=RegisteredModelOut, status_code=201, summary="Create a registered model")
def create_model(request: Request, body: ModelCreate) -> Any:
    _deps.authorize(request, "model", None, "edit")
    registry = _registry(request)
    from conveyor.registry._registry import _check_name

    _check_name(body.name)

    def create(conn: Any) -> None:
        if conn.execute(select(registered_models.c.id).where(registered_models.c.name == body.name)).first():
            exists = AlreadyExists("registered model", body.name, hint=f"GET /models/{body.name} shows it")
            exists.field = "name"  # type: ignore[attr-defined]
            raise exists
        registry.repo.ensure_model(conn, body.name)

    # once: a retry after a lost COMMIT acknowledgement must not find the new model and answer 409
    registry.store.transaction(create, once=True, what=f"creating registered model {body.name!r}")
    _deps.created(request, "model", body.name)  # the creator manages it
    if body.description:
        registry.set_description(body.name, body.description)
    return _model(registry.get_model(body.name))


@router.get("/{name}", response_model=RegisteredModelOut, summary="A registered model with its aliases")
def get_model(request: Request, name: str = ModelName) -> Any:
    _deps.authorize(request, "model", name, "read")
    return _model(_registry(request).get_model(name))


@router.patch("/{name}", response_model=RegisteredModelOut, summary="Change a registered model's description")
def update_model(request: Request, body: ModelUpdate, name: str = ModelName) -> Any:
    _deps.authorize(request, "model", name, "edit")
    registry = _registry(request)
    registry.set_description(name, body.description)
    return _model(registry.get_model(name))


@router.get("/{name}/history", response_model=History, summary="The audit trail of a model, oldest first")
def model_history(
    request: Request, name: str = ModelName,
    alias: str | None = Query(None, max_length=256, description="Only the moves of this alias."),
    until: str | None = Query(None, description="Only events up to this instant (2026-10-01 = end of that day, "
                                                "an ISO time, or ms)."),
) -> Any:
    _deps.authorize(request, "model", name, "read")
    registry = _registry(request)
    instant = _instant(until, "until") if until is not None else None
    return History(events=_events(registry, name, registry.history(name, alias=alias, until=instant)))


@router.get("/{name}/aliases-at", response_model=AliasesAt, summary="Which version held each alias at an instant")
def aliases_at(request: Request, name: str = ModelName,
               at: str = Query(..., description="2026-10-01 (end of that day, UTC), an ISO time, or ms.")) -> Any:
    _deps.authorize(request, "model", name, "read")
    instant = _instant(at)
    return AliasesAt(name=name, at=instant, aliases=_registry(request).aliases_at(name, instant))


def _instant(value: str, field: str = "at") -> int:
    from conveyor.errors import InvalidInput
    from conveyor.registry import parse_instant

    try:
        return parse_instant(int(value) if value.isdigit() else value)
    except InvalidInput as exc:
        raise InvalidInput(exc.message, field=field, value=value, hint=exc.hint) from None


# -- versions -----------------------------------------------------------------------------------
@router.get("/{name}/versions", response_model=VersionList, summary="The versions of a model, oldest first")
def list_versions(
    request: Request, name: str = ModelName,
    include_archived: bool = Query(True), include_failed: bool = Query(False, description="Also versions that failed "
                                                                                          "registration, with the reason."),
) -> Any:
    _deps.authorize(request, "model", name, "read")
    found = _registry(request).list_versions(name, include_archived=include_archived, include_failed=include_failed)
    return VersionList(versions=[_version(v) for v in found])


@router.post("/{name}/versions", response_model=ModelVersionOut, status_code=201,
             summary="Register a run's model package as the next version")
def register_version(request: Request, body: VersionCreate, name: str = ModelName) -> Any:
    registry = _registry(request)
    try:
        registry.get_model(name)
        new = False
    except NotFound:
        new = True  # registering its first version creates the model: the right to create one is enough
    _deps.authorize(request, "model", None if new else name, "edit")
    version = registry.register(
        body.source, name, description=body.description, tags=body.tags, data_versions=body.data_versions,
        user=caller(request, body.user),
    )
    if new:
        _deps.created(request, "model", name)  # the creator manages it
    return _version(version)


@router.get("/{name}/latest", response_model=ModelVersionDetail, summary="The newest READY version")
def latest_version(request: Request, name: str = ModelName) -> Any:
    _deps.authorize(request, "model", name, "read")
    tracker = _deps.tracker(request)
    return _detail(tracker, Registry(tracker).get(f"models:/{name}/latest"))


@router.get("/{name}/versions/{version}", response_model=ModelVersionDetail,
            summary="A version: status, signature, flavor, tags, aliases")
def get_version(request: Request, name: str = ModelName, version: int = VersionNumber) -> Any:
    _deps.authorize(request, "model", name, "read")
    tracker = _deps.tracker(request)
    return _detail(tracker, Registry(tracker).get_version(name, version))


@router.patch("/{name}/versions/{version}", response_model=ModelVersionOut,
              summary="Change a version's description or tags")
def update_version(request: Request, body: VersionUpdate, name: str = ModelName, version: int = VersionNumber) -> Any:
    _deps.authorize(request, "model", name, "edit")
    registry = _registry(request)
    registry.get_version(name, version)
    if body.description is not None:
        registry.set_description(name, body.description, version)
    if body.tags:
        registry.set_tags(name, version, body.tags)
    for key in body.delete_tags:
        registry.delete_tag(name, version, key)
    return _version(registry.get_version(name, version))


@router.post("/{name}/versions/{version}/archive", response_model=ModelVersionOut,
             summary="Archive a version (it can no longer take an alias)")
def archive_version(request: Request, name: str = ModelName, version: int = VersionNumber,
                    body: Reason = Body(default_factory=Reason)) -> Any:
    _deps.authorize(request, "model", name, "edit")
    registry = _registry(request)
    registry.archive(name, version, reason=body.reason, user=caller(request, body.user))
    return _version(registry.get_version(name, version))


@router.post("/{name}/versions/{version}/restore", response_model=ModelVersionOut,
             summary="Make an archived version READY again")
def restore_version(request: Request, name: str = ModelName, version: int = VersionNumber,
                    body: Reason = Body(default_factory=Reason)) -> Any:
    _deps.authorize(request, "model", name, "edit")
    registry = _registry(request)
    registry.restore(name, version, reason=body.reason, user=caller(request, body.user))
    return _version(registry.get_version(name, version))


@router.delete("/{name}/versions/{version}", status_code=204,
               summary="Remove a version (its history stays; refused while it holds an alias)")
def delete_version(request: Request, name: str = ModelName, version: int = VersionNumber,
                   reason: str = Query("", description="Why: recorded in the history."),
                   user: str | None = Query(None, max_length=256, description="Who to record when the server does "
                                                                           "not authenticate.")) -> None:
    _deps.authorize(request, "model", name, "manage")
    _registry(request).delete_version(name, version, reason=reason, user=caller(request, user))


@router.get("/{name}/versions/{version}/card", response_model=Card,
            summary="The version's model card (Markdown, generated from recorded facts)")
def version_card(request: Request, name: str = ModelName, version: int = VersionNumber) -> Any:
    _deps.authorize(request, "model", name, "read")
    from conveyor.registry import model_card
    from conveyor.settings import Settings

    registry = _registry(request)
    registry.get_version(name, version)
    text = model_card(f"models:/{name}/{version}", registry=registry, settings=Settings.load())
    return Card(name=name, version=version, markdown=text)


@router.get("/{name}/versions/{version}/lineage", response_model=Lineage,
            summary="What the version came from (run, data, code) and what used it")
def version_lineage(
    request: Request, name: str = ModelName, version: int = VersionNumber,
    direction: Literal["up", "down", "both"] = Query("both"), depth: int | None = Query(None, ge=1, le=50),
) -> Any:
    _deps.authorize(request, "model", name, "read")
    tracker = _deps.tracker(request)
    Registry(tracker).get_version(name, version)
    return lineage_of(tracker, f"models:/{name}/{version}", direction, depth)


@router.get("/{name}/versions/{version}/evaluations", response_model=EvaluationList,
            summary="Gate evaluations of a version with every check's evidence, newest first")
def version_evaluations(request: Request, name: str = ModelName, version: int = VersionNumber) -> Any:
    _deps.authorize(request, "model", name, "read")
    return EvaluationList(evaluations=_evaluations(_registry(request), name, version=version))


@router.get("/{name}/evaluations/{evaluation_id}", response_model=GateEvaluationOut,
            summary="One gate evaluation")
def get_evaluation(request: Request, name: str = ModelName,
                   evaluation_id: str = Path(..., min_length=1, max_length=32)) -> Any:
    _deps.authorize(request, "model", name, "read")
    found = _evaluations(_registry(request), name, ids=[evaluation_id])
    if not found:
        raise NotFound("gate evaluation", evaluation_id, hint=f"GET /models/{name}/versions/<n>/evaluations lists them")
    return found[0]


@router.post("/{name}/versions/{version}/promote", response_model=EventOut,
             summary="Move an alias to this version when its latest gate evaluation passed")
def promote_version(request: Request, body: Promotion, name: str = ModelName, version: int = VersionNumber) -> Any:
    _deps.authorize(request, "model", name, "manage")
    from conveyor.gates import promote

    registry = _registry(request)
    event = promote(name, version, body.alias, force=body.force, reason=body.reason, registry=registry,
                    user=caller(request, body.user))
    return _events(registry, name, [event])[0]


# -- aliases ------------------------------------------------------------------------------------
@router.get("/{name}/aliases", response_model=dict[str, int], summary="Each alias and the version it points at")
def list_aliases(request: Request, name: str = ModelName) -> Any:
    _deps.authorize(request, "model", name, "read")
    return _registry(request).get_model(name).aliases


@router.get("/{name}/aliases/{alias}", response_model=ModelVersionDetail, summary="The version an alias points at")
def get_alias(request: Request, name: str = ModelName, alias: str = AliasName) -> Any:
    _deps.authorize(request, "model", name, "read")
    tracker = _deps.tracker(request)
    registry = Registry(tracker)
    holder = registry.get_model(name).aliases.get(alias)
    if holder is None:
        raise NotFound("alias", f"{name}@{alias}", hint=f"GET /models/{name}/aliases lists them")
    return _detail(tracker, registry.get_version(name, holder))


@router.put("/{name}/aliases/{alias}", response_model=EventOut,
            summary="Point an alias at a version (no gate: use promote for gated moves)")
def set_alias(request: Request, body: AliasSet, name: str = ModelName, alias: str = AliasName) -> Any:
    _deps.authorize(request, "model", name, "manage")
    registry = _registry(request)
    event = registry.set_alias(name, alias, body.version, reason=body.reason, user=caller(request, body.user))
    return _events(registry, name, [event])[0]


@router.delete("/{name}/aliases/{alias}", response_model=EventOut, summary="Remove an alias (recorded)")
def delete_alias(request: Request, name: str = ModelName, alias: str = AliasName,
                 reason: str = Query("", description="Why: recorded in the history."),
                 user: str | None = Query(None, max_length=256, description="Who to record when the server does "
                                                                         "not authenticate.")) -> Any:
    _deps.authorize(request, "model", name, "manage")
    registry = _registry(request)
    registry.delete_alias(name, alias, reason=reason, user=caller(request, user))
    return _events(registry, name, registry.history(name, alias=alias)[-1:])[0]


@router.post("/{name}/aliases/{alias}/rollback", response_model=EventOut,
             summary="Move an alias back to its previous holder (recorded)")
def rollback_alias(request: Request, name: str = ModelName, alias: str = AliasName,
                   body: Reason = Body(default_factory=Reason)) -> Any:
    _deps.authorize(request, "model", name, "manage")
    registry = _registry(request)
    event = registry.rollback(name, alias, reason=body.reason, user=caller(request, body.user))
    return _events(registry, name, [event])[0]


@router.get("/{name}/aliases/{alias}/history", response_model=History,
            summary="Every move of an alias: who, when, from → to, why, and the gate evidence that allowed it")
def alias_history(request: Request, name: str = ModelName, alias: str = AliasName) -> Any:
    _deps.authorize(request, "model", name, "read")
    registry = _registry(request)
    return History(events=_events(registry, name, registry.history(name, alias=alias)))
