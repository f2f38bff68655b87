"""What a Ray cluster needs from the driver: a bounded reachability check, the project's
code, the store settings and credentials (in each task's argument, never in a runtime_env;
in remote mode: none), and the same conveyor version.

- ``probe``: a Ray GCS (and the Ray client server) is a gRPC server, so it answers an
  HTTP/2 connection preface with a SETTINGS frame at once. A port that accepts TCP but
  never answers (or answers something else) is reported within ``[ray] connect_timeout``
  instead of hanging ``ray.init``.
- ``runtime_env``: only what is not secret: the project folder as ``working_dir``
  (``[ray] ship_code``) and the version check variable. Ray's runtime env agent logs every
  ``runtime_env`` it creates, ``env_vars`` values included, in ``runtime_env_agent.log`` on
  each node, and its state API shows a job's and a task's ``runtime_env``.
- ``task_env``: the store settings plus the S3 credentials the driver itself resolved
  (environment, profile or config files, through botocore), so a cluster started without
  any ``AWS_*`` variable still reads and writes the same bucket. They travel in each step's
  task argument (as the local executor's private task file), which Ray neither logs nor
  shows; the worker sets them in its own process environment for the step and masks the
  secret ones (``secrets``) in the step's log and error texts. In remote mode (``[server]
  url``) no store setting and no credential leaves the driver (it has none); the server's
  URL and token travel in the task argument the same way.
- ``secrets``: the values masked in what a step reports: the AWS secret key and session
  token, and the metadata store's password (which never leaves the driver: steps write only
  to the artifact store, the driver records runs).
- ``check_version``: one tiny task on the cluster reports its conveyor version; a
  mismatch (or no conveyor at all) stops the run before any step starts.
"""

from __future__ import annotations

import socket
import time
from pathlib import Path
from typing import Any

from conveyor._version import __version__
from conveyor.errors import InvalidInput, ServiceUnavailable

_PREFACE = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n" + b"\x00\x00\x00\x04\x00\x00\x00\x00\x00"
_SETTINGS = 0x4


def split_address(address: str) -> tuple[str, int]:
    text = address.removeprefix("ray://")
    host, _, port = text.rpartition(":")
    if not host or not port.isdigit():
        raise InvalidInput(
            f"Ray address {address!r} is not host:port", field="ray_address", value=address,
            hint="e.g. 127.0.0.1:6379 (the GCS port printed by `ray start --head`)",
        )
    return host, int(port)


def probe(address: str, timeout: float) -> None:
    """Raise ``ServiceUnavailable`` unless a gRPC server answers at ``address`` in time."""
    host, port = split_address(address)
    setting = "the setting ray.connect_timeout (CONVEYOR_RAY_CONNECT_TIMEOUT)"
    deadline = time.monotonic() + timeout
    try:
        with socket.create_connection((host, port), timeout=timeout) as sock:
            sock.sendall(_PREFACE)
            header = b""
            while len(header) < 9:
                left = deadline - time.monotonic()
                if left <= 0:
                    raise TimeoutError
                sock.settimeout(left)
                chunk = sock.recv(9 - len(header))
                if not chunk:
                    break
                header += chunk
    except TimeoutError:
        raise ServiceUnavailable(
            f"the Ray cluster at {address} accepted a connection but did not answer within {timeout:g} s",
            hint=f"is {address} the GCS port of `ray start --head`? raise {setting} for a slow network",
        ) from None
    except OSError as exc:
        raise ServiceUnavailable(
            f"no Ray cluster answers at {address} ({exc.strerror or exc})",
            hint="start one with `ray start --head` or pass the right --ray-address",
        ) from None
    if len(header) < 9 or header[3] != _SETTINGS:
        raise ServiceUnavailable(
            f"the server at {address} is not a Ray cluster (it does not speak gRPC)",
            hint="pass the GCS address printed by `ray start --head` (--ray-address or the setting pipelines.ray_address)",
        )


def s3_credentials() -> dict[str, str]:
    """The S3 credentials this process would use (botocore's chain), as AWS_* variables."""
    try:
        import botocore.session
    except ImportError:  # no S3 support installed: nothing to pass
        return {}
    session = botocore.session.Session()
    found = session.get_credentials()
    out: dict[str, str] = {}
    if found is not None:
        frozen = found.get_frozen_credentials()
        out["AWS_ACCESS_KEY_ID"] = frozen.access_key
        out["AWS_SECRET_ACCESS_KEY"] = frozen.secret_key
        if frozen.token:
            out["AWS_SESSION_TOKEN"] = frozen.token
    region = session.get_config_variable("region")
    if region:
        out["AWS_DEFAULT_REGION"] = str(region)
    return out


def runtime_env(settings: Any, *, remote: bool = False) -> dict[str, Any]:
    """The ``runtime_env`` for ``ray.init``: code and version check only, nothing secret
    (store settings and credentials go in each step's task argument: ``task_env``)."""
    del remote  # the same either way: nothing a runtime_env carries is secret
    env: dict[str, Any] = {"env_vars": {"CONVEYOR_EXPECTED_VERSION": __version__}}
    if settings.ray.ship_code:
        env["working_dir"] = str(Path(settings.root))
        env["excludes"] = [p.strip() for p in settings.ray.code_excludes.split(",") if p.strip()]
    return env


#: the ``task_env`` variables whose values are secret (masked in what a step reports)
SECRET_VARS = ("AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN")


def task_env(settings: Any, *, remote: bool = False) -> dict[str, str]:
    """The variables a worker sets for a step: store settings and S3 credentials (``remote``:
    none). Steps write only to the artifact store (the driver records runs), so the metadata
    URL and its password stay on the driver."""
    if remote:
        return {}
    env = {"CONVEYOR_STORE_ARTIFACTS_URL": str(settings.artifacts_url)}
    if settings.store.s3_endpoint_url:
        env["CONVEYOR_STORE_S3_ENDPOINT_URL"] = settings.store.s3_endpoint_url
    if str(settings.artifacts_url).startswith("s3://"):
        env.update(s3_credentials())
    return env


def secrets(settings: Any, env: dict[str, str]) -> list[str]:
    """The values to mask in a step's log and error texts: the secret ``env`` values and the
    metadata store's password."""
    found = [env[name] for name in SECRET_VARS if env.get(name)]
    try:
        from sqlalchemy.engine import make_url

        password = make_url(str(settings.metadata_url)).password
    except Exception:  # not a URL SQLAlchemy parses: it has no password to hide
        password = None
    if password:
        found.append(str(password))
    return found


def mask_all(text: str, found: Any) -> str:
    """``text`` with every one of ``found`` (the ``secrets``; None entries ignored) masked."""
    from conveyor.pipelines._remote import mask

    for secret in found:
        text = mask(text, secret)
    return text


def describe(env: dict[str, Any]) -> str:
    """A loggable summary: names, never values."""
    names = ", ".join(sorted(env.get("env_vars", {})))
    return f"working_dir={env.get('working_dir', '-')} env_vars=[{names}]"


def _cluster_version() -> str:
    try:
        from conveyor._version import __version__ as version
    except ImportError:  # pragma: no cover - runs on the cluster
        return "not installed"
    return str(version)


def check_version(ray: Any, timeout: float) -> None:
    """Compare the cluster's conveyor with the driver's."""
    ref = ray.remote(_cluster_version).options(num_cpus=0, max_retries=0).remote()
    ready, _ = ray.wait([ref], timeout=timeout)
    if not ready:
        ray.cancel(ref, force=True)
        raise ServiceUnavailable(
            f"the Ray cluster did not run a version check within {timeout:g} s",
            hint="is the cluster busy or missing worker nodes? (`ray status`)",
        )
    try:
        version = str(ray.get(ref))
    except Exception as exc:  # conveyor cannot even be imported there
        raise ServiceUnavailable(
            f"conveyor does not run on the Ray cluster: {str(exc).splitlines()[0][:300]}",
            hint=f"install conveyor-mlops=={__version__} on every node",
        ) from None
    if version != __version__:
        raise ServiceUnavailable(
            f"the Ray cluster runs conveyor {version}, this driver {__version__}",
            hint=f"install conveyor-mlops=={__version__} on every node (or the driver's version there)",
        )
