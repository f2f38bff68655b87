"""A pipeline worker (another process, or a Ray node) reopens the driver's artifact store with
every S3 setting the driver used, not S3's defaults (issue 12: the worker's store ignored
the configured timeouts, retries and concurrency)."""

from __future__ import annotations

from pathlib import Path

import pytest

from conveyor.blobs import BlobStore
from conveyor.pipelines._runner import _blob_reopen


def test_an_s3_store_reopens_with_its_settings() -> None:
    pytest.importorskip("s3fs")
    store = BlobStore.open("s3://team-bucket/conveyor", s3_endpoint_url="http://127.0.0.1:9000",
                           s3_connect_timeout=1.5, s3_read_timeout=7.0, s3_max_attempts=6, s3_max_concurrency=4)
    task = _blob_reopen(store, None)
    assert task == {"url": "s3://team-bucket/conveyor", "s3_endpoint_url": "http://127.0.0.1:9000",
                    "s3_connect_timeout": 1.5, "s3_read_timeout": 7.0, "s3_max_attempts": 6, "s3_max_concurrency": 4}
    again = BlobStore.open(**task)  # what the worker does
    assert again.reopen == task
    config = again._backend.fs.config_kwargs  # type: ignore[attr-defined]
    assert config["read_timeout"] == 7.0 and config["retries"]["total_max_attempts"] == 6
    assert config["max_pool_connections"] == 4
    # an explicit endpoint given to pipelines.run(s3_endpoint_url=...) wins
    assert _blob_reopen(store, "http://other:9000")["s3_endpoint_url"] == "http://other:9000"


def test_a_local_store_reopens_by_path(tmp_path: Path) -> None:
    store = BlobStore.open(tmp_path / "artifacts")
    assert _blob_reopen(store, "http://ignored:9000") == {"url": str(tmp_path / "artifacts")}
