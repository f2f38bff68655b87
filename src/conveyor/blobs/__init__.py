"""conveyor.blobs: the content-addressed artifact store.

Objects are named by their BLAKE3 digest (``blake3:<hex>``) and live at
``<root>/<hex[:2]>/<hex[2:]>`` in a local folder or an S3 bucket. Writes are atomic,
identical content is stored once, and a directory is stored as a manifest object.
Many small puts can share one durability flush: ``with store.batch(): ...`` (what
``put_tree`` does; see ``_batch.py``).

Example::

    >>> from conveyor.blobs import BlobStore
    >>> store = BlobStore.open(".conveyor/blobs"); store.init()  # doctest: +SKIP
    >>> tree = store.put_tree("outputs/")                          # doctest: +SKIP
    >>> store.get_tree(tree.digest, "checkout/")                  # doctest: +SKIP
"""

from ._checkout import DestinationExists
from ._digest import Blob, Digest
from ._manifest import MANIFEST_MEDIA_TYPE, MANIFEST_VERSION, Manifest, ManifestEntry
from ._safepath import check_relative_path
from ._store import BlobStore

__all__ = [
    "Blob",
    "BlobStore",
    "DestinationExists",
    "Digest",
    "MANIFEST_MEDIA_TYPE",
    "MANIFEST_VERSION",
    "Manifest",
    "ManifestEntry",
    "check_relative_path",
]
