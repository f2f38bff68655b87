"""The step cache key: what must be equal for an earlier execution's outputs to be reused.

It covers the step's source and everything project-local it reaches: the source of each
function or class, and a fingerprint of each module-level value, closure cell and default
argument (transitively, through globals and module attributes; code in site-packages or
the standard library is covered by the environment instead), its parameters, its inputs'
digests, the versions of the packages it uses (or of a declared ``env`` list), its output
names and an optional ``cache_version``. A reached value without a stable fingerprint
raises ``Unfingerprintable``; the runner then runs the step uncached and names the value.
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
from conveyor.pipelines._fingerprint import Unfingerprintable, Walk, code_names as _code_names, unwrap as _unwrap

KEY_VERSION = 2  # 2: module-level values, closures and defaults count (1 followed code only)

__all__ = ["Unfingerprintable", "cache_key", "environment", "outputs_intact", "source_closure"]


@cache
def _library_roots() -> tuple[str, ...]:
    paths = {sysconfig.get_paths()[k] for k in ("stdlib", "platstdlib", "purelib", "platlib")}
    paths |= {sys.prefix, sys.base_prefix, sys.exec_prefix}
    return tuple(sorted(str(Path(p).resolve()) for p in paths))


#: conveyor itself is a library to the steps (its version is in the key's environment), also
#: when it is installed from a source folder next to the project
_CONVEYOR_DIR = str(Path(__file__).resolve().parents[1])


def _is_project_file(path: str | None, roots: tuple[str, ...]) -> bool:
    if not path:
        return False
    resolved = str(Path(path).resolve())
    if "site-packages" in resolved or "dist-packages" in resolved or resolved.startswith(_CONVEYOR_DIR + "/"):
        return False
    if any(resolved.startswith(lib + "/") for lib in _library_roots()) and not any(
        resolved.startswith(r + "/") for r in roots
    ):
        return False
    return any(resolved.startswith(r + "/") or resolved == r for r in roots)


def _local(value: Any, roots: tuple[str, ...]) -> bool:
    value = _unwrap(value)
    if not (inspect.isfunction(value) or inspect.isclass(value)):
        return False
    try:
        return _is_project_file(inspect.getsourcefile(value), roots)
    except TypeError:
        return False


def source_closure(func: Any, roots: tuple[str, ...], exclude: tuple[str, ...] = ()) -> dict[str, str]:
    """``{label: source or value fingerprint}`` of ``func`` and everything project-local it
    reaches: code, module-level values, closures and defaults (see ``_fingerprint``).

    Raises ``Unfingerprintable`` naming a reached value that has no stable fingerprint."""
    walk = Walk(
        lambda value: _local(value, roots),
        lambda module: _is_project_file(getattr(module, "__file__", None), roots),
        exclude,
    )
    return walk.closure(func)


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
    extra: Mapping[str, Any] | None = None,
) -> str:
    """The step's cache key as ``blake3:<hex>`` (inputs map argument → output digest;
    ``extra``: what the runner asks of the step beyond its code, e.g. packaging a candidate)."""
    options = step.options
    sources = source_closure(step, roots, options.cache_exclude)
    document = {
        "v": KEY_VERSION,
        "step": f"{step.module}:{step.qualname}",
        "closure": sources,
        "extra": dict(extra or {}),
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
