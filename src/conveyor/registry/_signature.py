"""A registered version's signature, read from its package description alone (the
``conveyor-model.json`` blob of the package manifest; no model is loaded)."""

from __future__ import annotations

import json
from typing import Any

from conveyor.entities import Signature
from conveyor.errors import ConveyorError


def package_signature(registry: Any, version: Any) -> Signature | None:
    """The signature the package of ``version`` records, or None (no signature, a
    single-file package, or a description that cannot be read)."""
    from conveyor.blobs import Digest
    from conveyor.models import META_FILE, ModelMeta

    remote = getattr(registry, "signature_of", None)
    if remote is not None:  # remote mode: the server reads the package
        return remote(version)  # type: ignore[no-any-return]
    try:
        manifest = registry.blobs.read_manifest(Digest.parse(version.digest))
        entry = next((e for e in manifest.entries if e.path == META_FILE), None)
        if entry is None:
            return None
        return ModelMeta.from_dict(json.loads(registry.blobs.read_bytes(entry.digest))).signature
    except (ConveyorError, ValueError, KeyError, TypeError):
        return None


def describe_outputs(signature: Signature | None) -> dict[str, str]:
    """What a version answers, as a person reads it: ``prediction (int64)`` and, for a
    classifier, ``probabilities (float64 × 3: classes 0, 1, 2)``."""
    if signature is None:
        return {}
    shown = {"inputs": f"{len(signature.inputs)} column(s): " + ", ".join(
        f"{c.name} ({c.dtype})" for c in signature.inputs[:8]) + (" …" if len(signature.inputs) > 8 else "")}
    shown["outputs"] = ", ".join(f"{c.name} ({c.dtype})" for c in signature.outputs) or "not recorded"
    proba = signature.probabilities
    shown["probabilities"] = (
        f"{proba.name} ({proba.dtype} × {len(proba.classes)}: classes {', '.join(map(str, proba.classes))})"
        if proba is not None else "none (the model has no predict_proba)"
    )
    return shown
