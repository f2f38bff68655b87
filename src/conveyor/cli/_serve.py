"""``conveyor serve`` (the inference server) and ``conveyor build`` (Docker context + manifest)."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any, cast

import typer

from conveyor.cli._common import apply_trust, console, esc, handle_errors, print_json, settings, tracker, trust_option
from conveyor.entities import Predictor
from conveyor.errors import InvalidInput


def register(app: typer.Typer) -> None:
    app.command("serve")(serve)
    app.command("build")(build)


def _local(models: list[str], name: str | None, version: str | None) -> tuple[list[str], list[dict[str, str]]]:
    refs, folders = [], []
    for m in models:
        if Path(m).is_dir():
            folders.append({"path": m, "name": name or Path(m).resolve().name, "version": version or "1"})
        else:
            refs.append(m)
    if len(folders) > 1 and name:
        raise InvalidInput("--name applies to one model folder, but several were given", field="--name", value=name)
    return refs, folders


@handle_errors
def serve(
    models: list[str] = typer.Argument(..., help="models:/name@alias, models:/name/3, or a model package folder."),
    host: str = typer.Option("127.0.0.1", help="Interface to bind (0.0.0.0 exposes the server to the network)."),
    port: int = typer.Option(8080, help="TCP port."),
    workers: int = typer.Option(1, min=1, help="Server processes sharing the port (TCP_NODELAY set on each)."),
    canary: list[str] = typer.Option([], "--canary", help="name@alias:percent — share of traffic for a challenger."),
    shadow: list[str] = typer.Option([], "--shadow", help="name@alias — gets a copy of every request; never answers."),
    follow: bool = typer.Option(False, "--follow", help="Reload a model when its alias moves in the registry."),
    name: str | None = typer.Option(None, "--name", help="Served name of a model package folder."),
    model_version: str | None = typer.Option(None, "--model-version", help="Version reported for a package folder."),
    max_batch_size: int | None = typer.Option(None, help="Most rows per predict call [serving] max_batch_size."),
    max_wait_ms: float | None = typer.Option(None, help="Longest wait for a batch to fill [serving] max_wait_ms."),
    batching: bool | None = typer.Option(None, "--batching/--no-batching", help="Micro-batching on or off."),
    sticky_header: str | None = typer.Option(None, help="Header whose value pins a client to champion or canary."),
    log_sample_rate: float | None = typer.Option(None, help="Share of requests in the prediction log (0–1)."),
    no_log: bool = typer.Option(False, "--no-log", help="Do not write the prediction log."),
    log_level: str = typer.Option("info", help="debug, info, warning or error."),
    trust: list[str] = trust_option(),
    create_store: bool = typer.Option(
        True, "--create-store/--no-create-store",
        help="Create a local store for a package folder when none exists; images use --no-create-store "
        "so the store must come from CONVEYOR_STORE_* settings."),
) -> None:
    """Serve models over Open Inference Protocol v2 and MLflow's /invocations."""
    from conveyor.serving import ServedModel, ServingConfig, create_app, run
    from conveyor.serving._server import configure_logging

    conf = settings()
    trusted = apply_trust(trust, conf)
    overrides: dict[str, Any] = {"max_batch_size": max_batch_size, "max_wait_ms": max_wait_ms, "batching": batching,
                                 "sticky_header": sticky_header, "log_sample_rate": log_sample_rate}
    if no_log:
        overrides["log_predictions"] = False
    config = ServingConfig.from_mapping(conf.section("serving"), **overrides)
    refs, folders = _local(models, name, model_version)
    if workers > 1:
        spec = {"models": refs, "folders": folders, "canary": canary, "shadow": shadow, "follow": follow,
                "config": config.model_dump(), "root": str(conf.root), "log_level": log_level, "trust": trusted}
        console.print(f"serving {esc(', '.join(models))} on http://{host}:{port} with {workers} workers", highlight=False)
        run(spec=spec, host=host, port=port, workers=workers, log_level=log_level,
            header_timeout_s=config.header_timeout_s)
        return
    configure_logging(log_level)
    with _serving_tracker(create=bool(folders) and create_store) as t:
        from conveyor.models import load

        # LoadedModel answers the Predictor protocol (its members are read-only properties)
        served = [ServedModel(f["name"], cast(Predictor, load(f["path"])), f["version"]) for f in folders]
        app = create_app([*refs, *served], canary=canary, shadow=shadow, config=config, tracker=t, follow=follow)
        names = ", ".join(f"{d.name} v{d.version}" for d in app.state.server.fleet.all())
        console.print(f"serving {esc(names)} on http://{host}:{port} (docs: /docs, metrics: /metrics)", highlight=False)
        run(app, host=host, port=port, log_level=log_level, header_timeout_s=config.header_timeout_s)


@contextmanager
def _serving_tracker(*, create: bool) -> Iterator[Any]:
    from conveyor.errors import SchemaOutdated
    from conveyor.tracking import Tracker

    try:
        opened = Tracker.from_settings(settings(), create=create)
    except SchemaOutdated as exc:
        if create:
            raise
        raise SchemaOutdated(
            f"{exc.message} (this server does not create a store)",
            hint="set CONVEYOR_STORE_METADATA_URL and CONVEYOR_STORE_ARTIFACTS_URL to the team's store "
            "(the manifest of `conveyor build` reads them from the Secret conveyor-store), "
            "or run without --no-create-store",
        ) from None
    try:
        yield opened
    finally:
        opened.close()


@handle_errors
def build(
    model: str = typer.Argument(..., help="models:/name@alias or models:/name/3"),
    out: Path = typer.Option(..., "--out", help="New or empty folder for the build context."),
    image: str | None = typer.Option(None, help="Image name in the Kubernetes manifest (default conveyor-<name>:<v>)."),
    conveyor_requirement: str | None = typer.Option(
        None, "--conveyor-requirement",
        help="Install conveyor from this requirement (e.g. conveyor-mlops==0.2.0 on your index) instead of "
        "a wheel built from the installed source."),
    as_json: bool = typer.Option(False, "--json"),
    trust: list[str] = trust_option(),
) -> None:
    """Write a Docker build context (Dockerfile, pinned requirements, the model) and a
    Kubernetes manifest for one registered model version."""
    from conveyor.serving import build_context

    entries = apply_trust(trust)
    with tracker() as t:
        result = build_context(model, out, tracker=t, image=image, conveyor_requirement=conveyor_requirement,
                               trust=entries)
    if as_json:
        print_json({"folder": str(result.folder), "name": result.name, "version": result.version,
                    "image": result.image, "files": list(result.files)})
        return
    console.print(esc(f"wrote {len(result.files)} files for {result.name} v{result.version} to {result.folder}"))
    console.print(esc(f"  docker build -t {result.image} {result.folder}"))
    console.print(esc(f"  kubectl apply -f {result.folder / 'kubernetes.yaml'}"))
