"""Security tests of the server use a real server process (fixtures/mlflow_client.py)."""

from fixtures.mlflow_client import live_server  # noqa: F401  (fixture)
