"""``runs:/<run_id>/<path>`` references, as MLflow users already write them."""

from __future__ import annotations

from dataclasses import dataclass

from conveyor.errors import InvalidInput

SCHEME = "runs:/"


@dataclass(frozen=True)
class RunURI:
    run_id: str
    path: str

    def __str__(self) -> str:
        return f"{SCHEME}{self.run_id}/{self.path}" if self.path else f"{SCHEME}{self.run_id}"


def parse_run_uri(uri: str) -> RunURI:
    """``runs:/abc123/model`` → RunURI("abc123", "model")."""
    if not isinstance(uri, str) or not uri.startswith(SCHEME):
        raise InvalidInput(
            f"{uri!r} is not a run URI", field="uri", value=uri, hint="write runs:/<run_id>/<artifact path>"
        )
    rest = uri[len(SCHEME):].lstrip("/")
    run_id, _, path = rest.partition("/")
    if not run_id or not run_id.isalnum():
        raise InvalidInput(f"{uri!r} names no valid run id", field="uri", value=uri, hint="runs:/<run_id>/<path>")
    return RunURI(run_id, path.strip("/"))
