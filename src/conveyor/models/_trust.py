"""The one trust policy for everything a model package references.

A package names code: classes in a skops file, a pyfunc class, a PyTorch factory, Keras
layer classes. Loading imports that code, so every such reference goes through
:class:`TrustPolicy` *before* anything is imported, and refused ones are listed in one
:class:`UntrustedTypes` error that names the setting and the flag that trust them.

Two kinds of reference, because they are not equally dangerous:

- ``class``: an instance rebuilt from stored state without calling anything the file
  chose (skops ``ObjectNode``/``TreeNode``, a pyfunc class, a Keras layer). Trusted when
  its module is under a trusted module (``sklearn`` trusts ``sklearn.tree._tree.Tree``)
  or when it is named.
- ``callable``: something that is called or handed out as a callable: a function, a
  method, a class used as a value or called with stored arguments (skops
  ``FunctionNode``/``TypeNode``/``ConstructorFromReduceNode``, a PyTorch factory).
  ``numpy.memmap`` called with stored arguments truncates a file, so a module entry never
  trusts a callable: it must be named in full (``numpy.log1p``) — or be on the format's
  own vetted list (skops trusts numpy/scipy ufuncs, numpy scalar types and Python's
  primitives), which is marked ``vetted``.

Entries of the policy (``[models] trusted_modules``, ``--trust``, ``trusted=[...]``) are
module names or full names (``pkg.mod.Name`` or ``pkg.mod:Name``); both forms match.
The CLI sets the process's policy once at the edge with :func:`set_trust`; the Python API
reads ``[models] trusted_modules`` of the project the first time it needs a policy.
"""

from __future__ import annotations

import re
import threading
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Literal

from conveyor.errors import ConfigError, InvalidInput
from conveyor.settings import ModelsSettings

if TYPE_CHECKING:
    from conveyor.settings import Settings

#: The default of ``[models] trusted_modules``: scikit-learn, NumPy, SciPy and the
#: frameworks of the built-in flavors that reference classes (Keras, PyTorch).
DEFAULT_TRUSTED_MODULES: tuple[str, ...] = ModelsSettings().trusted_modules

Kind = Literal["class", "callable"]
_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*(\.[A-Za-z_][A-Za-z0-9_]*)*$")

TRUST_FIX = "--trust NAME on the command line, [models] trusted_modules in conveyor.toml, or trusted=[...] in Python"


class UntrustedTypes(InvalidInput):
    """A model package references classes or functions the trust policy does not trust."""


@dataclass(frozen=True, slots=True, order=True)
class Reference:
    """One piece of code a package names: ``name`` is ``module.Qualname``."""

    name: str
    kind: Kind = "class"
    vetted: bool = False  # the file format's own audited default list trusts it

    def to_dict(self) -> dict[str, object]:
        return {"name": self.name, "kind": self.kind, "vetted": self.vetted}


def normalize(name: str) -> str:
    """``pkg.mod:Name.attr`` → ``pkg.mod.Name.attr``; refuses anything that is not dotted identifiers."""
    text = str(name).strip().replace(":", ".", 1)
    if not _NAME.match(text):
        raise InvalidInput(
            f"trust entry {name!r} is not a module or a dotted name", field="trusted", value=name,
            hint="write a module (sklearn) or a full name (mypkg.features.clean or mypkg.features:clean)",
        )
    return text


@dataclass(frozen=True, slots=True)
class TrustPolicy:
    """Which classes and callables a model package may reference.

    Example::

        >>> policy = TrustPolicy().extended(["mypkg.clean"])
        >>> policy.trusts(Reference("sklearn.tree._tree.Tree"))
        True
        >>> policy.trusts(Reference("numpy.memmap", "callable"))
        False
        >>> policy.trusts(Reference("mypkg.clean", "callable"))
        True
    """

    entries: tuple[str, ...] = DEFAULT_TRUSTED_MODULES

    def __post_init__(self) -> None:
        object.__setattr__(self, "entries", tuple(dict.fromkeys(normalize(e) for e in self.entries)))

    @classmethod
    def from_settings(cls, settings: Settings, extra: Iterable[str] = ()) -> TrustPolicy:
        """``[models] trusted_modules`` of ``settings`` plus ``extra`` (``--trust``)."""
        section = getattr(settings, "models", None)
        modules = tuple(getattr(section, "trusted_modules", DEFAULT_TRUSTED_MODULES))
        try:
            configured = cls(modules)
        except InvalidInput as exc:
            raise ConfigError(f"[models] trusted_modules: {exc.message}", field="models.trusted_modules",
                              value=list(modules), hint=exc.hint) from None
        return configured.extended(extra)

    def extended(self, extra: Iterable[str] | None) -> TrustPolicy:
        return TrustPolicy((*self.entries, *(extra or ())))

    def trusts(self, ref: Reference) -> bool:
        name = str(ref.name).replace(":", ".", 1)
        if not _NAME.match(name):
            return False  # not a dotted name: nothing a policy entry can mean
        if name in self.entries or (ref.vetted and ref.kind == "callable"):
            return True
        if ref.kind == "callable":
            return False
        return any(name.startswith(entry + ".") for entry in self.entries)

    def untrusted(self, refs: Iterable[Reference]) -> list[Reference]:
        seen: dict[str, Reference] = {}
        for ref in refs:
            if not self.trusts(ref):
                seen.setdefault(ref.name, ref)
        return sorted(seen.values())

    def check(self, refs: Iterable[Reference], *, source: str) -> None:
        """Raise :class:`UntrustedTypes` listing every reference this policy refuses."""
        refused = self.untrusted(refs)
        if not refused:
            return
        names = [r.name for r in refused]
        listed = ", ".join(f"{r.name} ({r.kind})" for r in refused)
        flags = " ".join(f"--trust {n}" for n in names)
        raise UntrustedTypes(
            f"{source} references code that is not trusted: {listed}",
            field="trusted",
            value=names,
            hint=f"nothing was imported. If you trust where this model comes from, trust these names: "
            f"{flags}, or add them to [models] trusted_modules in conveyor.toml, or load it with "
            f"trusted={names!r} (see docs/models-trust.md)",
        )


def as_policy(trusted: TrustPolicy | Sequence[str] | None) -> TrustPolicy:
    """A policy from what a caller passed: a policy, extra names on top of the default one, or None."""
    if isinstance(trusted, TrustPolicy):
        return trusted
    if isinstance(trusted, str):
        trusted = [trusted]
    return current_trust().extended(trusted)


_lock = threading.Lock()
_current: TrustPolicy | None = None


def set_trust(policy: TrustPolicy | None) -> None:
    """Set the process's trust policy (the CLI does, from settings and ``--trust``); None resets."""
    global _current
    with _lock:
        _current = policy


def current_trust() -> TrustPolicy:
    """The process's policy: the one set with :func:`set_trust`, else the project's settings."""
    global _current
    with _lock:
        if _current is None:
            from conveyor.settings import Settings

            _current = TrustPolicy.from_settings(Settings.load())
        return _current
