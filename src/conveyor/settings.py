"""Settings: one typed object, read once at the edge and passed down.

Precedence: ``CONVEYOR_<SECTION>_<KEY>`` environment variables > ``conveyor.toml``
(found by walking up from the working directory) > defaults. Relative paths in
settings are relative to the project root: the folder that holds ``conveyor.toml``,
or the working directory when there is none.

Every field carries a description; ``docs/settings.md`` is checked against them by a test.
This module imports nothing from conveyor except ``errors``: it is a leaf.
"""

from __future__ import annotations

import os
import tomllib
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from conveyor.errors import ConfigError

__all__ = [
    "CONFIG_FILE",
    "ModelsSettings",
    "RaySettings",
    "ServerSettings",
    "Settings",
    "StoreSettings",
    "TrackingSettings",
    "find_project_root",
]

CONFIG_FILE = "conveyor.toml"
ENV_PREFIX = "CONVEYOR_"


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class StoreSettings(_Section):
    """Where metadata and artifacts live."""

    metadata_url: str = Field(
        "sqlite:///.conveyor/conveyor.db",
        description="SQLAlchemy URL of the metadata store: a SQLite file (default) or "
        "postgresql+psycopg://user@host/db.",
    )
    artifacts_url: str = Field(
        ".conveyor/artifacts",
        description="Root of the content-addressed artifact store: a local folder or s3://bucket/prefix.",
    )
    s3_endpoint_url: str | None = Field(
        None,
        description="Endpoint of an S3-compatible server (MinIO, Ceph, moto…); unset for AWS S3.",
    )
    s3_connect_timeout: float = Field(
        5.0, gt=0, description="Seconds to wait for a TCP connection to the S3 endpoint before an attempt fails."
    )
    s3_read_timeout: float = Field(
        10.0, gt=0, description="Seconds to wait for the S3 endpoint to answer a request before an attempt fails."
    )
    s3_max_attempts: int = Field(
        3, ge=1, le=20, description="Attempts per S3 request (first try included) on throttling, timeouts, 5xx."
    )
    s3_max_concurrency: int = Field(
        32, ge=1, le=512, description="S3 requests in flight at once when moving many objects (uploads, downloads, listings)."
    )
    connect_timeout: float = Field(
        3.0,
        ge=1,
        le=600,
        description="Seconds to wait for the metadata database to accept a connection before the "
        "attempt counts as failed (PostgreSQL connect_timeout; SQLite ignores it).",
    )
    statement_timeout: float = Field(
        60.0,
        gt=0,
        description="Seconds one PostgreSQL statement may run before the server cancels it; also the "
        "idle-in-transaction limit, so a dead client's locks are released.",
    )
    retry_seconds: float = Field(
        5.0,
        ge=0,
        description="How long a metadata write (or a read on its own connection) keeps retrying transient failures "
        "(connection refused or reset, timeouts, serialization failures) with exponential backoff before it gives up.",
    )


class TrackingSettings(_Section):
    """How runs are recorded."""

    flush_interval: float = Field(
        1.0,
        gt=0,
        description="Seconds between background writes of buffered metrics; the crash window.",
    )
    batch_size: int = Field(
        5000, ge=1, description="Buffered metric points that trigger a write before the interval ends."
    )
    capture_git: bool = Field(True, description="Record git commit, branch and dirty flag of each run.")
    capture_packages: bool = Field(
        True, description="Record a digest of the installed Python packages of each run."
    )
    search_timeout: float = Field(
        30.0,
        ge=0,
        description="Seconds a run search may take on PostgreSQL before the database cancels it "
        "(statement_timeout); 0 means no limit.",
    )
    heartbeat_interval: float = Field(
        30.0,
        gt=0,
        description="Seconds between heartbeats a running run writes; a run whose heartbeat is older "
        "than stale_after is taken as dead by `conveyor runs gc-stale` and `conveyor sync`.",
    )
    stale_after: float = Field(
        300.0,
        gt=0,
        description="Seconds without a heartbeat after which a RUNNING run counts as dead (KILLED).",
    )
    spool_dir: str = Field(
        ".conveyor/spool",
        description="Folder of the append-only spool of metric points and run ends that could not be "
        "written to the metadata store; `conveyor sync` (or the next process) replays it.",
    )


class ModelsSettings(_Section):
    """What loading a model package may import (see docs/models-trust.md)."""

    trusted_modules: tuple[str, ...] = Field(
        ("keras", "numpy", "scipy", "sklearn", "torch"),
        description="Modules whose classes a model package may reference, plus full names "
        "(pkg.module.func) of functions and classes trusted one by one; comma-separated in the "
        "environment. Functions are never trusted by module. --trust adds entries for one command.",
    )

    @field_validator("trusted_modules", mode="before")
    @classmethod
    def _split(cls, value: Any) -> Any:
        return tuple(p.strip() for p in value.split(",") if p.strip()) if isinstance(value, str) else value


class RaySettings(_Section):
    """How pipelines reach a Ray cluster (the address itself is ``[pipelines] ray_address``)."""

    connect_timeout: float = Field(
        5.0,
        gt=0,
        le=600,
        description="Seconds to wait for the Ray cluster's GCS to answer before giving up (exit code 4).",
    )
    ship_code: bool = Field(
        True,
        description="Send the project folder to the cluster as the Ray runtime_env working_dir, so "
        "nodes need not have the pipeline code installed at the same path.",
    )
    code_excludes: str = Field(
        ".conveyor/,.git/,.venv/,venv/,__pycache__/,*.db,data/",
        description="Comma-separated patterns (gitignore style) left out of the code sent to the cluster.",
    )


class ServerSettings(_Section):
    """``[server]``: for a client, the server it talks to (remote mode); for ``conveyor server``,
    who may do what and what a request may be (see docs/server.md)."""

    # -- auth and hardening (issue 13 item 6): keep these keys in one block ---------------------
    default_role: str = Field(
        "read",
        pattern="^(none|read|edit|manage)$",
        description="Role every user has on an experiment or registered model that grants them none "
        "(none, read, edit or manage); the creator of a resource gets manage, admins may do everything.",
    )
    allowed_hosts: tuple[str, ...] = Field(
        (),
        description="Host names (or host:port) clients may reach the server by, besides 127.0.0.1, "
        "localhost and ::1; any other Host header is refused (DNS rebinding). Comma-separated in the "
        "environment; \"*\" allows every name.",
    )
    cors_origins: tuple[str, ...] = Field(
        (),
        description="Browser origins (scheme://host[:port]) allowed to call the server cross-origin; "
        "none by default (CORS off). Comma-separated in the environment.",
    )
    max_json_bytes: int = Field(
        16 * 1024 * 1024, ge=1024, description="Largest JSON or form request body, in bytes (413 above)."
    )
    max_upload_bytes: int = Field(
        5 * 1024**3, ge=1024, description="Largest artifact upload body, in bytes (413 above)."
    )
    session_hours: float = Field(
        12.0,
        gt=0,
        le=24 * 366,
        description="Hours a web UI sign-in with user and password lasts; the session token it issues is "
        "refused after that (signing out revokes it at once).",
    )

    # -- large and direct artifact transfers (issue 13 items 2 and 3) ----------------------------
    presigned_urls: bool = Field(
        False,
        description="When the artifact store is S3: answer artifact downloads with a redirect to a short-lived "
        "presigned GET URL, and let clients upload to a presigned PUT URL (verified before it is stored), so "
        "the bytes do not pass through the server. Off: every byte streams through the server.",
    )
    presigned_seconds: int = Field(
        300, ge=10, le=7 * 24 * 3600, description="Seconds a presigned S3 URL handed out by the server stays valid."
    )
    upload_expiry_hours: float = Field(
        24.0,
        gt=0,
        le=24 * 30,
        description="Hours an unfinished multipart or presigned upload is kept; after that its parts are removed "
        "(by the next upload started on the server, or by `conveyor gc`).",
    )
    multipart_threshold: int = Field(
        64 * 1024 * 1024,
        ge=0,
        description="Remote mode: files larger than this many bytes are uploaded in parts (resumable, retried "
        "part by part) or straight to S3 when the server offers presigned URLs; smaller ones in one request.",
    )
    multipart_part_size: int = Field(
        32 * 1024 * 1024,
        ge=1024 * 1024,
        le=64 * 1024 * 1024,
        description="Remote mode: size of one part of a multipart upload, in bytes (1 MiB to 64 MiB; at least "
        "5 MiB when the server's artifact store is S3).",
    )

    webhook_hosts: tuple[str, ...] = Field(
        (),
        description="With authentication on: the hosts (or host:port) the server may POST alerts to when it "
        "evaluates a monitor a remote client sent; a webhook naming any other host is refused (400, nothing "
        "stored), so a user who may edit a model cannot make the server call its internal network. "
        "Comma-separated in the environment. Without authentication (loopback only) any webhook is allowed.",
    )

    @field_validator("allowed_hosts", "cors_origins", "webhook_hosts", mode="before")
    @classmethod
    def _split(cls, value: Any) -> Any:
        return tuple(p.strip() for p in value.split(",") if p.strip()) if isinstance(value, str) else value

    # -- remote mode (issue 13 item 3) -------------------------------------------------------

    url: str | None = Field(
        None,
        description="URL of a `conveyor server` (http://host:5000). When set, the Python API and the CLI's "
        "tracking commands go through that server and need no database or S3 credentials; unset: the "
        "stores of [store] are used directly.",
    )
    token: str | None = Field(
        None,
        description="API token sent to the server as `Authorization: Bearer …` (prefer the environment "
        "variable CONVEYOR_SERVER_TOKEN over writing it into conveyor.toml).",
    )
    timeout: float = Field(30.0, gt=0, description="Seconds to wait for one answer of the server.")
    retry_seconds: float = Field(
        30.0,
        ge=0,
        description="How long a request is retried (exponential backoff, at most 5 s apart) while the "
        "server is unreachable or answers 5xx; metric batches that still fail are spooled to "
        "[tracking] spool_dir and sent when the server is back.",
    )

    @field_validator("url")
    @classmethod
    def _url(cls, value: str | None) -> str | None:
        if value is None or value.strip() == "":
            return None
        if not value.startswith(("http://", "https://")):
            raise ValueError("must start with http:// or https://")
        return value.rstrip("/")


class Settings(BaseModel):
    """All of conveyor's settings, resolved against a project root.

    Example::

        settings = Settings.load()            # env > conveyor.toml > defaults
        settings.metadata_url                 # absolute SQLAlchemy URL
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    root: Path = Field(description="Project root: the folder of conveyor.toml, or the working directory.")
    store: StoreSettings = StoreSettings()
    tracking: TrackingSettings = TrackingSettings()
    models: ModelsSettings = ModelsSettings()
    ray: RaySettings = RaySettings()
    server: ServerSettings = ServerSettings()
    sections: dict[str, Any] = Field(
        default_factory=dict,
        description="Other tables of conveyor.toml (pipelines, gates, monitors…), read by their owners.",
    )

    # -- loading ---------------------------------------------------------------------------
    @classmethod
    def load(
        cls,
        cwd: str | os.PathLike[str] | None = None,
        env: Mapping[str, str] | None = None,
    ) -> Settings:
        """Read settings from the environment, ``conveyor.toml`` and defaults."""
        env = os.environ if env is None else env
        start = Path(cwd) if cwd is not None else Path.cwd()
        if env.get(ENV_PREFIX + "ROOT"):
            root = Path(env[ENV_PREFIX + "ROOT"]).expanduser().resolve()
        else:
            root = find_project_root(start) or start.resolve()
        config_path = root / CONFIG_FILE
        data: dict[str, Any] = {}
        if config_path.is_file():
            data = _read_toml(config_path)
        return cls.from_mapping(root, data, env, source=str(config_path))

    @classmethod
    def from_mapping(
        cls,
        root: Path,
        data: Mapping[str, Any],
        env: Mapping[str, str] | None = None,
        *,
        source: str = CONFIG_FILE,
    ) -> Settings:
        env = {} if env is None else env
        check_env_keys(env)
        typed = {name: dict(data.get(name, {})) for name in _TYPED_SECTIONS}
        for name, value in typed.items():
            if not isinstance(data.get(name, {}), Mapping):
                raise ConfigError(
                    f"[{name}] in {source} must be a table", field=name, value=data.get(name)
                )
            typed[name] = value
        origins: dict[tuple[str, str], str] = {}
        for name, model in _TYPED_SECTIONS.items():
            for key in typed[name]:
                origins[(name, key)] = f"{source} [{name}] {key}"
            for field in model.model_fields:
                var = f"{ENV_PREFIX}{name}_{field}".upper()
                if env.get(var, "") != "":  # empty counts as unset: CI renders a missing secret as ""
                    typed[name][field] = env[var]
                    origins[(name, field)] = f"environment variable {var}"
        sections = {k: v for k, v in data.items() if k not in _TYPED_SECTIONS}
        try:
            built = {name: model.model_validate(typed[name]) for name, model in _TYPED_SECTIONS.items()}
        except ValidationError as exc:
            raise _config_error(exc, typed, origins) from exc
        return cls(root=root.resolve(), sections=sections, **built)

    # -- resolved values ------------------------------------------------------------------
    @property
    def metadata_url(self) -> str:
        """The metadata URL with a relative SQLite path made absolute against the root."""
        url = self.store.metadata_url
        prefix = "sqlite:///"
        if url.startswith(prefix) and not url.startswith("sqlite:////") and url != "sqlite:///:memory:":
            path = url[len(prefix):]
            return prefix + str((self.root / path).resolve())
        return url

    @property
    def artifacts_url(self) -> str:
        """The artifact-store URL with a relative folder made absolute against the root."""
        url = self.store.artifacts_url
        if "://" in url:
            if url.startswith("file://"):
                return str(Path(url[len("file://"):]).resolve())
            return url
        return str((self.root / Path(url).expanduser()).resolve())

    @property
    def conveyor_dir(self) -> Path:
        """The folder conveyor writes into by default."""
        return self.root / ".conveyor"

    @property
    def spool_dir(self) -> Path:
        """The spool folder made absolute against the root."""
        return (self.root / Path(self.tracking.spool_dir).expanduser()).resolve()

    def section(self, name: str) -> Any:
        """An untyped table of conveyor.toml (``{}`` when absent)."""
        return self.sections.get(name, {})


_TYPED_SECTIONS: dict[str, type[_Section]] = {"store": StoreSettings, "tracking": TrackingSettings, "ray": RaySettings}
_TYPED_SECTIONS["models"] = ModelsSettings
_TYPED_SECTIONS["server"] = ServerSettings


def _config_error(
    exc: ValidationError, typed: Mapping[str, Mapping[str, Any]], origins: Mapping[tuple[str, str], str]
) -> ConfigError:
    first = exc.errors()[0]
    # model_validate is called per section, so the loc starts at the field
    loc = [str(p) for p in first["loc"]]
    field = loc[0] if loc else "?"
    section = next((s for s, values in typed.items() if field in values), "?")
    origin = origins.get((section, field), f"[{section}] {field}")
    value = typed.get(section, {}).get(field)
    if first["type"] == "extra_forbidden":
        allowed = ", ".join(sorted(_TYPED_SECTIONS[section].model_fields)) if section in _TYPED_SECTIONS else ""
        return ConfigError(
            f"unknown setting {origin}", field=f"{section}.{field}", value=value, hint=f"known keys: {allowed}"
        )
    return ConfigError(
        f"bad value {value!r} for {origin}: {first['msg']}",
        field=f"{section}.{field}",
        value=value,
        hint=_TYPED_SECTIONS[section].model_fields[field].description if section in _TYPED_SECTIONS else None,
    )


#: ``CONVEYOR_*`` variables that are not settings: the project root, the test suite's and
#: CI's switches, and what conveyor passes to its own worker processes.
OTHER_ENV_KEYS = frozenset({
    "CONVEYOR_ROOT",
    "CONVEYOR_REQUIRE_SERVICES",
    "CONVEYOR_TEST_POSTGRES",
    "CONVEYOR_SERVE_SPEC",
    "CONVEYOR_RAY_CONNECT_TIMEOUT",
    # the conveyor version a Ray worker must run (set by the executor's runtime_env)
    "CONVEYOR_EXPECTED_VERSION",
    # private hand-over from `conveyor server` to its worker processes
    "CONVEYOR_SERVER_WORKER_LOG_LEVEL",
    "CONVEYOR_SERVER_WORKER_AUTH",
    # the web UI's browser tests: where screenshots go, which Chromium binary drives them
    "CONVEYOR_SCREENSHOTS",
    "CONVEYOR_CHROMIUM",
})
#: The deepest nesting of arrays and tables a conveyor.toml may use.
MAX_TOML_DEPTH = 32
MAX_TOML_BYTES = 10_000_000


def check_env_keys(env: Mapping[str, str]) -> None:
    """A misspelt ``CONVEYOR_*`` variable is an error naming it and the closest valid one,
    not a setting silently ignored."""
    known = {var for _, var, _, _ in iter_settings()} | OTHER_ENV_KEYS
    for key in sorted(env):
        if key.startswith(ENV_PREFIX) and key not in known:
            from difflib import get_close_matches

            close = get_close_matches(key, sorted(known), n=1, cutoff=0.6)
            raise ConfigError(
                f"unknown environment variable {key}" + (f"; did you mean {close[0]}?" if close else ""),
                field=key,
                value=env[key],
                hint=f"unset it, or use one of the variables listed in docs/settings.md"
                + (f" (closest: {close[0]})" if close else ""),
            )


def _read_toml(path: Path) -> dict[str, Any]:
    """conveyor.toml as a dict; every way it can be unreadable is a ConfigError naming the file."""
    try:
        raw = path.read_bytes()
    except OSError as exc:
        raise ConfigError(f"cannot read {path}: {exc.strerror}", field=str(path), hint="check the file") from exc
    if len(raw) > MAX_TOML_BYTES:
        raise ConfigError(f"{path} is {len(raw):,} bytes; the limit is {MAX_TOML_BYTES:,}", field=str(path))
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise ConfigError(
            f"{path} is not UTF-8 text (byte {exc.start})", field=str(path), hint="save the file as UTF-8"
        ) from exc
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{path} is not valid TOML: {exc}", field=str(path), hint="fix the file") from exc
    except RecursionError as exc:
        raise ConfigError(
            f"{path} nests arrays or tables too deeply", field=str(path), hint=f"at most {MAX_TOML_DEPTH} levels"
        ) from exc
    if _depth(data) > MAX_TOML_DEPTH:
        raise ConfigError(
            f"{path} nests arrays or tables more than {MAX_TOML_DEPTH} levels deep",
            field=str(path),
            hint="conveyor's tables are at most a few levels deep",
        )
    return data


def _depth(value: Any, level: int = 0) -> int:
    if level > MAX_TOML_DEPTH:
        return level
    if isinstance(value, dict):
        return max((_depth(v, level + 1) for v in value.values()), default=level + 1)
    if isinstance(value, list):
        return max((_depth(v, level + 1) for v in value), default=level + 1)
    return level


def find_project_root(start: Path) -> Path | None:
    """The nearest folder at or above ``start`` that holds ``conveyor.toml``."""
    here = start.resolve()
    for folder in (here, *here.parents):
        if (folder / CONFIG_FILE).is_file():
            return folder
    return None


def iter_settings() -> list[tuple[str, str, Any, str]]:
    """(toml key, environment variable, default, description) of every typed setting."""
    rows = []
    for name, model in _TYPED_SECTIONS.items():
        for field, info in model.model_fields.items():
            rows.append(
                (f"[{name}] {field}", f"{ENV_PREFIX}{name}_{field}".upper(), info.default, info.description or "")
            )
    return rows
