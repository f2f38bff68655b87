"""BlobStore: the content-addressed artifact store (files, bytes, streams, trees)."""

from __future__ import annotations

import contextlib
import io
import os
from collections.abc import Callable, Iterable, Iterator, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, BinaryIO, TypeVar

from conveyor.errors import InvalidInput, NotFound

from ._backend import Backend, map_bounded
from ._digest import Blob, Digest, hash_bytes, hash_stream
from ._get import _WHOLE_READ, Checkout, Progress, _corrupt
from ._local import LocalBackend
from ._manifest import Manifest, ManifestEntry
from ._pack import fetch_pack, put_packed
from ._safepath import check_relative_path, folder_files

if TYPE_CHECKING:
    from conveyor.settings import Settings

__all__ = ["BlobStore"]

# Manifests are read whole; a bigger "manifest" is refused rather than loaded.
_MAX_MANIFEST_BYTES = 256 * 1024 * 1024

T = TypeVar("T")
R = TypeVar("R")


class BlobStore(Checkout):
    """Content-addressed bytes: objects are named by their BLAKE3 digest.

    Construction has no side effects; call :meth:`init` once to create the store.

    Example::

        >>> store = BlobStore.open(tmp / "blobs"); store.init()  # doctest: +SKIP
        >>> blob = store.put_bytes(b"hello")                       # doctest: +SKIP
        >>> store.read_bytes(blob.digest)                           # doctest: +SKIP
        b'hello'
    """

    def __init__(self, backend: Backend) -> None:
        self._backend = backend
        self.open_options: dict[str, object] = {}

    @property
    def reopen(self) -> dict[str, object]:
        """What another process needs to open this same store: ``{"url": …, **options}`` for
        ``BlobStore.open(**…)`` (the S3 endpoint, timeouts, retries and concurrency it was
        opened with; no credentials, which come from the environment)."""
        return {"url": self.url, **self.open_options}

    @property
    def url(self) -> str:
        """Where the objects live: a local folder path or ``s3://bucket/prefix``."""
        return str(self._backend.url)

    @classmethod
    def open(
        cls,
        url: str | os.PathLike[str],
        *,
        s3_endpoint_url: str | None = None,
        s3_connect_timeout: float = 5.0,
        s3_read_timeout: float = 10.0,
        s3_max_attempts: int = 3,
        s3_max_concurrency: int = 32,
    ) -> BlobStore:
        """Open a store from a local folder path (or ``file://`` URL) or ``s3://bucket/prefix``.

        S3 credentials come from the usual places (environment, profile, instance role);
        ``s3_endpoint_url`` points at an S3-compatible server (MinIO, moto, …). The other
        ``s3_*`` arguments are the ``[store]`` settings of the same names (see
        :meth:`from_settings`).

        Example::

            >>> BlobStore.open("s3://models/blobs", s3_endpoint_url="http://127.0.0.1:9000")  # doctest: +SKIP
            BlobStore('s3://models/blobs')
        """
        text = os.fspath(url)
        if text.startswith("s3://"):
            store = cls(_s3_backend(
                text, s3_endpoint_url, connect_timeout=s3_connect_timeout, read_timeout=s3_read_timeout,
                max_attempts=s3_max_attempts, concurrency=s3_max_concurrency,
            ))
            store.open_options = {
                "s3_endpoint_url": s3_endpoint_url, "s3_connect_timeout": s3_connect_timeout,
                "s3_read_timeout": s3_read_timeout, "s3_max_attempts": s3_max_attempts,
                "s3_max_concurrency": s3_max_concurrency,
            }
            return store
        if "://" in text and not text.startswith("file://"):
            raise InvalidInput(
                f"unsupported artifact store URL {text!r}",
                field="url",
                value=text,
                hint="use a local folder path or s3://bucket/prefix",
            )
        return cls(LocalBackend(Path(text.removeprefix("file://")).absolute()))

    @classmethod
    def from_settings(cls, settings: Settings) -> BlobStore:
        """The artifact store named by the settings (``[store] artifacts_url`` and ``s3_*``).

        Example::

            >>> BlobStore.from_settings(Settings.load())  # doctest: +SKIP
            BlobStore('/project/.conveyor/artifacts')
        """
        store = settings.store
        return cls.open(
            settings.artifacts_url,
            s3_endpoint_url=store.s3_endpoint_url,
            s3_connect_timeout=store.s3_connect_timeout,
            s3_read_timeout=store.s3_read_timeout,
            s3_max_attempts=store.s3_max_attempts,
            s3_max_concurrency=store.s3_max_concurrency,
        )

    def __repr__(self) -> str:
        return f"BlobStore({self._backend.url!r})"

    def init(self) -> None:
        """Create the store's root (local) or check the bucket exists (S3). Idempotent."""
        self._backend.init()

    # -- writing ---------------------------------------------------------------------------

    def put_file(self, path: str | os.PathLike[str]) -> Blob:
        """Store a file, streaming (constant memory); identical content is stored once.

        Example::

            >>> store.put_file("model.onnx").size  # doctest: +SKIP
            12345678
        """
        source = Path(path)
        if not source.is_file():
            raise NotFound("file", str(source))
        return Blob(*self._backend.put_file(source))

    def put_files(
        self, paths: Iterable[str | os.PathLike[str]], *, workers: int | None = None, progress: Progress | None = None
    ) -> list[Blob]:
        """Store many files at once; the blobs come back in the order of ``paths``.

        On S3 the files are hashed first, existence is answered from listings, and the
        missing objects are uploaded concurrently (``[store] s3_max_concurrency``). Locally,
        big files are hashed by ``workers`` threads (default: up to 8). ``progress(done,
        total)`` reports files.

        Example::

            >>> [b.size for b in store.put_files(["a.csv", "b.csv"])]  # doctest: +SKIP
            [120, 98]
        """
        sources = [Path(p) for p in paths]
        for source in sources:
            if not source.is_file():
                raise NotFound("file", str(source))
        return self._backend.put_files(sources, workers=workers, progress=progress)

    def put_bytes(self, data: bytes) -> Blob:
        """Store an in-memory byte string.

        Example::

            >>> str(store.put_bytes(b"").digest)[:15]  # doctest: +SKIP
            'blake3:af1349b9'
        """
        return Blob(*self._backend.put_stream(io.BytesIO(data)))

    def put_stream(self, stream: BinaryIO) -> Blob:
        """Store everything readable from a binary stream (spooled, hashed on the way).

        Example::

            >>> with open("data.csv", "rb") as f: store.put_stream(f)  # doctest: +SKIP
        """
        return Blob(*self._backend.put_stream(stream))

    @contextlib.contextmanager
    def batch(self) -> Iterator[None]:
        """Group puts so they share one durability flush, made before the block exits.

        On a local store, puts made inside the block (in this thread, or in threads run
        with ``contextvars.copy_context().run``) write and rename their objects without
        fsyncing each one; leaving the block ``fdatasync``s exactly those objects from a
        bounded thread pool and fsyncs their folders once each, so everything stored in it
        is durable when the ``with`` returns, even if the block raised, and no other
        process's writes are flushed. A crash never exposes a partial object (writes stay
        temp file + rename). Batches nest; each flushes at its own exit. On S3, and on
        Windows, it changes nothing: every put stays durable by itself.

        Example::

            >>> with store.batch():                     # doctest: +SKIP
            ...     a = store.put_file("a.csv")
            ...     b = store.put_file("b.csv")
            >>> # a and b are durable here
        """
        with self._backend.batch():
            yield

    @property
    def packs_by_default(self) -> bool:
        """Whether ``pack=None`` packs small files: on remote stores (S3, …), where each object
        costs a request, yes; in a local folder, where an object costs a file, no."""
        return not isinstance(self._backend, LocalBackend)

    def put_tree(self, folder: str | os.PathLike[str], *, pack: bool | None = False) -> Blob:
        """Store every file under ``folder`` and a manifest listing them; return the manifest.

        Symbolic links are refused (they could pull in files from outside the folder);
        empty directories are not recorded. ``pack`` as in :meth:`put_entries` (default
        False: every file an object of its own, readable by its digest alone).

        Example::

            >>> tree = store.put_tree("outputs/")             # doctest: +SKIP
            >>> [e.path for e in store.read_manifest(tree.digest).entries]  # doctest: +SKIP
            ['metrics.json', 'model/weights.bin']
        """
        root = Path(folder)
        if not root.is_dir():
            raise NotFound("folder", str(root))
        # One batch: a single filesystem flush makes the files and the manifest durable
        # before this returns, instead of two fsyncs per file.
        with self.batch():
            return self._put_tree(root, pack)

    def _put_tree(self, root: Path, pack: bool | None) -> Blob:
        entries = self.put_entries(folder_files(root), pack=pack)
        return self.put_bytes(Manifest.of(entries).to_bytes())

    def put_entries(
        self,
        files: Sequence[tuple[str, str | os.PathLike[str]]],
        *,
        pack: bool | None = None,
        known: Iterable[ManifestEntry] = (),
        workers: int | None = None,
        progress: Progress | None = None,
    ) -> list[ManifestEntry]:
        """Store ``(relative path, file)`` pairs; return their manifest entries, in order.

        With ``pack`` (``None``: :attr:`packs_by_default`), new files of up to 256 KiB are
        concatenated into packs of a few MiB when there are at least 16 of them (see
        ``_pack.py``): a few requests instead of one per file. Their entries name the pack
        and offset; read them with :meth:`read_entry` or :meth:`get_tree` (``exists`` and
        ``read_bytes`` of such a file's own digest see loose objects only). Files already
        stored are not sent again: loose objects, and files that ``known`` (the entries of
        an earlier manifest, e.g. the previous version) places in a pack that still exists.

        Example::

            >>> entries = store.put_entries([("a.csv", "data/a.csv")], pack=True)  # doctest: +SKIP
        """
        items = [(rel, Path(p)) for rel, p in files]
        for rel, source in items:
            check_relative_path(rel)
            if not source.is_file():
                raise NotFound("file", str(source))
        if not (self.packs_by_default if pack is None else pack):
            blobs = self._backend.put_files([p for _, p in items], workers=workers, progress=progress)
            return [ManifestEntry(rel, b.digest, b.size) for (rel, _), b in zip(items, blobs, strict=True)]
        return put_packed(self._backend, items, known, workers=workers, progress=progress)

    # -- reading ---------------------------------------------------------------------------

    def open_read(self, digest: Digest) -> BinaryIO:
        """A binary read stream over an object (not verified; see :meth:`verify`).

        Not named ``open``: that is the classmethod opening a store from a URL.

        Example::

            >>> with store.open_read(blob.digest) as f: f.read(4)  # doctest: +SKIP
        """
        return self._backend.open_read(digest)

    def read_bytes(self, digest: Digest, *, verify: bool = True) -> bytes:
        """The whole object in memory, checked against its digest unless ``verify=False``.

        Example::

            >>> store.read_bytes(store.put_bytes(b"hi").digest)  # doctest: +SKIP
            b'hi'
        """
        with self.open_read(digest) as stream, self._backend.errors("read", digest):
            data = stream.read()
        if verify and (actual := hash_bytes(data)) != digest:
            raise _corrupt(digest, actual)
        return data

    def read_manifest(self, digest: Digest) -> Manifest:
        """Load and validate the manifest stored under ``digest`` (paths are re-checked).

        Example::

            >>> store.read_manifest(tree.digest).total_size  # doctest: +SKIP
            2048
        """
        if self.size(digest) > _MAX_MANIFEST_BYTES:
            raise InvalidInput(f"object {digest} is too large to be a manifest", field="digest")
        # Size known and bounded: one whole read (one GET on S3, not a stat and ranged reads).
        data = self._backend.read_all(digest)
        if (actual := hash_bytes(data)) != digest:
            raise _corrupt(digest, actual)
        return Manifest.from_bytes(data)

    def read_entry(self, entry: ManifestEntry, *, verify: bool = True) -> bytes:
        """The bytes of one manifest entry, whether a loose object or a file in a pack,
        checked against the entry's digest unless ``verify=False``.

        Example::

            >>> store.read_entry(store.read_manifest(tree.digest).entries[0])  # doctest: +SKIP
            b'...'
        """
        if entry.pack is None:
            return self.read_bytes(entry.digest, verify=verify)
        wanted = [(entry.path, entry.digest, entry.offset, entry.size)]
        return next(fetch_pack(self._backend, entry.pack, wanted, verify=verify))[1]

    def missing_entries(self, entries: Iterable[ManifestEntry]) -> list[ManifestEntry]:
        """The entries whose bytes are not stored: loose objects absent, or their pack
        absent (one batched existence check; listings on S3)."""
        items = list(entries)
        present = self.exists_many({e.pack or e.digest for e in items})
        return [e for e in items if (e.pack or e.digest) not in present]

    # -- inspecting and housekeeping --------------------------------------------------------

    def exists(self, digest: Digest) -> bool:
        """Whether an object is stored under ``digest``."""
        return self._backend.exists(digest)

    def exists_many(self, digests: Iterable[Digest]) -> set[Digest]:
        """Which of ``digests`` are stored (on S3 from listings, not one request each).

        Example::

            >>> store.exists_many([a, b]) == {a}  # doctest: +SKIP
            True
        """
        return self._backend.exists_many(digests)

    def size(self, digest: Digest) -> int:
        """Size of an object in bytes; ``NotFound`` if missing."""
        return self._backend.size(digest)

    def sizes(self) -> dict[Digest, tuple[int, float]]:
        """Every stored object with its (size, mtime), from listings (``doctor --quick``)."""
        return self._backend.sizes()

    def leftovers(self, older_than_seconds: float = 3600.0) -> tuple[int, int]:
        """(count, bytes) of abandoned writes older than the age: temp files locally, incomplete
        multipart uploads on S3 (bytes unknown there: 0). ``gc`` removes them."""
        return self._backend.leftovers(older_than_seconds)

    def verify(self, digest: Digest, *, size: int | None = None) -> bool:
        """Re-hash an object (streaming) and report whether it matches its name.

        ``size``, when known, lets a small object be fetched in one request on S3.

        Example::

            >>> store.verify(blob.digest)  # doctest: +SKIP
            True
        """
        if size is not None and size <= _WHOLE_READ:
            return hash_bytes(self._backend.read_all(digest)) == digest
        with self.open_read(digest) as stream, self._backend.errors("verify", digest):
            return hash_stream(stream).digest == digest

    def map(self, fn: Callable[[T], R], items: Sequence[T], *, progress: Progress | None = None) -> list[R]:
        """``[fn(x) for x in items]`` with as many in flight as this store serves well (up to
        ``[store] s3_max_concurrency`` on S3), results in order; the first error is raised.

        Example::

            >>> store.map(store.verify, digests)  # doctest: +SKIP
            [True, True]
        """
        return map_bounded(fn, items, self._backend.concurrency, progress=progress)

    def iter_digests(self) -> Iterator[Digest]:
        """Every stored object (manifests included), e.g. for an orphan scan.

        Example::

            >>> sum(1 for _ in store.iter_digests())  # doctest: +SKIP
            42
        """
        return self._backend.iter_digests()

    def stat_mtime(self, digest: Digest) -> float:
        """Last write (or dedup hit, locally) as a POSIX timestamp: a GC's grace period."""
        return self._backend.mtime(digest)

    def delete(self, digest: Digest) -> bool:
        """Remove an object; returns False if it was already gone (safe for concurrent GC)."""
        return self._backend.delete(digest)

    def clean_tmp(self, older_than_seconds: float = 24 * 3600) -> int:
        """Remove abandoned temp files older than the given age; returns how many."""
        return self._backend.clean_tmp(older_than_seconds)


def _s3_backend(
    url: str, endpoint_url: str | None, *, connect_timeout: float, read_timeout: float, max_attempts: int, concurrency: int
) -> Backend:
    # Imported here so a laptop install without the `s3` extra never needs s3fs.
    try:
        import s3fs
    except ImportError as exc:  # pragma: no cover - depends on the installed extras
        raise InvalidInput(
            f"{url!r} needs s3fs", field="url", value=url, hint="pip install 'conveyor-mlops[s3]'"
        ) from exc
    from ._remote import FsspecBackend, s3_session

    client_kwargs = {"endpoint_url": endpoint_url} if endpoint_url else {}
    # Timeouts and bounded retries so a dead or silent endpoint fails within seconds (botocore's
    # standard mode retries throttling, timeouts and 5xx with backoff); one connection per
    # concurrent request. s3fs's own retry loop is reduced to one attempt: botocore's is enough.
    config = {
        "connect_timeout": connect_timeout,
        "read_timeout": read_timeout,
        # total_max_attempts counts the first try ("max_attempts" would count retries only)
        "retries": {"total_max_attempts": max_attempts, "mode": "standard"},
        "max_pool_connections": concurrency,
    }
    # No listings cache: another process (a writer, a GC) may change the bucket at any time,
    # and a stale "exists" would make a put skip an upload of a just-deleted object.
    fs = s3fs.S3FileSystem(
        client_kwargs=client_kwargs, config_kwargs=config, use_listings_cache=False, skip_instance_cache=True,
        session=s3_session(),
    )
    fs.retries = 1  # a class attribute (5) in s3fs: one attempt of its own, botocore retries
    root = url.removeprefix("s3://").strip("/")
    if not root:
        raise InvalidInput(f"{url!r} names no bucket", field="url", value=url)
    return FsspecBackend(fs, root, url, endpoint=endpoint_url, concurrency=concurrency)
