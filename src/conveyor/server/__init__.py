"""``conveyor server``: one HTTP server over the project's stores.

It answers MLflow's REST API (``/api/2.0/mlflow/…`` and ``/ajax-api/2.0/mlflow/…``) and
its proxied artifact API, so the unmodified ``mlflow`` client logs conveyor runs, plus
``/health``, ``/version`` and Prometheus ``/metrics``. See docs/server.md.
"""

from __future__ import annotations

from conveyor.server._app import create_app
from conveyor.server._serve import open_tracker, run
from conveyor.server._access import RolePolicy
from conveyor.server._tokens import TokenRecord, TokenStore
from conveyor.server._users import Principal, Users

__all__ = ["Principal", "RolePolicy", "TokenRecord", "TokenStore", "Users", "create_app", "open_tracker", "run"]
