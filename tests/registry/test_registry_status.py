"""A registry without broken versions: a version is READY only after its package loads and
predicts its input example; otherwise it is FAILED_REGISTRATION with the reason, never
loaded, aliased, restored, built or counted as latest, and hidden unless asked for."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest

from conveyor.errors import Conflict, InvalidInput, NotFound
from conveyor.registry import Status


def _log_folder(tracker: Any, folder: Path) -> str:
    run = tracker.create_run("registry-status")
    tracker.log_artifacts(run.id, folder, "model")
    return f"runs:/{run.id}/model"


def _package(tmp_path: Path, kind: str) -> Path:
    """A real package of one of several kinds of model, saved to a folder."""
    import conveyor.models

    frame = pd.DataFrame({"a": np.linspace(0, 1, 20), "b": np.linspace(1, 0, 20) ** 2})
    target = (frame["a"] > 0.5).astype(int)
    folder = tmp_path / f"pkg-{kind}"
    if kind == "logistic-frame":
        from sklearn.linear_model import LogisticRegression

        conveyor.models.save(LogisticRegression().fit(frame, target), folder, input_example=frame[:4])
    elif kind == "ridge-array":
        from sklearn.linear_model import Ridge

        x = frame.to_numpy()
        conveyor.models.save(Ridge().fit(x, x.sum(axis=1)), folder, input_example=x[:4])
    elif kind == "onnx":
        from sklearn.linear_model import LogisticRegression
        from skl2onnx import convert_sklearn
        from skl2onnx.common.data_types import DoubleTensorType

        proto = convert_sklearn(LogisticRegression().fit(frame, target),
                                initial_types=[("input", DoubleTensorType([None, 2]))], options={"zipmap": False})
        conveyor.models.save(proto, folder, input_example=frame[:4])
    else:
        raise ValueError(kind)
    return folder


@pytest.mark.parametrize("kind", ["logistic-frame", "ridge-array", "onnx"])
def test_a_working_package_becomes_ready(registry: Any, tracker: Any, tmp_path: Path, kind: str) -> None:
    version = registry.register(_log_folder(tracker, _package(tmp_path, kind)), "m")
    assert (version.status, version.status_message) == (Status.READY, "")
    assert registry.load_model(version.uri).flavor == ("onnx" if kind == "onnx" else "sklearn")
    assert [e.kind for e in registry.history("m")] == ["register"]


def _broken(tmp_path: Path, how: str) -> Path:
    folder = _package(tmp_path, "logistic-frame")
    if how == "corrupt-weights":
        (folder / "model.skops").write_bytes(b"not a skops archive")
    elif how == "example-off-signature":  # the stored example no longer fits the signature
        example = json.loads((folder / "input_example.json").read_text())
        example["columns"] = ["a", "z"]
        (folder / "input_example.json").write_text(json.dumps(example))
    elif how == "unknown-flavor":
        meta = json.loads((folder / "conveyor-model.json").read_text())
        meta["flavor"] = "no-such-flavor"
        (folder / "conveyor-model.json").write_text(json.dumps(meta))
    # keep the recorded sizes true, so the damage itself (not the size check) is what fails
    meta = json.loads((folder / "conveyor-model.json").read_text())
    meta["files"] = {name: (folder / name).stat().st_size for name in meta.get("files", {})}
    (folder / "conveyor-model.json").write_text(json.dumps(meta))
    return folder


@pytest.mark.parametrize(("how", "reason"), [
    ("corrupt-weights", "not a zip file"),
    ("example-off-signature", "z"),
    ("unknown-flavor", "no-such-flavor"),
])
def test_a_package_that_does_not_load_is_failed_registration_with_the_reason(
    registry: Any, tracker: Any, tmp_path: Path, how: str, reason: str
) -> None:
    good = registry.register(_log_folder(tracker, _package(tmp_path, "ridge-array")), "m")
    registry.set_alias("m", "champion", good.version)
    with pytest.raises(InvalidInput, match="FAILED_REGISTRATION") as info:
        registry.register(_log_folder(tracker, _broken(tmp_path, how)), "m")
    assert "m/2" in str(info.value) and reason in str(info.value)

    failed = registry.get_version("m", 2)
    assert failed.status == Status.FAILED_REGISTRATION and reason in failed.status_message
    # hidden unless asked for
    assert [v.version for v in registry.list_versions("m")] == [1]
    assert [v.version for v in registry.list_versions("m", include_failed=True)] == [1, 2]
    assert registry.list_models()[0].latest_version == 1
    assert registry.list_models(include_failed=True)[0].latest_version == 2
    assert registry.resolve("models:/m/latest").version == 1
    # never loaded (so never served or gated), never aliased or promoted, never made READY
    with pytest.raises(InvalidInput, match="FAILED_REGISTRATION"):
        registry.load_model("models:/m/2")
    with pytest.raises(Conflict, match="READY"):
        registry.set_alias("m", "challenger", 2)
    from conveyor.gates import promote

    with pytest.raises(Conflict, match="READY"):
        promote("m", 2, "champion", registry=registry, force=True, reason="try anyway")
    with pytest.raises(Conflict, match="FAILED_REGISTRATION"):
        registry.restore("m", 2)
    with pytest.raises(Conflict, match="FAILED_REGISTRATION"):
        registry.archive("m", 2)
    assert registry.get_version("m", 2).status == Status.FAILED_REGISTRATION
    assert registry.resolve("models:/m@champion").version == 1
    assert [e.kind for e in registry.history("m")][-1] == "register_failed"


def test_a_model_with_only_failed_versions_is_hidden_from_the_list(registry: Any, tracker: Any, tmp_path: Path) -> None:
    with pytest.raises(InvalidInput):
        registry.register(_log_folder(tracker, _broken(tmp_path, "corrupt-weights")), "broken")
    assert registry.list_models() == []
    assert [m.name for m in registry.list_models(include_failed=True)] == ["broken"]
    with pytest.raises(NotFound):
        registry.resolve("models:/broken/latest")


def test_a_bare_file_or_plain_folder_is_refused_before_a_version_exists(
    registry: Any, tracker: Any, tmp_path: Path
) -> None:
    import skops.io as sio
    from sklearn.linear_model import LinearRegression

    run = tracker.create_run("registry-status")
    sio.dump(LinearRegression().fit([[0.0], [1.0]], [0.0, 1.0]), tmp_path / "output")
    tracker.log_artifact(run.id, tmp_path / "output", "outputs")
    with pytest.raises(InvalidInput, match="not a conveyor model package") as info:
        registry.register(f"runs:/{run.id}/outputs/output", "m")
    assert "conveyor.models.log" in str(info.value)  # the hint (remote mode: in the server's message)

    plain = tmp_path / "plain"
    plain.mkdir()
    (plain / "weights.txt").write_text("w")
    with pytest.raises(InvalidInput, match=r"weights\.txt but no conveyor-model\.json") as info:
        registry.register(_log_folder(tracker, plain), "m")
    assert "conveyor.models.save" in str(info.value)
    with pytest.raises(NotFound):
        registry.get_model("m")  # nothing was registered, not even the name


def test_verify_checks_without_registering(registry: Any, tracker: Any, tmp_path: Path) -> None:
    source = _log_folder(tracker, _package(tmp_path, "ridge-array"))
    checked = registry.verify(source)
    assert checked.model.predict(np.ones((2, 2))).shape == (2,)
    version = registry.register(source, "m", verified=checked)
    assert version.status == Status.READY
    with pytest.raises(InvalidInput, match="does not load"):
        registry.verify(_log_folder(tracker, _broken(tmp_path, "corrupt-weights")))
    assert [v.version for v in registry.list_versions("m", include_failed=True)] == [1]


def test_a_version_left_pending_by_a_crash_is_never_served(registry: Any, tracker: Any, tmp_path: Path) -> None:
    """A process killed between taking the number and finishing the check leaves a PENDING row."""
    from sqlalchemy import update

    from conveyor.store import model_versions

    version = registry.register(_log_folder(tracker, _package(tmp_path, "ridge-array")), "m")
    stores = getattr(tracker, "server_tracker", tracker)  # remote mode: the crash happened on the server
    with stores.store.write() as conn:
        conn.execute(update(model_versions).values(status=Status.PENDING_REGISTRATION))
    assert registry.list_versions("m") == []
    with pytest.raises(InvalidInput, match="PENDING_REGISTRATION"):
        registry.load_model(version.uri)
    with pytest.raises(Conflict):
        registry.set_alias("m", "champion", 1)


def test_upgrading_an_older_store_keeps_its_versions(store_url: str, tmp_path: Path) -> None:
    """Migration 0007 widens ``status`` and adds ``status_message`` without losing rows."""
    from sqlalchemy import insert, select, text

    from conveyor.store import Store, model_versions
    from conveyor.store._store import _make_sqlite_folder

    _make_sqlite_folder(store_url)
    store = Store.connect(store_url)
    store.upgrade("0006")
    with store.engine.begin() as conn:
        conn.execute(text("INSERT INTO registered_models (name, description, last_version, created_at, updated_at) "
                          "VALUES ('m', '', 1, 1, 1)"))
        model_id = conn.execute(text("SELECT id FROM registered_models")).scalar_one()
        conn.execute(text(
            "INSERT INTO model_versions (model_id, version, source, run_id, digest, is_dir, size, status, "
            "description, git_commit, data_versions, \"user\", created_at, updated_at) VALUES "
            f"({model_id}, 1, 'runs:/x/model', 'x', 'blake3:00', true, 1, 'READY', '', NULL, '[]', 'me', 1, 1)"))
    store.upgrade()
    with store.engine.begin() as conn:
        row = conn.execute(select(model_versions)).one()
        assert (row.status, row.status_message) == ("READY", None)
        conn.execute(insert(model_versions).values(
            model_id=model_id, version=2, source="runs:/y/model", digest="blake3:01", is_dir=True, size=1,
            status=Status.FAILED_REGISTRATION, status_message="x" * 5000, description="", data_versions="[]",
            user="me", created_at=2, updated_at=2))
    store.close()


def test_models_cli_refuses_a_bare_file_and_lists_failed_versions_only_with_all(
    project: Path, tmp_path: Path
) -> None:
    import skops.io as sio
    from sklearn.linear_model import LinearRegression
    from typer.testing import CliRunner

    import conveyor
    from conveyor.cli import app
    from conveyor.tracking import set_tracker

    sio.dump(LinearRegression().fit([[0.0], [1.0]], [0.0, 1.0]), tmp_path / "output")
    good = _package(tmp_path, "logistic-frame")
    (tmp_path / "b").mkdir()
    broken = _broken(tmp_path / "b", "corrupt-weights")
    with conveyor.start_run(experiment="cli") as run:
        conveyor.log_artifact(tmp_path / "output", "outputs")
        conveyor.log_artifacts(good, "good")
        conveyor.log_artifacts(broken, "broken")
    set_tracker(None)
    runner = CliRunner()

    bare = runner.invoke(app, ["models", "register", f"runs:/{run.id}/outputs/output", "m"])
    assert bare.exit_code == 2, bare.output
    assert "not a conveyor model package" in bare.output and "conveyor.models.log" in bare.output
    assert runner.invoke(app, ["models", "register", f"runs:/{run.id}/good", "m"]).exit_code == 0
    failed = runner.invoke(app, ["models", "register", f"runs:/{run.id}/broken", "m"])
    assert failed.exit_code == 2 and "FAILED_REGISTRATION" in failed.output

    shown = json.loads(runner.invoke(app, ["models", "versions", "m", "--json"]).output)
    assert [(v["version"], v["status"]) for v in shown] == [(1, "READY")]
    everything = json.loads(runner.invoke(app, ["models", "versions", "m", "--all", "--json"]).output)
    assert [(v["version"], v["status"]) for v in everything] == [(1, "READY"), (2, "FAILED_REGISTRATION")]
    assert "not a zip file" in everything[1]["status_message"]
    table = runner.invoke(app, ["models", "versions", "m", "--all"], terminal_width=200).output
    assert "FAILED" in table and "reason" in table and "zip" in table
    assert json.loads(runner.invoke(app, ["models", "list", "--json"]).output)[0]["latest_version"] == 1
    assert json.loads(runner.invoke(app, ["models", "list", "--all", "--json"]).output)[0]["latest_version"] == 2
    refused = runner.invoke(app, ["models", "alias", "m", "champion", "2"])
    assert refused.exit_code == 1 and "READY" in refused.output
    refused = runner.invoke(app, ["build", "models:/m/2", "--out", str(tmp_path / "ctx")])
    assert refused.exit_code == 2 and "FAILED_REGISTRATION" in refused.output
    assert not (tmp_path / "ctx").exists()
    assert runner.invoke(app, ["models", "archive", "m/1"]).exit_code == 0
    refused = runner.invoke(app, ["build", "models:/m/1", "--out", str(tmp_path / "ctx")])
    assert refused.exit_code == 2 and "ARCHIVED" in refused.output and "--restore" in refused.output
