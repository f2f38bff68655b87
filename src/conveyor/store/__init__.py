"""Persistence of metadata: one SQLAlchemy store, one module per aggregate.

SQLite (WAL, busy timeouts, ``BEGIN IMMEDIATE`` writers) by default, PostgreSQL through
psycopg 3 for teams; Alembic migrations ship in ``migrations/``.
"""

from conveyor.store._artifacts import ArtifactRepo, artifacts
from conveyor.store._datasets import DatasetRepo, VersionRow, dataset_versions, datasets
from conveyor.store._dialect import insert_ignore, upsert
from conveyor.store._experiments import DEFAULT_EXPERIMENT, ExperimentRepo, experiments
from conveyor.store._lineage import LineageRepo, lineage_edges
from conveyor.store._metrics import MetricRepo, Point, latest_metrics, metric_batches, metrics
from conveyor.store._pipelines import (
    ExecutionRecord,
    OutputRecord,
    PipelineRepo,
    PipelineRunRecord,
    pipeline_runs,
    step_executions,
    step_outputs,
)
from conveyor.store._registry import (
    RegistryRepo,
    gate_evaluations,
    model_aliases,
    model_version_tags,
    model_versions,
    registered_models,
    registry_events,
)
from conveyor.store._monitoring import (
    AlertRow,
    EvaluationRow,
    MonitoringRepo,
    TriggerRow,
    monitor_alerts,
    monitor_evaluations,
    monitor_notifications,
    monitor_references,
    retrain_triggers,
)
from conveyor.store._compat import schema_log
from conveyor.store._runs import RunRepo, params, run_tags, runs, validate_key
from conveyor.store._users import api_tokens, roles, users
from conveyor.store._serving import LogFile, ServingLogRepo, serving_log_files
from conveyor.store._receipts import write_receipts
from conveyor.store._schema import DIGEST_COLUMNS, DigestColumn, metadata, register_digest_column
from conveyor.store._maintenance import DoctorReport, GcReport, collect_garbage, doctor, referenced
from conveyor.store._search import search_runs
from conveyor.store._filter import parse_filter, parse_order_by
from conveyor.store._store import Store, head_revision, mask_url, normalize_url

__all__ = [
    "AlertRow",
    "ArtifactRepo",
    "DEFAULT_EXPERIMENT",
    "DIGEST_COLUMNS",
    "DatasetRepo",
    "DigestColumn",
    "DoctorReport",
    "EvaluationRow",
    "ExecutionRecord",
    "ExperimentRepo",
    "GcReport",
    "LineageRepo",
    "LogFile",
    "MetricRepo",
    "MonitoringRepo",
    "OutputRecord",
    "PipelineRepo",
    "PipelineRunRecord",
    "Point",
    "RegistryRepo",
    "RunRepo",
    "ServingLogRepo",
    "Store",
    "TriggerRow",
    "VersionRow",
    "api_tokens",
    "artifacts",
    "collect_garbage",
    "dataset_versions",
    "datasets",
    "doctor",
    "experiments",
    "gate_evaluations",
    "head_revision",
    "insert_ignore",
    "latest_metrics",
    "lineage_edges",
    "mask_url",
    "metadata",
    "metric_batches",
    "metrics",
    "model_aliases",
    "model_version_tags",
    "model_versions",
    "monitor_alerts",
    "monitor_evaluations",
    "monitor_notifications",
    "monitor_references",
    "normalize_url",
    "params",
    "parse_filter",
    "parse_order_by",
    "pipeline_runs",
    "referenced",
    "register_digest_column",
    "registered_models",
    "registry_events",
    "retrain_triggers",
    "roles",
    "run_tags",
    "runs",
    "schema_log",
    "search_runs",
    "serving_log_files",
    "step_executions",
    "step_outputs",
    "upsert",
    "users",
    "validate_key",
    "write_receipts",
]
