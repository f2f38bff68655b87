"""``import conveyor`` API: module-level functions over one default ``Tracker`` and a stack of
active runs (the innermost is the one ``log_*`` writes to).

Runs end FINISHED when their ``with`` block ends, FAILED (with the error and traceback
recorded) when it raises, KILLED on Ctrl-C or SIGTERM. Runs still open at interpreter
exit end FINISHED after their metrics are flushed.
"""

from __future__ import annotations

import atexit
import signal
import threading
import traceback
from collections.abc import Mapping, Sequence
from pathlib import Path
from types import FrameType, TracebackType
from typing import Any

from conveyor.entities import Artifact, Metric, Run, RunStatus
from conveyor.errors import Conflict, InvalidInput, StorageError
from conveyor.settings import Settings
from conveyor.tracking._tracker import Tracker

_lock = threading.RLock()
_tracker: Tracker | None = None
_stack: list[str] = []
_experiment: str | None = None
_sigterm_installed = False
_owned = False  # whether _tracker was opened here (and so is closed here)


def get_tracker() -> Tracker:
    """The default tracker, opened from the settings on first use."""
    global _tracker, _owned
    with _lock:
        if _tracker is None:
            _tracker = Tracker.from_settings(Settings.load())
            _owned = True
        return _tracker


def set_tracker(tracker: Tracker | None) -> None:
    """Use ``tracker`` for the module-level API (``None`` re-reads the settings next time)."""
    global _tracker, _owned
    with _lock:
        if _tracker is not None and _tracker is not tracker:
            if _owned:  # opened from the settings here: close it, its pooled connections too
                _tracker.close()
            else:
                _tracker.flush()
        _tracker = tracker
        _owned = False
        _stack.clear()


def set_experiment(name: str) -> None:
    """The experiment new runs go to (default: "Default"); created when first used."""
    global _experiment
    if not isinstance(name, str) or not name.strip():
        raise InvalidInput(f"experiment name {name!r} is not valid", field="experiment", value=name)
    _experiment = name


class ActiveRun:
    """A started run; use it as a context manager to end it with the right status."""

    def __init__(self, run: Run, tracker: Tracker) -> None:
        self.run = run
        self.id = run.id
        self._tracker = tracker

    def __repr__(self) -> str:
        return f"<ActiveRun {self.id} {self.run.name!r}>"

    def __enter__(self) -> ActiveRun:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        if exc_type is None:
            _end(self.id, RunStatus.FINISHED)
        elif issubclass(exc_type, KeyboardInterrupt):
            _end(self.id, RunStatus.KILLED, error="KeyboardInterrupt")
        else:
            text = "".join(traceback.format_exception(exc_type, exc, tb))
            _end(self.id, RunStatus.FAILED, error=text)


def start_run(
    experiment: str | None = None,
    *,
    name: str | None = None,
    tags: Mapping[str, Any] | None = None,
    nested: bool = False,
) -> ActiveRun:
    """Start a run; ``with conveyor.start_run(experiment="iris") as run: ...``.

    A run started while another is active must say ``nested=True``; it becomes the child.
    """
    tracker = get_tracker()
    with _lock:
        parent = _stack[-1] if _stack else None
        if parent is not None and not nested:
            raise Conflict(
                f"run {parent} is already active",
                hint="end it first, or pass nested=True to start a child run",
            )
        run = tracker.create_run(experiment or _experiment, name=name, tags=tags, parent_id=parent)
        _stack.append(run.id)
    _install_sigterm()
    return ActiveRun(run, tracker)


def end_run(status: RunStatus | str = RunStatus.FINISHED) -> None:
    """End the innermost active run (no-op when none is active)."""
    with _lock:
        if not _stack:
            return
        run_id = _stack[-1]
    _end(run_id, RunStatus(status))


def _end(run_id: str, status: RunStatus, error: str | None = None) -> None:
    with _lock:
        if run_id in _stack:
            # children still open end with their parent
            while _stack and _stack[-1] != run_id:
                get_tracker().end_run(_stack.pop(), status, error=error)
            _stack.pop()
    get_tracker().end_run(run_id, status, error=error)


def active_run() -> Run | None:
    with _lock:
        run_id = _stack[-1] if _stack else None
    return None if run_id is None else get_tracker().get_run(run_id)


def _current() -> str:
    with _lock:
        if _stack:
            return _stack[-1]
    # like MLflow: logging without a run starts one, which ends at exit
    return start_run().id


def log_param(key: str, value: Any) -> None:
    get_tracker().log_params(_current(), {key: value})


def log_params(params: Mapping[str, Any]) -> None:
    get_tracker().log_params(_current(), params)


def set_tag(key: str, value: Any) -> None:
    get_tracker().set_tags(_current(), {key: value})


def set_tags(tags: Mapping[str, Any]) -> None:
    get_tracker().set_tags(_current(), tags)


def log_metric(key: str, value: float, step: int | None = None, timestamp: int | None = None) -> None:
    """Buffer one metric point: no I/O on this thread (see the crash window in the docs)."""
    get_tracker().log_metric(_current(), key, value, step, timestamp)


def log_metrics(metrics: Mapping[str, float], step: int | None = None, timestamp: int | None = None) -> None:
    get_tracker().log_metrics(_current(), metrics, step, timestamp)


def log_artifact(local_path: str | Path, artifact_path: str | None = None) -> Artifact:
    return get_tracker().log_artifact(_current(), local_path, artifact_path)


def log_artifacts(local_dir: str | Path, artifact_path: str | None = None) -> Artifact:
    return get_tracker().log_artifacts(_current(), local_dir, artifact_path)


def log_dict(data: Any, artifact_file: str) -> Artifact:
    return get_tracker().log_dict(_current(), data, artifact_file)


def log_text(text: str, artifact_file: str) -> Artifact:
    return get_tracker().log_text(_current(), text, artifact_file)


def log_figure(figure: Any, artifact_file: str) -> Artifact:
    return get_tracker().log_figure(_current(), figure, artifact_file)


def get_run(run_id: str) -> Run:
    return get_tracker().get_run(run_id)


def get_metric_history(run_id: str, key: str) -> list[Metric]:
    return get_tracker().metric_history(run_id, key)


def search_runs(
    experiments: str | Sequence[str] | None = None,
    filter: str = "",
    order_by: Sequence[str] = (),
    max_results: int | None = None,
    *,
    output: str = "frame",
    include_deleted: bool = False,
) -> Any:
    """Search runs; see :meth:`Tracker.search_runs`. Example::

        conveyor.search_runs("iris", filter="metrics.acc > 0.9", order_by=["metrics.acc desc"])
    """
    return get_tracker().search_runs(
        experiments, filter, order_by, max_results, output=output, include_deleted=include_deleted  # type: ignore[call-overload]
    )


def flush() -> None:
    """Write every buffered metric point now."""
    with _lock:
        tracker = _tracker
    if tracker is not None:
        tracker.flush()


def _end_all(status: RunStatus, error: str | None = None) -> None:
    with _lock:
        tracker = _tracker
        pending = list(reversed(_stack))
        _stack.clear()
    if tracker is None:
        return
    for run_id in pending:
        try:
            tracker.end_run(run_id, status, error=error)
        except Conflict:
            pass
        except StorageError as exc:  # at exit nobody can catch it: say it, keep ending the others
            import sys

            sys.stderr.write(f"conveyor: error: run {run_id} could not be ended: {exc}\n")
    try:
        tracker.flush()
    except StorageError as exc:
        import sys

        sys.stderr.write(f"conveyor: error: {exc}\n")


@atexit.register
def _at_exit() -> None:
    global _tracker
    _end_all(RunStatus.FINISHED)
    with _lock:
        tracker, owned, _tracker = _tracker, _owned, None
    if tracker is not None and owned:
        tracker.close()  # no database connection left open at interpreter exit


def _install_sigterm() -> None:
    """On SIGTERM, end active runs KILLED (metrics flushed), then let the signal do its work."""
    global _sigterm_installed
    if _sigterm_installed or threading.current_thread() is not threading.main_thread():
        return
    previous = signal.getsignal(signal.SIGTERM)
    if previous is signal.SIG_IGN:  # the program chose to ignore SIGTERM: so do we
        return

    def _on_sigterm(signum: int, frame: FrameType | None) -> None:
        _end_all(RunStatus.KILLED, error="SIGTERM")
        if callable(previous):
            previous(signum, frame)
            return
        signal.signal(signal.SIGTERM, signal.SIG_DFL if previous is None else previous)
        signal.raise_signal(signal.SIGTERM)

    signal.signal(signal.SIGTERM, _on_sigterm)
    _sigterm_installed = True
