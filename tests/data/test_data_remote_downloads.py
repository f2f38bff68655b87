"""Remote mode's downloads survive a server that goes away: ``conveyor.data.get`` through a
server stopped and restarted in the middle, and one object's stream cut mid-way by a reset
connection (resumed with a ``Range`` request, the digest verified as always)."""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

import conveyor.data as cd
from fixtures.proxy import TcpProxy
from fixtures.remote import ThreadServer, remote_tracker

pytestmark = pytest.mark.usefixtures("embedded_only")  # builds its own server and client


@pytest.fixture
def behind(store: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Any]:
    from conveyor.blobs import BlobStore
    from conveyor.settings import TrackingSettings
    from conveyor.tracking import Tracker

    blobs = BlobStore.open(tmp_path / "server-artifacts")
    blobs.init()
    work = tmp_path / "work"
    work.mkdir()
    monkeypatch.chdir(work)
    opened = Tracker(store, blobs, TrackingSettings())
    yield opened
    opened.flush()


def test_a_get_through_a_server_stopped_and_restarted_midway_completes(behind: Any, tmp_path: Path,
                                                                      monkeypatch: pytest.MonkeyPatch) -> None:
    from conveyor.blobs._http import HttpBackend
    from conveyor.server import create_app

    server = ThreadServer(create_app(behind)).start()
    client = remote_tracker(server.url, tmp_path / "spool")
    # objects over 1 MiB are streamed (open_read); smaller ones are one request (read_all)
    files = {f"big/f{i}.bin": os.urandom(1_200_000 + i) for i in range(6)}
    files.update({f"small/f{i}.bin": os.urandom(100_000 + i) for i in range(10)})
    data = tmp_path / "set"
    for rel, content in files.items():
        (data / rel).parent.mkdir(parents=True, exist_ok=True)
        (data / rel).write_bytes(content)
    cd.add(data, name="set", tracker=client)
    sends: list[int] = []
    restarted: list[threading.Thread] = []
    real_send = HttpBackend._send

    def send(self: Any, digest: Any, offset: int, budget: float) -> Any:
        sends.append(offset)
        if len(sends) == 3:  # mid-get: the server goes away, and comes back a second later
            server.stop()

            def back() -> None:
                time.sleep(1.0)
                server.start()

            restarted.append(threading.Thread(target=back, daemon=True))
            restarted[0].start()
        return real_send(self, digest, offset, budget)

    monkeypatch.setattr(HttpBackend, "_send", send)
    try:
        out = cd.get("set@1", tmp_path / "out", tracker=client)
        assert restarted and len(sends) > 3  # the stop happened before the last download
        got = {p.relative_to(out).as_posix(): p.read_bytes() for p in out.rglob("*") if p.is_file()}
        assert got == files
    finally:
        client.close()
        for thread in restarted:
            thread.join()
        server.stop()


def test_a_download_cut_midstream_resumes_where_it_stopped(behind: Any, tmp_path: Path,
                                                           monkeypatch: pytest.MonkeyPatch) -> None:
    from conveyor.blobs._http import HttpBackend
    from conveyor.data._context import remote_http
    from conveyor.server import create_app

    server = ThreadServer(create_app(behind)).start()
    proxy = TcpProxy(("127.0.0.1", server.port))
    proxy.start()
    client = remote_tracker(f"http://127.0.0.1:{proxy.port}", tmp_path / "spool")
    try:
        content = os.urandom(24 * 1024 * 1024 + 7)  # more than the sockets' buffers hold
        (tmp_path / "big.bin").write_bytes(content)
        version = cd.add(tmp_path / "big.bin", name="big", tracker=client)
        from conveyor.blobs import Digest

        backend = HttpBackend(remote_http(client), "big", version=1)
        offsets: list[int] = []
        real_send = HttpBackend._send
        monkeypatch.setattr(HttpBackend, "_send", lambda self, d, offset, budget: (
            offsets.append(offset), real_send(self, d, offset, budget))[1])
        before = proxy.accepted
        with backend.open_read(Digest.parse(version.digest)) as stream:
            head = stream.read(1024 * 1024)
            proxy.outage(0.5).join()  # every connection reset; the proxy listens again
            rest = stream.read()
        assert head + rest == content
        assert proxy.accepted > before  # a new connection (the first was reset) fetched the rest
        assert offsets[0] == 0 and len(offsets) >= 2 and offsets[1] >= 1024 * 1024  # resumed, not restarted
        # the server's side of the resume: a Range answers 206 with the bytes from there
        url = f"{server.url}/api/v1/datasets/big/blobs/{version.digest}"
        part = httpx.get(url, params={"version": 1}, headers={"Range": "bytes=5000000-"}, timeout=30)
        assert part.status_code == 206 and part.content == content[5_000_000:]
        assert part.headers["content-range"] == f"bytes 5000000-{len(content) - 1}/{len(content)}"
        bad = httpx.get(url, params={"version": 1}, headers={"Range": f"bytes={len(content)}-"})
        assert bad.status_code == 416 and "Range" in bad.text
    finally:
        client.close()
        proxy.stop()
        server.stop()


def test_a_download_gives_up_after_retry_seconds(behind: Any, tmp_path: Path) -> None:
    from conveyor.errors import StorageError
    from conveyor.server import create_app

    server = ThreadServer(create_app(behind)).start()
    client = remote_tracker(server.url, tmp_path / "spool")
    try:
        (tmp_path / "f.bin").write_bytes(b"x" * 1000)
        cd.add(tmp_path / "f.bin", name="f", tracker=client)
        server.stop()
        with pytest.raises(StorageError, match="retry_seconds"):
            cd.get("f@1", tmp_path / "out.bin", tracker=client)
    finally:
        client.close()
