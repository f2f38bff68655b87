"""``/api/v1/monitoring`` reports for remote clients: a model's monitoring report, and an
ad hoc drift comparison computed against the server's stores.

* ``GET /monitoring/reports/{model}`` — the document ``conveyor monitor report`` renders
  (newest evaluation's drift and distributions, metrics over time, prediction drift of the
  newest logged window), and with ``html=true`` the self-contained HTML page the client
  writes to its local file. ``read`` on kind ``model``.
* ``POST /monitoring/drift`` — compare a reference with a current table, each a data set
  version (``{"data": "data:/train@3"}``, ``read`` on kind ``data``), a model's prediction
  window (``{"model": …, "version", "since", "until"}``, ``read`` on kind ``model``) or a
  summary the client made of a local file (``{"summary": base64 of Summary.to_bytes()}``,
  an ``.npz`` loaded without pickles). Nothing is stored but the data sets' summaries
  (cached like a monitor's reference). The answer is the report, both summaries, and the
  HTML page when asked.
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Path, Query, Request
from pydantic import BaseModel, ConfigDict, Field

from conveyor.errors import InvalidInput
from conveyor.server.api import _deps
from conveyor.server.api.monitoring_runs import MAX_FRAME, _reader, dataset_name, json_response

router = APIRouter(prefix="/monitoring", tags=["monitoring"])


class Side(BaseModel):
    model_config = ConfigDict(extra="forbid")
    data: str | None = Field(None, min_length=7, max_length=512, description="data:/name@version")
    model: str | None = Field(None, min_length=1, max_length=256, description="A model's prediction log.")
    version: str | None = Field(None, max_length=64)
    since: str | None = Field(None, max_length=64, description="ms or an ISO date/time")
    until: str | None = Field(None, max_length=64)
    summary: str | None = Field(None, max_length=MAX_FRAME, description="base64 of Summary.to_bytes()")


class DriftIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    reference: Side
    current: Side
    method: str = Field("auto", max_length=64)
    methods: dict[str, str] = Field(default_factory=dict)
    threshold: float | None = None
    thresholds: dict[str, float] = Field(default_factory=dict)
    schema_: dict[str, dict[str, Any]] | None = Field(None, alias="schema", description="Per column "
                                                      "{min, max, categories} the quality check applies.")
    columns: list[str] | None = Field(None, max_length=10_000)
    drift_share: float = Field(0.5, gt=0, le=1)
    target: str | None = Field(None, max_length=256)
    prediction: str | None = Field(None, max_length=256)
    html: bool = False
    title: str = Field("drift report", max_length=1000)


@router.get("/reports/{model}", summary="A model's monitoring report (document, and HTML page when asked)")
def report(
    request: Request, model: str = Path(..., min_length=1, max_length=256),
    monitor: str | None = Query(None, max_length=256), prediction: str = Query("prediction", max_length=256),
    score: str | None = Query(None, max_length=256), limit: int = Query(200, ge=1, le=10_000),
    evaluation: int | None = Query(None, ge=1, le=2**62), html: bool = Query(False),
) -> Any:
    from conveyor.monitoring import render_html, report_data

    _deps.authorize(request, "model", model, "read")
    tracker = _deps.tracker(request)
    data = report_data(tracker, model, monitor=monitor, limit=limit, load_window=_reader(tracker),
                       prediction=prediction, score=score, evaluation=evaluation)
    return json_response({"data": data, "html": render_html(data) if html else None})


def _side(request: Request, side: Side, name: str) -> Any:
    """A Summary (data set version, uploaded summary) or a DataFrame (a prediction window)."""
    given = [k for k in ("data", "model", "summary") if getattr(side, k) is not None]
    if len(given) != 1:
        raise InvalidInput(f"{name} must give exactly one of data, model, summary (got {given or 'none'})",
                           field=name, hint='e.g. {"data": "data:/train@3"}')
    tracker = _deps.tracker(request)
    if side.data is not None:
        from conveyor.monitoring import reference_summary

        _deps.authorize(request, "data", dataset_name(side.data, f"{name}.data"), "read")
        return reference_summary(tracker, side.data)
    if side.summary is not None:
        from conveyor.monitoring._remote import summary_from_wire

        return summary_from_wire(side.summary, field=f"{name}.summary")
    from conveyor.monitoring._monitor import LOG_COLUMNS
    from conveyor.serving import read_prediction_log
    from conveyor.server.api.monitoring import _instant

    assert side.model is not None
    _deps.authorize(request, "model", side.model, "read")
    frame = read_prediction_log(side.model, side.version, _instant(side.since, f"{name}.since"),
                                _instant(side.until, f"{name}.until"), with_feedback=False, tracker=tracker)
    return frame[[c for c in frame.columns if c not in LOG_COLUMNS]]


@router.post("/drift", summary="Compare two tables (data set versions, a prediction window, a summary)")
def drift(request: Request, body: DriftIn) -> Any:
    from conveyor.monitoring import compare, summarize
    from conveyor.monitoring._remote import summary_to_wire
    from conveyor.monitoring._report import drift_report_data, render_html
    from conveyor.monitoring._summary import Summary

    ref = _side(request, body.reference, "reference")
    if not isinstance(ref, Summary):
        ref = summarize(ref)
    cur = _side(request, body.current, "current")
    have = list(cur.columns)
    columns = list(body.columns) if body.columns else None
    if columns is None and not isinstance(cur, Summary):  # a prediction window: the reference's columns it has
        columns = [c for c in ref.columns if c in have]
    if columns is not None:  # the target and prediction are reported (not counted) when both sides have them
        columns += [c for c in (body.target, body.prediction) if c and c not in columns and c in ref.columns
                    and c in have]
    result = compare(ref, cur, columns=columns, method=body.method, methods=body.methods, threshold=body.threshold,
                     thresholds=body.thresholds, drift_share=body.drift_share, target=body.target,
                     prediction=body.prediction, schema=body.schema_)
    page = render_html(drift_report_data(result, title=body.title)) if body.html else None
    return json_response({"report": result.to_dict(), "reference": summary_to_wire(result.reference),
                          "current": summary_to_wire(result.current), "html": page})
