"""One run: summary, params, tags, environment, metric charts and the artifacts browser.

Charts fetch ``/runs/<id>/series?key=…&x=step|time&buckets=N[&lo=&hi=]``: the history
downsampled on the server to at most N min/max/mean buckets (``conveyor.tracking.downsample``),
so a metric of 1,000,000 points travels as a few thousand numbers. Zooming asks again for the
visible range only.

Artifacts are previewed by kind: images inline, text, JSON (pretty-printed), CSV and Parquet
(the first rows as a table), model packages (``conveyor-model.json``: flavor, signature,
requirements). Raw bytes come from ``/runs/<id>/raw/<path>`` as a download, never as a page
of this site (``Content-Disposition: attachment``, ``nosniff``, a sandboxing CSP), so an
artifact holding HTML cannot run in the UI's origin.
"""

from __future__ import annotations

import io
import json
from typing import Any
from urllib.parse import quote

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from conveyor.errors import ConveyorError, InvalidInput, NotFound
from conveyor.ui._access import Forbidden, require
from conveyor.ui._render import SECURITY_HEADERS, render

#: Previews read at most this many bytes of an artifact (text, JSON, CSV).
PREVIEW_BYTES = 512 * 1024
PREVIEW_ROWS = 50
IMAGE_TYPES = {"image/png", "image/jpeg", "image/gif", "image/webp"}  # never SVG: it can hold script
TEXT_SUFFIXES = {".txt", ".log", ".md", ".yaml", ".yml", ".toml", ".py", ".cfg", ".ini", ".html", ".htm",
                 ".xml", ".svg", ".sh", ".jsonl", ".tsv", ".rst"}


def load_run(request: Request) -> Any:
    """The run named in the path, after the permission check (404 page when it does not exist)."""
    tracker = request.app.state.tracker
    run_id = request.path_params["run_id"]
    run = tracker.get_run(run_id)
    require(request, "experiment", str(run.experiment_id))
    return run


def _packages(tracker: Any, digest: str | None) -> list[str]:
    if not digest:
        return []
    from conveyor.blobs import Digest

    try:
        return tracker.blobs.read_bytes(Digest.parse(digest)).decode("utf-8", "replace").split()
    except (ConveyorError, OSError, ValueError):
        return []


def _tree(tracker: Any, run_id: str) -> list[dict[str, Any]]:
    """Every artifact, folders expanded to their files (from their manifests)."""
    from conveyor.blobs import Digest

    out: list[dict[str, Any]] = []
    for artifact in tracker.list_artifacts(run_id):
        if not artifact.is_dir:
            out.append({"path": artifact.path, "label": artifact.path, "size": artifact.size, "dir": False, "depth": 0})
            continue
        is_model = False
        entries: list[dict[str, Any]] = []
        try:
            manifest = tracker.blobs.read_manifest(Digest.parse(artifact.digest))
            for entry in manifest.entries:
                is_model = is_model or entry.path == "conveyor-model.json"
                full = f"{artifact.path}/{entry.path}"
                entries.append({"path": full, "label": entry.path, "size": entry.size, "dir": False, "depth": 1})
        except (ConveyorError, OSError, ValueError):
            entries.append({"path": artifact.path + "/…", "label": "…", "size": None, "dir": False, "missing": True,
                            "depth": 1})
        out.append({"path": artifact.path, "label": artifact.path + "/", "size": artifact.size, "dir": True,
                    "model": is_model, "depth": 0})
        out += sorted(entries, key=lambda e: e["path"])
    return out


def run_page(request: Request) -> Response:
    tracker = request.app.state.tracker
    run = load_run(request)
    metric_keys = sorted(run.metrics)
    user_tags = {k: v for k, v in run.tags.items() if not k.startswith("conveyor.")}
    system_tags = {k: v for k, v in run.tags.items() if k.startswith("conveyor.")}
    data = {"run_id": run.id, "keys": metric_keys}
    return render(
        request, "run.html", title=run.name or run.id, run=run, metric_keys=metric_keys, user_tags=user_tags,
        system_tags=system_tags, packages=_packages(tracker, run.packages_digest), artifacts=_tree(tracker, run.id),
        data=data, quote=quote,
    )


def _number(request: Request, name: str) -> float | None:
    raw = request.query_params.get(name)
    if raw in (None, ""):
        return None
    try:
        value = float(raw)
    except ValueError:
        raise InvalidInput(f"{name} must be a number, not {raw!r}", field=name, value=raw) from None
    if value != value:
        raise InvalidInput(f"{name} must be a number, not NaN", field=name, value=raw)
    return value


def series(request: Request) -> Response:
    """A metric's downsampled history as JSON (errors as ``{"error": {...}}`` with a 4xx)."""
    tracker = request.app.state.tracker
    try:
        run = load_run(request)
        key = request.query_params.get("key", "")
        x = request.query_params.get("x", "step")
        raw = request.query_params.get("buckets", "1000")
        try:
            buckets = int(raw)
        except ValueError:
            raise InvalidInput(f"buckets must be a whole number, not {raw!r}", field="buckets", value=raw) from None
        result = tracker.metric_series(run.id, key, x=x, buckets=buckets, lo=_number(request, "lo"), hi=_number(request, "hi"))
    except NotFound as exc:
        return JSONResponse({"error": {"code": "NOT_FOUND", "message": str(exc)}}, 404)
    except Forbidden as exc:
        return JSONResponse({"error": {"code": "FORBIDDEN", "message": exc.message}}, 403)
    except InvalidInput as exc:
        return JSONResponse({"error": {"code": "INVALID", "message": str(exc), "field": exc.field}}, 400)
    return JSONResponse({"key": key, "x_axis": x, **result.to_dict()})


def _kind(path: str, media: str) -> str:
    lower = path.lower()
    if media in IMAGE_TYPES:
        return "image"
    if lower.endswith(".json") or media == "application/json":
        return "json"
    if lower.endswith(".csv") or lower.endswith(".tsv"):
        return "csv"
    if lower.endswith(".parquet"):
        return "parquet"
    if media.startswith("text/") or any(lower.endswith(s) for s in TEXT_SUFFIXES):
        return "text"
    return "binary"


def _table(frame: Any) -> dict[str, Any]:
    head = frame.head(PREVIEW_ROWS)
    return {"columns": [str(c) for c in head.columns], "rows": [[_cell(v) for v in row] for row in head.itertuples(index=False)],
            "shape": frame.shape}


def _cell(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:.6g}"
    return str(value)


def artifact_page(request: Request) -> Response:
    tracker = request.app.state.tracker
    run = load_run(request)
    path = request.path_params["path"]
    artifact = tracker.get_artifact(run.id, path)
    context: dict[str, Any] = {"run": run, "artifact": artifact, "quote": quote, "preview": None, "problem": None}
    kind = "folder" if artifact.is_dir else _kind(artifact.path, artifact.media_type)
    context["kind"] = kind
    try:
        if artifact.is_dir:
            context["entries"] = [e for e in _tree(tracker, run.id) if e["path"].startswith(artifact.path + "/")]
            try:
                meta = json.loads(tracker.read_artifact(run.id, f"{artifact.path}/conveyor-model.json"))
                context["model"] = meta if isinstance(meta, dict) else None
            except NotFound:
                context["model"] = None
        elif kind in ("text", "json", "csv"):
            data = tracker.read_artifact(run.id, artifact.path)
            truncated = len(data) > PREVIEW_BYTES
            text = data[:PREVIEW_BYTES].decode("utf-8", "replace")
            context["truncated"] = truncated
            if kind == "json" and not truncated:
                try:
                    text = json.dumps(json.loads(text), indent=2, ensure_ascii=False)
                except ValueError as exc:
                    context["problem"] = f"not valid JSON ({exc}); shown as text"
            if kind == "csv":
                import pandas as pd

                sep = "\t" if artifact.path.lower().endswith(".tsv") else ","
                try:
                    context["table"] = _table(pd.read_csv(io.StringIO(text), sep=sep, nrows=PREVIEW_ROWS))
                except (ValueError, pd.errors.ParserError) as exc:
                    context["problem"] = f"cannot read it as CSV ({exc}); shown as text"
            context["preview"] = text
        elif kind == "parquet":
            import pyarrow.parquet as pq

            data = tracker.read_artifact(run.id, artifact.path)
            table = pq.ParquetFile(io.BytesIO(data))
            first = table.read_row_group(0) if table.num_row_groups else table.schema_arrow.empty_table()
            context["table"] = _table(first.slice(0, PREVIEW_ROWS).to_pandas())
            context["table"]["shape"] = (table.metadata.num_rows, table.metadata.num_columns)
            context["schema"] = [(f.name, str(f.type)) for f in table.schema_arrow]
    except (ConveyorError, OSError) as exc:
        # the record exists but its bytes do not (deleted object, unreachable store): say so
        context["problem"] = f"cannot read this artifact's stored object: {exc}"
    except Exception as exc:  # a corrupt file must not take the page down
        context["problem"] = f"cannot preview this artifact: {type(exc).__name__}: {exc}"
    return render(request, "artifact.html", title=artifact.path, **context)


def raw(request: Request) -> Response:
    """The artifact's bytes as a download (images inline: only raster types, never SVG/HTML)."""
    tracker = request.app.state.tracker
    run = load_run(request)
    artifact = tracker.get_artifact(run.id, request.path_params["path"])
    if artifact.is_dir:
        raise InvalidInput("a folder has no bytes to download; pick a file inside it", field="path", value=artifact.path)
    data = tracker.read_artifact(run.id, artifact.path)
    media = artifact.media_type if artifact.media_type in IMAGE_TYPES else "application/octet-stream"
    name = artifact.path.rsplit("/", 1)[-1]
    disposition = "inline" if media in IMAGE_TYPES else "attachment"
    headers = dict(SECURITY_HEADERS)
    headers["content-security-policy"] = "default-src 'none'; sandbox"
    headers["content-disposition"] = f"{disposition}; filename*=UTF-8''{quote(name)}"
    return Response(data, media_type=media, headers=headers)


routes = [
    Route("/runs/{run_id}", run_page, methods=["GET"]),
    Route("/runs/{run_id}/series", series, methods=["GET"]),
    Route("/runs/{run_id}/artifacts/{path:path}", artifact_page, methods=["GET"]),
    Route("/runs/{run_id}/raw/{path:path}", raw, methods=["GET"]),
]

