"""What a run read: the data set versions a registered version is linked to.

``conveyor.data`` (built separately) records lineage edges; until it is installed, or when
it records nothing for the run, the run's ``conveyor.data.inputs`` tag (comma-separated
``data:/name@version`` URIs) is the hook.
"""

from __future__ import annotations

from typing import Any

INPUTS_TAG = "conveyor.data.inputs"


def run_data_inputs(tracker: Any, run_id: str) -> tuple[str, ...]:
    """``data:/…`` URIs of the data set versions run ``run_id`` read (may be empty)."""
    found: list[str] = []
    try:
        from conveyor import data  # optional layer beside us; absent until it lands
    except ImportError:
        data = None  # type: ignore[assignment]
    reader = getattr(data, "run_inputs", None) if data is not None else None
    if callable(reader):
        try:
            found = [str(uri) for uri in reader(run_id)]
        except Exception:  # a lineage lookup must never block registration
            found = []
    if not found:
        run = tracker.get_run(run_id)
        tag = run.tags.get(INPUTS_TAG, "")
        found = [part.strip() for part in tag.split(",") if part.strip()]
    return tuple(found)


def record_version_lineage(tracker: Any, run_id: str | None, name: str, version: int) -> None:
    """Add the lineage edge model version ← run when ``conveyor.data`` offers one."""
    try:
        from conveyor import data
    except ImportError:
        return
    link = getattr(data, "record_edge", None)
    if callable(link) and run_id:
        try:
            link(f"runs:/{run_id}", f"models:/{name}/{version}")
        except Exception:  # lineage is best effort; the registry row is the record
            return
