"""What a version must pass before it is ``READY``: it is a model package, it loads, and it
predicts its own input example through its signature.

``require_package`` refuses what is not a package at all (a bare file, a folder without
``conveyor-model.json``) before a version number is taken; ``verify`` loads the package the
way serving and the gates will, so a version that fails here would have failed there.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from conveyor.errors import InvalidInput

META_FILE = "conveyor-model.json"
HOW_TO_PACKAGE = (
    "save the model as a conveyor model package: inside a run call "
    "conveyor.models.log(model, 'model', input_example=X[:5]) and register runs:/<run_id>/model, "
    "or conveyor.models.save(model, 'folder') then conveyor.log_artifacts('folder', 'model')"
)


@dataclass(frozen=True)
class Verified:
    """A package that loaded and predicted its example; ``digest`` is what was checked."""

    source: str
    digest: str
    model: Any


def require_package(blobs: Any, source: str, artifact: Any) -> None:
    """Refuse an artifact that is not a model package, saying how to make one."""
    from conveyor.blobs import Digest

    if not artifact.is_dir:
        raise InvalidInput(
            f"{source} is a single file, not a conveyor model package", field="source", value=source,
            hint=HOW_TO_PACKAGE,
        )
    entries = {entry.path for entry in blobs.read_manifest(Digest.parse(artifact.digest)).entries}
    if META_FILE not in entries:
        shown = ", ".join(sorted(entries)[:5]) or "nothing"
        raise InvalidInput(
            f"{source} is not a conveyor model package: it holds {shown} but no {META_FILE}",
            field="source", value=source, hint=HOW_TO_PACKAGE,
        )


def check_loaded(model: Any) -> None:
    """Predict the package's stored input example through its signature (one row out per row in)."""
    example = getattr(model, "example", None)
    if example is None:
        return
    try:
        rows = len(example)
    except TypeError:
        return
    output = model.predict(example)
    got = len(output) if hasattr(output, "__len__") else None
    if got != rows:
        raise InvalidInput(
            f"the model answered {got} rows for its {rows}-row input example", field="predict", value=got,
            hint="predict must return one prediction per input row",
        )


def verify(blobs: Any, source: str, digest: str, *, trusted: list[str] | None = None) -> Verified:
    """Load the package stored under ``digest`` and predict its input example.

    Any failure (a missing framework, an untrusted type, a signature the example does not
    fit, a model that raises) comes out as ``InvalidInput`` whose message is the reason a
    version records as ``FAILED_REGISTRATION``."""
    from conveyor.models import load_from_store

    return Verified(source, digest, checked(lambda: load_from_store(blobs, digest, trusted=trusted, source=source),
                                            source))


def checked(load: Any, source: str) -> Any:
    """``load()`` then predict the example; every failure as the ``InvalidInput`` a version
    records as its ``FAILED_REGISTRATION`` reason."""
    try:
        model = load()
        check_loaded(model)
    except Exception as exc:  # noqa: BLE001 - every failure is the reason the version is refused
        reason = getattr(exc, "message", None) or f"{type(exc).__name__}: {exc}"
        hint = getattr(exc, "hint", None)
        raise InvalidInput(
            f"{source} does not load as a model: {reason}", field="source", value=source,
            hint=hint or "load it with conveyor.models.load to see the full error",
        ) from exc
    return model


__all__ = ["HOW_TO_PACKAGE", "Verified", "check_loaded", "checked", "require_package", "verify"]
