"""``conveyor server``: the tracking server (MLflow REST compatible) over the project's stores."""

from __future__ import annotations

import typer

from conveyor.cli._common import console, err_console, handle_errors, settings


def register(app: typer.Typer) -> None:
    app.command("server")(server)


@handle_errors
def server(
    host: str = typer.Option("127.0.0.1", help="Interface to bind (0.0.0.0 exposes the server to the network)."),
    port: int = typer.Option(5000, min=0, max=65535, help="TCP port."),
    workers: int = typer.Option(1, min=1, help="Server processes sharing the port (TCP_NODELAY set on each)."),
    log_level: str = typer.Option("info", help="debug, info, warning or error."),
) -> None:
    """Run the tracking server: MLflow's REST API, health, version and Prometheus metrics."""
    from conveyor.server import create_app, open_tracker, run

    if log_level.lower() not in ("debug", "info", "warning", "error"):
        from conveyor.errors import InvalidInput

        raise InvalidInput(f"unknown --log-level {log_level!r}", field="--log-level", value=log_level,
                           hint="debug, info, warning or error")
    conf = settings()
    tracker = open_tracker(conf.root)  # the schema check: an outdated store names `conveyor db upgrade`
    console.print(f"conveyor server on http://{host}:{port} (MLflow API: /api/2.0/mlflow, metrics: /metrics)",
                  highlight=False)
    if host not in ("127.0.0.1", "localhost", "::1"):
        err_console.print(f"[yellow]warning:[/] the server has no authentication yet: anyone who can reach "
                          f"{host}:{port} can read and write every experiment and artifact", highlight=False)
    if workers > 1:
        tracker.close()
        run(root=conf.root, host=host, port=port, workers=workers, log_level=log_level.lower())
        return
    run(create_app(tracker, close_tracker=True), host=host, port=port, log_level=log_level.lower())
