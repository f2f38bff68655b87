"""``/api/v1/datasets``: data set versions — their schema and per-column profile, the diff
between two versions, validation anomalies and lineage.

Read through :mod:`conveyor.data` as ``conveyor data`` does. Validation is computed when
asked (conveyor stores profiles, not validation runs): a table version against an older
version's inferred schema, by default the version before it, as ``conveyor data validate``.
Permission: ``read`` on kind ``data``, the data set's name; the list leaves out data sets
the caller may not read.
"""

from __future__ import annotations

from typing import Any, Literal

from fastapi import APIRouter, Path, Query, Request
from pydantic import BaseModel, Field

from conveyor.errors import InvalidInput
from conveyor.server.api import _deps
from conveyor.server.api._listing import MAX_PAGE, Lineage, allowed, lineage_of, page

router = APIRouter(prefix="/datasets", tags=["datasets"])

DatasetName = Path(..., description="Data set name.", min_length=1, max_length=128)
VersionNumber = Path(..., description="Version number.", ge=1, le=2**31 - 1)


class DatasetVersionOut(BaseModel):
    ref: str = Field(description="data:/<name>@<version>")
    name: str
    version: int
    digest: str = Field(description="Content digest: a file object, or a manifest for folders.")
    kind: Literal["file", "folder", "table"]
    format: str | None = Field(description="csv or parquet for tables.")
    size: int
    file_count: int
    source: str = Field(description="Where it was added from.")
    created_at: int
    run_id: str | None = Field(description="The run that produced it, if any.")


class ColumnProfile(BaseModel):
    type: str = Field(description="bool | int | float | datetime | string")
    dtype: str
    nulls: int
    null_rate: float
    distinct: int
    min: float | int | str | None = None
    max: float | int | str | None = None
    mean: float | None = None
    std: float | None = None
    quantiles: dict[str, float | None] | None = None
    categories: list[str] | None = None
    top: dict[str, int] | None = Field(None, description="The 10 most frequent values with their counts.")


class Profile(BaseModel):
    rows: int
    columns: dict[str, ColumnProfile]


class ColumnExpectation(BaseModel):
    type: str
    nullable: bool = True
    min: float | int | None = None
    max: float | int | None = None
    categories: list[str] | None = None
    max_null_rate: float | None = None
    required: bool = True


class SchemaOut(BaseModel):
    allow_extra_columns: bool
    min_rows: int
    columns: dict[str, ColumnExpectation]


class DatasetVersionDetail(DatasetVersionOut):
    data_schema: SchemaOut | None = Field(
        None, description="The schema inferred from the profile (tables only), as `conveyor data schema` writes it.")
    profile: Profile | None = Field(None, description="Rows and per-column statistics (tables only).")


class DatasetPage(BaseModel):
    datasets: list[DatasetVersionOut] = Field(description="The latest version of each data set, by name.")
    next_page_token: str | None = None


class VersionList(BaseModel):
    versions: list[DatasetVersionOut]


class StatChange(BaseModel):
    a: Any
    b: Any


class DiffOut(BaseModel):
    a: str
    b: str
    same_content: bool
    added: list[str] = Field(description="Files only in b (folders).")
    removed: list[str]
    changed: list[str]
    rows: list[int] | None = Field(description="[rows of a, rows of b] for tables.")
    schema_changes: list[str] = Field(description="'+ col (type)', '- col (type)', '~ col: a → b'.")
    changed_columns: dict[str, dict[str, StatChange]] = Field(
        description="Column → statistic (null_rate, min, max, mean, std, distinct, new_categories) → a and b.")


class AnomalyOut(BaseModel):
    column: str | None
    kind: str
    expected: str
    found: str
    severity: Literal["warning", "error"]


class ValidationOut(BaseModel):
    ref: str
    against: str = Field(description="The version whose inferred schema was checked.")
    passed: bool = Field(description="No anomaly at error severity.")
    anomalies: list[AnomalyOut]


def _tracker(request: Request, name: str) -> Any:
    _deps.authorize(request, "data", name, "read")
    return _deps.tracker(request)


def _summary(v: Any) -> DatasetVersionOut:
    return DatasetVersionOut.model_validate(v.to_dict(profile=False))


@router.get("", response_model=DatasetPage, summary="Every data set with its latest version")
def list_datasets(
    request: Request,
    search: str | None = Query(None, max_length=128, description="Only names containing this text (case-insensitive)."),
    max_results: int = Query(100, ge=1, le=MAX_PAGE), page_token: str | None = Query(None),
) -> Any:
    from conveyor.data import list_datasets as latest

    found = [v for v in latest(tracker=_deps.tracker(request))
             if allowed(request, "data", v.name, "read")]  # leave out what the caller may not read
    if search:
        found = [v for v in found if search.lower() in v.name.lower()]
    chosen, token = page(found, page_token, max_results)
    return DatasetPage(datasets=[_summary(v) for v in chosen], next_page_token=token)


@router.get("/{name}/versions", response_model=VersionList, summary="The versions of a data set, oldest first")
def list_versions(request: Request, name: str = DatasetName) -> Any:
    from conveyor.data import versions

    return VersionList(versions=[_summary(v) for v in versions(name, tracker=_tracker(request, name))])


def _detail(tracker: Any, ref: str) -> DatasetVersionDetail:
    from conveyor.data import get_version
    from conveyor.data._schema import infer_schema

    v = get_version(ref, tracker=tracker)
    schema = infer_schema(v.profile, source=v.ref).to_dict() if v.profile else None
    return DatasetVersionDetail.model_validate({**v.to_dict(profile=True), "data_schema": schema})


@router.get("/{name}/latest", response_model=DatasetVersionDetail, summary="The newest version, with its profile")
def latest_version(request: Request, name: str = DatasetName) -> Any:
    return _detail(_tracker(request, name), f"data:/{name}")


@router.get("/{name}/versions/{version}", response_model=DatasetVersionDetail,
            summary="A version with its schema and per-column statistics")
def get_version(request: Request, name: str = DatasetName, version: int = VersionNumber) -> Any:
    return _detail(_tracker(request, name), f"data:/{name}@{version}")


@router.get("/{name}/diff", response_model=DiffOut, summary="What changed from version a to version b")
def diff_versions(
    request: Request, name: str = DatasetName,
    a: int = Query(..., ge=1, le=2**31 - 1, description="The older version."),
    b: int = Query(..., ge=1, le=2**31 - 1, description="The newer version."),
) -> Any:
    from conveyor.data import diff

    found = diff(f"data:/{name}@{a}", f"data:/{name}@{b}", tracker=_tracker(request, name)).to_dict()
    found["changed_columns"] = {
        column: {stat: {"a": pair[0], "b": pair[1]} for stat, pair in stats.items()}
        for column, stats in found["changed_columns"].items()
    }
    return DiffOut.model_validate(found)


@router.get("/{name}/versions/{version}/validation", response_model=ValidationOut,
            summary="Anomalies of a table version against an older version's schema")
def validate_version(
    request: Request, name: str = DatasetName, version: int = VersionNumber,
    against: int | None = Query(None, ge=1, le=2**31 - 1, description="Default: the version before."),
) -> Any:
    from conveyor.data import get_version as find
    from conveyor.data import validate

    tracker = _tracker(request, name)
    v = find(f"data:/{name}@{version}", tracker=tracker)
    if against is None:
        if version == 1:
            raise InvalidInput(f"{v.ref} has no version before it to validate against", field="against",
                               value=None, hint="pass against=<version>")
        against = version - 1
    if not v.is_table:
        raise InvalidInput(f"{v.ref} is a {v.kind}, not a table", field="version", value=version,
                           hint="validation checks CSV/Parquet data sets")
    other = find(f"data:/{name}@{against}", tracker=tracker)
    anomalies = validate(v.ref, against=other.ref, tracker=tracker)
    return ValidationOut(ref=v.ref, against=other.ref, passed=not any(a.severity == "error" for a in anomalies),
                         anomalies=[AnomalyOut.model_validate(a.to_dict()) for a in anomalies])


@router.get("/{name}/versions/{version}/lineage", response_model=Lineage,
            summary="What produced a version and what read it (runs, pipeline steps, models)")
def version_lineage(
    request: Request, name: str = DatasetName, version: int = VersionNumber,
    direction: Literal["up", "down", "both"] = Query("both"), depth: int | None = Query(None, ge=1, le=50),
) -> Any:
    from conveyor.data import get_version as find

    tracker = _tracker(request, name)
    find(f"data:/{name}@{version}", tracker=tracker)
    return lineage_of(tracker, f"data:/{name}@{version}", direction, depth)
