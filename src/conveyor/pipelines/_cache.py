"""The step cache key: what must be equal for an earlier execution's outputs to be reused.

It covers the step's source and the source of every project-local function or class it
reaches (transitively, through its globals and module attributes; code in site-packages
or the standard library is covered by the environment instead), its parameters, its
inputs' digests, the versions of the packages it uses (or of a declared ``env`` list),
its output names and an optional ``cache_version``.
"""

from __future__ import annotations

import inspect
import json
import os
import sys
import tempfile
import sysconfig
import types
from collections.abc import Iterator, Mapping
from functools import cache
from importlib import metadata as importlib_metadata
from pathlib import Path
from typing import Any

import blake3

from conveyor.blobs import BlobStore, Digest

KEY_VERSION = 1


@cache
def _library_roots() -> tuple[str, ...]:
    paths = {sysconfig.get_paths()[k] for k in ("stdlib", "platstdlib", "purelib", "platlib")}
    paths |= {sys.prefix, sys.base_prefix, sys.exec_prefix}
    return tuple(sorted(str(Path(p).resolve()) for p in paths))


def _is_project_file(path: str | None, roots: tuple[str, ...]) -> bool:
    if not path:
        return False
    resolved = str(Path(path).resolve())
    if "site-packages" in resolved or "dist-packages" in resolved:
        return False
    if any(resolved.startswith(lib + "/") for lib in _library_roots()) and not any(
        resolved.startswith(r + "/") for r in roots
    ):
        return False
    return any(resolved.startswith(r + "/") or resolved == r for r in roots)


def _code_names(code: types.CodeType) -> Iterator[str]:
    yield from code.co_names
    for const in code.co_consts:
        if isinstance(const, types.CodeType):
            yield from _code_names(const)


def _unwrap(obj: Any) -> Any:
    func = getattr(obj, "func", None)  # Step / Pipeline objects
    return func if callable(func) and hasattr(obj, "options") else obj


def source_closure(func: Any, roots: tuple[str, ...]) -> dict[str, str]:
    """``{"module:qualname": source}`` of ``func`` and the project-local code it reaches."""
    out: dict[str, str] = {}
    used: set[str] = set()
    stack: list[Any] = [_unwrap(func)]
    while stack:
        obj = stack.pop()
        key = f"{getattr(obj, '__module__', '?')}:{getattr(obj, '__qualname__', repr(obj))}"
        if key in out:
            continue
        try:
            out[key] = inspect.getsource(obj)
        except (OSError, TypeError):
            out[key] = "<no source>"
        if isinstance(obj, type):
            members = [m for m in vars(obj).values() if inspect.isfunction(m)]
            stack.extend(m for m in members if _is_project_file(inspect.getsourcefile(m), roots))
            continue
        code = getattr(obj, "__code__", None)
        if code is None:
            continue
        names = set(_code_names(code))
        used |= names
        scope = dict(getattr(obj, "__globals__", {}))
        if obj.__closure__:
            scope.update(zip(code.co_freevars, (c.cell_contents for c in obj.__closure__ if _filled(c))))
        for name in names | set(code.co_freevars):
            value = _unwrap(scope.get(name))
            if isinstance(value, types.ModuleType):
                if _is_project_file(getattr(value, "__file__", None), roots):
                    stack.extend(
                        _unwrap(getattr(value, attr)) for attr in names if _local(getattr(value, attr, None), roots)
                    )
            elif _local(value, roots):
                stack.append(value)
    return out


def _filled(cell: Any) -> bool:
    try:
        cell.cell_contents
    except ValueError:
        return False
    return True


def _local(value: Any, roots: tuple[str, ...]) -> bool:
    value = _unwrap(value)
    if not (inspect.isfunction(value) or inspect.isclass(value)):
        return False
    try:
        return _is_project_file(inspect.getsourcefile(value), roots)
    except TypeError:
        return False


@cache
def _distributions() -> Mapping[str, list[str]]:
    """Top-level module → distributions. Scanning every installed package's metadata takes
    a noticeable fraction of a second, so the map is kept in a temp file keyed by the
    modification times of the site-packages folders (an install or removal changes them)."""
    stamp = []
    # Only folders packages are installed into: the project's own folders change all the time.
    for entry in sys.path:
        if "site-packages" not in entry and "dist-packages" not in entry:
            continue
        try:
            stamp.append(f"{entry}:{os.stat(entry or '.').st_mtime_ns}")
        except OSError:
            continue
    key = blake3.blake3("\n".join(stamp).encode()).hexdigest()[:32]
    path = Path(tempfile.gettempdir()) / f"conveyor-dists-{os.getuid() if hasattr(os, 'getuid') else 0}-{key}.json"
    try:
        return dict(json.loads(path.read_text(encoding="utf-8")))
    except (OSError, ValueError):
        pass
    found = importlib_metadata.packages_distributions()
    tmp = path.with_name(f"{path.name}.{os.getpid()}.tmp")
    try:
        tmp.write_text(json.dumps(found), encoding="utf-8")
        os.replace(tmp, path)
    except OSError:  # a read-only temp folder only costs the rescan next time
        pass
    return found


@cache
def _version(dist: str) -> str | None:
    try:
        return importlib_metadata.version(dist)
    except importlib_metadata.PackageNotFoundError:
        return None


def environment(func: Any, declared: tuple[str, ...] | None) -> dict[str, str | None]:
    """Versions of the distributions a step uses: its declared list, or every installed
    package whose top-level module its code names (imports included)."""
    if declared is not None:
        return {name: _version(name) for name in sorted(declared)}
    func = _unwrap(func)
    names = set(_code_names(func.__code__))
    for value in getattr(func, "__globals__", {}).values():
        module = value.__name__ if isinstance(value, types.ModuleType) else getattr(value, "__module__", None)
        if isinstance(module, str):
            names.add(module.split(".", 1)[0])
    dists = _distributions()
    out: dict[str, str | None] = {}
    for name in names & set(dists):
        for dist in dists[name]:
            out[dist] = _version(dist)
    return dict(sorted(out.items()))


def cache_key(
    *,
    step: Any,
    params: Mapping[str, Any],
    inputs: Mapping[str, str],
    roots: tuple[str, ...],
) -> str:
    """The step's cache key as ``blake3:<hex>`` (inputs map argument → output digest)."""
    options = step.options
    sources = source_closure(step, roots)
    document = {
        "v": KEY_VERSION,
        "step": f"{step.module}:{step.qualname}",
        "sources": sources,
        "params": params,
        "inputs": dict(sorted(inputs.items())),
        "env": environment(step, options.env),
        "python": f"{sys.version_info.major}.{sys.version_info.minor}",
        "outputs": list(options.outputs),
        "cache_version": options.cache_version,
    }
    payload = json.dumps(document, sort_keys=True, default=str).encode()
    return "blake3:" + blake3.blake3(payload).hexdigest()


def outputs_intact(blobs: BlobStore, digests: Mapping[str, str]) -> bool:
    """Every output manifest and every file it lists exists and matches its digest."""
    for text in digests.values():
        digest = Digest.parse(text)
        try:
            if not blobs.exists(digest):
                return False
            if not blobs.verify(digest):
                _discard(blobs, digest)
                return False
            entries = blobs.read_manifest(digest).entries
        except (OSError, ValueError, KeyError):  # unreadable: not reusable
            return False
        for entry in entries:
            try:
                if not blobs.exists(entry.digest):
                    return False
                if not blobs.verify(entry.digest):
                    _discard(blobs, entry.digest)
                    return False
            except (OSError, ValueError, KeyError):
                return False
    return True


def _discard(blobs: BlobStore, digest: Digest) -> None:
    """Remove a corrupt object: the store deduplicates by name, so re-running the step could
    not replace it while it is there."""
    blobs.delete(digest)
