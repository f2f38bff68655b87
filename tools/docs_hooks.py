"""MkDocs hooks: pages whose content is generated from the code at build time, so the
reference cannot drift from it.

- ``<!-- generated: cli -->`` becomes every ``conveyor`` command with its usage, help and
  options, read from the Typer/click command tree.
- ``<!-- generated: rules -->`` becomes the metrics a monitor rule can name, read from the
  rule grammar.
- ``<!-- generated: rest -->`` becomes every ``/api/v1`` endpoint with its parameters,
  request body and answers, read from the OpenAPI document the server generates. (Every ``conveyor.toml`` table is in ``config.md``, generated from the
  pydantic models by ``tests/test_config_docs.py``, which also checks it.)
"""

from __future__ import annotations

from typing import Any


def on_page_markdown(markdown: str, page: Any, config: Any, files: Any) -> str:
    if "<!-- generated: cli -->" in markdown:
        markdown = markdown.replace("<!-- generated: cli -->", cli_reference())
    if "<!-- generated: rest -->" in markdown:
        markdown = markdown.replace("<!-- generated: rest -->", rest_reference())
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


def _schema_name(schema: dict[str, Any]) -> str:
    if "$ref" in schema:
        return schema["$ref"].rsplit("/", 1)[-1]
    if "anyOf" in schema:
        return " or ".join(_schema_name(s) for s in schema["anyOf"])
    if schema.get("type") == "array":
        return f"list of {_schema_name(schema.get('items', {}))}"
    return str(schema.get("type", "object"))


def rest_reference() -> str:
    """Every ``/api/v1`` operation from the generated OpenAPI 3.1 document, grouped by tag."""
    from conveyor.server.api import create_api

    doc = create_api(None).openapi()
    groups: dict[str, list[str]] = {}
    for path, item in doc.get("paths", {}).items():
        for method, op in item.items():
            if method not in ("get", "post", "put", "patch", "delete"):
                continue
            out = [f"### `{method.upper()} /api/v1{path}`\n", _cell_text(op.get("summary") or op.get("description") or "")]
            params = op.get("parameters", [])
            if params:
                out.append("| parameter | in | type | required | meaning |\n|---|---|---|---|---|")
                for p in params:
                    out.append(f"| `{p['name']}` | {p['in']} | {_cell(_schema_name(p.get('schema', {})))} | "
                               f"{'yes' if p.get('required') else 'no'} | {_cell(p.get('description', ''))} |")
                out.append("")
            body = op.get("requestBody", {}).get("content", {})
            for media, spec in body.items():
                out.append(f"Request body ({media}): `{_schema_name(spec.get('schema', {}))}`\n")
            answers = ", ".join(f"{code} {_cell(r.get('description', ''))}" for code, r in op.get("responses", {}).items())
            out.append(f"Answers: {answers}\n")
            for tag in op.get("tags") or ["other"]:
                groups.setdefault(tag, []).extend(out)
    text = [f"OpenAPI {doc['openapi']}; the full document is served at `/api/v1/openapi.json`.\n"]
    for tag in sorted(groups):
        text.append(f"## {tag}\n")
        text.extend(groups[tag])
    return "\n".join(text)
