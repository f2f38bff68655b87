"""The tracking API inside a step: it logs to the step's own run, through the coordinator.

A worker never writes the metadata store (a Ray worker on another machine only reaches the
artifact store), so inside a step ``conveyor.log_metric``, ``log_param(s)``, ``set_tag(s)``,
``log_artifact(s)``, ``log_dict``/``log_text``/``log_figure``, ``active_run`` and
``conveyor.models.log`` go to a :class:`StepTracker`: artifact bytes are written to the
artifact store right away, everything else is kept in memory, and the whole record travels
back in the worker's JSON result. The coordinator writes it into the step's run in the
transaction that ends the run, so a crashed attempt leaves nothing half-recorded.
What a step cannot do is open other runs, register models or search: those need the
metadata store and belong in the code that calls the pipeline.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import replace
from typing import Any, NoReturn

from conveyor.entities import Artifact, Run, RunStatus
from conveyor.errors import InvalidInput, NotFound, ParamConflict
from conveyor.settings import TrackingSettings
from conveyor.store import validate_key
from conveyor.tracking import Tracker
from conveyor.tracking._values import artifact_path, metric_step, metric_value

#: artifact paths the runner records itself on every step run
RESERVED = ("outputs", "logs")


def _refuse(what: str) -> NoReturn:
    raise InvalidInput(
        f"inside a pipeline step, {what} is not available: the step logs to its own run only",
        field="tracking", value=what,
        hint="log metrics, params, tags, artifacts and models to the step's run; register, search or open "
             "other runs in the code that calls the pipeline (the pipeline's candidate is registered by "
             "`conveyor ci check --pipeline` and by retraining)",
    )


class _NoStore:
    """Stands in for the metadata store inside a worker; every use says why it is not there."""

    def __getattr__(self, name: str) -> NoReturn:
        _refuse(f"the metadata store ({name})")


class StepTracker(Tracker):
    """A ``Tracker`` bound to one step run, recording into memory and the artifact store."""

    def __init__(self, blobs: Any, run: Run) -> None:  # no super().__init__: no store, no buffer thread
        self.blobs = blobs
        self.store = _NoStore()  # type: ignore[assignment]
        self.settings = TrackingSettings()
        self.run = run
        self.params: dict[str, str] = {}
        self.tags: dict[str, str] = {}
        self.points: list[tuple[str, float, int, int]] = []
        self.artifacts: dict[str, Artifact] = {}
        self._known_runs = {run.id}
        self._experiment_ids = {}
        self._packages_digest = None

    def _own(self, run_id: str) -> None:
        if run_id != self.run.id:
            _refuse(f"logging to run {run_id!r}")

    # -- runs ------------------------------------------------------------------------------------
    def create_run(self, *args: Any, **kwargs: Any) -> Run:
        _refuse("starting a run")

    def end_run(self, run_id: str, status: Any = RunStatus.FINISHED, *, error: str | None = None) -> None:
        _refuse("ending a run (the runner ends the step's run when the step returns)")

    def get_run(self, run_id: str) -> Run:
        self._own(run_id)
        latest: dict[str, float] = {}
        for key, value, _, _ in self.points:
            latest[key] = value
        return replace(self.run, params=dict(self.params), tags={**self.run.tags, **self.tags}, metrics=latest)

    def _require_run(self, run_id: str) -> None:
        self._own(run_id)

    def close(self) -> None:
        pass

    def flush(self) -> None:
        pass

    # -- params, tags, metrics ---------------------------------------------------------------
    def log_params(self, run_id: str, params: Mapping[str, Any]) -> None:
        self._own(run_id)
        for key, value in params.items():
            validate_key("param", key)
            text = value if isinstance(value, str) else str(value)  # as the store writes it
            old = self.params.get(key, self.run.params.get(key))
            if old is not None and old != text:
                raise ParamConflict(run_id, key, old, text)
            self.params[key] = text

    def set_tags(self, run_id: str, tags: Mapping[str, Any]) -> None:
        self._own(run_id)
        for key, value in tags.items():
            self.tags[validate_key("tag", key)] = str(value)

    def delete_tag(self, run_id: str, key: str) -> None:
        self._own(run_id)
        if self.tags.pop(key, None) is None:
            raise NotFound("tag", key)

    def log_metric(self, run_id: str, key: str, value: Any, step: int | None = None,
                   timestamp: int | None = None) -> None:
        self.log_metrics(run_id, {key: value}, step, timestamp)

    def log_metrics(self, run_id: str, metrics: Mapping[str, Any], step: int | None = None,
                    timestamp: int | None = None) -> None:
        from conveyor.entities import now_ms

        self._own(run_id)
        stamp = timestamp or now_ms()
        for key, value in metrics.items():
            validate_key("metric", key)
            self.points.append((key, metric_value(key, value), metric_step(key, step), stamp))

    def metric_history(self, run_id: str, key: str) -> list[Any]:
        _refuse("reading metric history")

    # -- artifacts -------------------------------------------------------------------------------
    def _record(self, artifact: Artifact) -> Artifact:
        self._own(artifact.run_id)
        top = artifact.path.split("/", 1)[0]
        if top in RESERVED:
            raise InvalidInput(
                f"artifact path {artifact.path!r} is reserved in a pipeline step", field="artifact_path",
                value=artifact.path, hint=f"the runner records {', '.join(RESERVED)}/ itself; choose another path",
            )
        self.artifacts[artifact.path] = artifact
        return artifact

    def list_artifacts(self, run_id: str, prefix: str = "") -> list[Artifact]:
        self._own(run_id)
        return [a for p, a in sorted(self.artifacts.items()) if p.startswith(prefix)]

    def get_artifact(self, run_id: str, path: str) -> Artifact:
        self._own(run_id)
        found = self.artifacts.get(artifact_path(path))
        if found is None:
            raise NotFound("artifact", path)
        return found

    def search_runs(self, *args: Any, **kwargs: Any) -> Any:
        _refuse("searching runs")

    # -- the record the worker sends back ---------------------------------------------------
    def record(self) -> dict[str, Any]:
        return {
            "params": dict(self.params),
            "tags": dict(self.tags),
            "metrics": [list(p) for p in self.points],
            "artifacts": [[a.path, a.digest, a.size, a.media_type, a.is_dir] for a in self.artifacts.values()],
        }


@contextmanager
def bound(tracker: StepTracker) -> Iterator[StepTracker]:
    """Make ``tracker`` and its run what ``conveyor.log_*`` and ``conveyor.models.log`` use."""
    from conveyor.tracking import _fluent

    with _fluent._lock:
        saved = (_fluent._tracker, list(_fluent._stack))
        _fluent._tracker = tracker
        _fluent._stack[:] = [tracker.run.id]
    try:
        yield tracker
    finally:
        with _fluent._lock:
            _fluent._tracker = saved[0]
            _fluent._stack[:] = saved[1]


def package_candidate(tracker: StepTracker, value: Any, step: str) -> str:
    """The artifact path of the candidate's model package: the one the step logged (``model``
    first), else ``value`` packaged now under ``model``."""
    logged = [a for a in tracker.artifacts.values() if a.is_dir and is_package(tracker.blobs, a.digest)]
    if logged:
        named = [a for a in logged if a.path == "model"]
        return (named or logged)[0].path
    from conveyor import models

    try:
        info = models.log(value, "model", run_id=tracker.run.id, tracker=tracker)
    except Exception as exc:
        raise InvalidInput(
            f"candidate step {step!r} returned a {type(value).__module__}.{type(value).__qualname__} that conveyor "
            f"cannot package as a model ({exc})", field="candidate", value=step,
            hint="return the fitted model from the candidate step, or log it inside the step with "
                 "conveyor.models.log(model, input_example=...)",
        ) from None
    return str(info.artifact_path)


def is_package(blobs: Any, digest: str) -> bool:
    """Whether a stored folder is a conveyor model package (it holds ``conveyor-model.json``)."""
    from conveyor.blobs import Digest
    from conveyor.models import META_FILE

    try:
        return any(entry.path == META_FILE for entry in blobs.read_manifest(Digest.parse(digest)).entries)
    except (OSError, ValueError, KeyError):
        return False
