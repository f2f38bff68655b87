"""The ``conveyor`` command's entry point: quick answers before the CLI framework.

``conveyor data status PATH`` and an unchanged ``conveyor data add PATH -n NAME`` are the
checks that users, scripts and CI run over and over, and their answer is computed faster
than Typer, Click and rich import. :func:`main` answers exactly those invocations itself —
only when every argument is one it knows and the quick answer
(:func:`conveyor.data._status.quick_unchanged`) exists — and otherwise runs the full CLI,
which prints the same lines. ``conveyor doctor --quick [--json]`` is answered by
:mod:`conveyor._doctor_quick` (SQLite metadata read with ``sqlite3``, S3 listed through
botocore alone) when it can. Anything else (``--help``, a changed folder, an error) goes to
the full CLI, so its messages and exit codes stay the CLI's own.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path


def _parse(args: list[str]) -> tuple[str, str | None, bool] | None:
    """(path, name, --json) when ``args`` hold one path and only ``-n/--name`` and ``--json``."""
    path: str | None = None
    name: str | None = None
    as_json = False
    i = 0
    while i < len(args):
        arg = args[i]
        if arg in ("-n", "--name"):
            if i + 1 >= len(args) or name is not None:
                return None
            name, i = args[i + 1], i + 2
            continue
        if arg.startswith("--name="):
            if name is not None:
                return None
            name = arg[len("--name="):]
        elif arg == "--json":
            as_json = True
        elif arg.startswith("-") or path is not None:
            return None  # --help, an option of the full CLI, a second path: not ours
        else:
            path = arg
        i += 1
    if path is None or name == "":
        return None
    return path, name, as_json


def quick_answer(argv: list[str]) -> str | None:
    """What the full CLI would print for ``argv`` when it is a no-change check that the quick
    path can answer, else None."""
    if len(argv) < 3 or argv[0] != "data" or argv[1] not in ("status", "add"):
        return None
    parsed = _parse(argv[2:])
    if parsed is None:
        return None
    path, name, as_json = parsed
    if argv[1] == "add" and (name is None or as_json):
        return None  # add needs a name; its --json prints the whole version (full CLI)
    try:
        from conveyor.data._status import quick_unchanged

        found = quick_unchanged(path, name)
    except Exception:  # noqa: BLE001 - any problem is reported by the full CLI, its way
        return None
    if found is None:
        return None
    if argv[1] == "add":
        return f"unchanged: {found.ref}"
    if as_json:
        return json.dumps(found.to_dict(), indent=2, default=str, allow_nan=True)
    return f"{found.state}: {Path(path)} against {found.ref}"


def main() -> None:
    if sys.argv[1:2] == ["doctor"]:
        from conveyor._doctor_quick import answer as doctor_answer

        code = doctor_answer(sys.argv[2:])
        if code is not None:
            sys.stdout.flush()
            sys.exit(code)
    answer = quick_answer(sys.argv[1:])
    if answer is not None:
        sys.stdout.write(answer + "\n")
        return
    from conveyor.cli import main as cli_main

    cli_main()


if __name__ == "__main__":
    main()
