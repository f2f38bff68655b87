"""Request plumbing of the MLflow-compatible routes: inputs, the error shape, threads.

MLflow's client sends a GET request's fields as query parameters and every other
method's as a JSON body (``call_endpoint`` in mlflow/utils/rest_utils.py). A handler
here is a plain function ``(tracker, fields) -> dict`` run on a worker thread (the
stores are synchronous); :func:`endpoint` turns it into a Starlette endpoint that answers
every mistake with MLflow's error shape and a 4xx.
"""

from __future__ import annotations

import functools
import logging
from collections.abc import Callable, Mapping
from typing import Any

import orjson
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import Response

from conveyor.errors import ConveyorError
from conveyor.server._errors import ApiError, from_conveyor, invalid

log = logging.getLogger("conveyor.server")

MAX_JSON_BYTES = 16 * 1024 * 1024
Fields = Mapping[str, Any]
Handler = Callable[[Any, Fields], dict[str, Any]]


def json_response(data: Any, status: int = 200) -> Response:
    return Response(orjson.dumps(data, option=orjson.OPT_SERIALIZE_NUMPY), status, media_type="application/json")


def error_response(error: ApiError) -> Response:
    return json_response(error.body(), error.status)


async def read_fields(request: Request) -> dict[str, Any]:
    """A GET's query parameters (repeated keys become lists) or a JSON object body."""
    if request.method == "GET":
        out: dict[str, Any] = {}
        for key, value in request.query_params.multi_items():
            if key in out:
                out[key] = [*out[key], value] if isinstance(out[key], list) else [out[key], value]
            else:
                out[key] = value
        return out
    limit = getattr(request.app.state, "max_json_bytes", MAX_JSON_BYTES)
    declared = request.headers.get("content-length")
    if declared is not None and (not declared.isdigit() or int(declared) > limit):
        raise ApiError("REQUEST_LIMIT_EXCEEDED", f"request body over {limit} bytes ([server] max_json_bytes)")
    body = bytearray()
    async for chunk in request.stream():
        body += chunk
        if len(body) > limit:
            raise ApiError("REQUEST_LIMIT_EXCEEDED", f"request body over {limit} bytes ([server] max_json_bytes)")
    if not body.strip():
        return {}
    try:
        data = orjson.loads(body)
    except orjson.JSONDecodeError as exc:
        raise ApiError("BAD_REQUEST", f"malformed JSON body: {exc}") from None
    if not isinstance(data, dict):
        raise ApiError("BAD_REQUEST", f"the JSON body must be an object, got {type(data).__name__}")
    return data


def endpoint(handler: Handler) -> Callable[[Request], Any]:
    """A Starlette endpoint around ``handler``: fields in, JSON out, MLflow errors; the
    caller's permission is checked first (``conveyor.server._guard``)."""
    from conveyor.server import _access
    from conveyor.server._guard import run_guarded

    @functools.wraps(handler)
    async def route(request: Request) -> Response:
        try:
            fields = await read_fields(request)
            access = _access.of(request)
            result = await run_in_threadpool(_access.call, access, run_guarded, handler, access,
                                             request.app.state.tracker, fields)
        except ApiError as error:
            return error_response(error)
        except ConveyorError as error:
            return error_response(from_conveyor(error))
        return json_response(result)

    return route


# -- typed access to request fields: every mistake names the field and the value -----------------
def text(fields: Fields, name: str, *, required: bool = False, default: str | None = None) -> str | None:
    value = fields.get(name)
    if value is None or value == "":
        if required:
            raise invalid(f"Missing value for required parameter '{name}'.")
        return default
    if not isinstance(value, str):
        raise invalid(f"Invalid value {value!r} for parameter '{name}': expected a string.")
    return value


def integer(fields: Fields, name: str, *, required: bool = False, default: int | None = None) -> int | None:
    value = fields.get(name)
    if value is None or value == "":
        if required:
            raise invalid(f"Missing value for required parameter '{name}'.")
        return default
    if isinstance(value, bool):
        raise invalid(f"Invalid value {value!r} for parameter '{name}': expected an integer.")
    if isinstance(value, int):
        return value
    if isinstance(value, float) and value.is_integer():
        return int(value)
    if isinstance(value, str):
        try:
            return int(value)
        except ValueError:
            pass
    raise invalid(f"Invalid value {value!r} for parameter '{name}': expected an integer.")


def number(fields: Fields, name: str) -> float:
    """A metric value: a JSON number, or the strings MLflow's client uses for NaN and ±inf."""
    value = fields.get(name)
    if value is None:
        raise invalid(f"Missing value for required parameter '{name}'.")
    if isinstance(value, bool):
        raise invalid(f"Invalid value {value!r} for parameter '{name}': expected a number.")
    if isinstance(value, (int, float)):
        return float(value)
    if isinstance(value, str):
        try:
            return float(value)  # "NaN", "Infinity", "-Infinity" and numbers as text
        except ValueError:
            pass
    raise invalid(f"Invalid value {value!r} for parameter '{name}': expected a number.")


def items(fields: Fields, name: str) -> list[dict[str, Any]]:
    """A repeated message field (``tags``, ``metrics`` …): a list of JSON objects."""
    value = fields.get(name)
    if value is None:
        return []
    if not isinstance(value, list) or not all(isinstance(v, dict) for v in value):
        raise invalid(f"Invalid value for parameter '{name}': expected a list of objects.")
    return value


def strings(fields: Fields, name: str) -> list[str]:
    value = fields.get(name)
    if value is None:
        return []
    if isinstance(value, str):
        return [value]
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise invalid(f"Invalid value {value!r} for parameter '{name}': expected a list of strings.")
    return value


def run_id_of(fields: Fields) -> str:
    """``run_id``, or the deprecated ``run_uuid`` older clients send."""
    value = text(fields, "run_id") or text(fields, "run_uuid")
    if value is None:
        raise invalid("Missing value for required parameter 'run_id'.")
    return value


def key_values(fields: Fields, name: str) -> dict[str, str]:
    """``[{key, value}]`` as a dict, each key and value a string."""
    out: dict[str, str] = {}
    for entry in items(fields, name):
        key, value = entry.get("key"), entry.get("value", "")
        if not isinstance(key, str) or not key:
            raise invalid(f"Invalid {name} entry {entry!r}: 'key' must be a non-empty string.")
        if value is None:
            value = ""
        if not isinstance(value, (str, int, float)) or isinstance(value, bool):
            raise invalid(f"Invalid {name} entry {entry!r}: 'value' must be a string.")
        out[key] = str(value)
    return out
