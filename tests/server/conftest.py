"""The server's tests use the real mlflow client and a real server process (fixtures/mlflow_client.py)."""

from fixtures.mlflow_client import live_server, mlflow_python  # noqa: F401  (fixtures)
from fixtures.api_world import api_world  # noqa: E402,F401  (fixture: /api/v1 read endpoints over real records)
