"""BlobStore: the content-addressed artifact store (files, bytes, streams, trees)."""

from __future__ import annotations

import contextlib
import io
import os
import secrets
from collections.abc import Iterator
from pathlib import Path
from typing import BinaryIO

from conveyor.errors import CorruptObject, InvalidInput, NotFound, UnsafePath

from ._backend import Backend, storage_errors
from ._digest import Blob, Digest, hash_bytes, hash_stream
from ._local import LocalBackend
from ._manifest import Manifest, ManifestEntry
from ._materialize import copy_to
from ._safepath import check_relative_path, resolve_inside

__all__ = ["BlobStore"]

# Manifests are read whole; a bigger "manifest" is refused rather than loaded.
_MAX_MANIFEST_BYTES = 256 * 1024 * 1024


def _corrupt(digest: Digest, actual: Digest) -> CorruptObject:
    return CorruptObject(
        f"object {digest} is corrupt: its content hashes to {actual}",
        hint="delete it and store the original again",
    )


class BlobStore:
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

    @property
    def url(self) -> str:
        """Where the objects live: a local folder path or ``s3://bucket/prefix``."""
        return str(self._backend.url)

    @classmethod
    def open(cls, url: str | os.PathLike[str], *, s3_endpoint_url: str | None = None) -> BlobStore:
        """Open a store from a local folder path (or ``file://`` URL) or ``s3://bucket/prefix``.

        S3 credentials come from the usual places (environment, profile, instance role);
        ``s3_endpoint_url`` points at an S3-compatible server (MinIO, moto, …).

        Example::

            >>> BlobStore.open("s3://models/blobs", s3_endpoint_url="http://127.0.0.1:9000")  # doctest: +SKIP
            BlobStore('s3://models/blobs')
        """
        text = os.fspath(url)
        if text.startswith("s3://"):
            return cls(_s3_backend(text, s3_endpoint_url))
        if "://" in text and not text.startswith("file://"):
            raise InvalidInput(
                f"unsupported artifact store URL {text!r}",
                field="url",
                value=text,
                hint="use a local folder path or s3://bucket/prefix",
            )
        return cls(LocalBackend(Path(text.removeprefix("file://")).absolute()))

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
        fsyncing each one; leaving the block flushes the filesystem once (Linux
        ``syncfs``), so everything stored in it is durable when the ``with`` returns, even
        if the block raised. A crash never exposes a partial object (writes stay temp file
        + rename). Batches nest; each flushes at its own exit. On S3, and on systems
        without a waiting flush (not Linux), it changes nothing: every put stays durable
        by itself.

        Example::

            >>> with store.batch():                     # doctest: +SKIP
            ...     a = store.put_file("a.csv")
            ...     b = store.put_file("b.csv")
            >>> # a and b are durable here
        """
        with self._backend.batch():
            yield

    def put_tree(self, folder: str | os.PathLike[str]) -> Blob:
        """Store every file under ``folder`` and a manifest listing them; return the manifest.

        Symbolic links are refused (they could pull in files from outside the folder);
        empty directories are not recorded.

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
            return self._put_tree(root)

    def _put_tree(self, root: Path) -> Blob:
        entries = []
        for dirpath, dirnames, filenames in os.walk(root):
            base = Path(dirpath)
            for name in sorted(dirnames + filenames):
                full = base / name
                rel = full.relative_to(root).as_posix()
                if full.is_symlink():
                    raise UnsafePath(
                        f"{rel!r} in {str(root)!r} is a symbolic link", field="path", value=rel,
                        hint="copy the target into the folder, or remove the link",
                    )
                if name in filenames:
                    check_relative_path(rel)
                    blob = self.put_file(full)
                    entries.append(ManifestEntry(rel, blob.digest, blob.size))
        return self.put_bytes(Manifest.of(entries).to_bytes())

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
        with self.open_read(digest) as stream, storage_errors("read", digest):
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
        return Manifest.from_bytes(self.read_bytes(digest))

    def get_file(
        self, digest: Digest, dest: str | os.PathLike[str], *, verify: bool = True, link: bool = False
    ) -> Path:
        """Write an object to ``dest`` atomically (temp file + rename), replacing it.

        ``link=True`` hard-links the stored object instead of copying (local stores, same
        filesystem): fast, but the file *is* the object, so only for read-only consumers.
        It falls back to a copy when a link is impossible.

        Example::

            >>> store.get_file(blob.digest, "out/model.onnx")  # doctest: +SKIP
            PosixPath('out/model.onnx')
        """
        target = Path(dest)
        source = self._backend.local_path(digest) if link else None
        if source is not None:
            if verify and not self.verify(digest):
                raise _corrupt(digest, hash_stream(self.open_read(digest)).digest)
            if self._try_link(source, target, digest):
                return target
            verify = False  # just checked; the copy below reads the same bytes
        with self.open_read(digest) as stream:
            actual = copy_to(stream, target, digest, hashing=verify)
        if actual is not None and actual != digest:
            raise _corrupt(digest, actual)  # copy_to already removed its temp file
        return target

    def _try_link(self, source: Path, target: Path, digest: Digest) -> bool:
        tmp = target.with_name(f".{target.name}.{secrets.token_hex(6)}.tmp")
        try:
            os.link(source, tmp)
        except FileNotFoundError:
            raise NotFound("object", str(digest)) from None
        except OSError:  # other filesystem, or links unsupported: copy instead
            return False
        os.replace(tmp, target)
        return True

    def get_tree(self, digest: Digest, dest_dir: str | os.PathLike[str], *, verify: bool = True) -> Path:
        """Materialize a stored tree (a manifest digest) into ``dest_dir``.

        Every path is validated before anything is written; a path that would land outside
        ``dest_dir`` (including through a symlink already there) raises ``UnsafePath``.

        Example::

            >>> store.get_tree(tree.digest, "checkout/")  # doctest: +SKIP
            PosixPath('checkout')
        """
        manifest = self.read_manifest(digest)
        root = Path(dest_dir)
        root.mkdir(parents=True, exist_ok=True)
        for entry in manifest.entries:
            target = resolve_inside(root, entry.path)
            target.parent.mkdir(parents=True, exist_ok=True)
            self.get_file(entry.digest, target, verify=verify)
        return root

    # -- inspecting and housekeeping --------------------------------------------------------

    def exists(self, digest: Digest) -> bool:
        """Whether an object is stored under ``digest``."""
        return self._backend.exists(digest)

    def size(self, digest: Digest) -> int:
        """Size of an object in bytes; ``NotFound`` if missing."""
        return self._backend.size(digest)

    def verify(self, digest: Digest) -> bool:
        """Re-hash an object (streaming) and report whether it matches its name.

        Example::

            >>> store.verify(blob.digest)  # doctest: +SKIP
            True
        """
        with self.open_read(digest) as stream, storage_errors("verify", digest):
            return hash_stream(stream).digest == digest

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


def _s3_backend(url: str, endpoint_url: str | None) -> Backend:
    # Imported here so a laptop install without the `s3` extra never needs s3fs.
    try:
        import s3fs
    except ImportError as exc:  # pragma: no cover - depends on the installed extras
        raise InvalidInput(
            f"{url!r} needs s3fs", field="url", value=url, hint="pip install 'conveyor-mlops[s3]'"
        ) from exc
    from ._remote import FsspecBackend

    client_kwargs = {"endpoint_url": endpoint_url} if endpoint_url else {}
    # No listings cache: another process (a writer, a GC) may change the bucket at any time,
    # and a stale "exists" would make a put skip an upload of a just-deleted object.
    fs = s3fs.S3FileSystem(client_kwargs=client_kwargs, use_listings_cache=False)
    root = url.removeprefix("s3://").strip("/")
    if not root:
        raise InvalidInput(f"{url!r} names no bucket", field="url", value=url)
    return FsspecBackend(fs, root, url)
