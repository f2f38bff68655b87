"""Value objects of experiment tracking."""

from __future__ import annotations

import enum
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime


def now_ms() -> int:
    """Milliseconds since the epoch: the unit of every stored timestamp."""
    return time.time_ns() // 1_000_000


def ms_to_datetime(ms: int | None) -> datetime | None:
    """A stored millisecond timestamp as an aware UTC datetime."""
    return None if ms is None else datetime.fromtimestamp(ms / 1000, tz=UTC)


class RunStatus(enum.StrEnum):
    """Life cycle of a run: RUNNING until it ends FINISHED, FAILED or KILLED."""

    RUNNING = "RUNNING"
    FINISHED = "FINISHED"
    FAILED = "FAILED"
    KILLED = "KILLED"

    @property
    def is_terminal(self) -> bool:
        return self is not RunStatus.RUNNING


@dataclass(frozen=True, slots=True)
class Experiment:
    """A named group of runs."""

    id: int
    name: str
    description: str = ""
    archived: bool = False
    created_at: int = 0
    tags: Mapping[str, str] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class Metric:
    """One point of a metric's history; ``value`` may be NaN or infinite."""

    key: str
    value: float
    step: int
    timestamp: int


@dataclass(frozen=True, slots=True)
class Artifact:
    """A file (or, with ``is_dir``, a folder stored as a manifest) logged to a run."""

    run_id: str
    path: str
    digest: str
    size: int
    media_type: str
    is_dir: bool = False


@dataclass(frozen=True, slots=True)
class Run:
    """One execution of training (or any) code, with what it logged and where it ran."""

    id: str
    experiment_id: int
    experiment: str
    name: str
    status: RunStatus
    start_time: int
    end_time: int | None = None
    parent_id: str | None = None
    user: str = ""
    host: str = ""
    entry_point: str | None = None
    command: str | None = None
    git_commit: str | None = None
    git_branch: str | None = None
    git_dirty: bool | None = None
    python_version: str | None = None
    packages_digest: str | None = None
    error: str | None = None
    deleted: bool = False
    params: Mapping[str, str] = field(default_factory=dict)
    metrics: Mapping[str, float] = field(default_factory=dict)
    tags: Mapping[str, str] = field(default_factory=dict)

    @property
    def started_at(self) -> datetime:
        started = ms_to_datetime(self.start_time)
        assert started is not None
        return started

    @property
    def ended_at(self) -> datetime | None:
        return ms_to_datetime(self.end_time)

    @property
    def duration_s(self) -> float | None:
        return None if self.end_time is None else (self.end_time - self.start_time) / 1000
