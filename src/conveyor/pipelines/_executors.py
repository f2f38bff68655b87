"""Executors: where one attempt of one step runs. Same contract, same test suite.

- ``local``: a process per attempt, forked from a warm server that has already imported
  conveyor and the heavy modules the steps use (see ``_forkserver``), at most one per core
  at a time; a timeout kills the process group, so a stuck step cannot hang the run. Where
  ``fork`` is not available, a fresh interpreter per attempt.
- ``ray``: a Ray task per attempt with the step's ``cpus``/``gpus``/``memory``; a timeout
  cancels it. Outputs go through conveyor's artifact store in both cases (in remote mode,
  through the server), so caching and lineage do not depend on the executor.

``run(task, options)`` blocks until the attempt ends and returns the worker's JSON result;
the coordinator calls it from one thread per running step.
"""

from __future__ import annotations

import json
import logging
import os
import signal
import socket
import subprocess
import sys
import tempfile
import threading
from collections.abc import Sequence
from pathlib import Path
from typing import Any, Protocol

from conveyor.errors import InvalidInput, ServiceUnavailable
from conveyor.pipelines import _ray_env
from conveyor.pipelines._dag import StepOptions

_log = logging.getLogger("conveyor.pipelines")


class Executor(Protocol):
    name: str
    slots: int

    def run(self, task: dict[str, Any], options: StepOptions) -> dict[str, Any]: ...

    def close(self) -> None: ...


def _timeout_result(seconds: float) -> dict[str, Any]:
    return {
        "status": "FAILED", "outputs": {}, "logs": None, "metrics": None,
        "error": f"TimeoutError: the step ran longer than its timeout of {seconds:g} s and was stopped",
    }


class LocalExecutor:
    """Steps in separate processes, bounded by the cores (or ``max_workers``).

    ``preload``: modules the warm server imports before forking (the steps' heavy imports).
    """

    name = "local"

    def __init__(self, max_workers: int | None = None, *, preload: Sequence[str] = (), warm: bool = True) -> None:
        self.slots = max(1, max_workers or os.cpu_count() or 1)
        self._slots = threading.BoundedSemaphore(self.slots)
        self._running: set[int] = set()
        self._warm = warm and hasattr(os, "fork") and hasattr(socket, "AF_UNIX")
        self._preload = tuple(preload)
        self._server: Any = None
        self._lock = threading.Lock()

    def warm(self) -> None:
        """Start the fork server now, so its imports overlap the caller's own setup."""
        self._warm_server()

    def _warm_server(self) -> Any:
        """The fork server, started by ``warm()`` or by the first step that runs (so a fully
        cached run need not start one)."""
        with self._lock:
            if self._server is None and self._warm:
                from conveyor.pipelines import _forkserver

                self._server = _forkserver.shared(self._preload)
            return self._server

    def run(self, task: dict[str, Any], options: StepOptions) -> dict[str, Any]:
        server = self._warm_server()
        with self._slots, tempfile.TemporaryDirectory(prefix="conveyor-task-") as tmp:
            task_path, result_path = Path(tmp) / "task.json", Path(tmp) / "result.json"
            task_path.write_text(json.dumps(task), encoding="utf-8")
            died: dict[str, Any] | str | None = None
            if server is not None and server.wait_ready():
                try:
                    died = self._forked(server, task_path, result_path, options)
                except OSError:  # the server went away (replaced, or killed): a fresh interpreter instead
                    died = None
            if died is None:
                died = self._spawned(task_path, result_path, options)
            if isinstance(died, dict):
                return died
            try:
                return dict(json.loads(result_path.read_text(encoding="utf-8")))
            except (OSError, ValueError):
                return {
                    "status": "FAILED", "outputs": {}, "logs": None, "metrics": None,
                    "error": f"the step's process died ({died})",
                }

    def _forked(self, server: Any, task_path: Path, result_path: Path, options: StepOptions) -> dict[str, Any] | str:
        """One attempt in a child of the warm server; the timeout kills its process group."""
        conn, pid = server.connect({
            "task": str(task_path), "result": str(result_path), "cwd": os.getcwd(), "env": dict(os.environ),
        })
        self._running.add(pid)
        settled = False
        try:
            conn.settimeout(options.timeout)
            data = b""
            while b"done" not in data:
                chunk = conn.recv(64)
                if not chunk:
                    break  # the child exited: its result file says how (or it is missing)
                data += chunk
            settled = True
            return "it exited without writing its result"
        except TimeoutError:
            return _timeout_result(options.timeout or 0)
        finally:
            if not settled:  # a timeout, or the coordinator is being interrupted
                _kill_group(pid)
            self._running.discard(pid)
            conn.close()

    def _spawned(self, task_path: Path, result_path: Path, options: StepOptions) -> dict[str, Any] | str:
        # A fresh interpreter per attempt (``python -m conveyor.pipelines._worker``), talking
        # JSON through files. Not multiprocessing's spawn/forkserver: both re-import the
        # caller's __main__ in the child, which re-runs a pipeline script that calls
        # ``run()`` at top level without an ``if __name__ == "__main__"`` guard.
        process = subprocess.Popen(
            [sys.executable, "-m", "conveyor.pipelines._worker", str(task_path), str(result_path)],
            stdin=subprocess.DEVNULL,
        )
        try:
            process.wait(options.timeout)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
            return _timeout_result(options.timeout or 0)
        finally:
            if process.poll() is None:  # the coordinator is being interrupted
                process.kill()
                process.wait()
        return f"exit code {process.returncode}"

    def close(self) -> None:
        for pid in list(self._running):
            _kill_group(pid)


def _kill_group(pid: int) -> None:
    try:
        os.killpg(pid, signal.SIGKILL)
    except (ProcessLookupError, PermissionError):
        pass


_ray_lock = threading.Lock()


class RayExecutor:
    """Each attempt is a Ray task; the cluster's scheduler places it by its resources.

    ``remote``: the pipeline runs in remote mode, so the cluster gets no store setting or
    credential; each task's argument carries the server's URL and token."""

    name = "ray"

    def __init__(self, address: str | None, max_workers: int | None = None, settings: Any = None, *,
                 remote: bool = False) -> None:
        if not address:
            raise InvalidInput(
                "the ray executor needs a cluster address", field="ray_address",
                hint="pass --ray-address HOST:PORT (or set [pipelines] ray_address in conveyor.toml)",
            )
        if settings is None:  # called without the caller's settings: read them here, at the API edge
            from conveyor.settings import Settings

            settings = Settings.load()
        _ray_env.probe(address, settings.ray.connect_timeout)
        try:
            import ray
        except ImportError:
            raise InvalidInput(
                "the ray executor needs the ray package", field="executor", value="ray",
                hint="pip install 'conveyor-mlops[ray]'",
            ) from None
        self._ray = ray
        with _ray_lock:
            if not ray.is_initialized():
                env = _ray_env.runtime_env(settings, remote=remote)
                _log.info("conveyor: joining Ray at %s with %s", address, _ray_env.describe(env))
                try:
                    ray.init(
                        address=address, runtime_env=env, logging_level=logging.ERROR, log_to_driver=False,
                        configure_logging=False,
                    )
                except Exception as exc:  # any failure to join the cluster
                    raise ServiceUnavailable(
                        f"cannot connect to the Ray cluster at {address}: {str(exc).splitlines()[0][:300]}"
                    ) from None
                try:
                    _ray_env.check_version(ray, max(30.0, settings.ray.connect_timeout))
                except BaseException:
                    ray.shutdown()
                    raise
        # store settings and credentials travel in each task's argument (see _ray_env)
        self._env = _ray_env.task_env(settings, remote=remote)
        self._secrets = _ray_env.secrets(settings, self._env)
        self.slots = max(1, max_workers or int(ray.cluster_resources().get("CPU", 1)))  # type: ignore[no-untyped-call]
        from conveyor.pipelines import _worker

        self._remote = ray.remote(_worker.ray_entry)

    def run(self, task: dict[str, Any], options: StepOptions) -> dict[str, Any]:
        resources: dict[str, Any] = {"num_cpus": options.cpus, "num_gpus": options.gpus, "max_retries": 0}
        if options.memory:
            resources["memory"] = options.memory
        # store settings, credentials (remote mode: the server's URL and token) travel in the
        # task argument, never in a runtime_env (which Ray's runtime env agent logs, see _ray_env)
        secrets = [*self._secrets, (task.get("blobs", {}).get("server") or {}).get("token")]
        if self._env:
            task = {**task, "env": self._env}
        ref = self._remote.options(**resources).remote(json.dumps(task))
        ready, _ = self._ray.wait([ref], timeout=options.timeout)
        if not ready:
            self._ray.cancel(ref, force=True)
            return _timeout_result(options.timeout or 0)
        from conveyor.pipelines._ray_env import mask_all

        try:
            result = dict(json.loads(self._ray.get(ref)))
        except Exception as exc:  # a worker crash surfaces as a Ray error
            return {"status": "FAILED", "outputs": {}, "logs": None, "metrics": None,
                    "error": mask_all(f"Ray task failed: {exc}", secrets)}
        for key in ("error", "traceback", "log_tail"):  # the metadata password too (not in the task)
            if result.get(key):
                result[key] = mask_all(result[key], secrets)
        return result

    def close(self) -> None:
        pass


def make_executor(
    name: str, *, ray_address: str | None = None, max_workers: int | None = None, settings: Any = None,
    preload: Sequence[str] = (), remote: bool = False,
) -> Executor:
    """``local`` or ``ray``; an unreachable Ray address raises ``ServiceUnavailable`` quickly.

    ``settings`` (the caller's ``Settings``) gives Ray its timeout, code and store settings;
    ``preload`` names the modules the local executor's warm worker imports once; ``remote``:
    the pipeline runs in remote mode (Ray gets no store settings or credentials)."""
    if name == "local":
        return LocalExecutor(max_workers, preload=preload)
    if name == "ray":
        return RayExecutor(ray_address, max_workers, settings, remote=remote)
    raise InvalidInput(f"unknown executor {name!r}", field="executor", value=name, hint="local or ray")
