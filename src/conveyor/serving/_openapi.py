"""The OpenAPI 3.1 document of the server, built by hand, and a self-contained ``/docs`` page.

Swagger UI is not shipped (its assets come from a CDN or an extra package, and these
machines have no internet): ``/docs`` is a small page of our own that renders the
document's operations and schemas, and ``/openapi.json`` is the document for any tool.
"""

from __future__ import annotations

from typing import Any

from starlette.responses import HTMLResponse

from conveyor._version import __version__

_ERR = {"content": {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}}}
_WHY = {
    400: "malformed request (JSON syntax, protocol structure)", 404: "unknown model, version or request id",
    408: "the body took longer than body_timeout_s", 413: "body over max_body_bytes (or more labels than the log "
    "buffer holds)", 415: "unsupported media type or charset", 422: "does not match the model's signature",
    500: "the model failed (the answer carries the request id)", 501: "the prediction log is off",
    503: "busy (queue full) or not ready; see Retry-After",
}
#: what each kind of route can answer besides 200
_INFER = (400, 404, 408, 413, 415, 422, 500, 503)
_FEEDBACK = (400, 404, 408, 413, 415, 422, 501, 503)
_TEXT = {"text/plain": {"schema": {"type": "string"}}}


def _op(summary: str, *, body: str | None = None, answer: str | dict[str, Any] | None = None,
        params: list[dict[str, Any]] | None = None, errors: tuple[int, ...] = ()) -> dict[str, Any]:
    ok: dict[str, Any] = {"description": "ok"}
    if isinstance(answer, str):
        ok["content"] = {"application/json": {"schema": {"$ref": f"#/components/schemas/{answer}"}}}
    elif answer is not None:
        ok["content"] = answer
    op: dict[str, Any] = {"summary": summary, "responses": {"200": ok}}
    for status in errors:
        op["responses"][str(status)] = {**_ERR, "description": _WHY[status]}
    if body:
        content: dict[str, Any] = {"application/json": {"schema": {"$ref": f"#/components/schemas/{body}"}}}
        if body == "MlflowRequest":
            content["text/csv"] = {"schema": {"type": "string"}}
        op["requestBody"] = {"required": True, "content": content}
    if params:
        op["parameters"] = params
    return op


def _path(name: str, values: list[str]) -> dict[str, Any]:
    # the served names and versions are listed, so a client (or a test generator) can reach them
    schema: dict[str, Any] = {"type": "string"}
    if values:
        schema["examples"] = values
    return {"name": name, "in": "path", "required": True, "schema": schema}


def openapi_document(fleet: Any) -> dict[str, Any]:
    """The document, listing the served models in its description and parameter examples."""
    tensor = {"type": "object", "required": ["name", "shape", "datatype", "data"], "properties": {
        "name": {"type": "string"}, "shape": {"type": "array", "items": {"type": "integer", "minimum": 0}},
        "datatype": {"type": "string", "enum": ["BOOL", "UINT8", "UINT16", "UINT32", "UINT64", "INT8", "INT16",
                                                "INT32", "INT64", "FP16", "FP32", "FP64", "BYTES"]},
        "data": {"type": "array"}, "parameters": {"type": "object"}}}
    names = list(fleet.order)
    versions = sorted({d.version for d in fleet.all()})
    n, v = [_path("name", names)], [_path("name", names), _path("version", versions)]
    model_query = [{"name": "model", "in": "query", "required": False, "schema": {"type": "string"},
                    "description": "served model name (default: the first served)"},
                   {"name": "output", "in": "query", "required": False, "schema": {"type": "string"},
                    "description": "outputs to answer, comma-separated (e.g. probabilities, or "
                                   "prediction,probabilities); default: the model's prediction"}]
    ready = {"application/json": {"schema": {"type": "object", "properties": {"ready": {"type": "boolean"}}}}}
    paths = {
        "/v2/health/live": {"get": _op("server live (OIP)", answer={"application/json": {"schema": {"type": "object"}}})},
        "/v2/health/ready": {"get": _op("server ready (OIP)", answer=ready, errors=(503,))},
        "/v2": {"get": _op("server metadata (OIP)", answer={"application/json": {"schema": {"type": "object"}}})},
        "/v2/models": {"get": _op("served model names", answer={"application/json": {"schema": {"type": "object"}}})},
        "/v2/models/{name}": {"get": _op("model metadata (OIP)", answer="ModelMetadata", params=n, errors=(404,))},
        "/v2/models/{name}/ready": {"get": _op("model ready (OIP)", answer=ready, params=n, errors=(404,))},
        "/v2/models/{name}/versions/{version}": {"get": _op("model version metadata", answer="ModelMetadata",
                                                            params=v, errors=(404,))},
        "/v2/models/{name}/versions/{version}/ready": {"get": _op("model version ready", answer=ready, params=v,
                                                                  errors=(404,))},
        "/v2/models/{name}/infer": {"post": _op("inference (OIP); canary split and shadow apply",
                                                body="InferRequest", answer="InferResponse", params=n, errors=_INFER)},
        "/v2/models/{name}/versions/{version}/infer": {"post": _op("inference on one version", body="InferRequest",
                                                                   answer="InferResponse", params=v, errors=_INFER)},
        "/v2/models/{name}/feedback": {"post": _op("attach ground-truth labels to earlier request ids",
                                                   body="Feedback", answer="FeedbackAnswer", params=n,
                                                   errors=_FEEDBACK)},
        "/invocations": {"post": _op("MLflow scoring format (first model, or ?model=name)", body="MlflowRequest",
                                     answer="MlflowResponse", params=model_query, errors=_INFER)},
        "/ping": {"get": _op("MLflow health", answer=_TEXT, errors=(503,))},
        "/health": {"get": _op("MLflow health", answer=_TEXT, errors=(503,))},
        "/version": {"get": _op("server version", answer=_TEXT)},
        "/metrics": {"get": _op("Prometheus metrics (text exposition format)", answer=_TEXT)},
    }
    schemas = {
        "Error": {"type": "object", "required": ["error"],
                  "properties": {"error": {"type": "string"}, "request_id": {"type": "string"}}},
        "Tensor": tensor,
        "InferRequest": {"type": "object", "required": ["inputs"], "properties": {
            "id": {"type": "string"}, "parameters": {"type": "object"},
            "inputs": {"type": "array", "items": {"$ref": "#/components/schemas/Tensor"}},
            "outputs": {"type": "array", "items": {"type": "object", "required": ["name"],
                                                   "properties": {"name": {"type": "string"}}}}}},
        "InferResponse": {"type": "object", "required": ["model_name", "model_version", "outputs"], "properties": {
            "model_name": {"type": "string"}, "model_version": {"type": "string"}, "id": {"type": "string"},
            "outputs": {"type": "array", "items": {"$ref": "#/components/schemas/Tensor"}}}},
        "ModelMetadata": {"type": "object", "required": ["name", "versions", "platform", "inputs", "outputs"],
                          "properties": {
            "name": {"type": "string"}, "versions": {"type": "array", "items": {"type": "string"}},
            "platform": {"type": "string"}, "inputs": {"type": "array"}, "outputs": {"type": "array"}}},
        "MlflowRequest": {"type": "object", "description": "exactly one of the four keys", "properties": {
            "dataframe_split": {"type": "object", "properties": {"columns": {"type": "array"}, "data": {"type": "array"}}},
            "dataframe_records": {"type": "array", "items": {"type": "object"}},
            "instances": {}, "inputs": {}}},
        "MlflowResponse": {"type": "object", "required": ["predictions"],
                           "properties": {"predictions": {"type": "array"}}},
        "Feedback": {"type": "object", "description": "one label ('label', for row 'row') or one per row "
                     "('labels', from row 'row') of a request this server answered; or {'feedback': [...]}",
                     "properties": {
            "request_id": {"type": "string"}, "label": {}, "labels": {"type": "array"},
            "row": {"type": "integer", "minimum": 0},
            "feedback": {"type": "array", "items": {"type": "object"}}}},
        "FeedbackAnswer": {"type": "object", "required": ["accepted", "versions"], "properties": {
            "accepted": {"type": "integer"}, "versions": {"type": "array", "items": {"type": "string"}}}},
    }
    served = ", ".join(f"{d.name} v{d.version}" for d in fleet.all())
    return {"openapi": "3.1.0",
            "info": {"title": "conveyor inference server", "version": __version__, "description": f"Serving: {served}"},
            "paths": paths, "components": {"schemas": schemas}}


_PAGE = """<!doctype html><html><head><meta charset="utf-8"><title>conveyor inference API</title>
<style>body{font:14px system-ui,sans-serif;margin:2em;max-width:60em}code,pre{background:#f4f4f4;padding:2px 4px}
.op{border:1px solid #ddd;border-radius:4px;margin:.5em 0;padding:.5em}.m{font-weight:bold;text-transform:uppercase}</style>
</head><body><h1>conveyor inference API</h1><p>The OpenAPI document: <a href="/openapi.json">/openapi.json</a>
(load it in any OpenAPI tool). Operations:</p><div id="ops"></div><h2>Schemas</h2><pre id="schemas"></pre>
<script>
fetch('/openapi.json').then(r=>r.json()).then(d=>{document.querySelector('p').insertAdjacentText('beforeend',' '+d.info.description);
const ops=document.getElementById('ops');for(const[p,item]of Object.entries(d.paths))for(const[m,op]of Object.entries(item)){
const e=document.createElement('div');e.className='op';e.innerHTML='<span class="m"></span> <code></code> — <span></span>';
e.children[0].textContent=m;e.children[1].textContent=p;e.children[2].textContent=op.summary;ops.appendChild(e);}
document.getElementById('schemas').textContent=JSON.stringify(d.components.schemas,null,2);});
</script></body></html>"""


def docs_page() -> HTMLResponse:
    return HTMLResponse(_PAGE)
