"""Read the prediction log and the feedback back as pandas DataFrames (for monitoring)."""

from __future__ import annotations

import logging
from datetime import datetime, timezone
from typing import Any

from conveyor.errors import InvalidInput

log = logging.getLogger("conveyor.serving")


def _ms(value: datetime | str | int | float | None, field: str) -> int | None:
    if value is None:
        return None
    if isinstance(value, (int, float)):
        return int(value)
    if isinstance(value, str):
        try:
            value = datetime.fromisoformat(value)
        except ValueError:
            raise InvalidInput(f"{field} {value!r} is not an ISO date/time", field=field, value=value,
                               hint="write e.g. 2026-11-27T09:00:00+00:00") from None
    if value.tzinfo is None:
        value = value.replace(tzinfo=timezone.utc)
    return int(value.timestamp() * 1000)


def _concat(tables: list[Any]) -> Any:
    """One table of the log files. A column whose files disagree on its kind (a string label
    among numeric ones, written before feedback was checked) is read as a number when any
    file has it numeric: values that are no number become missing, and are counted in a
    warning, so one bad row cannot stop every reader (monitors, exports) of the window."""
    import pyarrow as pa
    import pyarrow.types as t

    try:
        return pa.concat_tables(tables, promote_options="permissive")
    except (pa.ArrowInvalid, pa.ArrowTypeError, pa.ArrowNotImplementedError):
        pass
    kinds: dict[str, list[Any]] = {}
    for table in tables:
        for f in table.schema:
            kinds.setdefault(f.name, []).append(f.type)
    target: dict[str, Any] = {}
    for name, types in kinds.items():
        if len(set(types)) > 1:
            numeric = any(t.is_integer(x) or t.is_floating(x) for x in types)
            target[name] = pa.float64() if numeric else pa.string()
    lost = 0
    fixed = []
    for table in tables:
        for name, kind in target.items():
            i = table.schema.get_field_index(name)
            if i < 0 or table.schema.field(i).type == kind:
                continue
            column, n = _coerce(table.column(i), kind)
            lost += n
            table = table.set_column(i, pa.field(name, kind), column)
        fixed.append(table)
    if lost:
        log.warning("prediction log: %d value(s) of column(s) %s are not of the column's kind; read as missing",
                    lost, sorted(target))
    return pa.concat_tables(fixed, promote_options="permissive")


def _coerce(column: Any, kind: Any) -> tuple[Any, int]:
    """``column`` as ``kind`` (float64 or string); values that do not convert become null."""
    import pandas as pd
    import pyarrow as pa
    import pyarrow.compute as pc

    try:
        return pc.cast(column, kind), 0
    except (pa.ArrowInvalid, pa.ArrowTypeError, pa.ArrowNotImplementedError):
        pass
    values = column.to_pandas()
    if pa.types.is_floating(kind):
        converted = pd.to_numeric(values.map(lambda v: v if isinstance(v, (int, float, str)) else None),
                                  errors="coerce")
    else:
        converted = values.map(lambda v: None if v is None else str(v))
    lost = int(converted.isna().sum() - values.isna().sum())
    return pa.array(converted, kind, from_pandas=True), max(lost, 0)


def _stores(tracker: Any) -> tuple[Any, Any]:
    if tracker is None:
        from conveyor.tracking import get_tracker

        tracker = get_tracker()
    return tracker.store, tracker.blobs


def _read(kind: str, model: str, version: str | None, since: Any, until: Any, tracker: Any) -> Any:
    import pandas as pd
    import pyarrow as pa
    import pyarrow.parquet as pq

    from conveyor.blobs import Digest
    from conveyor.store import ServingLogRepo

    since_ms, until_ms = _ms(since, "since"), _ms(until, "until")
    if tracker is None:
        from conveyor.tracking import get_tracker

        tracker = get_tracker()
    if getattr(tracker, "http", None) is not None:  # remote mode: the server reads the log files
        return _read_remote(kind, model, version, since_ms, until_ms, tracker)
    store, blobs = _stores(tracker)
    files = store.query(lambda conn: ServingLogRepo().find(conn, kind, model, version, since_ms, until_ms),
                        what=f"finding the {kind} log files of {model!r}")
    tables = [pq.read_table(pa.BufferReader(blobs.read_bytes(Digest.parse(f.digest)))) for f in files]
    if not tables:
        columns = ["request_id", "row", "timestamp", "model", "version"]
        return pd.DataFrame(columns=columns + (["latency_ms"] if kind == "predictions" else ["label"]))
    frame = _concat(tables).to_pandas()
    if since_ms is not None:
        frame = frame[frame["timestamp"] >= pd.Timestamp(since_ms, unit="ms", tz="UTC")]
    if until_ms is not None:
        frame = frame[frame["timestamp"] < pd.Timestamp(until_ms, unit="ms", tz="UTC")]
    return frame.sort_values(["timestamp", "request_id", "row"], kind="stable").reset_index(drop=True)


def _read_remote(kind: str, model: str, version: str | None, since_ms: int | None, until_ms: int | None,
                 tracker: Any) -> Any:
    """The same frame from a conveyor server's ``/api/v1/monitoring`` pages (remote mode)."""
    import pandas as pd

    path = "/monitoring/predictions" if kind == "predictions" else "/monitoring/feedback"
    params: dict[str, Any] = {"model": model, "max_results": 1000}
    for key, value in (("version", version), ("since", since_ms), ("until", until_ms)):
        if value is not None:
            params[key] = str(value)
    rows: list[dict[str, Any]] = []
    while True:
        page = tracker.http.json("GET", path, params=params)
        rows += page["rows"]
        if not page.get("next_page_token"):
            break
        params["page_token"] = page["next_page_token"]
    frame = pd.DataFrame(rows, columns=page["columns"])
    frame["timestamp"] = pd.to_datetime(frame["timestamp"], unit="ms", utc=True)
    return frame


def read_prediction_log(
    model: str,
    version: str | int | None = None,
    since: datetime | str | int | None = None,
    until: datetime | str | int | None = None,
    *,
    with_feedback: bool = False,
    tracker: Any = None,
) -> Any:
    """Every logged prediction of ``model`` (one row per predicted row), oldest first.

    Columns: ``request_id, row, timestamp, model, version, latency_ms``, the input columns
    under their signature names, then the outputs (``prediction`` or the signature's
    output names; ``output_<name>`` if a name clashes; ``probabilities``, one list per row,
    for requests that asked for them). ``since``/``until`` take datetimes
    (naive = UTC), ISO strings or ms since the epoch. ``with_feedback=True`` adds the
    ``label`` column from :func:`read_feedback` (NaN where none arrived).

    Example::

        >>> log = conveyor.serving.read_prediction_log("iris", since="2026-11-27T00:00")  # doctest: +SKIP
        >>> log[["request_id", "prediction"]].head()                                       # doctest: +SKIP
    """
    frame = _read("predictions", model, None if version is None else str(version), since, until, tracker)
    if with_feedback:
        labels = read_feedback(model, tracker=tracker)
        labels = labels.drop_duplicates(["request_id", "row"], keep="last")[["request_id", "row", "label"]]
        frame = frame.merge(labels, on=["request_id", "row"], how="left")
    return frame


def read_feedback(
    model: str,
    since: datetime | str | int | None = None,
    until: datetime | str | int | None = None,
    *,
    tracker: Any = None,
) -> Any:
    """Ground-truth labels posted to ``/v2/models/{model}/feedback``: ``request_id, row,
    timestamp, model, version, label`` (``version`` is the one that answered the request; a
    later label for the same row wins when joined).

    Example::

        >>> conveyor.serving.read_feedback("iris").label.mean()  # doctest: +SKIP
    """
    return _read("feedback", model, None, since, until, tracker)
