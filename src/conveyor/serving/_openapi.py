"""The OpenAPI 3.1 document of the server, built by hand, and a self-contained ``/docs`` page.

Swagger UI is not shipped (its assets come from a CDN or an extra package, and these
machines have no internet): ``/docs`` is a small page of our own that renders the
document's operations and schemas, and ``/openapi.json`` is the document for any tool.
"""

from __future__ import annotations

from typing import Any

from starlette.responses import HTMLResponse

from conveyor._version import __version__

_ERR = {"description": "error", "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}}}
_ERRORS = {str(c): {**_ERR, "description": d} for c, d in (
    (400, "malformed request"), (404, "unknown model or version"), (408, "body too slow"),
    (413, "body over max_body_bytes"), (415, "unsupported media type"), (422, "does not match the signature"),
    (500, "the model failed (carries request_id)"), (503, "queue full; see Retry-After"))}


def _op(summary: str, *, body: str | None = None, answer: str | None = None, params: tuple[str, ...] | list[str] = ()) -> dict[str, Any]:
    op: dict[str, Any] = {"summary": summary, "responses": {"200": {"description": "ok"}}}
    if answer:
        op["responses"]["200"]["content"] = {"application/json": {"schema": {"$ref": f"#/components/schemas/{answer}"}}}
    if body:
        content = {"application/json": {"schema": {"$ref": f"#/components/schemas/{body}"}}}
        if body == "MlflowRequest":
            content["text/csv"] = {"schema": {"type": "string"}}
        op["requestBody"] = {"required": True, "content": content}
        op["responses"].update(_ERRORS)
    if params:
        op["parameters"] = [{"name": p, "in": "path", "required": True, "schema": {"type": "string"}} for p in params]
    return op


def openapi_document(fleet: Any) -> dict[str, Any]:
    """The document, listing the served models in its description."""
    tensor = {"type": "object", "required": ["name", "shape", "datatype", "data"], "properties": {
        "name": {"type": "string"}, "shape": {"type": "array", "items": {"type": "integer"}},
        "datatype": {"type": "string", "enum": ["BOOL", "UINT8", "UINT16", "UINT32", "UINT64", "INT8", "INT16",
                                                "INT32", "INT64", "FP16", "FP32", "FP64", "BYTES"]},
        "data": {"type": "array"}, "parameters": {"type": "object"}}}
    n, v = ["name"], ["name", "version"]
    paths = {
        "/v2/health/live": {"get": _op("server live (OIP)")},
        "/v2/health/ready": {"get": _op("server ready (OIP)")},
        "/v2": {"get": _op("server metadata (OIP)")},
        "/v2/models": {"get": _op("served model names")},
        "/v2/models/{name}": {"get": _op("model metadata (OIP)", answer="ModelMetadata", params=n)},
        "/v2/models/{name}/ready": {"get": _op("model ready (OIP)", params=n)},
        "/v2/models/{name}/versions/{version}": {"get": _op("model version metadata", answer="ModelMetadata", params=v)},
        "/v2/models/{name}/versions/{version}/ready": {"get": _op("model version ready", params=v)},
        "/v2/models/{name}/infer": {"post": _op("inference (OIP); canary split and shadow apply",
                                                body="InferRequest", answer="InferResponse", params=n)},
        "/v2/models/{name}/versions/{version}/infer": {"post": _op("inference on one version",
                                                                   body="InferRequest", answer="InferResponse", params=v)},
        "/v2/models/{name}/feedback": {"post": _op("attach ground-truth labels to earlier request ids",
                                                   body="Feedback", params=n)},
        "/invocations": {"post": _op("MLflow scoring format (first model, or ?model=name)", body="MlflowRequest",
                                     answer="MlflowResponse")},
        "/ping": {"get": _op("MLflow health")}, "/health": {"get": _op("MLflow health")},
        "/version": {"get": _op("server version")}, "/metrics": {"get": _op("Prometheus metrics")},
    }
    schemas = {
        "Error": {"type": "object", "required": ["error"],
                  "properties": {"error": {"type": "string"}, "request_id": {"type": "string"}}},
        "Tensor": tensor,
        "InferRequest": {"type": "object", "required": ["inputs"], "properties": {
            "id": {"type": "string"}, "parameters": {"type": "object"},
            "inputs": {"type": "array", "items": {"$ref": "#/components/schemas/Tensor"}},
            "outputs": {"type": "array", "items": {"type": "object", "properties": {"name": {"type": "string"}}}}}},
        "InferResponse": {"type": "object", "properties": {
            "model_name": {"type": "string"}, "model_version": {"type": "string"}, "id": {"type": "string"},
            "outputs": {"type": "array", "items": {"$ref": "#/components/schemas/Tensor"}}}},
        "ModelMetadata": {"type": "object", "properties": {
            "name": {"type": "string"}, "versions": {"type": "array", "items": {"type": "string"}},
            "platform": {"type": "string"}, "inputs": {"type": "array"}, "outputs": {"type": "array"}}},
        "MlflowRequest": {"type": "object", "description": "exactly one of the four keys", "properties": {
            "dataframe_split": {"type": "object", "properties": {"columns": {"type": "array"}, "data": {"type": "array"}}},
            "dataframe_records": {"type": "array", "items": {"type": "object"}},
            "instances": {}, "inputs": {}}},
        "MlflowResponse": {"type": "object", "properties": {"predictions": {"type": "array"}}},
        "Feedback": {"type": "object", "properties": {
            "request_id": {"type": "string"}, "label": {}, "labels": {"type": "array"}, "row": {"type": "integer"},
            "feedback": {"type": "array", "items": {"type": "object"}}}},
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
