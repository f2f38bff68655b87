"""Model serving: Open Inference Protocol v2 and MLflow's scoring format over one ASGI app.

    conveyor serve models:/iris@champion --canary iris@challenger:10 --follow

or, embedded::

    from conveyor.serving import create_app
    app = create_app(["models:/iris@champion"])      # any ASGI server runs it

Routes: ``/v2/health/{live,ready}``, ``/v2``, ``/v2/models[/{name}[/versions/{v}]][/ready]``,
``POST /v2/models/{name}[/versions/{v}]/infer``, ``POST /v2/models/{name}/feedback``,
``POST /invocations`` (``dataframe_split``, ``dataframe_records``, ``instances``,
``inputs``, ``text/csv``), ``/ping``, ``/health``, ``/version``, ``/metrics``
(Prometheus), ``/openapi.json`` and ``/docs``. Every error is ``{"error": …}``.

Settings: the ``[serving]`` table of conveyor.toml (command-line options win):

==================  ==========  ===============================================================
key                 default     meaning
==================  ==========  ===============================================================
batching            true        coalesce concurrent requests into one predict call
max_batch_size      64          most rows per predict call
max_wait_ms         2.0         longest a request waits for others to join its batch
inline_predict_ms   1.0         models faster than this predict on the event loop (no thread hop)
queue_size          1024        requests waiting per model version before 503 + Retry-After
max_body_bytes      8388608     largest request body (413 above)
body_timeout_s      30          seconds a client may take to send its body (408 after)
log_predictions     true        write the prediction log to the artifact store
log_sample_rate     1.0         share of requests logged
log_flush_s         1.0         seconds between log writes
log_flush_rows      5000        buffered rows that trigger an early write
log_buffer_rows     100000      buffer bound; rows beyond are dropped (and counted)
follow_interval_s   2.0         registry polling period with ``--follow``
sticky_header       (none)      header whose value pins a client to champion or canary
access_log          true        JSON access lines on the ``conveyor.serving.access`` logger
header_timeout_s    10          seconds a client may take to send a request's headers (408, closed)
feedback_max_age_s  604800      oldest answered request (seconds) that feedback may still label
==================  ==========  ===============================================================

The prediction log (one Parquet object per model, version and hour per flush, indexed
in the ``serving_log_files`` table) is read with :func:`read_prediction_log`; labels
sent to ``/feedback`` with :func:`read_feedback`. Feedback is accepted only for request ids
in the prediction log, for rows they had, with labels of the kind the model predicts, and
each label row carries the version that answered (``conveyor monitor export`` writes the
joined log to Parquet or CSV). ``/metrics`` uses prometheus_client; with ``--workers N`` it
adds up every worker (multiprocess mode).
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from conveyor.serving._app import create_app
    from conveyor.serving._build import build_context
    from conveyor.serving._config import CanarySpec, ServingConfig
    from conveyor.serving._deploy import ModelSource, ServedModel
    from conveyor.serving._reader import read_feedback, read_prediction_log
    from conveyor.serving._server import run
    from conveyor.serving._source import RegistrySource

# Names resolve on first use (PEP 562): ``conveyor server`` imports ``conveyor.serving._nodelay``
# and ``_server`` only, and must not pay for the app, the build context and the Parquet
# prediction log (pandas, pyarrow) at start-up.
_LAZY = {
    "create_app": "_app", "build_context": "_build", "CanarySpec": "_config", "ServingConfig": "_config",
    "ModelSource": "_deploy", "ServedModel": "_deploy", "read_feedback": "_reader",
    "read_prediction_log": "_reader", "run": "_server", "RegistrySource": "_source",
}


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'conveyor.serving' has no attribute {name!r}")
    value = getattr(importlib.import_module(f"conveyor.serving.{module}"), name)
    globals()[name] = value
    return value


__all__ = [
    "CanarySpec",
    "ModelSource",
    "RegistrySource",
    "ServedModel",
    "ServingConfig",
    "build_context",
    "create_app",
    "read_feedback",
    "read_prediction_log",
    "run",
]
