"""What every command shares: the console, settings, opening stores, errors → exit codes.

Exit codes: 0 success; 1 a check found problems (doctor, a failing gate, validation);
2 bad input or usage; 3 something named does not exist; 4 a store or service cannot be
reached or is outdated.
"""

from __future__ import annotations

import functools
import json
import os
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any, TypeVar

import typer
from rich.console import Console

from conveyor.errors import (
    ConveyorError,
    InvalidInput,
    NotFound,
    SchemaOutdated,
    ServiceUnavailable,
    StorageError,
)

if TYPE_CHECKING:
    from conveyor.settings import Settings

console = Console()
err_console = Console(stderr=True)

EXIT_PROBLEMS = 1
EXIT_INPUT = 2
EXIT_NOT_FOUND = 3
EXIT_STORE = 4

F = TypeVar("F", bound=Callable[..., Any])


def exit_code(error: ConveyorError) -> int:
    if isinstance(error, NotFound):
        return EXIT_NOT_FOUND
    if isinstance(error, (SchemaOutdated, StorageError, ServiceUnavailable)):
        return EXIT_STORE
    if isinstance(error, InvalidInput):
        return EXIT_INPUT
    return EXIT_PROBLEMS


def esc(value: Any) -> str:
    """Text from users or from the data (names, keys, values, paths, messages) made safe to
    print through rich: ``[/]`` or ``[bold]`` in a run name is shown, not interpreted."""
    from rich.markup import escape

    return escape("" if value is None else str(value))


def fail(error: ConveyorError) -> typer.Exit:
    # the one place errors and hints are printed: both carry user input and bracketed
    # text of our own ("conveyor-mlops[postgres]", "runs:/<run_id>[/<path>]")
    err_console.print(f"[bold red]error:[/] {esc(error.message)}", highlight=False, markup=True, soft_wrap=True)
    if error.hint:
        err_console.print(f"[yellow]hint:[/] {esc(error.hint)}", highlight=False, soft_wrap=True)
    return typer.Exit(exit_code(error))


def handle_errors(func: F) -> F:
    """Turn conveyor's errors into a red line, a hint and a meaningful exit code."""

    @functools.wraps(func)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return func(*args, **kwargs)
        except ConveyorError as error:
            raise fail(error) from None
        except UnicodeError as error:  # a file name that is not UTF-8 (os.fsdecode surrogates)
            raise fail(_unicode_error(error)) from None
        except OSError as error:  # the file system said no: one line, not a traceback
            raise fail(_os_error(error)) from None

    return wrapper  # type: ignore[return-value]


def _unicode_error(error: UnicodeError) -> ConveyorError:
    bad = getattr(error, "object", b"")
    start, end = getattr(error, "start", 0), getattr(error, "end", 0)
    around = bad[max(0, start - 20) : end + 20] if isinstance(bad, (str, bytes)) else ""
    return InvalidInput(
        f"a name or file name is not valid UTF-8 text: {around!r}",
        field="path",
        value=around,
        hint="rename the file to UTF-8 (e.g. with convmv), or leave it out",
    )


def _os_error(error: OSError) -> ConveyorError:
    import errno

    name = os.fsdecode(error.filename) if error.filename is not None else ""
    where = f": {name[:200] + '…' if len(name) > 200 else name!r}" if error.filename is not None else ""
    message = f"{error.strerror or type(error).__name__}{where}"
    if error.errno == errno.ENOENT:
        return NotFound("file", os.fsdecode(error.filename) if error.filename is not None else "?")
    if error.errno in (errno.ENOSPC, errno.EDQUOT, errno.EIO, errno.EROFS):
        return StorageError(message, hint="free space or fix the disk, then run the command again")
    return InvalidInput(message, field="path", value=error.filename, hint="check the path and its permissions")


def settings() -> Settings:
    # Imported here: pydantic model building is start-up cost that help, completion and
    # commands that never read settings need not pay.
    from conveyor.settings import Settings

    return Settings.load()


TRUST_HELP = ("Trust this module's classes, or this full name (pkg.module.func), when loading model "
              "packages; repeatable; adds to [models] trusted_modules (docs/models-trust.md).")


def trust_option() -> Any:
    """The ``--trust`` option of every command that loads a model package."""
    return typer.Option([], "--trust", metavar="MODULE_OR_NAME", help=TRUST_HELP)


def apply_trust(extra: list[str] | None, conf: Settings | None = None) -> list[str]:
    """Set the process's trust policy from ``[models] trusted_modules`` plus ``--trust``; returns its entries."""
    from conveyor.models import TrustPolicy, set_trust

    policy = TrustPolicy.from_settings(conf or settings(), extra or ())
    set_trust(policy)
    return list(policy.entries)


@contextmanager
def tracker(*, create: bool = False) -> Iterator[Any]:
    """The tracker of this project's stores; existing stores only unless ``create``."""
    from conveyor.tracking import Tracker

    opened = Tracker.from_settings(settings(), create=create)
    try:
        yield opened
    finally:
        opened.close()


def print_json(data: Any) -> None:
    """Machine-readable output: one JSON document on stdout."""
    sys.stdout.write(json.dumps(data, indent=2, default=str, allow_nan=True) + "\n")


def fmt_ms(ms: int | None) -> str:
    if ms is None:
        return ""
    from datetime import datetime

    return datetime.fromtimestamp(ms / 1000).strftime("%Y-%m-%d %H:%M:%S")


def fmt_time(ms: int | None) -> str:
    """Epoch milliseconds as local ISO 8601 with the UTC offset (2026-12-01T13:05:09+01:00)."""
    if ms is None:
        return ""
    from datetime import datetime

    return datetime.fromtimestamp(ms / 1000).astimezone().isoformat(timespec="seconds")


def fmt_value(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:.6g}"
    return "" if value is None else str(value)
