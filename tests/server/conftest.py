"""The server's tests use the real mlflow client and a real server process (fixtures/mlflow_client.py)."""

from fixtures.mlflow_client import live_server, mlflow_python  # noqa: F401  (fixtures)
