"""Versioned data sets as pipeline inputs: ``conveyor.pipelines.dataset("name@3")``.

The coordinator resolves the reference (``name`` alone pins the latest version at run
time), hands the stored content to the steps without copying it (a small manifest over
the data set's own objects), and records ``data:/name@N`` as an input of every step run
that reads it and of the pipeline run. Its digest is the input digest in the cache key,
so a new data set version misses the cache and the same version hits it.
"""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path
from typing import Any

from conveyor.errors import InvalidInput
from conveyor.pipelines._dag import Handle, Step, StepOptions, current_graph


def _dataset_input(ref: str) -> Any:
    raise InvalidInput(  # never runs in a worker: the coordinator resolves data set inputs
        "a data set input is resolved by the pipeline runner", field="ref", value=ref
    )


DATASET_STEP = Step(_dataset_input, StepOptions(cache=False))


def dataset(ref: str) -> Any:
    """A data set version as a pipeline input (a DataFrame for tables, a Path otherwise).

    Outside a pipeline it is ``conveyor.data.load(ref)``.

    Example::

        @conveyor.pipeline
        def train():
            fit(conveyor.pipelines.dataset("breast-cancer@1"))
    """
    from conveyor.data import parse_dataset_ref

    parsed = parse_dataset_ref(ref)
    graph = current_graph()
    if graph is None:
        from conveyor.data import load

        return load(ref)
    handle: Handle = graph.add(DATASET_STEP, (str(parsed),), {}, (), name=parsed.name)
    return handle


def resolve(tracker: Any, ref: str) -> tuple[str, dict[str, str]]:
    """``(data:/name@N, output)``: the pinned version and a stored output over its content."""
    from conveyor.blobs import Digest, Manifest, ManifestEntry
    from conveyor.data import get_version

    version = get_version(ref, tracker=tracker)
    blobs = tracker.blobs
    meta = json.dumps({"kind": version.kind, "format": version.format, "name": Path(version.source).name or version.name})
    meta_blob = blobs.put_bytes(meta.encode())
    entries = [ManifestEntry("dataset.json", meta_blob.digest, meta_blob.size)]
    digest = Digest.parse(version.digest)
    if version.kind == "folder":
        # replace(): an entry stored in a pack keeps its pack and offset.
        entries += [replace(e, path=f"content/{e.path}") for e in blobs.read_manifest(digest).entries]
    else:
        entries.append(ManifestEntry(f"content/{version.format or 'file'}", digest, version.size))
    manifest = blobs.put_bytes(Manifest.of(entries).to_bytes())
    output = {"digest": str(manifest.digest), "materializer": "dataset", "type_name": f"dataset.{version.kind}"}
    return version.ref, output


class DatasetMaterializer:
    """Loads data set inputs (never chosen to save: ``handles`` is always False)."""

    name = "dataset"

    def handles(self, obj: object) -> bool:
        return False

    def save(self, obj: Any, folder: Path) -> None:
        raise InvalidInput("data set inputs are not saved by steps", field="materializer", value="dataset")

    def load(self, folder: Path) -> Any:
        meta = json.loads((folder / "dataset.json").read_text(encoding="utf-8"))
        content = folder / "content"
        if meta["kind"] == "table":
            import pandas as pd

            path = content / meta["format"]
            return pd.read_parquet(path) if meta["format"] == "parquet" else pd.read_csv(path)
        if meta["kind"] == "file":
            target = content / meta["name"]
            (content / "file").rename(target)
            return target
        return content
