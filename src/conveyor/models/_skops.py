"""skops files under the trust policy: used by the sklearn flavor and the pipelines' materializer.

:func:`skops_references` lists what a skops file names by reading its ``schema.json``
(nothing is imported or constructed); :func:`load_skops` checks those references against
the policy and only then lets skops build the objects, passing skops exactly the names
the policy accepted (skops audits the file again against that list).

Each schema node is classified by the way skops rebuilds it (see ``_trust``):
``ObjectNode`` and a few fixed-constructor loaders rebuild from state (``class``); every
other loader calls or returns something the file chose (``callable``). A loader this
module does not know counts as ``callable``, the strict side.
"""

from __future__ import annotations

import json
import zipfile
from collections.abc import Iterator, Sequence
from functools import cache
from pathlib import Path
from typing import Any

from conveyor.errors import CorruptObject
from conveyor.models._structures import check_structures
from conveyor.models._trust import Reference, TrustPolicy, as_policy

#: Loaders that never call a class or function named by the file (skops 0.10–0.16).
_STATE_LOADERS = frozenset({
    "ObjectNode",          # cls.__new__(cls) + __setstate__/__dict__: no constructor call
    "TreeNode",            # always sklearn.tree._tree.Tree, whatever the file says
    "DTypeNode",           # the dtype of a stored (pickle-free) array
    "MaskedArrayNode",     # always numpy.ma.MaskedArray
    "SparseMatrixNode",    # always scipy.sparse.load_npz
    "RandomGeneratorNode", "_DictWithDeprecatedKeysNode",
    "MethodNode",          # its own name is the owner's class; the bound method is yielded apart, as callable
})
#: Loaders that build one fixed builtin type from JSON or bytes (skops always trusts them): no reference.
_VALUE_LOADERS = frozenset({"JsonNode", "BytesNode", "BytearrayNode", "SliceNode", "CachedNode"})
#: Loaders whose class is only a container type called on the loaded items; trusted for builtins.
_CONTAINER_LOADERS = frozenset({"DictNode", "ListNode", "SetNode", "TupleNode", "NdArrayNode"})
_CONTAINER_OK = frozenset({"builtins.dict", "builtins.list", "builtins.set", "builtins.tuple", "numpy.ndarray"})
#: the largest schema.json read (a real forest of 500 trees is a few MB)
MAX_SCHEMA_BYTES = 256 * 1024 * 1024


def _schema(path: Path) -> Any:
    try:
        with zipfile.ZipFile(path) as archive:
            info = archive.getinfo("schema.json")
            if info.file_size > MAX_SCHEMA_BYTES:
                raise CorruptObject(f"{path.name}: schema.json is {info.file_size} bytes, over the "
                                    f"{MAX_SCHEMA_BYTES}-byte limit")
            return json.loads(archive.read(info))
    except (zipfile.BadZipFile, KeyError, ValueError, UnicodeDecodeError, RecursionError) as exc:
        raise CorruptObject(f"{path.name} is not a skops file: {exc}") from None


def _walk(node: Any) -> Iterator[tuple[str, str]]:
    stack = [(node, 0)]
    while stack:
        item, level = stack.pop()
        if level > 10_000:
            raise CorruptObject("skops schema nested deeper than 10,000 levels")
        if isinstance(item, dict):
            if "__loader__" in item and "__module__" in item and "__class__" in item:
                yield str(item["__loader__"]), f"{item['__module__']}.{item['__class__']}"
                content = item.get("content")
                if item["__loader__"] == "MethodNode" and isinstance(content, dict):  # a bound method: called
                    yield "BoundMethod", f"{item['__module__']}.{item['__class__']}.{content.get('func')}"
            stack.extend((v, level + 1) for v in item.values())
        elif isinstance(item, list):
            stack.extend((v, level + 1) for v in item)


def _kind(loader: str, name: str) -> str:
    if loader in _STATE_LOADERS or (loader in _CONTAINER_LOADERS and name in _CONTAINER_OK):
        return "class"
    return "callable"


@cache
def _vetted_callables() -> frozenset[str] | None:
    """The callables skops trusts by default (ufuncs, scalar and dtype types, primitives,
    its allowed losses), or None when this skops version does not expose them."""
    try:
        from skops.io import _trusted_types as t
        from skops.io._sklearn import ALLOWED_LOSSES
    except ImportError:
        return None
    names = [*t.PRIMITIVE_TYPE_NAMES, *t.CONTAINER_TYPE_NAMES, *t.NUMPY_UFUNC_TYPE_NAMES, *t.SCIPY_UFUNC_TYPE_NAMES,
             *t.NUMPY_DTYPE_TYPE_NAMES, *getattr(t, "NUMPY_RANDOM_BIT_GENERATOR_TYPE_NAMES", ()),
             "numpy.random.mtrand.RandomState", *(f"{c.__module__}.{c.__name__}" for c in ALLOWED_LOSSES)]
    return frozenset(names)


def skops_references(path: str | Path) -> list[Reference]:
    """Every class and callable a skops file names (builtins' containers left out), sorted.

    ``vetted`` marks callables on skops' own default lists (ufuncs, scalar types). Imports nothing.

    Example::

        >>> [r.name for r in skops_references("model.skops")]  # doctest: +SKIP
        ['numpy.ndarray', 'sklearn.ensemble._forest.RandomForestClassifier', 'sklearn.tree._tree.Tree', ...]
    """
    file = Path(path)
    kinds: dict[str, str] = {}
    for loader, name in _walk(_schema(file)):
        if loader in _VALUE_LOADERS:
            continue
        if kinds.get(name) != "callable":  # one call site makes the name a callable
            kinds[name] = _kind(loader, name)
    vetted = _vetted_callables()
    if vetted is not None:  # skops' own lists: no second full parse of the file (~40% of a load)
        unsafe = {n for n, k in kinds.items() if not (k == "callable" and n in vetted) and n not in _CONTAINER_OK}
    else:
        unsafe = _skops_untrusted(file)
    refs = {
        name: Reference(name, kind, vetted=name not in unsafe)  # type: ignore[arg-type]
        for name, kind in kinds.items()
        if name not in _CONTAINER_OK and not (name.startswith("builtins.") and name not in unsafe)
    }
    # a name skops distrusts that the walk did not see (a method, a new loader): strictest kind
    for name in unsafe - set(refs):
        refs[name] = Reference(name, "callable")
    return sorted(refs.values())


def _skops_untrusted(file: Path) -> set[str]:
    import skops.io as sio

    try:
        return set(sio.get_untrusted_types(file=file))
    except Exception as exc:  # noqa: BLE001 - a file skops cannot parse is corrupt, whatever skops raised
        raise CorruptObject(f"{file.name} is not a readable skops file: {exc}") from None


def load_skops(
    path: str | Path, *, trusted: TrustPolicy | Sequence[str] | None = None, source: str | None = None
) -> Any:
    """Load a skops file after the trust policy accepted every reference in it.

    ``trusted``: a policy, or extra names on top of the process's policy (None: that policy).
    Raises ``UntrustedTypes`` naming the refused references; nothing is imported then.

    Example::

        >>> forest = load_skops("model.skops")                               # doctest: +SKIP
        >>> pipe = load_skops("pipe.skops", trusted=["mypkg.features.clean"])  # doctest: +SKIP
    """
    file = Path(path)
    refs = skops_references(file)
    as_policy(trusted).check(refs, source=source or file.name)
    return load_checked(file, refs)


def load_checked(path: Path, refs: Sequence[Reference]) -> Any:
    """skops-load ``path`` trusting exactly ``refs`` (already accepted by a policy)."""
    import skops.io as sio

    accepted = [r.name for r in refs]  # skops audits the file again against exactly these
    try:
        model = sio.load(path, trusted=accepted)
    except sio.exceptions.UntrustedTypesFoundException as exc:  # skops saw more than the walk did
        raise CorruptObject(f"{path.name}: skops found references the trust check did not list: {exc}") from None
    except (ValueError, TypeError, KeyError, AttributeError, IndexError, RecursionError) as exc:
        raise CorruptObject(f"{path.name} cannot be rebuilt: {type(exc).__name__}: {exc}") from None
    check_structures(model)  # trusted classes, hostile indices: bounds-check compiled trees before any predict
    return model
