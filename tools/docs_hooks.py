"""MkDocs hooks: pages whose content is generated from the code at build time, so the
reference cannot drift from it.

- ``<!-- generated: cli -->`` becomes every ``conveyor`` command with its usage, help and
  options, read from the Typer/click command tree.
- ``<!-- generated: rules -->`` becomes the metrics a monitor rule can name, read from the
  rule grammar. (Every ``conveyor.toml`` table is in ``config.md``, generated from the
  pydantic models by ``tests/test_config_docs.py``, which also checks it.)
"""

from __future__ import annotations

from typing import Any


def on_page_markdown(markdown: str, page: Any, config: Any, files: Any) -> str:
    if "<!-- generated: cli -->" in markdown:
        markdown = markdown.replace("<!-- generated: cli -->", cli_reference())
    if "<!-- generated: rules -->" in markdown:
        markdown = markdown.replace("<!-- generated: rules -->", rules_reference())
    return markdown


def _cell(text: Any) -> str:
    return str(text).replace("|", "\\|").replace("\n", " ").replace("<", "&lt;")


def cli_reference() -> str:
    import typer.main

    from conveyor.cli import app

    root = typer.main.get_command(app)
    context = type(typer.main.get_command(app).make_context("conveyor", ["--help"], resilient_parsing=True))
    out: list[str] = []

    # typer ships its own copy of click: recognise groups, options and arguments by duck typing.
    def walk(command: Any, path: list[str], ctx: Any) -> None:
        if hasattr(command, "list_commands"):
            for name in command.list_commands(ctx):
                sub = command.get_command(ctx, name)
                if sub is not None and not sub.hidden:
                    walk(sub, [*path, name], context(sub, info_name=name, parent=ctx))
            if path and not getattr(command, "invoke_without_command", False):
                return
        if not path:
            return
        out.append(f"{'#' * min(len(path) + 1, 4)} `conveyor {' '.join(path)}`\n")
        out.append(f"```text\n{command.get_usage(ctx).removeprefix('Usage: ')}\n```\n")
        out.append(_cell_text(command.help or command.short_help or ""))
        rows = [p for p in command.params if p.param_type_name == "option" and not p.hidden] + [
            p for p in command.params if p.param_type_name == "argument"]
        if rows:
            out.append("| option | default | meaning |\n|---|---|---|")
            for param in rows:
                names = ", ".join(f"`{n}`" for n in (param.opts + param.secondary_opts)) if (
                    param.param_type_name == "option") else f"`{(param.name or '').upper()}`"
                default = "" if param.default in (None, False, ()) or callable(param.default) else f"`{param.default}`"
                out.append(f"| {names} | {_cell(default)} | {_cell(getattr(param, 'help', '') or '')} |")
            out.append("")

    walk(root, [], context(root, info_name="conveyor"))
    return "\n".join(out)


def _cell_text(text: str) -> str:
    # click's "\b" marks a paragraph that must not be re-wrapped; Markdown keeps lines anyway.
    return text.replace("\b\n", "").strip() + "\n"


def rules_reference() -> str:
    from conveyor.monitoring._rules import METRICS

    out = ["| metric | meaning |", "|---|---|"]
    out.extend(f"| `{name}` | {_cell(meaning)} |" for name, meaning in METRICS.items())
    return "\n".join(out) + "\n"
