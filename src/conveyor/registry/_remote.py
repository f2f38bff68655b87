"""The registry in remote mode: the same ``Registry`` methods over a ``conveyor server``'s
``/api/v1/models`` endpoints, through the remote tracker's HTTP client.

``Registry(tracker)`` returns a :class:`RemoteRegistry` when ``tracker`` is a
``RemoteTracker`` (``[server] url`` / ``CONVEYOR_SERVER_URL`` set), so ``conveyor models …``,
``conveyor.registry.*`` and every other caller work unchanged without database or S3
credentials. The server does what the embedded registry does (it checks that a package
loads before a version is READY, records who moved which alias and why); this client only
turns its answers back into the same entities (``RegisteredModel``, ``ModelVersion``,
``Event``) and raises the same errors (``NotFound``, ``Conflict``, ``InvalidInput`` …).

``load_model`` downloads the version's package through the server's artifact endpoints,
checks that its digest is the one the version registered, and loads it locally.
Not available remotely: ``verify`` (registering verifies on the server) and a
compare-and-set ``set_alias(expected=…)`` (use ``promote``, which the server decides in one
transaction).
"""

from __future__ import annotations

import tempfile
from collections.abc import Mapping, Sequence
from datetime import datetime
from pathlib import Path
from typing import Any
from urllib.parse import quote

from conveyor.entities import ModelRef
from conveyor.errors import Conflict, ConveyorError, InvalidInput, NotFound
from conveyor.registry._aliases import ANY, check_alias, current_user, parse_instant
from conveyor.registry._entities import Event, ModelVersion, RegisteredModel
from conveyor.registry._registry import Registry, require_loadable
from conveyor.registry._uris import parse_model_uri

_EVENT_FIELDS = tuple(Event.__dataclass_fields__)


def is_remote(tracker: Any) -> bool:
    """Whether ``tracker`` talks to a server (a ``RemoteTracker``) rather than to stores."""
    from conveyor.tracking._remote import RemoteTracker

    return isinstance(tracker, RemoteTracker)


def _seg(value: object) -> str:
    return quote(str(value), safe="")


def _version(data: Mapping[str, Any]) -> ModelVersion:
    return ModelVersion(
        name=data["name"], version=int(data["version"]), source=data["source"], run_id=data["run_id"],
        digest=data["digest"], size=int(data["size"]), status=data["status"], description=data["description"],
        git_commit=data["git_commit"], data_versions=tuple(data["data_versions"]), user=data["user"],
        created_at=int(data["created_at"]), updated_at=int(data["updated_at"]), tags=dict(data["tags"]),
        aliases=tuple(data["aliases"]), status_message=data.get("status_message") or "",
    )


def _model(data: Mapping[str, Any]) -> RegisteredModel:
    return RegisteredModel(data["name"], data["description"], int(data["latest_version"]),
                           {k: int(v) for k, v in data["aliases"].items()}, int(data["created_at"]),
                           int(data["updated_at"]))


def _event(data: Mapping[str, Any]) -> Event:
    return Event(**{k: data[k] for k in _EVENT_FIELDS})


def _remote_only(what: str) -> ConveyorError:
    return ConveyorError(
        f"{what} is not available in remote mode ([server] url is set): this client talks only to the server",
        hint="unset CONVEYOR_SERVER_URL (and [server] url) to work on the stores directly",
    )


class RemoteRegistry(Registry):
    """``Registry`` over a conveyor server (see the module docstring).

    Example::

        registry = Registry(RemoteTracker(ServerSettings(url="http://127.0.0.1:5000")))
        registry.set_alias("churn", "champion", 3, reason="better recall")
        registry.history("churn", alias="champion")[-1].user   # who moved it, as the server saw it
    """

    def __new__(cls, tracker: Any) -> RemoteRegistry:
        return object.__new__(cls)

    def __init__(self, tracker: Any) -> None:  # noqa: D107 - no stores here
        self.tracker = tracker
        self.http = tracker.http

    @property  # type: ignore[override]
    def store(self) -> Any:
        raise _remote_only("the metadata store")

    @property  # type: ignore[override]
    def blobs(self) -> Any:
        raise _remote_only("the artifact store")

    @property  # type: ignore[override]
    def repo(self) -> Any:
        raise _remote_only("the registry's tables")

    def _get(self, path: str, **params: Any) -> Any:
        return self.http.json("GET", path, params={k: v for k, v in params.items() if v is not None})

    def _send(self, method: str, path: str, **kwargs: Any) -> Any:
        # a write is not retried: a lost answer must not register or move twice
        return self.http.request(method, path, retry=False, **kwargs)

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
        verified: Any = None,
    ) -> ModelVersion:
        """Register on the server, which loads the package and checks it before READY."""
        if trusted:
            raise InvalidInput(
                "trusted types are decided by the server in remote mode", field="trusted", value=trusted,
                hint="add them to the server's [models] trusted_modules",
            )
        self.tracker.flush()
        body: dict[str, Any] = {"source": source, "description": description,
                                "tags": {k: str(v) for k, v in (tags or {}).items()}, "user": user or current_user()}
        if data_versions is not None:
            body["data_versions"] = list(data_versions)
        return _version(self._send("POST", f"/models/{_seg(name)}/versions", json=body).json())

    def verify(self, source: str, *, trusted: list[str] | None = None) -> Any:
        """Check ``runs:/<run_id>/<path>`` as ``register`` would, here: download the package
        through the server, load it and predict its input example."""
        from conveyor.models import load_folder
        from conveyor.models._meta import META_FILE
        from conveyor.registry._verify import HOW_TO_PACKAGE, Verified, checked
        from conveyor.tracking import parse_run_uri

        ref = parse_run_uri(source)
        self.tracker.flush()
        artifact = self.tracker.get_artifact(ref.run_id, ref.path or "model")
        if not artifact.is_dir:
            raise InvalidInput(f"{ref} is a single file, not a conveyor model package", field="source",
                               value=source, hint=HOW_TO_PACKAGE)
        with tempfile.TemporaryDirectory(prefix="conveyor-model-") as tmp:
            folder = self.tracker.download_artifact(ref.run_id, artifact.path, Path(tmp) / "model")
            if not (folder / META_FILE).is_file():
                shown = ", ".join(sorted(p.name for p in folder.iterdir())[:5]) or "nothing"
                raise InvalidInput(f"{ref} is not a conveyor model package: it holds {shown} but no {META_FILE}",
                                   field="source", value=source, hint=HOW_TO_PACKAGE)
            model = checked(lambda: load_folder(folder, trusted=trusted, source=str(ref)), str(ref))
        return Verified(str(ref), artifact.digest, model)

    # -- reading ----------------------------------------------------------------------------------
    def get_model(self, name: str) -> RegisteredModel:
        return _model(self._get(f"/models/{_seg(name)}"))

    def list_models(self, *, include_failed: bool = False) -> list[RegisteredModel]:
        found: list[RegisteredModel] = []
        token = None
        while True:
            page = self._get("/models", include_failed=include_failed, max_results=1000, page_token=token)
            found += [_model(m) for m in page["models"]]
            token = page.get("next_page_token")
            if not token:
                return found

    def get_version(self, name: str, version: int) -> ModelVersion:
        return _version(self._get(f"/models/{_seg(name)}/versions/{int(version)}"))

    def list_versions(
        self, name: str, *, include_archived: bool = True, include_failed: bool = False
    ) -> list[ModelVersion]:
        page = self._get(f"/models/{_seg(name)}/versions", include_archived=include_archived,
                         include_failed=include_failed)
        return [_version(v) for v in page["versions"]]

    def get(self, uri: str) -> ModelVersion:
        parsed = parse_model_uri(uri)
        if parsed.alias is not None:
            return _version(self._get(f"/models/{_seg(parsed.name)}/aliases/{_seg(parsed.alias)}"))
        if parsed.latest:
            return _version(self._get(f"/models/{_seg(parsed.name)}/latest"))
        assert parsed.version is not None
        return self.get_version(parsed.name, parsed.version)

    def signature_of(self, version: ModelVersion) -> Any:
        """The signature the version's package records, as the server reads it (None: none)."""
        from conveyor.entities import Signature

        found = self._get(f"/models/{_seg(version.name)}/versions/{int(version.version)}").get("signature")
        if not isinstance(found, dict):
            return None
        return Signature.from_dict({k: v for k, v in found.items() if v is not None})

    def resolve(self, uri: str) -> ModelRef:
        found = self.get(uri)
        return ModelRef(found.name, found.version, parse_model_uri(uri).alias, found.digest, found.run_id)

    def load_model(self, uri: str, *, trusted: list[str] | None = None) -> Any:
        """Download the version's package through the server and load it here."""
        from conveyor.models import load_folder
        from conveyor.tracking import parse_run_uri

        found = self.get(uri)
        require_loadable(found)
        ref = parse_run_uri(found.source)
        artifact = self.tracker.get_artifact(ref.run_id, ref.path)
        if artifact.digest != found.digest:
            raise Conflict(
                f"{found.uri} registered package {found.digest}, but {found.source} now holds {artifact.digest}",
                hint="the run's artifact was replaced after registration; register it again as a new version",
            )
        with tempfile.TemporaryDirectory(prefix="conveyor-model-") as tmp:
            folder = self.tracker.download_artifact(ref.run_id, ref.path, Path(tmp) / "model")
            return load_folder(folder, trusted=trusted, source=uri)

    # -- changing ---------------------------------------------------------------------------------
    def set_tags(self, name: str, version: int, tags: Mapping[str, Any]) -> None:
        self._send("PATCH", f"/models/{_seg(name)}/versions/{int(version)}",
                   json={"tags": {k: str(v) for k, v in tags.items()}})

    def delete_tag(self, name: str, version: int, key: str) -> None:
        if key not in self.get_version(name, version).tags:
            raise NotFound("tag", f"{name}/{version} {key}")
        self._send("PATCH", f"/models/{_seg(name)}/versions/{int(version)}", json={"delete_tags": [key]})

    def set_description(self, name: str, description: str, version: int | None = None) -> None:
        path = f"/models/{_seg(name)}" + ("" if version is None else f"/versions/{int(version)}")
        self._send("PATCH", path, json={"description": description})

    def archive(self, name: str, version: int, *, reason: str = "", user: str | None = None) -> None:
        self._send("POST", f"/models/{_seg(name)}/versions/{int(version)}/archive", json={"reason": reason, "user": user or current_user()})

    def restore(self, name: str, version: int, *, reason: str = "", user: str | None = None) -> None:
        self._send("POST", f"/models/{_seg(name)}/versions/{int(version)}/restore",
                   json={"reason": reason, "user": user or current_user()})

    def delete_version(self, name: str, version: int, *, reason: str = "", user: str | None = None) -> None:
        self._send("DELETE", f"/models/{_seg(name)}/versions/{int(version)}",
                   params={"reason": reason, "user": user or current_user()})

    # -- aliases ----------------------------------------------------------------------------------
    def set_alias(
        self,
        name: str,
        alias: str,
        version: int,
        *,
        reason: str = "",
        user: str | None = None,
        expected: Any = ANY,
        forced: bool = False,
        evaluation_id: str | None = None,
        kind: str = "alias",
    ) -> Event:
        """Point ``alias`` at ``version`` on the server (recorded with the caller the server
        authenticated). A compare-and-set (``expected``) is the server's ``promote``."""
        if expected is not ANY or forced or evaluation_id is not None or kind != "alias":
            raise InvalidInput(
                "a conditional or forced alias move is decided by the server in remote mode", field="expected",
                hint="use conveyor.gates.promote / `conveyor models promote` (or registry.promote)",
            )
        check_alias(alias)
        body = {"version": int(version), "reason": reason, "user": user or current_user()}
        return _event(self._send("PUT", f"/models/{_seg(name)}/aliases/{_seg(alias)}", json=body).json())

    def delete_alias(self, name: str, alias: str, *, reason: str = "", user: str | None = None) -> None:
        self._send("DELETE", f"/models/{_seg(name)}/aliases/{_seg(alias)}",
                   params={"reason": reason, "user": user or current_user()})

    def rollback(self, name: str, alias: str = "champion", *, reason: str = "", user: str | None = None) -> Event:
        path = f"/models/{_seg(name)}/aliases/{_seg(alias)}/rollback"
        return _event(self._send("POST", path, json={"reason": reason, "user": user or current_user()}).json())

    def promote(self, name: str, version: int, alias: str = "champion", *, force: bool = False,
                reason: str = "", user: str | None = None) -> Event:
        """The server's gated promotion (``conveyor.gates.promote`` there): the alias moves
        when the version's latest gate evaluation passed, or when forced with a reason."""
        body = {"alias": alias, "force": force, "reason": reason, "user": user or current_user()}
        return _event(self._send("POST", f"/models/{_seg(name)}/versions/{int(version)}/promote", json=body).json())

    def history(
        self, name: str, *, alias: str | None = None, until: str | int | datetime | None = None
    ) -> list[Event]:
        instant = None if until is None else str(parse_instant(until))
        page = self._get(f"/models/{_seg(name)}/history", alias=alias, until=instant)
        return [_event(e) for e in page["events"]]

    def aliases_at(self, name: str, at: str | int | datetime) -> dict[str, int]:
        found = self._get(f"/models/{_seg(name)}/aliases-at", at=str(parse_instant(at)))
        return {k: int(v) for k, v in found["aliases"].items()}

    def record_attempt(self, name: str, kind: str, **fields: Any) -> None:
        raise _remote_only("recording a promotion attempt (the server records its own)")

    def evaluations(self, name: str, version: int) -> list[dict[str, Any]]:
        """Stored gate evaluations of a version (the server's JSON), newest first."""
        return list(self._get(f"/models/{_seg(name)}/versions/{int(version)}/evaluations")["evaluations"])

    def card(self, name: str, version: int) -> str:
        """The model card, generated by the server from what it records."""
        return str(self._get(f"/models/{_seg(name)}/versions/{int(version)}/card")["markdown"])


__all__ = ["RemoteRegistry", "is_remote"]
