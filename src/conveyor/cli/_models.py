"""``conveyor models``: registered models, versions, aliases, their history, cards and promotion."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import typer
from rich.table import Table

from conveyor.cli._common import apply_trust, console, esc, fmt_ms, fmt_time, handle_errors, print_json, tracker, trust_option

app = typer.Typer(help="Registered models: versions, aliases (champion…), audit history, model cards.",
                  no_args_is_help=True)


@contextmanager
def _registry() -> Iterator[Any]:
    from conveyor.registry import Registry

    with tracker() as opened:
        yield Registry(opened)


def _split(ref: str) -> tuple[str, int]:
    """``name/3`` or ``models:/name/3`` → (name, 3); ``name@alias`` resolves later."""
    from conveyor.registry import parse_model_uri

    parsed = parse_model_uri(ref)
    if parsed.version is None:
        raise typer.BadParameter(f"{ref!r} names no version number", param_hint="REF")
    return parsed.name, parsed.version


@app.command("list")
@handle_errors
def list_(
    as_json: bool = typer.Option(False, "--json", help="Print JSON."),
    all_: bool = typer.Option(False, "--all", help="Also count versions that failed registration."),
) -> None:
    """Every registered model with its latest version and aliases."""
    with _registry() as registry:
        models = registry.list_models(include_failed=all_)
    if as_json:
        return print_json([m.to_dict() for m in models])
    table = Table("model", "latest", "aliases", "updated")
    for m in models:
        table.add_row(esc(m.name), str(m.latest_version), esc(", ".join(f"{a}→{v}" for a, v in sorted(m.aliases.items()))),
                      fmt_ms(m.updated_at))
    console.print(table)


@app.command("register")
@handle_errors
def register_version(
    source: str = typer.Argument(..., help="runs:/<run_id>/<path> of a model package."),
    name: str = typer.Argument(..., help="Registered model name."),
    description: str = typer.Option("", help="Description of this version."),
    as_json: bool = typer.Option(False, "--json", help="Print JSON."),
    trust: list[str] = trust_option(),
) -> None:
    """Register a run's model package as the next version of NAME.

    The package must load and predict its input example first: a version that does not is
    recorded FAILED_REGISTRATION with the reason (exit 2), and never served or promoted."""
    apply_trust(trust)  # registering checks that the package loads
    with _registry() as registry:
        version = registry.register(source, name, description=description)
    if as_json:
        return print_json(version.to_dict())
    console.print(f"registered [bold]{esc(version.uri)}[/] from {esc(version.source)}")


@app.command()
@handle_errors
def show(
    ref: str = typer.Argument(..., help="NAME, or a version: name/3, name@champion, models:/name/latest."),
    as_json: bool = typer.Option(False, "--json", help="Print JSON."),
) -> None:
    """A model (aliases, versions) or one version in detail."""
    with _registry() as registry:
        if "/" in ref.removeprefix("models:/") or "@" in ref:
            from conveyor.registry import package_signature

            version = registry.get(ref)
            signature = package_signature(registry, version)
            data: Any = {**version.to_dict(), "signature": signature.to_dict() if signature else None}
        else:
            model = registry.get_model(ref)
            data = {**model.to_dict(), "versions": [v.to_dict() for v in registry.list_versions(ref)]}
    if as_json:
        return print_json(data)
    table = Table("field", "value", show_header=False)
    for key, value in data.items():
        if key == "signature":
            from conveyor.entities import Signature
            from conveyor.registry._signature import describe_outputs

            for part, text in describe_outputs(Signature.from_dict(value) if value else None).items():
                table.add_row(esc(part), esc(text))
        elif key != "versions":
            table.add_row(esc(key), esc(_shown(key, value)))
    console.print(table)
    if "versions" in data:
        _versions_table(data["versions"])


def _shown(key: str, value: Any) -> str:
    """A field of `models show` as a person reads it: times local ISO, aliases and tags as
    ``name → value`` text, lists comma-separated (the JSON keeps the raw values)."""
    if value is None:
        return ""
    if isinstance(value, int) and not isinstance(value, bool) and (key.endswith("_at") or key.endswith("_time")):
        return fmt_time(value)
    if isinstance(value, dict):
        return ", ".join(f"{k} → {_shown(str(k), v)}" for k, v in sorted(value.items(), key=lambda kv: str(kv[0])))
    if isinstance(value, (list, tuple)):
        return ", ".join(_shown(key, v) for v in value)
    return str(value)


def _versions_table(versions: list[dict[str, Any]]) -> None:
    failed = any(v.get("status_message") for v in versions)
    table = Table("version", "status", "aliases", "run", "git", "registered", "by", *(["reason"] if failed else []))
    for v in versions:
        row = [str(v["version"]), v["status"], ", ".join(v["aliases"]), (v["run_id"] or "")[:8],
               (v["git_commit"] or "")[:8], fmt_ms(v["created_at"]), v["user"]]
        table.add_row(*[esc(c) for c in row], *([esc(v.get("status_message") or "")] if failed else []))
    console.print(table)


@app.command()
@handle_errors
def versions(
    name: str,
    as_json: bool = typer.Option(False, "--json", help="Print JSON."),
    all_: bool = typer.Option(False, "--all", help="Also list versions that failed registration, with the reason."),
) -> None:
    """The versions of NAME, oldest first (READY and ARCHIVED; --all adds failed ones)."""
    with _registry() as registry:
        found = [v.to_dict() for v in registry.list_versions(name, include_failed=all_)]
    if as_json:
        return print_json(found)
    _versions_table(found)


@app.command()
@handle_errors
def alias(
    name: str,
    alias_name: str = typer.Argument(..., metavar="ALIAS"),
    version: int = typer.Argument(None, help="Version to point at (omit with --delete)."),
    reason: str = typer.Option("", help="Why: recorded in the history."),
    delete: bool = typer.Option(False, "--delete", help="Remove the alias."),
    as_json: bool = typer.Option(False, "--json", help="Print JSON."),
) -> None:
    """Point ALIAS of NAME at VERSION (no gate: use `models promote` for gated moves)."""
    with _registry() as registry:
        if delete:
            registry.delete_alias(name, alias_name, reason=reason)
            event = registry.history(name, alias=alias_name)[-1]
        elif version is None:
            raise typer.BadParameter("give a VERSION or --delete", param_hint="VERSION")
        else:
            event = registry.set_alias(name, alias_name, version, reason=reason)
    if as_json:
        return print_json(event.to_dict())
    console.print(esc(f"{name}@{alias_name}: {event.from_value or '∅'} → {event.to_value or '∅'}"))


@app.command()
@handle_errors
def history(
    name: str,
    alias_name: str = typer.Option(None, "--alias", help="Only the moves of this alias."),
    at: str = typer.Option(None, "--at", help="Who held each alias then: 2026-10-01 (end of day, UTC) or an ISO time."),
    as_json: bool = typer.Option(False, "--json", help="Print JSON."),
) -> None:
    """The audit trail of NAME: every registration, alias move and status change."""
    with _registry() as registry:
        if at is not None:
            from conveyor.registry import parse_instant

            holders = registry.aliases_at(name, at)
            if alias_name:
                holders = {k: v for k, v in holders.items() if k == alias_name}
            if as_json:
                return print_json({"model": name, "at": parse_instant(at), "aliases": holders})
            if not holders:
                console.print(esc(f"no alias of {name} was set at {at}"))
            for key, value in holders.items():
                console.print(f"{esc(name)}@{esc(key)} was version [bold]{esc(value)}[/] at {esc(at)}")
            return
        events = registry.history(name, alias=alias_name)
    if as_json:
        return print_json([e.to_dict() for e in events])
    table = Table("when", "event", "alias", "from", "to", "by", "forced", "reason")
    for e in events:
        table.add_row(fmt_ms(e.at), esc(e.kind), esc(e.alias), esc(e.from_value), esc(e.to_value), esc(e.user),
                      "yes" if e.forced else "", esc(e.reason))
    console.print(table)


@app.command()
@handle_errors
def rollback(
    name: str,
    alias_name: str = typer.Option("champion", "--alias", help="Alias to move back."),
    reason: str = typer.Option("", help="Why: recorded in the history."),
    as_json: bool = typer.Option(False, "--json", help="Print JSON."),
) -> None:
    """Move an alias back to its previous holder (recorded)."""
    with _registry() as registry:
        event = registry.rollback(name, alias_name, reason=reason)
    if as_json:
        return print_json(event.to_dict())
    console.print(f"{esc(name)}@{esc(alias_name)} rolled back: {esc(event.from_value)} → [bold]{esc(event.to_value)}[/]")


@app.command()
@handle_errors
def promote(
    ref: str = typer.Argument(..., help="name/3 or models:/name/3"),
    alias_name: str = typer.Option("champion", "--alias"),
    force: bool = typer.Option(False, "--force", help="Promote without a passing gate (needs --reason)."),
    reason: str = typer.Option("", help="Why: required with --force, recorded."),
    as_json: bool = typer.Option(False, "--json", help="Print JSON."),
) -> None:
    """Move ALIAS to a version whose latest gate evaluation passed."""
    from conveyor.gates import promote as promote_

    name, number = _split(ref)
    with _registry() as registry:
        event = promote_(name, number, alias_name, force=force, reason=reason, registry=registry)
    if as_json:
        return print_json(event.to_dict())
    console.print(f"{esc(name)}@{esc(alias_name)}: {esc(event.from_value or '∅')} → [bold]{esc(event.to_value)}[/]"
                  + (" [yellow](forced)[/]" if event.forced else ""))


@app.command()
@handle_errors
def archive(ref: str, reason: str = typer.Option("", help="Why: recorded."),
            restore: bool = typer.Option(False, "--restore", help="Make it READY again.")) -> None:
    """Archive a version (it can no longer take an alias), or --restore it."""
    name, number = _split(ref)
    with _registry() as registry:
        (registry.restore if restore else registry.archive)(name, number, reason=reason)
    console.print(f"{esc(name)}/{number} {'restored' if restore else 'archived'}")


@app.command()
@handle_errors
def delete(ref: str, reason: str = typer.Option("", help="Why: recorded.")) -> None:
    """Remove a version from the registry (its package stays while anything references it)."""
    name, number = _split(ref)
    with _registry() as registry:
        registry.delete_version(name, number, reason=reason)
    console.print(f"{esc(name)}/{number} deleted")


@app.command()
@handle_errors
def tag(ref: str, pairs: list[str] = typer.Argument(..., help="KEY=VALUE …")) -> None:
    """Tag a version: conveyor models tag churn/3 reviewed=yes."""
    name, number = _split(ref)
    values = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep:
            raise typer.BadParameter(f"{pair!r} is not KEY=VALUE", param_hint="PAIRS")
        values[key] = value
    with _registry() as registry:
        registry.set_tags(name, number, values)


@app.command()
@handle_errors
def describe(ref: str, text: str) -> None:
    """Describe a model (NAME) or a version (name/3)."""
    with _registry() as registry:
        if "/" in ref.removeprefix("models:/"):
            name, number = _split(ref)
            registry.set_description(name, text, number)
        else:
            registry.set_description(ref, text)


@app.command()
@handle_errors
def card(
    ref: str = typer.Argument(..., help="name/3, name@champion or models:/name/latest"),
    output: str = typer.Option(None, "--output", "-o", help="Write the Markdown to this file."),
) -> None:
    """The model card (Markdown) of a version, generated from recorded facts."""
    from pathlib import Path

    from conveyor.cli._common import settings
    from conveyor.registry import model_card

    with _registry() as registry:
        text = model_card(ref, registry=registry, settings=settings())
    if output:
        Path(output).write_text(text, encoding="utf-8")
        console.print(f"wrote {output}")
    else:
        typer.echo(text)


def register(app_: typer.Typer) -> None:
    app_.add_typer(app, name="models")
