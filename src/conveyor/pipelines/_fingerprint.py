"""What a step's code reaches, as the text that goes into its cache key.

Starting at the step function, the walk follows every name its code (nested functions
and comprehensions included) looks up in its module, its closure cells and its default
arguments:

- a project-local function or class → its source, and the walk continues into it (a
  class: its methods, properties and non-private class attributes);
- a project-local module (``import helpers`` … ``helpers.FACTOR``) → the attributes of it
  the code names;
- any other value (a constant, a container, a dataclass or enum instance, an array, a data
  frame, an object whose state is such values) → a fingerprint of the value itself;
- a library module, function or class → nothing here: the environment part of the key
  (package versions) covers it.

A reached value that cannot be fingerprinted (a lock, a connection, a generator…) raises
:class:`Unfingerprintable` naming it; the runner then runs that step uncached and says so.
A step lists names the key should skip in ``@step(cache_exclude=(...))``.
"""

from __future__ import annotations

import dataclasses
import datetime
import decimal
import enum
import fractions
import functools
import inspect
import json
import logging
import pathlib
import re
import types
import uuid
from collections.abc import Callable, Iterator
from typing import Any

import blake3

_MAX_DEPTH = 40
_SIMPLE = (type(None), bool, int, str)
_REPR = (complex, range, datetime.date, datetime.time, datetime.timedelta, decimal.Decimal, fractions.Fraction,
         uuid.UUID, pathlib.PurePath)


class Unfingerprintable(Exception):
    """A value a step reaches whose content cannot be turned into a stable fingerprint."""

    def __init__(self, label: str, value: Any, why: str = "") -> None:
        self.label = label
        self.type_name = f"{type(value).__module__}.{type(value).__qualname__}"
        self.why = why
        super().__init__(f"{label} (a {self.type_name}{': ' + why if why else ''})")

    @property
    def name(self) -> str:
        """The top-level name to declare in ``cache_exclude``."""
        return self.label.split(" ")[-1].split(".")[-1].split("[")[0]


def code_names(code: types.CodeType) -> Iterator[str]:
    """Every global/attribute name a code object and its nested code objects use."""
    yield from code.co_names
    for const in code.co_consts:
        if isinstance(const, types.CodeType):
            yield from code_names(const)


def unwrap(obj: Any) -> Any:
    """The plain function behind a ``Step`` or ``Pipeline`` object."""
    func = getattr(obj, "func", None)
    return func if callable(func) and hasattr(obj, "options") else obj


class Walk:
    """One walk from a step function; ``closure()`` returns ``{label: source or fingerprint}``."""

    def __init__(self, is_local: Callable[[Any], bool], is_local_module: Callable[[Any], bool],
                 exclude: tuple[str, ...] = ()) -> None:
        self.is_local = is_local
        self.is_local_module = is_local_module
        self.exclude = set(exclude)
        self.out: dict[str, str] = {}
        self._queue: list[Any] = []
        self._seen: set[int] = set()

    def closure(self, func: Any) -> dict[str, str]:
        self._push(unwrap(func))
        while self._queue:
            obj = self._queue.pop()
            if isinstance(obj, type):
                self._class(obj)
            else:
                self._function(obj)
        return dict(sorted(self.out.items()))

    # -- code -----------------------------------------------------------------------------------
    def _push(self, obj: Any) -> None:
        if id(obj) in self._seen:
            return
        self._seen.add(id(obj))
        key = f"code {getattr(obj, '__module__', '?')}:{getattr(obj, '__qualname__', repr(obj))}"
        try:
            self.out[key] = inspect.getsource(obj)
        except (OSError, TypeError):
            code = getattr(obj, "__code__", None)  # no file (e.g. exec'd): the bytecode stands in
            self.out[key] = "<no source>" if code is None else blake3.blake3(code.co_code).hexdigest()
        self._queue.append(obj)

    def _function(self, func: Any) -> None:
        code = getattr(func, "__code__", None)
        if code is None:
            return
        where = f"{func.__module__}.{func.__qualname__}"
        names = set(code_names(code))
        scope = getattr(func, "__globals__", {})
        for name in sorted(names):
            if name in scope and name not in self.exclude:
                self.value(f"global {scope.get('__name__', '?')}.{name}", scope[name], names)
        for name, cell in zip(code.co_freevars, func.__closure__ or (), strict=False):
            if name in self.exclude:
                continue
            try:
                content = cell.cell_contents
            except ValueError:  # an empty cell (a name assigned after the function was made)
                continue
            self.value(f"closure of {where}: {name}", content, names)
        for index, default in enumerate(func.__defaults__ or ()):
            self.value(f"default #{index} of {where}", default, names)
        for name, default in sorted((func.__kwdefaults__ or {}).items()):
            self.value(f"default {name} of {where}", default, names)

    def _class(self, cls: type) -> None:
        for attr, member in sorted(vars(cls).items()):
            if attr.startswith("__") and attr.endswith("__"):
                continue
            if isinstance(member, (staticmethod, classmethod)):
                member = member.__func__
            if isinstance(member, property):  # its accessors are code
                for accessor in (member.fget, member.fset, member.fdel):
                    if accessor is not None and self.is_local(accessor):
                        self._push(accessor)
                continue
            if inspect.isfunction(member):
                if self.is_local(member):
                    self._push(member)
                continue
            if inspect.isdatadescriptor(member) or inspect.ismethoddescriptor(member):
                continue  # slots and other machinery: the class source declares them
            if attr.startswith("_") and not isinstance(member, enum.Enum):
                continue  # private machinery (e.g. Enum's _member_map_): the class source covers it
            if attr in self.exclude:
                continue
            self.value(f"attribute {cls.__module__}.{cls.__qualname__}.{attr}", member, set())

    # -- values -----------------------------------------------------------------------------------
    def value(self, label: str, value: Any, names: set[str]) -> None:
        """Record what ``value`` contributes under ``label`` (code is queued, data fingerprinted)."""
        value = unwrap(value)
        if isinstance(value, types.ModuleType):
            if self.is_local_module(value):
                for attr in sorted(names):
                    if hasattr(value, attr) and attr not in self.exclude:
                        self.value(f"{label}.{attr}", getattr(value, attr), names)
            return
        ref = self._code_ref(value)
        if ref is not None:
            return
        self.out[f"value {label}"] = json.dumps(self.fingerprint(label, value, 0, set()), sort_keys=True)

    def _code_ref(self, value: Any) -> str | None:
        """A function or class: queue it when it is the project's; its name either way."""
        if inspect.isfunction(value) or inspect.isclass(value):
            if self.is_local(value):
                self._push(value)
            return f"{getattr(value, '__module__', '?')}:{getattr(value, '__qualname__', '?')}"
        if inspect.isbuiltin(value) or inspect.ismethoddescriptor(value) or isinstance(value, types.MethodWrapperType):
            return f"{getattr(value, '__module__', None) or '?'}:{getattr(value, '__qualname__', repr(value))}"
        return None

    def fingerprint(self, label: str, value: Any, depth: int, active: set[int]) -> Any:
        """A JSON-able structure that changes when the value's content does."""
        if depth > _MAX_DEPTH:
            raise Unfingerprintable(label, value, f"nested deeper than {_MAX_DEPTH} levels")
        if isinstance(value, _SIMPLE) and type(value) in _SIMPLE:
            return [type(value).__name__, value]
        if isinstance(value, float) and type(value) is float:
            return ["float", repr(value)]
        if isinstance(value, bytes | bytearray):
            return ["bytes", blake3.blake3(bytes(value)).hexdigest()]
        if isinstance(value, enum.Enum):
            self._code_ref(type(value))
            return ["enum", _qualname(type(value)), value.name, self.fingerprint(label, value.value, depth + 1, active)]
        if isinstance(value, _REPR):
            return [_qualname(type(value)), repr(value)]
        if isinstance(value, re.Pattern):
            return ["re", value.pattern if isinstance(value.pattern, str) else value.pattern.hex(), value.flags]
        if isinstance(value, logging.Logger):  # where messages go does not change what a step returns
            return ["logger", value.name]
        ref = self._code_ref(value)
        if ref is not None:
            return ["code", ref]
        if isinstance(value, types.ModuleType):
            return ["module", value.__name__]
        if id(value) in active:
            return ["cycle"]
        active = active | {id(value)}
        step = functools.partial(self.fingerprint, label, depth=depth + 1, active=active)
        kind = _qualname(type(value))
        if isinstance(value, types.MethodType):
            return ["method", step(value.__func__), step(value.__self__)]
        if isinstance(value, functools.partial):
            return ["partial", step(value.func), [step(a) for a in value.args],
                    {k: step(v) for k, v in sorted(value.keywords.items())}]
        if isinstance(value, dict):
            items = [[step(k), step(v)] for k, v in value.items()]
            factory = getattr(value, "default_factory", None)
            return [kind, sorted(items, key=_order), step(factory) if factory is not None else None]
        if isinstance(value, list | tuple):
            fields = getattr(type(value), "_fields", None)  # namedtuple: the field names count too
            return [kind, list(fields) if fields else None, [step(v) for v in value]]
        if isinstance(value, set | frozenset):
            return [kind, sorted((step(v) for v in value), key=_order)]
        numeric = _array_like(value)
        if numeric is not None:
            return [kind, numeric]
        if dataclasses.is_dataclass(value) and not isinstance(value, type):
            self._code_ref(type(value))
            return [kind, {f.name: step(getattr(value, f.name)) for f in dataclasses.fields(value)}]
        state = _state(value)
        if state is None:
            raise Unfingerprintable(label, value)
        self._code_ref(type(value))
        try:
            return [kind, {k: step(v) for k, v in sorted(state.items())}]
        except Unfingerprintable as inner:
            raise Unfingerprintable(label, value, f"its {inner.type_name} part cannot be fingerprinted") from None


def _qualname(cls: type) -> str:
    return f"{cls.__module__}.{cls.__qualname__}"


def _order(item: Any) -> str:
    return json.dumps(item, sort_keys=True)


def _array_like(value: Any) -> Any:
    """NumPy arrays and scalars, pandas objects: their dtype, shape and a hash of their bytes."""
    module = type(value).__module__.split(".")[0]
    if module == "numpy":
        import numpy as np

        if isinstance(value, np.generic):
            return [str(value.dtype), repr(value.item())]
        if isinstance(value, np.ndarray):
            if value.dtype.hasobject:
                return [str(value.dtype), list(value.shape), json.dumps(value.tolist(), default=repr)]
            data = np.ascontiguousarray(value).tobytes()
            return [str(value.dtype), list(value.shape), blake3.blake3(data).hexdigest()]
    if module == "pandas":
        import pandas as pd

        if isinstance(value, pd.DataFrame | pd.Series | pd.Index):
            hashed = pd.util.hash_pandas_object(value, index=not isinstance(value, pd.Index))
            if isinstance(value, pd.DataFrame):
                header = [[str(c), str(t)] for c, t in value.dtypes.items()]
            else:
                header = [str(getattr(value, "name", None)), str(value.dtype)]
            return [header, list(value.shape), blake3.blake3(hashed.to_numpy().tobytes()).hexdigest()]
    return None


def _state(value: Any) -> dict[str, Any] | None:
    """The attributes that make up a plain object (``__dict__`` and ``__slots__``), if any."""
    state: dict[str, Any] = {}
    found = False
    if hasattr(value, "__dict__") and isinstance(vars(value), dict):
        state.update(vars(value))
        found = True
    for cls in type(value).__mro__:
        slots = cls.__dict__.get("__slots__", ())
        for slot in (slots,) if isinstance(slots, str) else slots:
            if slot in ("__dict__", "__weakref__"):
                continue
            found = True
            if hasattr(value, slot):
                state[slot] = getattr(value, slot)
    if not found or type(value).__module__ == "builtins":
        return None
    return state
