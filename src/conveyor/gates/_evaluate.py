"""Evaluate a candidate with a gate: load the models, read the held-out data, predict, run
every check, and store the evaluation with its evidence."""

from __future__ import annotations

import json
import logging
import time
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from sqlalchemy import select

from conveyor.blobs import Digest
from conveyor.entities import now_ms
from conveyor.errors import ConveyorError, InvalidInput, NotFound
from conveyor.gates._assess import assess
from conveyor.gates._checks import baseline_outputs, data_check, feature_check, operational_check
from conveyor.gates._result import Evaluation
from conveyor.gates._spec import GateSpec, load_gate
from conveyor.registry import Registry, current_user_name
from conveyor.store import gate_evaluations

log = logging.getLogger("conveyor.gates")


@dataclass(frozen=True)
class Subject:
    """A model under evaluation and what is known about it."""

    model: Any
    name: str | None = None
    version: int | None = None
    size: int | None = None
    load_seconds: float | None = None


def evaluate(
    gate: str | GateSpec,
    candidate: Any,
    data: Any = None,
    *,
    champion: Any = "auto",
    train: tuple[Any, Any] | None = None,
    registry: Registry | None = None,
    save: bool = True,
    trusted: list[str] | None = None,
) -> Evaluation:
    """Run gate ``gate`` for ``candidate`` on held-out ``data``.

    ``candidate`` is a ``models:/name/N`` URI (the evaluation is then stored) or any object
    with ``predict``; ``data`` a DataFrame, ``data:/name@version`` or a .parquet/.csv path
    (default: the gate's ``data``); ``champion`` ``"auto"`` (the model's ``@champion``),
    ``None``, a URI or a model object.

    Example::

        result = evaluate("default", "models:/churn/4", holdout)
        result.passed, [c.summary for c in result.failures]
    """
    spec = gate if isinstance(gate, GateSpec) else load_gate(gate)
    needs_store = (
        isinstance(candidate, str) or isinstance(champion, str) or isinstance(data, str) or data is None
        or (champion == "auto" and spec.model is not None)
    )
    if registry is None and needs_store:
        from conveyor.registry import get_registry

        registry = get_registry()
    cand = _subject(registry, candidate, trusted)
    champ = _champion(registry, spec, cand, champion, trusted)
    frame, dataset = _frame(spec, data, registry.tracker if registry is not None else None)
    if spec.label not in frame.columns:
        raise InvalidInput(
            f"gates.{spec.name}.label names column {spec.label!r}, absent from the evaluation data",
            field=f"gates.{spec.name}.label", value=spec.label,
            hint=f"columns: {', '.join(map(str, list(frame.columns)[:20]))}",
        )
    y = frame[spec.label].to_numpy()
    features = frame.drop(columns=[spec.label])
    tracker = registry.tracker if registry is not None else None
    checks = [data_check(spec, frame, _inputs(cand.model, features), cand.model, dataset, tracker)] if spec.data_checks else []
    if checks and checks[0].failed:
        return _finish(registry, spec, cand, champ, dataset, frame, checks, {"candidate": {}}, [], save)
    base, base_proba = baseline_outputs(spec, features, y, train) if spec.baseline is not None else (None, None)
    probabilities = {"candidate": _probabilities(cand.model, _inputs(cand.model, features)), "baseline": base_proba}
    if champ is not None:
        probabilities["champion"] = _probabilities(champ.model, _inputs(champ.model, features))
    values, more, slices = assess(
        spec, y, _predict(cand.model, _inputs(cand.model, features)),
        _predict(champ.model, _inputs(champ.model, features)) if champ is not None else None,
        frame=frame, baseline=base, probabilities=probabilities,
        names={"candidate": _name(cand), "champion": _name(champ) if champ is not None else ""},
    )
    checks += more
    if spec.operational is not None:
        checks.append(operational_check(spec, cand.model, _inputs(cand.model, features),
                                        size=cand.size, load_seconds=cand.load_seconds))
    if spec.features is not None:
        checks.append(feature_check(spec, cand.model, _inputs(cand.model, features), y))
        if spec.features.cost:
            from conveyor.gates._cost import cost_check

            checks.append(cost_check(spec, cand.model, _inputs(cand.model, features), checks[-1].evidence))
    if spec.staleness is not None:
        from conveyor.gates._staleness import staleness_check

        metric = spec.staleness.metric or spec.compare_metric
        checks.append(staleness_check(
            spec, registry, cand.name, cand.version,
            lambda old: _measure(spec, old, features, y, metric), (values.get("candidate") or {}).get(metric),
            trusted))
    if spec.trace:
        from conveyor.gates._trace import trace_check

        checks.append(trace_check(cand.model, _inputs(cand.model, features)))
    if spec.privacy is not None:
        from conveyor.gates._privacy import privacy_check

        checks.append(privacy_check(spec, frame))
    return _finish(registry, spec, cand, champ, dataset, frame, checks, values, slices, save)


def _finish(
    registry: Registry | None, spec: GateSpec, cand: Subject, champ: Subject | None, dataset: str, frame: Any,
    checks: list[Any], values: dict[str, Any], slices: list[dict[str, Any]], save: bool,
) -> Evaluation:
    worst = spec.slices.worst if spec.slices else 5
    evaluation = Evaluation(
        gate=spec.name, checks=tuple(checks), metrics=values.get("candidate") or {}, n_rows=int(len(frame)),
        champion_metrics=values.get("champion"), baseline_metrics=values.get("baseline"),
        slices=tuple(slices[: max(worst, 15)]), model=cand.name, version=cand.version,
        champion_version=champ.version if champ is not None else None, dataset=dataset,
        schema=tuple({"name": str(c), "dtype": str(t)} for c, t in frame.dtypes.items()),
        id=uuid.uuid4().hex, created_at=now_ms(),
    )
    if save and registry is not None and cand.name is not None and cand.version is not None:
        return store_evaluation(registry, evaluation)
    return evaluation


def store_evaluation(registry: Registry, evaluation: Evaluation) -> Evaluation:
    """Store ``evaluation`` of a registered version; returns it as stored (remote mode: the
    server's copy, whose ``created_at`` is the server's clock)."""
    assert evaluation.model is not None and evaluation.version is not None
    from conveyor.gates._remote import is_remote, store_remote

    if is_remote(registry):
        return store_remote(registry, evaluation)
    who = current_user_name()

    def body(conn: Any) -> None:
        model = registry.repo.model_row(conn, evaluation.model)
        conn.execute(gate_evaluations.insert().values(**evaluation_row(evaluation, model.id, who)))

    # once: the evaluation's id is its primary key, a retry after a lost acknowledgement must not collide
    registry.store.transaction(body, once=True, what=f"storing a gate evaluation of {evaluation.model}")
    return evaluation


def evaluation_row(evaluation: Evaluation, model_id: int, user: str) -> dict[str, Any]:
    """The ``gate_evaluations`` row of ``evaluation`` (its evidence as JSON)."""
    return dict(
        id=evaluation.id, model_id=model_id, version=evaluation.version, gate=evaluation.gate,
        passed=evaluation.passed, champion_version=evaluation.champion_version, dataset=evaluation.dataset,
        n_rows=evaluation.n_rows, evidence=json.dumps(evaluation.to_dict(), default=_json),
        user=user, created_at=evaluation.created_at,
    )


def evaluations(registry: Registry, name: str, version: int | None = None) -> list[Evaluation]:
    """Stored evaluations of a model (or one version), newest first."""
    from conveyor.gates._remote import evaluations_remote, is_remote

    if is_remote(registry):
        return evaluations_remote(registry, name, version)
    def read(conn: Any) -> list[str]:
        model = registry.repo.model_row(conn, name)
        query = select(gate_evaluations.c.evidence).where(gate_evaluations.c.model_id == model.id)
        if version is not None:
            query = query.where(gate_evaluations.c.version == version)
        return list(conn.execute(query.order_by(gate_evaluations.c.created_at.desc())).scalars().all())

    rows = registry.store.query(read, what=f"reading the gate evaluations of {name!r}")
    return [Evaluation.from_dict(json.loads(text)) for text in rows]


def _json(value: Any) -> Any:
    if isinstance(value, np.generic):
        return value.item()
    return str(value)


def _subject(registry: Registry | None, model: Any, trusted: list[str] | None) -> Subject:
    if isinstance(model, Subject):
        return model
    if not isinstance(model, str):
        if not callable(getattr(model, "predict", None)):
            raise InvalidInput(f"{type(model).__name__} has no predict method", field="candidate", value=model,
                               hint="pass a models:/ URI or a loaded model")
        return Subject(model)
    assert registry is not None
    version = registry.get(model)
    started = time.perf_counter()
    loaded = registry.load_model(version.uri, trusted=trusted)
    return Subject(loaded, version.name, version.version, _package_size(registry, version),
                   time.perf_counter() - started)


def _package_size(registry: Registry, version: Any) -> int | None:
    from conveyor.gates._remote import is_remote

    if is_remote(registry):  # a registered version is a package folder: its size is the folder's total
        return int(version.size)
    digest = version.digest
    try:
        return int(sum(entry.size for entry in registry.blobs.read_manifest(Digest.parse(digest)).entries))
    except ConveyorError:  # a single-file package: its size is then unknown, not an error
        return None


def _champion(registry: Registry | None, spec: GateSpec, cand: Subject, champion: Any, trusted: list[str] | None) -> Subject | None:
    if champion is None:
        return None
    if champion != "auto":
        return _subject(registry, champion, trusted)
    name = cand.name or spec.model
    if name is None or registry is None:
        return None
    try:
        holder = registry.get(f"models:/{name}@champion")
    except NotFound:
        return None
    if holder.version == cand.version:
        return None
    return _subject(registry, holder.uri, trusted)


def _frame(spec: GateSpec, data: Any, tracker: Any) -> tuple[Any, str]:
    import pandas as pd

    data = spec.data if data is None else data
    if data is None:
        raise InvalidInput(
            f"gate {spec.name!r} has no evaluation data", field=f"gates.{spec.name}.data",
            hint="set data = \"data:/<name>@<version>\" in the gate or pass data=",
        )
    if isinstance(data, pd.DataFrame):
        return data.reset_index(drop=True), "DataFrame"
    text = str(data)
    if text.startswith("data:/") or ("@" in text and not Path(text).exists()):
        from conveyor.data import load

        loaded = load(text, tracker=tracker)
        if not isinstance(loaded, pd.DataFrame):
            raise InvalidInput(f"{text} is not a table", field=f"gates.{spec.name}.data", value=text,
                               hint="evaluate on a table data set (parquet/csv)")
        return loaded.reset_index(drop=True), text if text.startswith("data:/") else f"data:/{text}"
    path = Path(text)
    if not path.is_file():
        raise NotFound("evaluation data", text, hint="give a data:/name@version, a .parquet or a .csv file")
    frame = pd.read_parquet(path) if path.suffix == ".parquet" else pd.read_csv(path)
    return frame, str(path)


def _inputs(model: Any, features: Any) -> Any:
    """The columns the model's signature names, when all are present: other columns of the
    evaluation data (a slicing column such as a demographic group) are not features."""
    signature = getattr(model, "signature", None)
    names = list(getattr(signature, "input_names", None) or [])
    if names and all(name in features.columns for name in names):
        return features[names]
    return features  # let the signature check name what is missing


def _measure(spec: GateSpec, model: Any, features: Any, y: Any, metric: str) -> float:
    """One model's ``metric`` on the evaluation rows (as the gate computes it for the candidate)."""
    from conveyor.gates._assess import Scored

    inputs = _inputs(model, features)
    scored = Scored(spec, y, _predict(model, inputs), None, None, {"candidate": _probabilities(model, inputs)})
    values = scored.of("candidate") or {}
    if metric not in values:
        raise InvalidInput(f"metric {metric!r} cannot be computed for this model (no probabilities?)",
                           field=f"{spec.prefix}.staleness.metric", value=metric)
    return float(values[metric])


def _name(subject: Subject) -> str:
    return f"models:/{subject.name}/{subject.version} " if subject.name is not None else ""


def _probabilities(model: Any, features: Any) -> tuple[Any, Any] | None:
    """``(predict_proba output, class labels)`` of a classifier, or None for a model without
    probabilities. The labels come from the package's signature, else the native ``classes_``."""
    method = getattr(model, "predict_proba", None)
    if not callable(method) or not getattr(model, "has_proba", True):
        return None
    signature = getattr(model, "signature", None)
    spec = getattr(signature, "probabilities", None)
    classes = list(spec.classes) if spec is not None and spec.classes else None
    if classes is None:
        native = getattr(model, "native", model)
        found = getattr(native, "classes_", None)
        classes = list(np.asarray(found).tolist()) if found is not None and np.ndim(found) == 1 else None
    try:
        output = method(features)
    except (ConveyorError, ValueError, TypeError, AttributeError) as exc:
        # no usable probabilities: label metrics still apply; a gate that names a
        # probability metric then stops with an error saying the model has none
        log.warning("predict_proba failed on the evaluation data: %s", exc)
        return None
    if hasattr(output, "to_numpy"):
        output = output.to_numpy()
    return np.asarray(output, dtype=np.float64), classes


def _predict(model: Any, features: Any) -> Any:
    output = model.predict(features)
    if hasattr(output, "to_numpy"):
        output = output.to_numpy()
    output = np.asarray(output)
    if output.ndim == 2 and output.shape[1] == 1:
        output = output[:, 0]
    if output.ndim != 1 or len(output) != len(features):
        raise InvalidInput(
            f"the model returned predictions of shape {output.shape} for {len(features)} rows",
            field="predict", hint="a gate needs one label or value per row",
        )
    return output
