"""The registry service: register run artifacts as numbered versions of a named model,
tag, describe, archive and delete them, resolve ``models:/`` URIs and load the package."""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from typing import Any

from sqlalchemy import delete, func, select, update
from sqlalchemy.engine import Connection, Row

from conveyor.entities import ModelRef, now_ms
from conveyor.errors import Conflict, InvalidInput, NotFound
from conveyor.registry._aliases import AliasMixin, current_user
from conveyor.registry._entities import ModelVersion, RegisteredModel, Status
from conveyor.registry._lineage import record_version_lineage, run_data_inputs
from conveyor.registry._uris import parse_model_uri
from conveyor.store import (
    RegistryRepo,
    model_version_tags,
    model_versions,
    registered_models,
    validate_key,
)
from conveyor.tracking import parse_run_uri


def _check_name(name: object) -> str:
    if not isinstance(name, str) or not name.strip() or len(name) > 256 or any(c in name for c in "/@\x00"):
        raise InvalidInput(
            f"model name {name!r} is not valid",
            field="name",
            value=name,
            hint="use a non-empty name of at most 256 characters without '/' or '@'",
        )
    return name


class Registry(AliasMixin):
    """Registered models over a tracker's metadata and artifact stores.

    Example::

        registry = Registry(tracker)
        v = registry.register(f"runs:/{run.id}/model", "churn")
        registry.set_alias("churn", "champion", v.version, reason="first model")
        registry.resolve("models:/churn@champion")   # ModelRef(name="churn", version=1, …)
    """

    def __init__(self, tracker: Any) -> None:
        self.tracker = tracker
        self.store = tracker.store
        self.blobs = tracker.blobs
        self.repo = RegistryRepo()

    # -- registering ------------------------------------------------------------------------------
    def register(
        self,
        source: str,
        name: str,
        *,
        description: str = "",
        tags: Mapping[str, Any] | None = None,
        data_versions: Sequence[str] | None = None,
        user: str | None = None,
    ) -> ModelVersion:
        """Register the model package at ``runs:/<run_id>/<path>`` as the next version of ``name``.

        The version number is ``last + 1`` and never reused, even under concurrent
        registrations. Data set versions default to what the run read (``conveyor.data``
        lineage, when installed)."""
        _check_name(name)
        ref = parse_run_uri(source)
        if not ref.path:
            raise InvalidInput(
                f"{source!r} names a run but no artifact", field="source", value=source,
                hint="write runs:/<run_id>/<artifact path>, e.g. runs:/<id>/model",
            )
        self.tracker.flush() if hasattr(self.tracker, "flush") else None
        with self.store.read() as conn:
            run = self.store.runs.get(conn, ref.run_id)
            artifact = self._artifact(conn, ref.run_id, ref.path)
        inputs = tuple(data_versions) if data_versions is not None else run_data_inputs(self.tracker, run.id)
        now = now_ms()
        with self.store.write() as conn:
            self.repo.ensure_model(conn, name)
            model = self.repo.model_row(conn, name, lock=True)
            version = self.repo.next_version(conn, model.id)
            conn.execute(
                model_versions.insert().values(
                    model_id=model.id, version=version, source=str(ref), run_id=run.id,
                    digest=artifact.digest, is_dir=artifact.is_dir, size=artifact.size,
                    status=Status.READY, description=description, git_commit=run.git_commit,
                    data_versions=json.dumps(list(inputs)), user=user or current_user(),
                    created_at=now, updated_at=now,
                )
            )
            if tags:
                self._write_tags(conn, model.id, version, tags)
            self.repo.add_event(
                conn, model.id, "register", version=version, to_value=str(version),
                user=user or current_user(), reason=f"from {ref}", at=now,
            )
            registered = self._version(conn, name, model.id, version)
        record_version_lineage(self.tracker, run.id, name, registered.version)
        return registered

    def _artifact(self, conn: Connection, run_id: str, path: str) -> Any:
        try:
            return self.store.artifacts.get(conn, run_id, path)
        except NotFound:
            known = [a.path for a in self.store.artifacts.list(conn, run_id)][:10]
            raise NotFound(
                "artifact", f"{run_id}/{path}",
                hint=f"the run has {', '.join(known) or 'no artifacts'}; log the model with conveyor.models.log",
            ) from None

    # -- reading ----------------------------------------------------------------------------------
    def get_model(self, name: str) -> RegisteredModel:
        with self.store.read() as conn:
            return self._model(conn, self.repo.model_row(conn, name))

    def list_models(self) -> list[RegisteredModel]:
        with self.store.read() as conn:
            rows = conn.execute(select(registered_models).order_by(registered_models.c.name)).all()
            return [self._model(conn, row) for row in rows]

    def _model(self, conn: Connection, row: Row[Any]) -> RegisteredModel:
        latest = conn.execute(
            select(func.max(model_versions.c.version)).where(model_versions.c.model_id == row.id)
        ).scalar()
        return RegisteredModel(
            row.name, row.description, int(latest or 0), self.repo.aliases_of(conn, row.id),
            row.created_at, row.updated_at,
        )

    def get_version(self, name: str, version: int) -> ModelVersion:
        with self.store.read() as conn:
            model = self.repo.model_row(conn, name)
            return self._version(conn, name, model.id, int(version))

    def list_versions(self, name: str, *, include_archived: bool = True) -> list[ModelVersion]:
        with self.store.read() as conn:
            model = self.repo.model_row(conn, name)
            query = select(model_versions.c.version).where(model_versions.c.model_id == model.id)
            if not include_archived:
                query = query.where(model_versions.c.status == Status.READY)
            numbers = conn.execute(query.order_by(model_versions.c.version)).scalars().all()
            return [self._version(conn, name, model.id, n) for n in numbers]

    def _version(self, conn: Connection, name: str, model_id: int, version: int) -> ModelVersion:
        row = self.repo.version_row(conn, model_id, name, version)
        aliases = sorted(a for a, v in self.repo.aliases_of(conn, model_id).items() if v == version)
        return ModelVersion(
            name=name, version=row.version, source=row.source, run_id=row.run_id, digest=row.digest,
            size=row.size, status=row.status, description=row.description, git_commit=row.git_commit,
            data_versions=tuple(json.loads(row.data_versions or "[]")), user=row.user,
            created_at=row.created_at, updated_at=row.updated_at,
            tags=self.repo.tags_of(conn, model_id, version), aliases=tuple(aliases),
        )

    # -- resolving --------------------------------------------------------------------------------
    def get(self, uri: str) -> ModelVersion:
        """The version a ``models:/`` URI names (alias, number or ``latest``)."""
        parsed = parse_model_uri(uri)
        with self.store.read() as conn:
            model = self.repo.model_row(conn, parsed.name)
            if parsed.alias is not None:
                number = self.repo.alias_holder(conn, model.id, parsed.alias)
                if number is None:
                    raise NotFound(
                        "alias", f"{parsed.name}@{parsed.alias}",
                        hint=f"`conveyor models show {parsed.name}` lists its aliases",
                    )
            elif parsed.latest:
                number = conn.execute(
                    select(func.max(model_versions.c.version)).where(
                        model_versions.c.model_id == model.id, model_versions.c.status == Status.READY
                    )
                ).scalar()
                if number is None:
                    raise NotFound("model version", f"{parsed.name}/latest", hint="register a version first")
            else:
                number = parsed.version
            assert number is not None
            return self._version(conn, parsed.name, model.id, int(number))

    def resolve(self, uri: str) -> ModelRef:
        """``models:/churn@champion`` → ``ModelRef(name, version, alias, digest, run_id)``."""
        found = self.get(uri)
        alias = parse_model_uri(uri).alias
        return ModelRef(found.name, found.version, alias, found.digest, found.run_id)

    def load_model(self, uri: str, *, trusted: list[str] | None = None) -> Any:
        """Load the package a ``models:/`` URI names with ``conveyor.models`` (any flavor);
        ``trusted`` lists extra scikit-learn types to accept (see ``conveyor.models.load``)."""
        from conveyor.models import load_from_store

        found = self.get(uri)
        return load_from_store(self.blobs, found.digest, trusted=trusted, source=uri)

    # -- changing ---------------------------------------------------------------------------------
    def set_tags(self, name: str, version: int, tags: Mapping[str, Any]) -> None:
        with self.store.write() as conn:
            model = self.repo.model_row(conn, name)
            self.repo.version_row(conn, model.id, name, version)
            self._write_tags(conn, model.id, version, tags)

    def delete_tag(self, name: str, version: int, key: str) -> None:
        with self.store.write() as conn:
            model = self.repo.model_row(conn, name)
            gone = conn.execute(
                delete(model_version_tags).where(
                    model_version_tags.c.model_id == model.id,
                    model_version_tags.c.version == version,
                    model_version_tags.c.key == key,
                )
            )
            if gone.rowcount == 0:
                raise NotFound("tag", f"{name}/{version} {key}")

    def _write_tags(self, conn: Connection, model_id: int, version: int, tags: Mapping[str, Any]) -> None:
        rows = {validate_key("tag", k): str(v) for k, v in tags.items()}
        conn.execute(
            delete(model_version_tags).where(
                model_version_tags.c.model_id == model_id,
                model_version_tags.c.version == version,
                model_version_tags.c.key.in_(list(rows)),
            )
        )
        conn.execute(
            model_version_tags.insert(),
            [{"model_id": model_id, "version": version, "key": k, "value": v} for k, v in rows.items()],
        )

    def set_description(self, name: str, description: str, version: int | None = None) -> None:
        """Describe the model (``version=None``) or one version."""
        with self.store.write() as conn:
            model = self.repo.model_row(conn, name)
            if version is None:
                conn.execute(
                    update(registered_models).where(registered_models.c.id == model.id)
                    .values(description=description, updated_at=now_ms())
                )
            else:
                self.repo.version_row(conn, model.id, name, version)
                conn.execute(
                    update(model_versions)
                    .where(model_versions.c.model_id == model.id, model_versions.c.version == version)
                    .values(description=description, updated_at=now_ms())
                )

    def archive(self, name: str, version: int, *, reason: str = "", user: str | None = None) -> None:
        """Mark a version ARCHIVED (it can no longer take an alias); recorded as an event."""
        self._set_status(name, version, Status.ARCHIVED, reason, user)

    def restore(self, name: str, version: int, *, reason: str = "", user: str | None = None) -> None:
        self._set_status(name, version, Status.READY, reason, user)

    def _set_status(self, name: str, version: int, status: str, reason: str, user: str | None) -> None:
        with self.store.write() as conn:
            model = self.repo.model_row(conn, name, lock=True)
            row = self.repo.version_row(conn, model.id, name, version)
            if status != Status.READY:
                self._refuse_if_aliased(conn, model.id, name, version, "archive")
            conn.execute(
                update(model_versions)
                .where(model_versions.c.model_id == model.id, model_versions.c.version == version)
                .values(status=status, updated_at=now_ms())
            )
            self.repo.add_event(
                conn, model.id, "status", version=version, from_value=row.status, to_value=status,
                user=user or current_user(), reason=reason,
            )

    def delete_version(self, name: str, version: int, *, reason: str = "", user: str | None = None) -> None:
        """Remove a version from the registry. Its package stays in the artifact store while
        anything else (the run's artifact index, another version) references it; its events stay."""
        with self.store.write() as conn:
            model = self.repo.model_row(conn, name, lock=True)
            row = self.repo.version_row(conn, model.id, name, version)
            self._refuse_if_aliased(conn, model.id, name, version, "delete")
            for table in (model_version_tags, model_versions):
                conn.execute(delete(table).where(table.c.model_id == model.id, table.c.version == version))
            self.repo.add_event(
                conn, model.id, "deleted", version=version, from_value=row.status, to_value="DELETED",
                user=user or current_user(), reason=reason,
            )

    def _refuse_if_aliased(self, conn: Connection, model_id: int, name: str, version: int, verb: str) -> None:
        held = sorted(a for a, v in self.repo.aliases_of(conn, model_id).items() if v == version)
        if held:
            raise Conflict(
                f"cannot {verb} {name}/{version}: it holds alias {', '.join(held)}",
                hint=f"move the alias first: `conveyor models alias {name} {held[0]} <version>`",
            )


__all__ = ["Registry"]
