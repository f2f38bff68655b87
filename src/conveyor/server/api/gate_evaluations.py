"""``/api/v1/models/{name}/…/evaluations``: store a gate evaluation computed by a remote
client, and list a model's evaluations (all versions, or one).

In remote mode ``conveyor.gates.evaluate`` loads the models and the data through the server
and computes the checks on the client; it then POSTs the evaluation here, which checks its
shape (a malformed body is a 400 naming the field), that the version exists, and stores it
as the embedded API does (the same ``gate_evaluations`` row, read by promotion). The server
stamps ``created_at`` with its own clock — promotion reads the latest evaluation — and
records the authenticated caller (else the ``user`` the client claims).

The ``Idempotency-Key`` header is the evaluation's id: a retry of a POST whose answer was
lost finds the row the first attempt stored and answers it with 200 (201: stored now); the
same id on another model or version is a 409.

Permissions (kind ``model``, the registered model's name): storing is ``edit``, listing
``read``.
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Depends, Header, Path, Query, Request
from pydantic import ConfigDict, Field
from sqlalchemy import select
from starlette.responses import Response

from conveyor.errors import Conflict, InvalidInput, NotFound
from conveyor.registry import Registry
from conveyor.server.api import _deps
from conveyor.server.api._listing import caller
from conveyor.server.api._models import IDEMPOTENCY_KEY, _Body, _Out, json_response, no_nul
from conveyor.server.api.models import GateEvaluationOut, _evaluations

router = APIRouter(prefix="/models/{name}", tags=["models"])

ModelName = Path(..., description="Registered model name.", min_length=1, max_length=256)
VersionNumber = Path(..., description="Version number.", ge=1, le=2**31 - 1)
Number = float | None  # a metric; JSON's "NaN", "Infinity" and "-Infinity" are accepted


class CheckIn(_Body):
    name: str = Field(min_length=1, max_length=512)
    kind: str = Field(min_length=1, max_length=64, description="threshold | compare | slices | baseline | data | "
                                                               "operational | features | cost | staleness | …")
    passed: bool | None = Field(description="null: skipped.")
    summary: str = Field(max_length=65536)
    evidence: dict[str, Any] = Field(default_factory=dict)


class ColumnIn(_Body):
    name: str = Field(max_length=1024)
    dtype: str = Field(max_length=256)


class EvaluationIn(_Body):
    """:meth:`conveyor.gates.Evaluation.to_dict` of an evaluation of this version."""

    id: str | None = Field(None, pattern=IDEMPOTENCY_KEY, description="Default: the Idempotency-Key, else a new id.")
    gate: str = Field(min_length=1, max_length=256)
    passed: bool | None = Field(None, description="If given, must agree with the checks (passed: none failed).")
    model: str | None = Field(None, max_length=256, description="If given, the model of the path.")
    version: int | None = Field(None, ge=1, le=2**31 - 1, description="If given, the version of the path.")
    champion_version: int | None = Field(None, ge=1, le=2**31 - 1)
    dataset: str = Field("", max_length=4096)
    n_rows: int = Field(ge=0, le=2**63 - 1)
    metrics: dict[str, Number] = Field(default_factory=dict)
    champion_metrics: dict[str, Number] | None = None
    baseline_metrics: dict[str, Number] | None = None
    checks: list[CheckIn] = Field(max_length=10_000)
    slices: list[dict[str, Any]] = Field(default_factory=list, max_length=100_000)
    data_schema: list[ColumnIn] = Field(default_factory=list, alias="schema", max_length=100_000)
    created_at: int | None = Field(None, description="Ignored: the server stamps its own clock.")
    user: str | None = Field(None, max_length=256, description="Who to record when the server does not "
                                                                 "authenticate (ignored when it does).")
    model_config = ConfigDict(extra="forbid", populate_by_name=True)


class EvaluationOut(GateEvaluationOut):
    model_config = ConfigDict(ser_json_inf_nan="strings")  # NaN metrics as "NaN", not a 500


class EvaluationPage(_Out):
    evaluations: list[EvaluationOut]


def _evaluation(body: EvaluationIn, name: str, version: int, key: str | None) -> Any:
    import uuid

    from conveyor.entities import now_ms
    from conveyor.gates import Check, Evaluation

    if body.id is not None and key is not None and body.id != key:
        raise InvalidInput(f"the body's id {body.id!r} is not the Idempotency-Key {key!r}", field="id",
                           value=body.id, hint="send the evaluation's id as the Idempotency-Key, or omit one")
    if body.model is not None and body.model != name:
        raise InvalidInput(f"the body names model {body.model!r}, the path {name!r}", field="model", value=body.model)
    if body.version is not None and body.version != version:
        raise InvalidInput(f"the body names version {body.version}, the path {version}", field="version",
                           value=body.version)
    if body.champion_version == version:
        raise InvalidInput("a version cannot be its own champion", field="champion_version",
                           value=body.champion_version, hint="null when there was no champion to compare with")
    checks = tuple(Check(c.name, c.kind, c.passed, c.summary, c.evidence) for c in body.checks)
    evaluation = Evaluation(
        gate=body.gate, checks=checks, metrics=dict(body.metrics), n_rows=body.n_rows,
        champion_metrics=body.champion_metrics, baseline_metrics=body.baseline_metrics,
        slices=tuple(body.slices), model=name, version=version, champion_version=body.champion_version,
        dataset=body.dataset, schema=tuple(c.model_dump() for c in body.data_schema),
        id=body.id or key or uuid.uuid4().hex, created_at=now_ms(),
    )
    if body.passed is not None and body.passed != evaluation.passed:
        raise InvalidInput(f"passed is {body.passed} but {'no' if evaluation.passed else 'a'} check failed",
                           field="passed", value=body.passed, hint="passed means: no check failed")
    return evaluation


@router.post("/versions/{version}/evaluations", response_model=EvaluationOut, status_code=201,
             dependencies=[Depends(no_nul)],
             responses={200: {"model": EvaluationOut, "description": "Stored before (the same Idempotency-Key)"}},
             summary="Store a gate evaluation of this version (computed by the client)")
def store_evaluation(
    request: Request, body: EvaluationIn, name: str = ModelName, version: int = VersionNumber,
    idempotency_key: str | None = Header(None, alias="Idempotency-Key", pattern=IDEMPOTENCY_KEY,
                                         description="The evaluation's id: a retry finds the first attempt's row."),
) -> Response:
    from conveyor.gates._evaluate import evaluation_row
    from conveyor.store import gate_evaluations as t

    _deps.authorize(request, "model", name, "edit")
    registry = Registry(_deps.tracker(request))
    evaluation = _evaluation(body, name, version, idempotency_key)
    who = caller(request, body.user) or "unknown"

    def write(conn: Any) -> bool:
        model = registry.repo.model_row(conn, name)
        registry.repo.version_row(conn, model.id, name, version)
        if evaluation.champion_version is not None:
            try:
                registry.repo.version_row(conn, model.id, name, evaluation.champion_version)
            except NotFound:
                raise InvalidInput(f"champion_version {evaluation.champion_version} is no version of {name}",
                                   field="champion_version", value=evaluation.champion_version) from None
        found = conn.execute(select(t.c.model_id, t.c.version).where(t.c.id == evaluation.id)).first()
        if found is not None:
            if (found.model_id, found.version) != (model.id, version):
                raise Conflict(f"evaluation {evaluation.id} is stored for another version",
                               hint="a new evaluation needs a new id (Idempotency-Key)")
            return False  # the first attempt's row: a retry stores nothing
        conn.execute(t.insert().values(**evaluation_row(evaluation, model.id, who)))
        return True

    # idempotent through the id check: safe to retry through a database blink
    created = registry.store.transaction(write, what=f"storing a gate evaluation of {name}")
    stored = _evaluations(registry, name, ids=[str(evaluation.id)])[0]
    return json_response(EvaluationOut.model_validate(stored.model_dump()), 201 if created else 200)


@router.get("/evaluations", response_model=EvaluationPage,
            summary="Gate evaluations of a model (every version, or one), newest first")
def list_evaluations(
    request: Request, name: str = ModelName,
    version: int | None = Query(None, ge=1, le=2**31 - 1, description="Only this version's."),
    gate: str | None = Query(None, max_length=256, description="Only this gate's."),
) -> Response:
    _deps.authorize(request, "model", name, "read")
    found = _evaluations(Registry(_deps.tracker(request)), name, version=version)
    if gate is not None:
        found = [e for e in found if e.gate == gate]
    return json_response(EvaluationPage(evaluations=[EvaluationOut.model_validate(e.model_dump()) for e in found]))


__all__ = ["EvaluationIn", "EvaluationOut", "EvaluationPage", "router"]
