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
from conveyor.registry._verify import Verified, require_package, verify
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


def require_loadable(version: ModelVersion) -> None:
    """Refuse a version whose package never passed registration (it is never served or loaded)."""
    if version.status in (Status.FAILED_REGISTRATION, Status.PENDING_REGISTRATION):
        why = f": {version.status_message}" if version.status_message else ""
        raise InvalidInput(
            f"{version.uri} is {version.status}{why}", field="version", value=version.uri,
            hint="register a working package as a new version (`conveyor models versions "
            f"{version.name} --all` lists every version with its status)",
        )


def require_ready(version: ModelVersion, action: str) -> None:
    """Refuse ``action`` on a version that is not READY (failed, pending or archived)."""
    if version.status != Status.READY:
        why = f": {version.status_message}" if version.status_message else ""
        hint = (f"restore it first: `conveyor models archive {version.name}/{version.version} --restore`"
                if version.status == Status.ARCHIVED else
                f"register a working package as a new version of {version.name}")
        raise InvalidInput(
            f"cannot {action} {version.uri}: it is {version.status}{why}", field="version",
            value=version.uri, hint=hint,
        )


class Registry(AliasMixin):
    """Registered models over a tracker's metadata and artifact stores.

    Example::

        registry = Registry(tracker)
        v = registry.register(f"runs:/{run.id}/model", "churn")
        registry.set_alias("churn", "champion", v.version, reason="first model")
        registry.resolve("models:/churn@champion")   # ModelRef(name="churn", version=1, …)
    """

    def __new__(cls, tracker: Any) -> Registry:
        """A :class:`conveyor.registry._remote.RemoteRegistry` when ``tracker`` talks to a
        conveyor server (remote mode), so every caller works the same in both modes."""
        if cls is Registry and getattr(tracker, "http", None) is not None:
            from conveyor.registry._remote import RemoteRegistry, is_remote

            if is_remote(tracker):
                return object.__new__(RemoteRegistry)
        return object.__new__(cls)

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
        trusted: list[str] | None = None,
        verified: Verified | None = None,
    ) -> ModelVersion:
        """Register the model package at ``runs:/<run_id>/<path>`` as the next version of ``name``.

        What is not a model package (a bare file, a folder without ``conveyor-model.json``)
        is refused before a number is taken. Otherwise the version is written
        ``PENDING_REGISTRATION``, its package is loaded and predicts its input example, and
        only then is it ``READY``; when that fails it becomes ``FAILED_REGISTRATION`` with the
        reason, and ``InvalidInput`` is raised. ``trusted`` goes to the loader; ``verified``
        (from ``verify``) skips loading the same package twice.

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
        run, artifact = self.store.query(
            lambda conn: (self.store.runs.get(conn, ref.run_id), self._artifact(conn, ref.run_id, ref.path)),
            what=f"reading {ref}")
        require_package(self.blobs, str(ref), artifact)
        inputs = tuple(data_versions) if data_versions is not None else run_data_inputs(self.tracker, run.id)
        who = user or current_user()
        now = now_ms()
        def pending(conn: Connection) -> list[int]:
            self.repo.ensure_model(conn, name)
            model = self.repo.model_row(conn, name, lock=True)
            version = self.repo.next_version(conn, model.id)
            conn.execute(
                model_versions.insert().values(
                    model_id=model.id, version=version, source=str(ref), run_id=run.id,
                    digest=artifact.digest, is_dir=artifact.is_dir, size=artifact.size,
                    status=Status.PENDING_REGISTRATION, description=description, git_commit=run.git_commit,
                    data_versions=json.dumps(list(inputs)), user=who, created_at=now, updated_at=now,
                )
            )
            if tags:
                self._write_tags(conn, model.id, version, tags)
            return [int(model.id), int(version)]

        # once: a retry after a lost commit acknowledgement must not take a second number
        model_id, version = self.store.transaction(pending, once=True, what=f"registering a version of {name}")
        failure: InvalidInput | None = None
        if verified is None or verified.digest != artifact.digest:
            try:
                verify(self.blobs, str(ref), artifact.digest, trusted=trusted)
            except InvalidInput as exc:
                failure = exc
        status = Status.READY if failure is None else Status.FAILED_REGISTRATION
        def settle(conn: Connection) -> None:
            conn.execute(
                update(model_versions)
                .where(model_versions.c.model_id == model_id, model_versions.c.version == version)
                .values(status=status, status_message=failure.message if failure else None, updated_at=now_ms())
            )
            self.repo.add_event(
                conn, model_id, "register" if failure is None else "register_failed", version=version,
                to_value=str(version), user=who,
                reason=f"from {ref}" if failure is None else f"from {ref}: {failure.message}"[:4000],
            )

        self.store.transaction(settle, once=True, what=f"registering {name}/{version}")
        registered = self.store.query(lambda conn: self._version(conn, name, model_id, version),
                                      what=f"reading {name}/{version}")
        if failure is not None:
            raise InvalidInput(
                f"{name}/{version} is FAILED_REGISTRATION: {failure.message}", field="source", value=str(ref),
                hint=failure.hint,
            ) from failure
        record_version_lineage(self.tracker, run.id, name, registered.version)
        return registered

    def verify(self, source: str, *, trusted: list[str] | None = None) -> Verified:
        """Check ``runs:/<run_id>/<path>`` as ``register`` would, without registering it:
        it is a package, it loads, and it predicts its input example. Raises ``InvalidInput``
        with the reason."""
        ref = parse_run_uri(source)
        self.tracker.flush() if hasattr(self.tracker, "flush") else None

        def read(conn: Connection) -> Any:
            self.store.runs.get(conn, ref.run_id)  # NotFound naming the run first
            return self._artifact(conn, ref.run_id, ref.path or "model")

        artifact = self.store.query(read, what=f"reading {ref}")
        require_package(self.blobs, str(ref), artifact)
        return verify(self.blobs, str(ref), artifact.digest, trusted=trusted)

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
        def read(conn: Connection) -> Any:
            return self._model(conn, self.repo.model_row(conn, name))

        return self.store.query(read, what=f"reading registered model {name!r}")

    def list_models(self, *, include_failed: bool = False) -> list[RegisteredModel]:
        """Every registered model; ``latest_version`` counts READY and ARCHIVED versions only,
        and a model with no such version is left out, unless ``include_failed``."""

        def read(conn: Connection) -> Any:
            rows = conn.execute(select(registered_models).order_by(registered_models.c.name)).all()
            return [self._model(conn, row, include_failed=include_failed) for row in rows]

        found = self.store.query(read, what="listing registered models")
        return [m for m in found if include_failed or m.latest_version]

    def _model(self, conn: Connection, row: Row[Any], *, include_failed: bool = True) -> RegisteredModel:
        query = select(func.max(model_versions.c.version)).where(model_versions.c.model_id == row.id)
        if not include_failed:
            query = query.where(model_versions.c.status.in_(Status.VISIBLE))
        latest = conn.execute(query).scalar()
        return RegisteredModel(
            row.name, row.description, int(latest or 0), self.repo.aliases_of(conn, row.id),
            row.created_at, row.updated_at,
        )

    def get_version(self, name: str, version: int) -> ModelVersion:
        def read(conn: Connection) -> Any:
            model = self.repo.model_row(conn, name)
            return self._version(conn, name, model.id, int(version))

        return self.store.query(read, what=f"reading {name}/{version}")

    def list_versions(
        self, name: str, *, include_archived: bool = True, include_failed: bool = False
    ) -> list[ModelVersion]:
        """The versions of ``name``, oldest first. Versions that failed registration (or
        whose check never finished) are left out unless ``include_failed``."""

        def read(conn: Connection) -> Any:
            model = self.repo.model_row(conn, name)
            query = select(model_versions.c.version).where(model_versions.c.model_id == model.id)
            shown = [Status.READY]
            if include_archived:
                shown.append(Status.ARCHIVED)
            if include_failed:
                shown += [Status.FAILED_REGISTRATION, Status.PENDING_REGISTRATION]
            query = query.where(model_versions.c.status.in_(shown))
            numbers = conn.execute(query.order_by(model_versions.c.version)).scalars().all()
            return [self._version(conn, name, model.id, n) for n in numbers]

        return self.store.query(read, what=f"listing the versions of {name!r}")

    def _version(self, conn: Connection, name: str, model_id: int, version: int) -> ModelVersion:
        row = self.repo.version_row(conn, model_id, name, version)
        aliases = sorted(a for a, v in self.repo.aliases_of(conn, model_id).items() if v == version)
        return ModelVersion(
            name=name, version=row.version, source=row.source, run_id=row.run_id, digest=row.digest,
            size=row.size, status=row.status, description=row.description, git_commit=row.git_commit,
            data_versions=tuple(json.loads(row.data_versions or "[]")), user=row.user,
            created_at=row.created_at, updated_at=row.updated_at,
            tags=self.repo.tags_of(conn, model_id, version), aliases=tuple(aliases),
            status_message=row.status_message or "",
        )

    # -- resolving --------------------------------------------------------------------------------
    def get(self, uri: str) -> ModelVersion:
        """The version a ``models:/`` URI names (alias, number or ``latest``)."""
        parsed = parse_model_uri(uri)

        def read(conn: Connection) -> Any:
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

        return self.store.query(read, what=f"resolving {uri}")

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
        require_loadable(found)
        return load_from_store(self.blobs, found.digest, trusted=trusted, source=uri)

    # -- changing ---------------------------------------------------------------------------------
    def set_tags(self, name: str, version: int, tags: Mapping[str, Any]) -> None:
        def body(conn: Connection) -> None:  # delete + insert of the same keys: idempotent
            model = self.repo.model_row(conn, name)
            self.repo.version_row(conn, model.id, name, version)
            self._write_tags(conn, model.id, version, tags)

        self.store.transaction(body, what="setting model version tags")

    def delete_tag(self, name: str, version: int, key: str) -> None:
        def body(conn: Connection) -> None:
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

        self.store.transaction(body, once=True, what="deleting a model version tag")

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
        def body(conn: Connection) -> None:
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

        self.store.transaction(body, what="setting a description")

    def archive(self, name: str, version: int, *, reason: str = "", user: str | None = None) -> None:
        """Mark a version ARCHIVED (it can no longer take an alias); recorded as an event."""
        self._set_status(name, version, Status.ARCHIVED, reason, user)

    def restore(self, name: str, version: int, *, reason: str = "", user: str | None = None) -> None:
        self._set_status(name, version, Status.READY, reason, user)

    def _set_status(self, name: str, version: int, status: str, reason: str, user: str | None) -> None:
        def body(conn: Connection) -> None:
            model = self.repo.model_row(conn, name, lock=True)
            row = self.repo.version_row(conn, model.id, name, version)
            if row.status not in Status.VISIBLE:  # only READY <-> ARCHIVED: a failed package stays failed
                raise Conflict(
                    f"{name}/{version} is {row.status}; only READY and ARCHIVED versions can be archived or restored",
                    hint=f"register a working package as a new version of {name}",
                )
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

        self.store.transaction(body, once=True, what=f"changing the status of {name}/{version}")

    def delete_version(self, name: str, version: int, *, reason: str = "", user: str | None = None) -> None:
        """Remove a version from the registry. Its package stays in the artifact store while
        anything else (the run's artifact index, another version) references it; its events stay."""
        def body(conn: Connection) -> None:
            model = self.repo.model_row(conn, name, lock=True)
            row = self.repo.version_row(conn, model.id, name, version)
            self._refuse_if_aliased(conn, model.id, name, version, "delete")
            for table in (model_version_tags, model_versions):
                conn.execute(delete(table).where(table.c.model_id == model.id, table.c.version == version))
            self.repo.add_event(
                conn, model.id, "deleted", version=version, from_value=row.status, to_value="DELETED",
                user=user or current_user(), reason=reason,
            )

        self.store.transaction(body, once=True, what=f"deleting {name}/{version}")

    def _refuse_if_aliased(self, conn: Connection, model_id: int, name: str, version: int, verb: str) -> None:
        held = sorted(a for a, v in self.repo.aliases_of(conn, model_id).items() if v == version)
        if held:
            raise Conflict(
                f"cannot {verb} {name}/{version}: it holds alias {', '.join(held)}",
                hint=f"move the alias first: `conveyor models alias {name} {held[0]} <version>`",
            )


__all__ = ["Registry", "require_loadable", "require_ready"]
