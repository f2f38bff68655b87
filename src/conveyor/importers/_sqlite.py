"""The reader of an MLflow SQLite store (its tables, read-only, with SQLAlchemy)."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any
from urllib.parse import quote

from conveyor.errors import InvalidInput
from conveyor.importers._records import (
    Exp,
    LoggedModel,
    RegisteredModel,
    SourceRun,
    Tree,
    Version,
    int_or_none,
    tree_for,
)


class SqliteSource:
    """MLflow's SQLAlchemy store on SQLite, opened read-only (``mode=ro``): never written."""

    kind = "SQLite store"

    def __init__(self, path: Path, proxied_root: Path | None, shown: str | None = None) -> None:
        from sqlalchemy import create_engine, inspect

        shown = shown or str(path)

        self.path = path
        self.identity = "sqlite:///" + str(path.resolve())
        self.proxied_root = proxied_root
        self.bases = [path.parent, Path.cwd()]
        self.engine = create_engine(f"sqlite:///file:{quote(str(path.resolve()))}?mode=ro&uri=true")
        try:
            self.tables = set(inspect(self.engine).get_table_names())
        except Exception as exc:  # noqa: BLE001 - sqlite3 says "file is not a database" and the like
            self.engine.dispose()
            raise InvalidInput(f"{shown} cannot be read as a SQLite database: {str(exc).splitlines()[0]}",
                               field="--from", value=shown,
                               hint="point --from at the mlflow.db file MLflow wrote") from None
        if not {"experiments", "runs", "metrics", "params", "tags"} <= self.tables:
            self.engine.dispose()
            raise InvalidInput(
                f"{shown} is a SQLite database but not an MLflow tracking store (no experiments/runs/metrics tables)",
                field="--from", value=shown, hint="point --from at the database given to mlflow's --backend-store-uri",
            )

    def close(self) -> None:
        self.engine.dispose()

    def _rows(self, sql: str, **params: Any) -> list[Any]:
        from sqlalchemy import text

        with self.engine.connect() as conn:
            return list(conn.execute(text(sql), params).mappings())

    def experiments(self) -> list[Exp]:
        tags: dict[str, dict[str, str]] = {}
        if "experiment_tags" in self.tables:
            for r in self._rows("SELECT experiment_id, key, value FROM experiment_tags"):
                tags.setdefault(str(r["experiment_id"]), {})[r["key"]] = r["value"] or ""
        return [Exp(str(r["experiment_id"]), r["name"], r["lifecycle_stage"] == "deleted",
                    tags.get(str(r["experiment_id"]), {}), int_or_none(r.get("creation_time")),
                    r["artifact_location"] or "")
                for r in self._rows("SELECT * FROM experiments ORDER BY experiment_id")]

    def runs(self, exp: Exp) -> list[SourceRun]:
        rows = self._rows("SELECT * FROM runs WHERE experiment_id = :e ORDER BY start_time, run_uuid", e=int(exp.id))
        params: dict[str, dict[str, str]] = {}
        tags: dict[str, dict[str, str]] = {}
        for r in self._rows("SELECT p.run_uuid, p.key, p.value FROM params p JOIN runs r ON r.run_uuid = p.run_uuid "
                            "WHERE r.experiment_id = :e", e=int(exp.id)):
            params.setdefault(r["run_uuid"], {})[r["key"]] = r["value"] or ""
        for r in self._rows("SELECT t.run_uuid, t.key, t.value FROM tags t JOIN runs r ON r.run_uuid = t.run_uuid "
                            "WHERE r.experiment_id = :e", e=int(exp.id)):
            tags.setdefault(r["run_uuid"], {})[r["key"]] = r["value"] or ""
        return [SourceRun(
            id=r["run_uuid"], experiment_id=exp.id, name=r.get("name") or "", status=r["status"] or "FINISHED",
            start=int_or_none(r["start_time"]), end=int_or_none(r["end_time"]), user=r.get("user_id") or "",
            deleted=r["lifecycle_stage"] == "deleted", params=params.get(r["run_uuid"], {}),
            tags=tags.get(r["run_uuid"], {}), artifact_uri=r.get("artifact_uri") or "",
        ) for r in rows]

    def metrics(self, run: SourceRun) -> list[tuple[str, float, int, int]]:
        rows = self._rows("SELECT key, value, timestamp, step, is_nan FROM metrics WHERE run_uuid = :r", r=run.id)
        return [(r["key"], math.nan if r["is_nan"] else float(r["value"]), int(r["step"] or 0), int(r["timestamp"]))
                for r in rows]

    def artifacts(self, run: SourceRun) -> Tree:
        return tree_for(run.artifact_uri, self.bases, self.proxied_root)

    def logged_models(self, exp: Exp) -> list[LoggedModel]:
        if "logged_models" not in self.tables:
            return []
        return [LoggedModel(r["model_id"], r["name"] or r["model_id"], r.get("source_run_id") or "", exp.id,
                            r["artifact_location"] or "")
                for r in self._rows("SELECT * FROM logged_models WHERE experiment_id = :e", e=int(exp.id))]

    def model_tree(self, model: LoggedModel) -> Tree:
        return tree_for(model.artifact_location, self.bases, self.proxied_root)

    def registered_models(self) -> list[RegisteredModel]:
        if "registered_models" not in self.tables:
            return []
        versions: dict[str, list[Version]] = {}
        vtags: dict[tuple[str, int], dict[str, str]] = {}
        if "model_version_tags" in self.tables:
            for r in self._rows("SELECT name, version, key, value FROM model_version_tags"):
                vtags.setdefault((r["name"], int(r["version"])), {})[r["key"]] = r["value"] or ""
        for r in self._rows("SELECT * FROM model_versions ORDER BY name, version"):
            versions.setdefault(r["name"], []).append(Version(
                model=r["name"], version=int(r["version"]), source=r["source"] or "", run_id=r["run_id"] or "",
                status=r["status"] or "READY", stage=r["current_stage"] or "None",
                description=r["description"] or "", user=r["user_id"] or "", created=int_or_none(r["creation_time"]),
                tags=vtags.get((r["name"], int(r["version"])), {}),
            ))
        aliases: dict[str, dict[str, int]] = {}
        if "registered_model_aliases" in self.tables:
            for r in self._rows("SELECT name, alias, version FROM registered_model_aliases"):
                aliases.setdefault(r["name"], {})[r["alias"]] = int(r["version"])
        mtags: dict[str, dict[str, str]] = {}
        if "registered_model_tags" in self.tables:
            for r in self._rows("SELECT name, key, value FROM registered_model_tags"):
                mtags.setdefault(r["name"], {})[r["key"]] = r["value"] or ""
        return [RegisteredModel(r["name"], r["description"] or "", mtags.get(r["name"], {}),
                                aliases.get(r["name"], {}), versions.get(r["name"], []))
                for r in self._rows("SELECT * FROM registered_models ORDER BY name")]
