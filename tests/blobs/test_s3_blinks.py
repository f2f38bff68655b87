"""An artifact upload rides out an S3 blink: a TCP proxy in front of moto is stopped at the
moment the upload's ``PutObject`` is about to be sent (a botocore ``before-send`` hook) and
started again half a second later; botocore's bounded retries (``[store] s3_max_attempts``,
exponential backoff) carry the upload, which arrives once, intact, with one artifact row."""

from __future__ import annotations

import threading
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

import pytest

from conveyor.blobs import BlobStore, Digest
from conveyor.settings import TrackingSettings
from conveyor.store import Store
from conveyor.tracking import Tracker
from fixtures.proxy import TcpProxy

pytestmark = [pytest.mark.s3]


def test_an_upload_through_an_s3_blink_arrives_once(tmp_path: Path, s3_server: str, s3_bucket_url: str) -> None:
    import boto3

    moto = urlparse(s3_server)
    proxy = TcpProxy((moto.hostname or "127.0.0.1", moto.port or 80))
    proxy.start()
    try:
        blobs = BlobStore.open(f"{s3_bucket_url}/blink", s3_endpoint_url=f"http://{proxy.address}",
                               s3_connect_timeout=2.0, s3_read_timeout=5.0, s3_max_attempts=8)
        blobs.init()
        cut: list[str] = []

        def before_send(request: Any, **_: Any) -> None:
            if not cut and request.method == "PUT":
                cut.append(request.url)
                proxy.stop()
                threading.Timer(0.5, proxy.start).start()

        blobs._backend.fs.s3.meta.events.register("before-send.s3.PutObject", before_send)  # type: ignore[attr-defined]
        store = Store.open(f"sqlite:///{tmp_path / 'meta.db'}", create=True)
        tracker = Tracker(store, blobs, TrackingSettings(capture_git=False, capture_packages=False))
        run = tracker.create_run("s3-blink")
        source = tmp_path / "weights.bin"
        source.write_bytes(bytes(range(256)) * 400)
        tracker.log_artifact(run.id, source, "model")
        tracker.end_run(run.id)
        assert cut, "the hook never fired: the upload did not go through the proxy"
        (artifact,) = tracker.list_artifacts(run.id, "model")
        assert artifact.path == "model/weights.bin"
        assert blobs.read_bytes(Digest.parse(artifact.digest)) == source.read_bytes()
        bucket, _, _ = s3_bucket_url.removeprefix("s3://").partition("/")
        keys = [o["Key"] for o in boto3.client("s3", endpoint_url=s3_server)
                .list_objects_v2(Bucket=bucket, Prefix="blink/").get("Contents", [])]
        assert len(keys) == 1 and keys[0].endswith(Digest.parse(artifact.digest).hex[2:])
        tracker.close()
    finally:
        proxy.stop()
