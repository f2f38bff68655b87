"""``models:/name/3``, ``models:/name@champion`` and ``models:/name/latest`` references."""

from __future__ import annotations

from dataclasses import dataclass

from conveyor.errors import InvalidInput

SCHEME = "models:/"


@dataclass(frozen=True)
class ModelURI:
    """A parsed model reference: exactly one of ``version``, ``alias`` or ``latest``."""

    name: str
    version: int | None = None
    alias: str | None = None
    latest: bool = False


def parse_model_uri(uri: str) -> ModelURI:
    """``models:/churn@champion`` → ModelURI("churn", alias="champion").

    Also accepts the short forms ``churn/3`` and ``churn@champion`` the CLI takes.
    """
    if not isinstance(uri, str) or not uri.strip():
        raise InvalidInput(f"{uri!r} is not a model URI", field="uri", value=uri, hint=_HINT)
    rest = uri[len(SCHEME):] if uri.startswith(SCHEME) else uri
    rest = rest.strip("/")
    if "@" in rest:
        name, _, alias = rest.partition("@")
        if not name or not alias or "/" in alias or "/" in name:
            raise InvalidInput(f"{uri!r} is not a model URI", field="uri", value=uri, hint=_HINT)
        return ModelURI(name, alias=alias)
    name, sep, tail = rest.rpartition("/")
    if not sep or not name:
        raise InvalidInput(f"{uri!r} names no version or alias", field="uri", value=uri, hint=_HINT)
    if tail == "latest":
        return ModelURI(name, latest=True)
    if not tail.isdigit() or int(tail) < 1:
        raise InvalidInput(
            f"version {tail!r} in {uri!r} is not a positive integer", field="uri", value=uri, hint=_HINT
        )
    return ModelURI(name, version=int(tail))


_HINT = "write models:/<name>/<version>, models:/<name>@<alias> or models:/<name>/latest"
