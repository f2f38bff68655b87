"""Quickstart stage: version the bundled breast-cancer data, keep its schema, validate.

Needs from earlier stages: nothing (``story.facts["runs"]``, from the tracking stage, is
used when present, to record that those runs read this data set version).
Leaves in ``story.facts``: ``dataset`` (its ``data:/…@v`` reference) and ``schema_path``.
"""

from __future__ import annotations

from typing import Any

from rich.table import Table

from conveyor.quickstart._run import Story

DATASET = "breast-cancer"


def stage(story: Story) -> None:
    from sklearn.datasets import load_breast_cancer

    import conveyor.data as cd
    from conveyor.data._context import Stores

    stores = Stores(story.tracker.store, story.tracker.blobs, story.folder, story.settings)
    frame = load_breast_cancer(as_frame=True).frame
    version = cd.add(frame, name=DATASET, tracker=stores)
    state = "new version" if version.created else "unchanged since the last run"
    story.console.print(
        f"versioned the table as [bold]{version.ref}[/] ({state}): {version.profile['rows']} rows, "  # type: ignore[index]
        f"{len(version.profile['columns'])} columns, digest {version.digest[:19]}…"  # type: ignore[index]
    )
    for run in story.facts.get("runs", []):
        cd.log_input(version.ref, run[1], tracker=stores)

    schema_path = story.folder / "schemas" / f"{DATASET}.toml"
    if not schema_path.exists():  # inferred once, then it is the project's to edit
        cd.schema_of(version.ref, tracker=stores).write(schema_path)
    story.console.print(f"schema kept in the project: {schema_path.relative_to(story.folder)} (edit it: domain knowledge beats inference)")
    anomalies = cd.validate(version.ref, schema=schema_path, tracker=stores)
    story.console.print(f"{version.ref} against its schema: [green]{len(anomalies)} anomalies[/]")

    incoming = _incoming_batch(frame)
    found = cd.validate(incoming, schema=schema_path, tracker=stores)
    table = Table(title="a corrupted incoming batch, validated against the kept schema")
    for column in ("severity", "column", "anomaly", "expected", "found"):
        table.add_column(column)
    for a in found:
        color = "red" if a.severity == "error" else "yellow"
        table.add_row(f"[{color}]{a.severity}[/]", a.column or "(table)", a.kind, a.expected, a.found)
    story.console.print(table)
    story.console.print(
        f"explore: `conveyor data show {DATASET}` · `conveyor data validate {DATASET} --schema "
        f"{schema_path.relative_to(story.folder)}` · `conveyor lineage data:/{DATASET}@{version.version}`"
    )
    story.facts["dataset"] = version.ref
    story.facts["schema_path"] = schema_path


def _incoming_batch(frame: Any) -> Any:
    """A plausible bad batch: an upstream unit change, missing values, a renamed column."""
    batch = frame.sample(50, random_state=1).reset_index(drop=True)
    batch["mean radius"] = batch["mean radius"] * 25.4  # inches → millimetres upstream
    batch.loc[:9, "mean texture"] = None
    return batch.rename(columns={"worst area": "worst_area"})
