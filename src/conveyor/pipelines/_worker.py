"""What runs inside a worker (a local process or a Ray task): one attempt of one step.

The worker touches only the artifact store, never the metadata store, so a Ray worker on
another machine needs nothing but the artifact store settings and S3 credentials (in remote
mode: the server's URL and token), which arrive in the task itself (``env``, ``blobs``), never
in a Ray runtime_env; the secret ones are masked in the step's log and error text. Input and output are JSON
documents (no pickles cross the process boundary): inputs arrive as digests, outputs
leave as digests of folders written by materializers, plus the captured stdout/stderr and
what the step logged through the tracking API (``_steprun``: params, tags, metrics and the
digests of artifacts and model packages), which the coordinator writes into the step's run.
"""

from __future__ import annotations

import importlib
import json
import os
import sys
import tempfile
import time
import traceback
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any


@contextmanager
def _capture_fds(log_path: Path) -> Iterator[None]:
    """Send fd 1 and 2 (so subprocesses and C extensions too) into ``log_path``."""
    sys.stdout.flush()
    sys.stderr.flush()
    saved = (os.dup(1), os.dup(2))
    with open(log_path, "wb") as log:
        os.dup2(log.fileno(), 1)
        os.dup2(log.fileno(), 2)
        try:
            yield
        finally:
            sys.stdout.flush()
            sys.stderr.flush()
            os.dup2(saved[0], 1)
            os.dup2(saved[1], 2)
            os.close(saved[0])
            os.close(saved[1])


def _resolve(module: str, qualname: str) -> Any:
    obj: Any = importlib.import_module(module)
    for part in qualname.split("."):
        obj = getattr(obj, part)
    return getattr(obj, "func", obj) if hasattr(obj, "options") else obj


def execute(task: dict[str, Any]) -> dict[str, Any]:
    """Run one attempt of a step described by ``task``; never raises (errors are reported)."""
    from conveyor.pipelines import _materializers as mat

    for entry in reversed(task.get("sys_path", [])):
        if entry not in sys.path:
            sys.path.insert(0, entry)
    for name, target in task.get("materializers", {}).items():
        mat.register_materializer(name, target)
    if task.get("trust") is not None:  # the driver's policy, --trust included, not this process's settings
        from conveyor.models import TrustPolicy, set_trust

        set_trust(TrustPolicy(tuple(task["trust"])))
    with _task_env(task.get("env") or {}):
        return _execute(task)


@contextmanager
def _task_env(env: dict[str, str]) -> Iterator[None]:
    """The store settings and credentials the driver sent in the task argument (a Ray task's
    argument is neither logged nor shown by Ray, a runtime_env is), set in this process's
    environment for the step (its S3 client and the step's own code read them), then undone."""
    saved = {name: os.environ.get(name) for name in env}
    os.environ.update(env)
    try:
        yield
    finally:
        for name, value in saved.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value


def _execute(task: dict[str, Any]) -> dict[str, Any]:
    from conveyor.blobs import Digest
    from conveyor.pipelines import _materializers as mat
    from conveyor.pipelines._ray_env import SECRET_VARS

    started = time.perf_counter()
    result: dict[str, Any] = {"status": "FAILED", "outputs": {}, "logs": None, "error": None, "metrics": None}
    blobs, token = _open_blobs(task["blobs"])
    env = task.get("env") or {}
    secrets = [s for s in (token, *(env.get(name) for name in SECRET_VARS)) if s]
    with tempfile.TemporaryDirectory(prefix="conveyor-step-") as tmp:
        work = Path(tmp)
        log_path = work / "step.log"
        log_path.touch()
        recorder = None
        try:
            func = _resolve(task["module"], task["qualname"])
            kwargs = dict(task["params"])
            for arg, ref in task["inputs"].items():
                folder = work / "in" / arg
                blobs.get_tree(Digest.parse(ref["digest"]), folder)
                kwargs[arg] = mat.get_materializer(ref["materializer"]).load(folder)
            recorder = _step_tracker(blobs, task)
            with _capture_fds(log_path), _bound(recorder):
                value = func(**kwargs)
                if recorder is not None and task.get("package"):
                    _package(recorder, task, value)
            result["outputs"] = _store_outputs(blobs, task, value, work / "out")
            if task.get("metrics"):
                result["metrics"] = _metrics(task["node"], value)
            result["status"] = "FINISHED"
        except BaseException as exc:  # the step's own failure is data, reported to the coordinator
            headline = getattr(exc, "headline", None) or f"{type(exc).__name__}: {exc}"
            hint = getattr(exc, "hint", None)
            result["error"] = headline + (f" ({hint})" if hint else "")
            result["traceback"] = "".join(traceback.format_exception(exc))
            if isinstance(exc, KeyboardInterrupt):
                raise
        finally:
            if secrets:  # the server token, the AWS secret key never leave in what the step reports
                from conveyor.pipelines._ray_env import mask_all
                from conveyor.pipelines._remote import mask_file

                for key in ("error", "traceback"):
                    if result.get(key):
                        result[key] = mask_all(result[key], secrets)
            try:
                for secret in secrets:
                    mask_file(log_path, secret)
                result["logs"] = str(blobs.put_file(log_path).digest)
            except Exception as exc:  # the step's own outcome must survive a failed log upload
                note = f"its log could not be stored: {type(exc).__name__}: {str(exc).splitlines()[0][:300]}"
                result["error"] = f"{result['error']}; {note}" if result["error"] else note
                result["log_tail"] = log_path.read_text(encoding="utf-8", errors="replace")[-4000:]
                if secrets:
                    result["error"] = mask_all(result["error"], secrets)
                    result["log_tail"] = mask_all(result["log_tail"], secrets)
                if result["status"] == "FINISHED":
                    result["status"] = "FAILED"
            if recorder is not None:
                result["tracking"] = recorder.record()
    result["duration_s"] = time.perf_counter() - started
    return result


def _open_blobs(options: dict[str, Any]) -> tuple[Any, str | None]:
    """The driver's artifact store with the driver's S3 settings; in remote mode the pipeline
    run's objects through the server (the driver's ``[server]`` settings, in the task: the
    local executor's task file is in a private temporary folder, a Ray task's argument is
    neither logged nor shown by Ray), and the token to mask in what the step reports."""
    from conveyor.blobs import BlobStore

    if "server_run" not in options:
        return BlobStore.open(**options), None
    from conveyor.pipelines._remote import run_blobs
    from conveyor.settings import ServerSettings
    from conveyor.tracking._remote import Http

    settings = ServerSettings.model_validate(options["server"])
    return run_blobs(Http(settings), str(options["server_run"])), settings.token


def _step_tracker(blobs: Any, task: dict[str, Any]) -> Any:
    """The tracker ``conveyor.log_*`` and ``conveyor.models.log`` use inside the step."""
    info = task.get("run")
    if not info:
        return None
    from conveyor.entities import Run, RunStatus
    from conveyor.pipelines._steprun import StepTracker

    run = Run(
        id=info["id"], experiment_id=info["experiment_id"], experiment=info.get("experiment", ""),
        name=info.get("name", task["node"]), status=RunStatus.RUNNING, start_time=info.get("start_time", 0),
        parent_id=info.get("parent_id"), git_commit=info.get("git_commit"),
        params=dict(info.get("params", {})), tags=dict(info.get("tags", {})),
    )
    return StepTracker(blobs, run)


@contextmanager
def _bound(recorder: Any) -> Iterator[None]:
    if recorder is None:
        yield
        return
    from conveyor.pipelines._steprun import bound

    with bound(recorder):
        yield


def _package(recorder: Any, task: dict[str, Any], value: Any) -> None:
    """The candidate step: make sure its run holds a model package (logged, or the output)."""
    from conveyor.pipelines._steprun import package_candidate

    names: list[str] = task["outputs"]
    output = task["package"]
    if len(names) > 1 and isinstance(value, tuple) and len(value) == len(names):
        value = value[names.index(output)]
    package_candidate(recorder, value, task["node"])


def _store_outputs(blobs: Any, task: dict[str, Any], value: Any, out: Path) -> dict[str, Any]:
    from conveyor.pipelines import _materializers as mat
    from conveyor.errors import InvalidInput

    names: list[str] = task["outputs"]
    if len(names) == 1:
        values = [value]
    elif isinstance(value, tuple) and len(value) == len(names):
        values = list(value)
    else:
        raise InvalidInput(
            f"step {task['node']!r} declares outputs {names} but returned a {type(value).__name__}"
            + (f" of {len(value)}" if isinstance(value, tuple) else ""),
            field=f"{task['node']}.outputs", hint=f"return a tuple of {len(names)} values",
        )
    stored: dict[str, Any] = {}
    for name, item in zip(names, values, strict=True):
        materializer = mat.materializer_for(item, step=task["node"], output=name)
        folder = out / name
        folder.mkdir(parents=True)
        materializer.save(item, folder)
        stored[name] = {
            "digest": str(blobs.put_tree(folder).digest),
            "materializer": materializer.name,
            "type_name": f"{type(item).__module__}.{type(item).__qualname__}",
        }
    return stored


def _metrics(node: str, value: Any) -> dict[str, float]:
    from conveyor.errors import InvalidInput

    if not isinstance(value, dict) or not all(
        isinstance(k, str) and isinstance(v, (int, float)) and not isinstance(v, bool) for k, v in value.items()
    ):
        raise InvalidInput(
            f"step {node!r} has metrics=True but returned a {type(value).__name__}",
            field=f"{node}.metrics", hint="return a dict of metric name → number",
        )
    return {k: float(v) for k, v in value.items()}


def main(argv: list[str]) -> int:
    """``python -m conveyor.pipelines._worker TASK.json RESULT.json`` (the local executor)."""
    task_path, result_path = Path(argv[0]), Path(argv[1])
    result = execute(json.loads(task_path.read_text(encoding="utf-8")))
    tmp = result_path.with_name(result_path.name + ".tmp")
    tmp.write_text(json.dumps(result), encoding="utf-8")
    os.replace(tmp, result_path)  # the coordinator never reads half a result
    return 0


def ray_entry(task_json: str) -> str:
    """Entry point of a Ray task (same contract as ``child_main``)."""
    return json.dumps(execute(json.loads(task_json)))


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
