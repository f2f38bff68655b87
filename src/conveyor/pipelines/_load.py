"""Reading step outputs back into Python objects (in the caller's process)."""

from __future__ import annotations

import tempfile
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from conveyor.errors import InvalidInput, NotFound


def read_output(blobs: Any, output: Mapping[str, str], dest: Path | None = None) -> Any:
    """Materialize one stored output (``{"digest", "materializer"}``) into an object.

    Path outputs are written under ``dest`` (a new temporary folder when omitted) and stay there.
    """
    from conveyor.blobs import Digest
    from conveyor.pipelines._materializers import get_materializer

    materializer = get_materializer(output["materializer"])
    if dest is None and materializer.name == "path":
        dest = Path(tempfile.mkdtemp(prefix="conveyor-output-"))
    if dest is not None:
        blobs.get_tree(Digest.parse(output["digest"]), dest)
        return materializer.load(dest)
    with tempfile.TemporaryDirectory(prefix="conveyor-output-") as tmp:
        blobs.get_tree(Digest.parse(output["digest"]), Path(tmp))
        return materializer.load(Path(tmp))


def load_output(steps: Mapping[str, Any], node: str, output: str | None, tracker: Any, run_id: str) -> Any:
    if node not in steps:
        raise NotFound("step", node, hint=f"steps: {', '.join(steps)}")
    result = steps[node]
    if result.status != "FINISHED":
        raise InvalidInput(f"step {node!r} did not finish ({result.status})", field="node", value=node)
    outputs = result.outputs
    name = output or (next(iter(outputs)) if len(outputs) == 1 else None)
    if name is None or name not in outputs:
        raise InvalidInput(
            f"step {node!r} has outputs {sorted(outputs)}; name one", field="output", value=output
        )
    if tracker is None:
        from conveyor.tracking import get_tracker

        tracker = get_tracker()
    from conveyor.pipelines._remote import blobs_of

    return read_output(blobs_of(tracker, run_id), outputs[name])
