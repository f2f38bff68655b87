"""``conveyor server`` (the tracking server, MLflow REST compatible) and ``conveyor tokens``."""

from __future__ import annotations

import typer

from conveyor.cli._common import console, err_console, handle_errors, print_json, settings

LOOPBACK = ("127.0.0.1", "localhost", "::1")

tokens_app = typer.Typer(help="API tokens of `conveyor server`: create (shown once), list, revoke.",
                         no_args_is_help=True)


def register(app: typer.Typer) -> None:
    app.command("server")(server)
    app.command("ui")(ui)
    app.add_typer(tokens_app, name="tokens")


@handle_errors
def server(
    host: str = typer.Option("127.0.0.1", help="Interface to bind; anything but loopback requires tokens."),
    port: int = typer.Option(5000, min=0, max=65535, help="TCP port."),
    workers: int = typer.Option(1, min=1, help="Server processes sharing the port (TCP_NODELAY set on each)."),
    log_level: str = typer.Option("info", help="debug, info, warning or error."),
) -> None:
    """Run the tracking server: MLflow's REST API, health, version and Prometheus metrics."""
    from conveyor.errors import InvalidInput
    from conveyor.server import TokenStore, create_app, open_tracker, run

    if log_level.lower() not in ("debug", "info", "warning", "error"):
        raise InvalidInput(f"unknown --log-level {log_level!r}", field="--log-level", value=log_level,
                           hint="debug, info, warning or error")
    conf = settings()
    tokens = TokenStore.of(conf.conveyor_dir)
    auth = host not in LOOPBACK or tokens.any_active()
    if host not in LOOPBACK and not tokens.any_active():
        raise InvalidInput(f"--host {host} exposes the server to the network, and the project has no API token",
                           field="--host", value=host,
                           hint="create one with `conveyor tokens create NAME` (clients send it as "
                                "MLFLOW_TRACKING_TOKEN), or bind 127.0.0.1")
    tracker = open_tracker(conf.root)  # the schema check: an outdated store names `conveyor db upgrade`
    console.print(f"conveyor server on http://{host}:{port} (MLflow API: /api/2.0/mlflow, metrics: /metrics; "
                  f"tokens {'required' if auth else 'off'})", highlight=False)
    if workers > 1:
        tracker.close()
        run(root=conf.root, host=host, port=port, workers=workers, log_level=log_level.lower(), auth=auth)
        return
    run(create_app(tracker, close_tracker=True, tokens=tokens if auth else None), host=host, port=port,
        log_level=log_level.lower())


@tokens_app.command("create")
@handle_errors
def tokens_create(
    name: str = typer.Argument(..., help="Who or what the token is for, e.g. ci or ana."),
    as_json: bool = typer.Option(False, "--json"),
) -> None:
    """Make a token and print it once; only its SHA-256 hash is stored."""
    from conveyor.server import TokenStore

    token = TokenStore.of(settings().conveyor_dir).create(name)
    if as_json:
        print_json({"name": name, "token": token})
        return
    console.print(f"token {name!r} (shown once; store it now):", highlight=False, markup=False)
    console.print(token, highlight=False, markup=False, soft_wrap=True)
    err_console.print("clients: export MLFLOW_TRACKING_TOKEN=<token>", highlight=False, markup=False)


@tokens_app.command("revoke")
@handle_errors
def tokens_revoke(name: str = typer.Argument(..., help="Name of the token to revoke.")) -> None:
    """Revoke a token; a running server refuses it from the next request on."""
    from conveyor.server import TokenStore

    TokenStore.of(settings().conveyor_dir).revoke(name)
    console.print(f"revoked token {name!r}", highlight=False, markup=False)


@tokens_app.command("list")
@handle_errors
def tokens_list(as_json: bool = typer.Option(False, "--json")) -> None:
    """Tokens by name, with when they were made and revoked (never the token itself)."""
    from rich.table import Table

    from conveyor.cli._common import fmt_ms
    from conveyor.server import TokenStore

    records = TokenStore.of(settings().conveyor_dir).records()
    if as_json:
        print_json([{"name": r.name, "created_at": r.created_at, "revoked_at": r.revoked_at} for r in records])
        return
    table = Table("name", "created", "revoked")
    for r in records:
        table.add_row(r.name, fmt_ms(r.created_at), fmt_ms(r.revoked_at), style=None if r.active else "dim")
    console.print(table)


@handle_errors
def ui(
    port: int = typer.Option(5000, min=0, max=65535, help="TCP port on 127.0.0.1."),
    no_browser: bool = typer.Option(False, "--no-browser", help="Do not open a browser; just print the address."),
) -> None:
    """Open the web UI over this project: a server on 127.0.0.1 and a browser tab."""
    import threading
    import webbrowser

    from conveyor.server import TokenStore, create_app, open_tracker, run

    conf = settings()
    tokens = TokenStore.of(conf.conveyor_dir)
    auth = tokens.any_active()
    tracker = open_tracker(conf.root)
    url = f"http://127.0.0.1:{port}/"
    console.print(f"conveyor UI on {url} (tokens {'required: sign in with one' if auth else 'off'}); Ctrl-C stops it",
                  highlight=False)
    if not no_browser:
        threading.Timer(1.0, webbrowser.open, args=(url,)).start()
    run(create_app(tracker, close_tracker=True, tokens=tokens if auth else None), host="127.0.0.1", port=port,
        log_level="warning")
