"""Hostile configuration, file names and a full disk: clean errors, never a traceback, and
no data lost without a word (issue "hostile input", finding 12)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from typer.testing import CliRunner

from conveyor.cli import app
from conveyor.errors import ConfigError, InvalidInput, StorageError
from conveyor.settings import OTHER_ENV_KEYS, Settings

runner = CliRunner()


def _cli(*args: str, cwd: Path | None = None, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    """The real console script in a fresh process: what a user sees, tracebacks included."""
    full = {k: v for k, v in os.environ.items() if not k.startswith("CONVEYOR_")} | (env or {})
    full["COLUMNS"] = "300"
    return subprocess.run([sys.executable, "-m", "conveyor", *args], cwd=cwd, env=full, capture_output=True,
                          text=True, timeout=120)


# -- environment keys ----------------------------------------------------------------------------------
def test_a_misspelt_environment_key_names_itself_and_the_closest_valid_one(tmp_path: Path) -> None:
    with pytest.raises(ConfigError) as info:
        Settings.load(tmp_path, env={"CONVEYOR_TRACKING_FLUSH_INTERVALL": "1"})
    assert "CONVEYOR_TRACKING_FLUSH_INTERVALL" in info.value.message
    assert "CONVEYOR_TRACKING_FLUSH_INTERVAL?" in info.value.message
    with pytest.raises(ConfigError, match="CONVEYOR_STORE_METADATA_URL"):
        Settings.load(tmp_path, env={"CONVEYOR_STORE_METADATAURL": "sqlite:///x.db"})


def test_conveyors_own_variables_stay_accepted(tmp_path: Path) -> None:
    used = {"CONVEYOR_ROOT", "CONVEYOR_REQUIRE_SERVICES", "CONVEYOR_TEST_POSTGRES", "CONVEYOR_SERVE_SPEC"}
    assert used <= OTHER_ENV_KEYS
    env = {key: "1" for key in OTHER_ENV_KEYS - {"CONVEYOR_ROOT"}} | {"CONVEYOR_TRACKING_BATCH_SIZE": "10"}
    assert Settings.load(tmp_path, env=env).tracking.batch_size == 10


def test_cli_exits_2_on_a_misspelt_environment_key(tmp_path: Path) -> None:
    done = _cli("runs", "list", cwd=tmp_path, env={"CONVEYOR_TRACKING_FLUSH_INTERVALL": "1"})
    assert done.returncode == 2, done.stderr
    assert "Traceback" not in done.stderr and "did you mean CONVEYOR_TRACKING_FLUSH_INTERVAL" in done.stderr


# -- conveyor.toml -------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("content", "words"),
    [
        (b'[store]\nartifacts_url = "\xff\xfe"\n', "not UTF-8"),
        (b"a = " + b"[" * 5000 + b"]" * 5000 + b"\n", "too deeply"),
        (b"a = " + b"[" * 40 + b"]" * 40 + b"\n", "more than 32 levels"),
        (b"[store\n", "not valid TOML"),
    ],
)
def test_unreadable_conveyor_toml_is_a_clean_error(tmp_path: Path, content: bytes, words: str) -> None:
    (tmp_path / "conveyor.toml").write_bytes(content)
    with pytest.raises(ConfigError, match=words):
        Settings.load(tmp_path, env={})
    done = _cli("runs", "list", cwd=tmp_path)
    assert done.returncode == 2, done.stderr
    assert "Traceback" not in done.stderr and words in done.stderr


# -- file names and paths ------------------------------------------------------------------------------
@pytest.fixture
def initialised(tmp_path: Path) -> Path:
    assert _cli("init", cwd=tmp_path).returncode == 0
    return tmp_path


def test_a_non_utf8_file_name_is_a_clean_error(initialised: Path) -> None:
    folder = initialised / "d"
    folder.mkdir()
    (folder / "ok.csv").write_text("a\n1\n")
    with open(os.path.join(os.fsencode(folder), b"\xff\xfe.csv"), "wb") as handle:
        handle.write(b"a\n2\n")
    done = _cli("data", "add", "d", "--name", "d", cwd=initialised)
    assert done.returncode == 2, done.stderr
    assert "Traceback" not in done.stderr and "UTF-8" in done.stderr


@pytest.mark.parametrize("command", [["data", "add", "x" * 5000, "--name", "e"], ["data", "validate", "x" * 5000 + ".csv"],
                                     ["artifacts", "get", "0" * 32, "x" * 5000]])
def test_over_long_paths_are_clean_errors(initialised: Path, command: list[str]) -> None:
    done = _cli(*command, cwd=initialised)
    assert done.returncode in (2, 3), done.stderr
    assert "Traceback" not in done.stderr and "error:" in done.stderr


# -- a full disk ---------------------------------------------------------------------------------------
def test_metrics_that_cannot_be_written_are_reported_kept_and_then_written(tmp_path: Path) -> None:
    """SQLite's max_page_count gives the store SQLite's own "database or disk is full" error:
    the run's end fails naming the points kept in memory, a warning is printed, and once
    there is room again nothing was lost."""
    from sqlalchemy import event, text

    from conveyor.settings import TrackingSettings
    from conveyor.store import Store
    from conveyor.tracking import Tracker
    from conveyor.blobs import BlobStore

    store = Store.open(f"sqlite:///{tmp_path / 'c.db'}", create=True)
    blobs = BlobStore.open(tmp_path / "a")
    blobs.init()
    tracker = Tracker(store, blobs, TrackingSettings(flush_interval=0.05, capture_packages=False, capture_git=False))
    run = tracker.create_run("full", capture=False)
    with store.read() as conn:
        pages = conn.execute(text("PRAGMA page_count")).scalar()
    limit = {"pages": int(pages) + 2}

    @event.listens_for(store.engine, "begin")
    def _full_disk(conn: object) -> None:
        conn.exec_driver_sql(f"PRAGMA max_page_count = {limit['pages']}")  # type: ignore[attr-defined]

    for step in range(20_000):
        tracker.log_metric(run.id, "loss", 1.0 / (step + 1), step=step)
    with pytest.raises(StorageError) as info:
        tracker.end_run(run.id)
    assert "20,000 point(s) are kept in memory" in info.value.message
    assert "full" in info.value.message
    limit["pages"] = 1_000_000  # room again
    tracker.end_run(run.id)
    with store.read() as conn:
        assert store.metrics.count(conn, run.id) == 20_000
    tracker.close()


def test_metrics_still_unwritable_at_close_are_reported_as_lost(tmp_path: Path,
                                                                capfd: pytest.CaptureFixture[str]) -> None:
    from sqlalchemy import event

    from conveyor.settings import TrackingSettings
    from conveyor.store import Store
    from conveyor.tracking import Tracker
    from conveyor.blobs import BlobStore

    store = Store.open(f"sqlite:///{tmp_path / 'c.db'}", create=True)
    blobs = BlobStore.open(tmp_path / "a")
    blobs.init()
    tracker = Tracker(store, blobs, TrackingSettings(flush_interval=60, capture_packages=False, capture_git=False))
    run = tracker.create_run("full", capture=False)

    @event.listens_for(store.engine, "begin")
    def _full_disk(conn: object) -> None:
        conn.exec_driver_sql("PRAGMA max_page_count = 1")  # type: ignore[attr-defined]

    for step in range(5000):
        tracker.log_metric(run.id, "loss", 0.5, step=step)
    tracker.close()  # also at interpreter exit: no exception, but never silent
    assert "5,000 buffered metric point(s) could not be written and are lost" in capfd.readouterr().err


# -- gates and monitors ----------------------------------------------------------------------------------
def test_deeply_nested_thresholds_and_rules_are_clean_errors() -> None:
    from conveyor.errors import FilterSyntaxError
    from conveyor.gates import parse_threshold
    from conveyor.monitoring import parse_rule

    for text in ("f1 >= " + "-" * 5000 + "1", "f1 >= " + "1 + " * 5000 + "1"):
        with pytest.raises(InvalidInput, match="deeper than"):
            parse_threshold(text)
    assert parse_threshold("f1 >= " + "(" * 5000 + "1" + ")" * 5000).rhs == ("num", 1.0)  # parentheses add no depth
    for text in ("not " * 5000 + "rows > 1", "(" * 3000 + "not " * 3000 + "rows > 1" + ")" * 3000):
        with pytest.raises(FilterSyntaxError, match="deeper than"):
            parse_rule(text)


def test_negative_slice_bins_are_a_config_error() -> None:
    from conveyor.gates import define_gate

    with pytest.raises(ConfigError, match="bins"):
        define_gate("g", metrics=["accuracy >= 0.5"], slices={"bins": {"age": -1}})
