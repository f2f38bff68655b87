"""Moving in from other tools: ``conveyor import mlflow`` copies an MLflow tracking server, file
store or SQLite store (experiments, runs with full metric histories, artifacts, registered
models) into this project's stores, idempotently. ``mlflow`` itself is never imported."""

from conveyor.importers._mlflow import NotRegistered, Progress, Report, import_mlflow

__all__ = ["NotRegistered", "Progress", "Report", "import_mlflow"]
