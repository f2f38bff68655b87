"""What ``doctor`` checks, without the metadata store: references expanded, listings compared.

Shared by :func:`conveyor.store.doctor` and the ``conveyor doctor --quick`` fast path
(``conveyor._doctor_quick``), which reads the references without SQLAlchemy: one
implementation, so both report the same. Imports neither SQLAlchemy nor s3fs.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass, field

from conveyor.errors import ConveyorError

from ._digest import Digest
from ._manifest import Manifest
from ._store import BlobStore

__all__ = ["DoctorReport", "References", "check", "expand"]

Progress = Callable[[int, int], None]


@dataclass
class DoctorReport:
    checked: int = 0
    quick: bool = False
    missing: list[str] = field(default_factory=list)
    corrupt: list[str] = field(default_factory=list)
    unreadable_manifests: list[str] = field(default_factory=list)
    orphans: list[str] = field(default_factory=list)
    bad_references: list[str] = field(default_factory=list)
    leftover_files: int = 0
    leftover_bytes: int = 0

    @property
    def healthy(self) -> bool:
        return not (
            self.missing or self.corrupt or self.bad_references or self.unreadable_manifests or self.leftover_files
        )


@dataclass
class References:
    """What the metadata references: digests (manifests expanded), known sizes, problems."""

    digests: set[str] = field(default_factory=set)
    sizes: dict[str, int] = field(default_factory=dict)
    #: pack digest → the least size it must have (the end of the last file read from it)
    packs: dict[str, int] = field(default_factory=dict)
    bad: list[str] = field(default_factory=list)
    unreadable: list[str] = field(default_factory=list)


def expand(
    blobs: BlobStore, roots: dict[str, bool], problems: list[str] | None = None, *, stored: Iterable[Digest] | None = None
) -> References:
    """The roots plus the entries of those that are manifests (read only those)."""
    refs = References()
    manifests: list[Digest] = []
    for text, is_manifest in roots.items():
        refs.digests.add(text)
        try:
            digest = Digest.parse(text)
        except ConveyorError:
            refs.bad.append(text)
            continue
        if is_manifest:
            manifests.append(digest)
    if stored is not None:
        present = set(manifests) & set(stored)
    else:
        present = blobs.exists_many(manifests) if manifests else set()

    def read(digest: Digest) -> Manifest | None:
        if digest not in present:
            return None
        try:
            return blobs.read_manifest(digest)
        except (ConveyorError, RecursionError, MemoryError):
            return None

    # Concurrently: on S3 each manifest is a few requests.
    for digest, manifest in zip(manifests, blobs.map(read, manifests), strict=True):
        if manifest is None:
            refs.unreadable.append(str(digest))
            continue
        for entry in manifest.entries:
            if entry.pack is not None:
                # A file in a pack is not an object: the pack is what must stay stored.
                pack = str(entry.pack)
                refs.digests.add(pack)
                refs.packs[pack] = max(refs.packs.get(pack, 0), entry.offset + entry.size)
                continue
            refs.digests.add(str(entry.digest))
            refs.sizes[str(entry.digest)] = entry.size
    if problems is not None:
        problems.extend(refs.bad)
    refs.unreadable.sort()
    return refs


def check(
    report: DoctorReport, blobs: BlobStore, refs: References, listing: dict[Digest, tuple[int, float]], *,
    quick: bool, progress: Progress | None,
) -> None:
    report.bad_references = refs.bad
    report.unreadable_manifests = refs.unreadable
    stored = {str(d): size for d, (size, _) in listing.items()}
    valid = sorted(r for r in refs.digests if r not in refs.bad)
    report.missing = [t for t in valid if t not in stored]
    present = [t for t in valid if t in stored]
    wrong_size = {t for t in present if t in refs.sizes and refs.sizes[t] != stored[t]}
    # A pack shorter than its files' extent is truncated (a longer one is checked by hashing).
    wrong_size |= {t for t in present if t in refs.packs and t not in refs.sizes and stored[t] < refs.packs[t]}
    if quick:
        report.corrupt = sorted(wrong_size)
        report.checked = len(valid)
        if progress:
            progress(len(valid), len(valid))
    else:
        def check(text: str) -> bool:
            return text not in wrong_size and blobs.verify(Digest.parse(text), size=stored[text])

        ok = blobs.map(check, present, progress=progress)
        report.corrupt = sorted(t for t, good in zip(present, ok, strict=True) if not good)
        report.checked = len(valid)
    report.orphans = sorted(t for t in stored if t not in refs.digests)
