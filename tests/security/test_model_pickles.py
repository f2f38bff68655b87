""""No pickle" is checked over whole files and every archive member, and the pickles PyTorch
archives do hold are exactly the declared, restricted-unpickler ones; Keras loads only where
its safe_mode has no known bypass."""

from __future__ import annotations

import io
import pickle
import zipfile
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from conveyor.errors import InvalidInput
from conveyor.models import Flavor, FlavorCase
from conveyor.models._checks import check_save_writes_safe_files


class Weights:
    def __init__(self, w: Any) -> None:
        self.w = np.asarray(w, dtype="float64")

    def predict(self, x: Any) -> Any:
        return np.asarray(x) @ self.w


class _Sneaky(Flavor):
    """A plugin that hides a pickle where a 2-byte magic check does not look."""

    how = ""
    requirements = ()

    def can_handle(self, obj: Any) -> bool:
        return isinstance(obj, Weights)

    def save(self, obj: Any, folder: Path, **options: Any) -> dict[str, Any]:
        if self.how == "object-npz":  # np.savez of an object array pickles it inside the zip
            np.savez(folder / "weights.npz", w=np.array([{"w": obj.w.tolist()}], dtype=object))
        elif self.how == "protocol-0":  # no \x80 header at all
            (folder / "weights.bin").write_bytes(pickle.dumps({"w": obj.w.tolist()}, protocol=0))
        elif self.how == "zip-member":
            buffer = io.BytesIO()
            with zipfile.ZipFile(buffer, "w") as archive:
                archive.writestr("config.json", "{}")
                archive.writestr("state/blob", pickle.dumps(obj.w.tolist(), protocol=4))
            (folder / "weights.zip").write_bytes(buffer.getvalue())
        else:
            np.savez(folder / "weights.npz", w=obj.w)
        return {"how": self.how}

    def load(self, folder: Path, config: Mapping[str, Any], **opts: Any) -> Any:
        raise NotImplementedError

    def predict(self, model: Any, batch: Any) -> Any:
        return model.predict(batch.to_numpy())


@pytest.mark.parametrize("how", ["object-npz", "protocol-0", "zip-member"])
def test_the_flavor_suite_finds_pickles_beyond_the_first_two_bytes(
    how: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from conveyor.models import _flavor

    flavor = _Sneaky()
    flavor.name = f"sneaky-{how}"  # type: ignore[misc]
    flavor.how = how
    monkeypatch.setitem(_flavor._cache, flavor.name, flavor)
    case = FlavorCase(flavor.name, Weights([1.0, 2.0]), np.ones((3, 2)), Weights([1.0, 2.0]).predict)
    with pytest.raises(AssertionError, match="is a pickle"):
        check_save_writes_safe_files(case, tmp_path)


def test_a_plain_npz_passes(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from conveyor.models import _flavor

    flavor = _Sneaky()
    flavor.name = "plain-npz"  # type: ignore[misc]
    monkeypatch.setitem(_flavor._cache, flavor.name, flavor)
    check_save_writes_safe_files(FlavorCase("plain-npz", Weights([1.0]), np.ones((2, 1)), np.sum), tmp_path)


def test_pickle_detection_reads_whole_streams() -> None:
    from conveyor.models._pickles import is_pickle

    assert is_pickle(pickle.dumps(print, protocol=0)) and is_pickle(pickle.dumps([1, 2], protocol=5))
    assert not is_pickle(b'{"a": 1}') and not is_pickle(b"tree\nversion=v4\n")
    assert not is_pickle(b"\x80\x02" + bytes(range(40)))  # tensor bytes that happen to start like a pickle


@pytest.mark.parametrize("mode", ["torchscript", "state_dict"])
def test_pytorch_archives_hold_only_their_declared_restricted_pickles(mode: str, tmp_path: Path) -> None:
    torch = pytest.importorskip("torch")
    from fnmatch import fnmatch

    import conveyor.models
    from conveyor.models import get_flavor
    from conveyor.models._pickles import pickle_streams

    net = torch.nn.Sequential(torch.nn.Linear(3, 2), torch.nn.ReLU(), torch.nn.Linear(2, 1)).eval()
    options = {"factory": "torch.nn:Identity"} if mode == "state_dict" else {}
    conveyor.models.save(net, tmp_path / "pkg", input_example=np.ones((2, 3), dtype="float32"), **options)
    file = "state_dict.pt" if mode == "state_dict" else "model.pt"
    found = pickle_streams(tmp_path / "pkg" / file, name=file)
    assert any(f.endswith("/data.pkl") for f in found)  # they are there, and said to be
    declared = get_flavor("pytorch").restricted_pickles[file]
    assert all(any(fnmatch(f[len(file) + 1:], p) for p in declared) for f in found)


def test_keras_older_than_the_floor_is_refused(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from conveyor.models._keras import MIN_KERAS, require_safe_keras

    for old in ("3.8.0", "3.10.0", "3.11.2", "3.13.1", "3.14.0", "2.15.0", "not-a-version"):
        with pytest.raises(InvalidInput) as info:
            require_safe_keras(old)
        assert "CVE-2025-1550" in info.value.message and f"keras>={MIN_KERAS}" in (info.value.hint or "")
    require_safe_keras(MIN_KERAS)
    require_safe_keras("3.16.2")


@pytest.mark.slow
def test_loading_a_keras_package_with_an_old_keras_fails_clearly(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    keras = pytest.importorskip("keras")
    import json

    import conveyor.models

    model = keras.Sequential([keras.Input((3,)), keras.layers.Dense(1)])
    conveyor.models.save(model, tmp_path / "pkg", input_example=np.ones((2, 3), dtype="float32"))
    assert conveyor.models.load(tmp_path / "pkg").predict(np.ones((1, 3), dtype="float32")).shape[0] == 1
    monkeypatch.setattr(keras, "__version__", "3.10.0")
    with pytest.raises(InvalidInput, match="safe_mode has known bypasses"):
        conveyor.models.load(tmp_path / "pkg")
    monkeypatch.undo()
    meta = json.loads((tmp_path / "pkg" / "conveyor-model.json").read_text())
    meta["flavor_config"]["file"] = "model.h5"
    (tmp_path / "pkg" / "conveyor-model.json").write_text(json.dumps(meta))
    with pytest.raises(InvalidInput, match="only .keras files"):
        conveyor.models.load(tmp_path / "pkg")
