"""Gate evaluations in remote mode (``[server] url`` set): the evaluation is computed here —
the models load through the server's artifact endpoints, the data through ``conveyor.data``
— and stored and read through ``/api/v1/models/{name}/…/evaluations``, so no store
credentials are needed on this side.

The body sent is :meth:`Evaluation.to_dict` made plain JSON (numpy scalars as numbers,
NaN and infinities as the strings ``"NaN"``, ``"Infinity"``, ``"-Infinity"``, the API's
rule). The evaluation's id travels as the ``Idempotency-Key``: a retry after a lost answer
finds the evaluation the first attempt stored instead of storing a second one. The server
records who stored it and stamps ``created_at`` with its own clock (which orders the
evaluations that promotion reads).
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any
from urllib.parse import quote

from conveyor.gates._result import Evaluation

#: Float fields of a stored evaluation: "NaN"/"Infinity" strings in JSON become floats again.
_FLOAT_MAPS = ("metrics", "champion_metrics", "baseline_metrics")


def is_remote(registry: Any) -> bool:
    from conveyor.registry._remote import RemoteRegistry

    return isinstance(registry, RemoteRegistry)


def _seg(value: object) -> str:
    return quote(str(value), safe="")


def plain(value: Any) -> Any:
    """``value`` as strict JSON: numpy scalars and arrays as numbers and lists, non-finite
    floats as the API's strings, other objects as their text (as the embedded store keeps them)."""
    import numpy as np

    if isinstance(value, Mapping):
        return {str(k): plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple, np.ndarray)):
        return [plain(v) for v in value]
    if isinstance(value, np.generic):
        value = value.item()
    if isinstance(value, float):
        if math.isnan(value):
            return "NaN"
        if math.isinf(value):
            return "Infinity" if value > 0 else "-Infinity"
        return value
    if value is None or isinstance(value, (bool, int, str)):
        return value
    return str(value)


def store_remote(registry: Any, evaluation: Evaluation) -> Evaluation:
    """POST ``evaluation`` to the server; returns the stored one (the server's ``created_at``)."""
    from conveyor.registry import current_user_name

    body = plain(evaluation.to_dict())
    body["user"] = current_user_name()  # recorded only when the server does not authenticate
    path = f"/models/{_seg(evaluation.model)}/versions/{int(evaluation.version or 0)}/evaluations"
    # retried through a server restart: the Idempotency-Key (the evaluation's id) makes a
    # second attempt find the first one's row instead of storing the evaluation twice
    answer = registry.http.json("POST", path, json=body, headers={"Idempotency-Key": str(evaluation.id)})
    return evaluation.with_(created_at=int(answer["created_at"]))


def evaluation_of(data: Mapping[str, Any]) -> Evaluation:
    """An :class:`Evaluation` from the server's JSON (``GateEvaluationOut``)."""
    fields = dict(data)
    fields["schema"] = fields.pop("data_schema", [])
    for key in _FLOAT_MAPS:
        if fields.get(key) is not None:
            fields[key] = {k: None if v is None else float(v) for k, v in fields[key].items()}
    return Evaluation.from_dict(fields)


def evaluations_remote(registry: Any, name: str, version: int | None = None) -> list[Evaluation]:
    """Stored evaluations of ``name`` (or one version), newest first, through the server."""
    params = {} if version is None else {"version": int(version)}
    found = registry.http.json("GET", f"/models/{_seg(name)}/evaluations", params=params)
    return [evaluation_of(e) for e in found["evaluations"]]


__all__ = ["evaluation_of", "evaluations_remote", "is_remote", "plain", "store_remote"]
