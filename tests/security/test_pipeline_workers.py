"""The warm step server is reachable only by its user, and steps cannot reach the metadata store."""

from __future__ import annotations

import os
import stat
from pathlib import Path

import pytest


def test_the_fork_server_socket_lives_in_a_private_folder() -> None:
    from conveyor.pipelines._forkserver import ForkServer

    server = ForkServer(())
    try:
        assert server.wait_ready(120)
        folder = Path(server.path).parent
        assert stat.S_IMODE(folder.stat().st_mode) == 0o700  # no other user can connect to it
        assert folder.stat().st_uid == os.getuid()
    finally:
        server.close()
    assert not Path(server.path).parent.exists()


def test_a_step_cannot_write_other_runs_or_the_metadata_store() -> None:
    from conveyor.entities import Run, RunStatus
    from conveyor.errors import InvalidInput
    from conveyor.pipelines._steprun import StepTracker

    step = StepTracker(blobs=None, run=Run("r1", 1, "e", "train", RunStatus.RUNNING, 0))
    with pytest.raises(InvalidInput, match="its own run only"):
        step.log_params("another-run", {"a": 1})
    with pytest.raises(InvalidInput, match="metadata store"):
        step.store.runs  # noqa: B018 — any use of the store is refused
    with pytest.raises(InvalidInput, match="reserved"):
        from conveyor.entities import Artifact

        step._record(Artifact("r1", "outputs/output", "blake3:00", 1, "x"))
