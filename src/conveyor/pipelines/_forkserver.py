"""Warm step processes: a fork server that has already imported the heavy modules.

A fresh interpreter per step pays Python's start-up and the imports of pandas, scikit-learn
and conveyor's own stores — seconds per step on a small machine. Instead one server process
per coordinator process (``python -m conveyor.pipelines._forkserver``) imports those once and
forks a child per step attempt:

- each attempt is its own process (``fork`` of a single-threaded server), so steps share no
  state with each other, with the server, or with the coordinator (which never forks);
- the project's own modules are never imported by the server: every child imports them from
  disk, so an edited step is what runs (and what the cache key saw);
- the child takes the coordinator's current working folder and environment from the request,
  starts its own session (a timeout kills the child's whole process group) and resets the
  signal handlers the server changed;
- the server exits when its coordinator does (it watches its stdin pipe).

Protocol, one Unix socket connection per attempt: the client sends one JSON line
(``{"task": path, "result": path, "cwd": …, "env": {…}}``); the child answers ``pid <n>``,
runs ``conveyor.pipelines._worker.main``, answers ``done`` and exits.
"""

from __future__ import annotations

import atexit
import importlib
import json
import os
import select
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
from collections.abc import Iterable
from pathlib import Path
from typing import Any

#: always imported by the server: what every step attempt needs
BASE = ("conveyor.pipelines._worker", "conveyor.pipelines._materializers", "conveyor.pipelines._steprun",
        "conveyor.blobs", "conveyor.models")
#: never imported by the server: frameworks that start threads or hold devices at import
#: (a fork of a process holding them is not safe); steps import them themselves
UNSAFE = frozenset({"tensorflow", "keras", "torch", "jax", "ray", "cupy", "mxnet", "pyspark", "dask"})


# -- server side (its own process) -----------------------------------------------------------------
def _readline(conn: socket.socket) -> bytes:
    data = b""
    while not data.endswith(b"\n"):
        chunk = conn.recv(65536)
        if not chunk:
            break
        data += chunk
    return data


def _preload(modules: Iterable[str]) -> None:
    for name in modules:
        if name.split(".")[0] in UNSAFE:
            continue
        try:
            importlib.import_module(name)
        except BaseException:  # noqa: BLE001 — a module that fails here fails in the step, where it is reported
            pass


def _child(conn: socket.socket) -> None:
    request = json.loads(_readline(conn) or b"{}")
    conn.sendall(f"pid {os.getpid()}\n".encode())
    cwd = request.get("cwd") or os.getcwd()
    if sys.path and sys.path[0] == _started_in:  # `python -m` put the server's folder first: use the caller's
        sys.path[0] = cwd
    os.chdir(cwd)
    if "env" in request:
        os.environ.clear()
        os.environ.update(request["env"])
    importlib.invalidate_caches()
    from conveyor.pipelines import _worker

    _worker.main([request["task"], request["result"]])
    sys.stdout.flush()
    sys.stderr.flush()
    conn.sendall(b"done\n")


_started_in = os.getcwd()


def serve(path: str, preload: list[str]) -> None:
    """The server loop (``python -m conveyor.pipelines._forkserver SOCKET MODULES``)."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C is the coordinator's to handle
    _preload([*BASE, *preload])
    listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    listener.bind(path)
    listener.listen(64)
    signal.signal(signal.SIGCHLD, signal.SIG_IGN)  # children are reaped by the kernel
    sys.stdout.write("ready\n")
    sys.stdout.flush()
    devnull = os.open(os.devnull, os.O_RDWR)
    os.dup2(devnull, 1)  # nobody reads the pipe after "ready": a chatty import must not block on it
    stdin = os.dup(0)
    os.dup2(devnull, 0)  # children must not read the coordinator's pipe
    while True:
        readable, _, _ = select.select([listener, stdin], [], [])
        if stdin in readable and not os.read(stdin, 1):
            return  # the coordinator is gone
        if listener not in readable:
            continue
        conn, _ = listener.accept()
        pid = os.fork()
        if pid == 0:
            code = 0
            try:
                listener.close()
                signal.signal(signal.SIGCHLD, signal.SIG_DFL)
                signal.signal(signal.SIGINT, signal.SIG_DFL)
                os.setsid()
                _child(conn)
            except BaseException:  # noqa: BLE001 — the coordinator sees a missing result
                code = 1
            finally:
                os._exit(code)
        conn.close()


# -- client side (the coordinator) -------------------------------------------------------------------
class ForkServer:
    """A running server; :meth:`attempt` runs one step attempt in a fresh fork of it."""

    def __init__(self, preload: Iterable[str] = ()) -> None:
        self._folder = tempfile.mkdtemp(prefix="conveyor-fork-")
        self.path = str(Path(self._folder) / "s")
        self.process = subprocess.Popen(
            [sys.executable, "-m", "conveyor.pipelines._forkserver", self.path, ",".join(sorted(set(preload)))],
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, start_new_session=True,
        )
        self.preloaded = set(BASE) | set(preload)
        self._ready = threading.Event()
        self._lock = threading.Lock()
        self.failed: str | None = None
        threading.Thread(target=self._wait_ready, daemon=True, name="conveyor-forkserver").start()

    def _wait_ready(self) -> None:
        assert self.process.stdout is not None
        line = self.process.stdout.readline()
        if line.strip() != b"ready":
            self.failed = f"the step fork server did not start (exit code {self.process.poll()})"
        self._ready.set()

    def alive(self) -> bool:
        return self.process.poll() is None and self.failed is None

    def wait_ready(self, timeout: float = 120.0) -> bool:
        return self._ready.wait(timeout) and self.failed is None

    def connect(self, request: dict[str, Any]) -> tuple[socket.socket, int]:
        """Send ``request`` to a new child; its socket and pid."""
        if not self.wait_ready():
            raise OSError(self.failed or "the step fork server is not ready")
        conn = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        conn.connect(self.path)
        conn.sendall(json.dumps(request).encode() + b"\n")
        conn.settimeout(60.0)
        line = _readline(conn)
        if not line.startswith(b"pid "):
            conn.close()
            raise OSError("the step fork server did not start a process")
        return conn, int(line.split()[1])

    def close(self) -> None:
        """Stop the server now: it holds no state, and the step processes it forked run in
        their own sessions, so they finish (or are killed by their coordinator) on their own."""
        if self.process.poll() is None:
            self.process.kill()
            self.process.wait()
        for pipe in (self.process.stdin, self.process.stdout):
            if pipe is not None:
                try:
                    pipe.close()
                except OSError:
                    pass
        shutil.rmtree(self._folder, ignore_errors=True)


_shared: ForkServer | None = None
_shared_lock = threading.Lock()


def shared(preload: Iterable[str] = ()) -> ForkServer:
    """This process's fork server, started on first use (again if it died, or when ``preload``
    names modules it has not imported: the new one imports all of them)."""
    global _shared
    wanted = set(preload)
    with _shared_lock:
        if _shared is None or not _shared.alive() or not wanted <= _shared.preloaded:
            # a new server with everything asked for so far; children of the old one finish
            # on their own (each talks to its coordinator thread directly)
            if _shared is not None:
                wanted |= _shared.preloaded - set(BASE)
                _shared.close()
            _shared = ForkServer(wanted)
        return _shared


@atexit.register
def _close_shared() -> None:
    with _shared_lock:
        if _shared is not None:
            _shared.close()


def main(argv: list[str]) -> int:
    path, modules = argv[0], [m for m in (argv[1] if len(argv) > 1 else "").split(",") if m]
    serve(path, modules)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
