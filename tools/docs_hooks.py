"""MkDocs hooks: pages whose content is generated from the code at build time, so the
reference cannot drift from it.

- ``<!-- generated: cli -->`` becomes every ``conveyor`` command with its usage, help and
  options, read from the Typer/click command tree.
- ``<!-- generated: tables -->`` becomes every ``conveyor.toml`` table with each key's type,
  default and description, read from the pydantic models that validate them.
"""

from __future__ import annotations

import importlib
from typing import Any

_TABLES = [
    ("[store], [tracking]", None, "settings.md"),
    ("[pipelines]", "conveyor.pipelines._settings:PipelineSettings", None),
    ("[data]", "conveyor.data._config:DataSettings", None),
    ("[gates.<name>]", "conveyor.gates._spec:GateSpec", None),
    ("[gates.<name>.compare]", "conveyor.gates._spec:CompareSpec", None),
    ("[gates.<name>.slices]", "conveyor.gates._spec:SliceSpec", None),
    ("[gates.<name>.baseline]", "conveyor.gates._spec:BaselineSpec", None),
    ("[gates.<name>.operational]", "conveyor.gates._spec:OperationalSpec", None),
    ("[monitoring]", "conveyor.monitoring._config:MonitoringDefaults", None),
    ("[monitors.<name>]", "conveyor.monitoring._config:MonitorConfig", None),
    ("[serving]", "conveyor.serving._config:ServingConfig", None),
    ("[model_cards.<name>]", "conveyor.registry._card:CardSettings", None),
]


def on_page_markdown(markdown: str, page: Any, config: Any, files: Any) -> str:
    if "<!-- generated: cli -->" in markdown:
        markdown = markdown.replace("<!-- generated: cli -->", cli_reference())
    if "<!-- generated: tables -->" in markdown:
        markdown = markdown.replace("<!-- generated: tables -->", tables_reference())
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


def tables_reference() -> str:
    out: list[str] = []
    for title, target, link in _TABLES:
        out.append(f"## `{title}`\n")
        if link:
            out.append(f"See [Settings]({'../' + link}).\n")
            continue
        module, _, name = target.partition(":")
        model = getattr(importlib.import_module(module), name)
        doc = (model.__doc__ or "").strip().split("\n\n")[0]
        if doc:
            out.append(_cell_text(doc.replace("Example (conveyor.toml)::", "")))
        out.append("| key | type | default | meaning |\n|---|---|---|---|")
        for key, field in model.model_fields.items():
            annotation = str(field.annotation).replace("typing.", "")
            annotation = annotation.removeprefix("<class '").removesuffix("'>")
            default = "required" if field.is_required() else repr(
                field.default_factory() if field.default_factory is not None else field.default)
            out.append(f"| `{key}` | `{_cell(annotation)}` | `{_cell(default)}` | {_cell(field.description or '')} |")
        out.append("")
    return "\n".join(out)
