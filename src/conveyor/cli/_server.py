"""``conveyor server`` (the tracking server, MLflow REST compatible), ``conveyor users``, ``tokens`` and ``roles``."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

import typer

from conveyor.cli._common import console, err_console, handle_errors, print_json, settings

LOOPBACK = ("127.0.0.1", "localhost", "::1")

tokens_app = typer.Typer(help="API tokens of `conveyor server` users: create (shown once), list, revoke.",
                         no_args_is_help=True)
users_app = typer.Typer(help="Users of `conveyor server`: add, list, disable, enable, set a password.",
                        no_args_is_help=True)
roles_app = typer.Typer(help="Roles of users on experiments, registered models and data sets: grant, revoke, list.",
                        no_args_is_help=True)


def register(app: typer.Typer) -> None:
    app.command("server")(server)
    app.command("ui")(ui)
    app.add_typer(tokens_app, name="tokens")
    app.add_typer(users_app, name="users")
    app.add_typer(roles_app, name="roles")


@contextmanager
def _users() -> Iterator[Any]:
    """The project's users (metadata store); the token file of earlier versions is imported first."""
    from conveyor.server import Users
    from conveyor.store import Store

    conf = settings()
    store = Store.open(conf.metadata_url, settings=conf.store)
    try:
        users = Users(store)
        _import_legacy(users, conf)
        yield users
    finally:
        store.close()


def _import_legacy(users: Any, conf: Any) -> None:
    made = users.import_legacy(conf.conveyor_dir)
    if made:
        err_console.print(f"imported the tokens of .conveyor/server-tokens.json as admin users: {', '.join(made)} "
                          "(review them with `conveyor users list`)", highlight=False, markup=False)


def _served(conf: Any) -> tuple[Any, Any, bool]:
    """The tracker a server serves (the schema check: an outdated store names `conveyor db
    upgrade`), its users (the legacy token file imported) and whether any user is active."""
    from conveyor.server import Users, open_tracker

    tracker = open_tracker(conf.root)
    try:
        users = Users(tracker.store)
        _import_legacy(users, conf)
        return tracker, users, users.any_active()
    except BaseException:
        tracker.close()
        raise


@handle_errors
def server(
    host: str = typer.Option("127.0.0.1", help="Interface to bind. Authentication is off only on 127.0.0.1 in a project without users."),
    port: int = typer.Option(5000, min=0, max=65535, help="TCP port."),
    workers: int = typer.Option(1, min=1, help="Server processes sharing the port (TCP_NODELAY set on each)."),
    log_level: str = typer.Option("info", help="debug, info, warning or error."),
) -> None:
    """Run the tracking server: MLflow's REST API, conveyor's /api/v1, health, version and Prometheus metrics."""
    # Authentication is off only on 127.0.0.1 in a project without users; otherwise every
    # request needs a user's token or password, and roles decide what each user may do.
    from conveyor.errors import InvalidInput
    from conveyor.server import create_app, run

    if log_level.lower() not in ("debug", "info", "warning", "error"):
        raise InvalidInput(f"unknown --log-level {log_level!r}", field="--log-level", value=log_level,
                           hint="debug, info, warning or error")
    conf = settings()
    tracker, users, has_users = _served(conf)
    # configured for other names or origins (a reverse proxy, a notebook host) counts as exposed too
    exposure = (f"--host {host}" if host not in LOOPBACK else
                "[server] allowed_hosts" if conf.server.allowed_hosts else
                "[server] cors_origins" if conf.server.cors_origins else None)
    auth = exposure is not None or has_users
    if exposure is not None and not has_users:
        tracker.close()
        field = "--host" if exposure.startswith("--host") else exposure.removeprefix("[server] ")
        raise InvalidInput(f"{exposure} exposes the server beyond this machine, and the project has no user",
                           field=field, value=host if field == "--host" else None,
                           hint="add one with `conveyor users add NAME --admin` and give it a token with "
                                "`conveyor tokens create NAME --user NAME` (clients send it as "
                                "MLFLOW_TRACKING_TOKEN), or bind 127.0.0.1 without [server] allowed_hosts")
    console.print(f"conveyor server on http://{host}:{port} (MLflow API: /api/2.0/mlflow, metrics: /metrics; "
                  f"authentication {'on' if auth else 'off'})", highlight=False)
    if workers > 1:
        tracker.close()
        run(root=conf.root, host=host, port=port, workers=workers, log_level=log_level.lower(), auth=auth)
        return
    run(create_app(tracker, close_tracker=True, auth=auth, server=conf.server, users=users), host=host, port=port,
        log_level=log_level.lower())


# -- users --------------------------------------------------------------------------------------
def _read_password(prompt: bool, stdin: bool) -> str | None:
    import sys

    if stdin:
        return sys.stdin.readline().rstrip("\r\n")
    if prompt:
        return str(typer.prompt("password", hide_input=True, confirmation_prompt=True))
    return None


@users_app.command("add")
@handle_errors
def users_add(
    name: str = typer.Argument(..., help="The user's name, e.g. ana or ci."),
    admin: bool = typer.Option(False, "--admin", help="May do everything, including managing users and roles."),
    password: bool = typer.Option(False, "--password", help="Ask for a password (for Basic auth)."),
    password_stdin: bool = typer.Option(False, "--password-stdin", help="Read the password from standard input."),
) -> None:
    """Add a user. Without a password they sign in with API tokens only (`conveyor tokens create`)."""
    secret = _read_password(password, password_stdin)
    with _users() as users:
        user = users.add(name, password=secret, admin=admin)
    console.print(f"added user {user.name!r}{' (admin)' if user.is_admin else ''}", highlight=False, markup=False)


@users_app.command("list")
@handle_errors
def users_list(as_json: bool = typer.Option(False, "--json")) -> None:
    """Users with their admin flag, whether they have a password, and when they were disabled."""
    from rich.table import Table

    from conveyor.cli._common import fmt_ms

    with _users() as users:
        found = users.list()
    if as_json:
        print_json([{"name": u.name, "admin": u.is_admin, "password": u.has_password, "created_at": u.created_at,
                     "disabled_at": u.disabled_at} for u in found])
        return
    table = Table("name", "admin", "password", "created", "disabled")
    for u in found:
        table.add_row(u.name, "yes" if u.is_admin else "", "yes" if u.has_password else "", fmt_ms(u.created_at),
                      fmt_ms(u.disabled_at), style=None if u.active else "dim")
    console.print(table)


def _change(change: Callable[[Any], object], said: str) -> None:
    """One change through the project's users (retried through a store blink), then say so."""
    with _users() as users:
        change(users)
    console.print(said, highlight=False, markup=False)


@users_app.command("disable")
@handle_errors
def users_disable(name: str = typer.Argument(..., help="The user to disable.")) -> None:
    """Disable a user: a running server refuses their tokens and password from the next request on."""
    _change(lambda users: users.disable(name), f"disabled user {name!r}")


@users_app.command("enable")
@handle_errors
def users_enable(name: str = typer.Argument(..., help="The user to enable again.")) -> None:
    """Enable a disabled user again (their unrevoked tokens work again)."""
    _change(lambda users: users.enable(name), f"enabled user {name!r}")


@users_app.command("set-password")
@handle_errors
def users_set_password(
    name: str = typer.Argument(..., help="The user."),
    password_stdin: bool = typer.Option(False, "--password-stdin", help="Read the password from standard input."),
    remove: bool = typer.Option(False, "--remove", help="Remove the password (tokens only)."),
) -> None:
    """Set (asked twice, or read from standard input) or remove a user's password."""
    secret = None if remove else _read_password(True, password_stdin)
    _change(lambda users: users.set_password(name, secret), f"{'removed' if remove else 'set'} the password of {name!r}")


@users_app.command("set-admin")
@handle_errors
def users_set_admin(
    name: str = typer.Argument(..., help="The user."),
    off: bool = typer.Option(False, "--off", help="Take the admin flag away."),
) -> None:
    """Make a user an admin (or, with --off, not)."""
    _change(lambda users: users.set_admin(name, not off), f"{name!r} is {'no longer ' if off else ''}an admin")


# -- roles --------------------------------------------------------------------------------------
def _resource(experiment: str | None, model: str | None, data: str | None) -> tuple[str, str]:
    from conveyor.errors import InvalidInput

    given = [(k, v) for k, v in (("experiment", experiment), ("model", model), ("data", data)) if v is not None]
    if len(given) != 1:
        raise InvalidInput("name exactly one resource", field="--experiment/--model/--data", value=None,
                           hint="e.g. --experiment churn, --model churn or --data customers")
    kind, value = given[0]
    if kind == "experiment":  # roles are kept by experiment id, which survives a rename
        from conveyor.cli._common import tracker

        with tracker() as t:
            value = str(t.get_experiment(int(value) if value.isdigit() else value).id)
    return kind, value


@roles_app.command("grant")
@handle_errors
def roles_grant(
    user: str = typer.Argument(..., help="The user."),
    role: str = typer.Argument(..., help="read, edit or manage."),
    experiment: str = typer.Option(None, "--experiment", help="An experiment, by name or id."),
    model: str = typer.Option(None, "--model", help="A registered model, by name."),
    data: str = typer.Option(None, "--data", help="A data set, by name."),
) -> None:
    """Give a user a role on one experiment, registered model or data set (replacing the one they had)."""
    import getpass

    kind, resource = _resource(experiment, model, data)
    _change(lambda users: users.grant(user, kind, resource, role, by=getpass.getuser()),
            f"{user!r} may {role} {kind} {resource}")


@roles_app.command("revoke")
@handle_errors
def roles_revoke(
    user: str = typer.Argument(..., help="The user."),
    experiment: str = typer.Option(None, "--experiment", help="An experiment, by name or id."),
    model: str = typer.Option(None, "--model", help="A registered model, by name."),
    data: str = typer.Option(None, "--data", help="A data set, by name."),
) -> None:
    """Take a user's role on a resource away (they fall back to [server] default_role)."""
    kind, resource = _resource(experiment, model, data)
    _change(lambda users: users.revoke_role(user, kind, resource), f"revoked the role of {user!r} on {kind} {resource}")


@roles_app.command("list")
@handle_errors
def roles_list(
    user: str = typer.Option(None, "--user", help="Only this user's roles."),
    as_json: bool = typer.Option(False, "--json"),
) -> None:
    """Every role granted (experiments by id), with who granted it and when."""
    from rich.table import Table

    from conveyor.cli._common import fmt_ms

    with _users() as users:
        found = users.roles(user=user)
    if as_json:
        print_json([{"user": r.user, "kind": r.kind, "resource": r.resource, "role": r.level,
                     "granted_by": r.granted_by, "granted_at": r.granted_at} for r in found])
        return
    table = Table("user", "kind", "resource", "role", "granted by", "granted")
    for r in found:
        table.add_row(r.user, r.kind, r.resource, r.level, r.granted_by, fmt_ms(r.granted_at))
    console.print(table)


# -- tokens -------------------------------------------------------------------------------------
@tokens_app.command("create")
@handle_errors
def tokens_create(
    name: str = typer.Argument(..., help="What the token is for, e.g. laptop or ci."),
    user: str = typer.Option(None, "--user", help="The user it belongs to (default: a user named NAME, "
                             "added without admin rights when missing)."),
    as_json: bool = typer.Option(False, "--json"),
) -> None:
    """Make a token of a user and print it once; only its SHA-256 hash is stored."""
    from conveyor.errors import NotFound

    owner = user or name
    with _users() as users:
        try:
            users.get(owner)
        except NotFound:
            if user is not None:
                raise
            users.add(owner)
            err_console.print(f"added user {owner!r} (no admin rights; see `conveyor roles grant`)",
                              highlight=False, markup=False)
        token = users.create_token(owner, name)
    if as_json:
        print_json({"name": name, "user": owner, "token": token})
        return
    console.print(f"token {name!r} of user {owner!r} (shown once; store it now):", highlight=False, markup=False)
    console.print(token, highlight=False, markup=False, soft_wrap=True)
    err_console.print("clients: export MLFLOW_TRACKING_TOKEN=<token>", highlight=False, markup=False)


@tokens_app.command("revoke")
@handle_errors
def tokens_revoke(
    name: str = typer.Argument(..., help="Name of the token to revoke."),
    user: str = typer.Option(None, "--user", help="Its user (needed when several users have a token of that name)."),
) -> None:
    """Revoke a token; a running server refuses it from the next request on."""
    from conveyor.errors import InvalidInput, NotFound

    with _users() as users:
        if user is None:
            owners = sorted({t.user for t in users.tokens() if t.name == name and t.active})
            if not owners:
                raise NotFound("token", name, hint="`conveyor tokens list` shows the active ones")
            if len(owners) > 1:
                raise InvalidInput(f"several users have an active token {name!r}: {', '.join(owners)}",
                                   field="--user", value=None, hint="say whose with --user NAME")
            user = owners[0]
        users.revoke_token(user, name)
    console.print(f"revoked token {name!r} of user {user!r}", highlight=False, markup=False)


@tokens_app.command("list")
@handle_errors
def tokens_list(
    user: str = typer.Option(None, "--user", help="Only this user's tokens."),
    as_json: bool = typer.Option(False, "--json"),
) -> None:
    """Tokens by user and name, with when they were made and revoked (never the token itself)."""
    from rich.table import Table

    from conveyor.cli._common import fmt_ms

    with _users() as users:
        records = users.tokens(user)
    if as_json:
        print_json([{"user": r.user, "name": r.name, "created_at": r.created_at, "revoked_at": r.revoked_at}
                    for r in records])
        return
    table = Table("user", "name", "created", "revoked")
    for r in records:
        table.add_row(r.user, r.name, fmt_ms(r.created_at), fmt_ms(r.revoked_at), style=None if r.active else "dim")
    console.print(table)


@handle_errors
def ui(
    port: int = typer.Option(5000, min=0, max=65535, help="TCP port on 127.0.0.1."),
    no_browser: bool = typer.Option(False, "--no-browser", help="Do not open a browser; just print the address."),
) -> None:
    """Open the web UI over this project: a server on 127.0.0.1 and a browser tab."""
    import threading
    import webbrowser

    from conveyor.server import create_app, run

    conf = settings()
    tracker, users, auth = _served(conf)  # a project with users: sign in with a password or a token
    url = f"http://127.0.0.1:{port}/"
    console.print(f"conveyor UI on {url} (sign-in {'required' if auth else 'off: no users'}); Ctrl-C stops it",
                  highlight=False)
    if not no_browser:
        threading.Timer(1.0, webbrowser.open, args=(url,)).start()
    run(create_app(tracker, close_tracker=True, auth=auth, server=conf.server, users=users), host="127.0.0.1",
        port=port, log_level="warning")
