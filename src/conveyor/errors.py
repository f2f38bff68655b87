"""The exception tree of conveyor.

Every error conveyor raises on purpose derives from :class:`ConveyorError`; each
subclass also inherits the built-in exception a Python user would expect
(``NotFound`` is a ``KeyError``, ``InvalidInput`` a ``ValueError``), so existing
``except KeyError`` code keeps working. HTTP status codes are *not* mapped here:
that belongs to ``conveyor.server`` and ``conveyor.serving``.

Tree::

    ConveyorError
    ├── NotFound (KeyError)
    ├── AlreadyExists (ValueError)
    ├── InvalidInput (ValueError)
    │   ├── ConfigError
    │   ├── FilterSyntaxError
    │   ├── InvalidMetric
    │   ├── ParamConflict
    │   └── UnsafePath
    ├── Conflict (RuntimeError)
    ├── SchemaOutdated (RuntimeError)
    ├── CorruptObject (OSError)
    ├── StorageError (OSError)
    └── ServiceUnavailable (ConnectionError)

This module imports nothing from conveyor: it is a leaf.
"""

from __future__ import annotations

__all__ = [
    "AlreadyExists",
    "ConfigError",
    "Conflict",
    "ConveyorError",
    "CorruptObject",
    "FilterSyntaxError",
    "InvalidInput",
    "InvalidMetric",
    "NotFound",
    "ParamConflict",
    "SchemaOutdated",
    "ServiceUnavailable",
    "StorageError",
    "UnsafePath",
]


class ConveyorError(Exception):
    """Root of every error conveyor raises on purpose.

    ``headline`` is the one line the CLI prints; ``hint`` (optional) says how to fix it.
    """

    def __init__(self, message: str, *, hint: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.hint = hint

    @property
    def headline(self) -> str:
        return self.message.splitlines()[0] if self.message else type(self).__name__

    def __str__(self) -> str:  # KeyError would otherwise quote the message
        if self.hint:
            return f"{self.message} ({self.hint})"
        return self.message


class NotFound(ConveyorError, KeyError):
    """A named thing (experiment, run, artifact, model, data set…) does not exist."""

    def __init__(self, kind: str, name: object, *, hint: str | None = None) -> None:
        super().__init__(f"{kind} {name!r} not found", hint=hint)
        self.kind = kind
        self.name = name


class AlreadyExists(ConveyorError, ValueError):
    """Creating something whose unique name is taken."""

    def __init__(self, kind: str, name: object, *, hint: str | None = None) -> None:
        super().__init__(f"{kind} {name!r} already exists", hint=hint)
        self.kind = kind
        self.name = name


class InvalidInput(ConveyorError, ValueError):
    """A value the user passed is not acceptable. Names the field, the value and the fix."""

    def __init__(
        self, message: str, *, field: str | None = None, value: object = None, hint: str | None = None
    ) -> None:
        super().__init__(message, hint=hint)
        self.field = field
        self.value = value


class ConfigError(InvalidInput):
    """A setting (environment variable or ``conveyor.toml``) has a bad value."""


class FilterSyntaxError(InvalidInput):
    """A search filter does not parse; ``position`` is the 0-based offset of the problem."""

    def __init__(self, message: str, *, text: str, position: int, hint: str | None = None) -> None:
        pointer = f"\n  {text}\n  {' ' * position}^"
        super().__init__(
            f"{message} at position {position}{pointer}", field="filter", value=text, hint=hint
        )
        self.text = text
        self.position = position


class InvalidMetric(InvalidInput):
    """A metric value is not a real number."""


class ParamConflict(InvalidInput):
    """A parameter was logged again with a different value; params are immutable per run."""

    def __init__(self, run_id: str, key: str, old: str, new: str) -> None:
        super().__init__(
            f"param {key!r} of run {run_id} is already {old!r}; cannot change it to {new!r}",
            field=key,
            value=new,
            hint="params are immutable per run: log it under another key, or start a new run",
        )
        self.run_id = run_id
        self.key = key
        self.old = old
        self.new = new


class UnsafePath(InvalidInput):
    """A user-supplied path or URI would escape its root (``..``, absolute, ``\\``, …)."""


class Conflict(ConveyorError, RuntimeError):
    """The operation lost a race or clashes with the current state (e.g. a run already ended)."""


class SchemaOutdated(ConveyorError, RuntimeError):
    """The metadata database schema is behind (or ahead of) this version of conveyor."""


class CorruptObject(ConveyorError, OSError):
    """An object in the artifact store does not match its digest."""


class StorageError(ConveyorError, OSError):
    """The metadata or artifact store cannot be reached or written."""


class ServiceUnavailable(ConveyorError, ConnectionError):
    """An external service conveyor was asked to use (Ray, a server) does not answer."""
