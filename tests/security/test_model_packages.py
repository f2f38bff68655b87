"""Hostile model packages: no code runs, no file outside the package is read.

Each attack is built the way an attacker would: a legitimate package, then its
``conveyor-model.json`` or its files edited. Every test asserts the refusal *and* that the
side effect did not happen (a marker file the payload would have written is absent, a module
the payload names was never imported). Issue 9, finding 1; issue 10, build item 2.
"""

from __future__ import annotations

import json
import os
import sys
import zipfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from typer.testing import CliRunner

import conveyor.models
from conveyor.errors import ConveyorError, CorruptObject, InvalidInput, UnsafePath
from conveyor.models import META_FILE, TrustPolicy, UntrustedTypes, load, save, set_trust


@pytest.fixture(autouse=True)
def _default_trust() -> Iterator[None]:
    set_trust(TrustPolicy())  # the defaults, whatever conveyor.toml the working directory has
    yield
    set_trust(None)


@pytest.fixture
def marker(tmp_path: Path) -> Path:
    """The file a payload would create; each test asserts it does not exist."""
    return tmp_path / "PWNED"


@pytest.fixture(scope="module")
def ridge() -> Any:
    from sklearn.linear_model import Ridge

    x = np.random.default_rng(0).random((20, 3))
    return Ridge().fit(x, x.sum(axis=1)), x


def _sk_package(folder: Path, ridge: Any) -> Path:
    model, x = ridge
    save(model, folder, input_example=x[:3])
    return folder


def _edit_meta(folder: Path, **changes: Any) -> None:
    path = folder / META_FILE
    meta = json.loads(path.read_text())
    for key, value in changes.items():
        if key.startswith("flavor_config."):
            meta["flavor_config"][key.split(".", 1)[1]] = value
        else:
            meta[key] = value
    path.write_text(json.dumps(meta))


def _torch_package(folder: Path, factory: str, kwargs: dict[str, Any]) -> Path:
    """A state_dict package whose factory an attacker replaced (torch itself is never needed)."""
    folder.mkdir(parents=True)
    (folder / "state_dict.pt").write_bytes(b"not even weights")
    meta = {
        "format_version": 1, "flavor": "pytorch",
        "flavor_config": {"format": "state_dict", "file": "state_dict.pt", "factory": factory,
                          "factory_kwargs": kwargs, "input_dtype": "float32"},
        "signature": None, "input_example": None, "requirements": [], "metadata": {},
    }
    (folder / META_FILE).write_text(json.dumps(meta))
    return folder


# -- code named by a package ----------------------------------------------------------------------
@pytest.mark.parametrize(("factory", "kwargs"), [
    ("subprocess:run", {"args": ["touch", "{marker}"]}),
    ("os:system", {"command": "touch {marker}"}),
    ("builtins:exec", {"source": "open({marker!r}, 'w').close()"}),
])
def test_a_torch_factory_outside_the_trusted_names_is_never_called(
    tmp_path: Path, marker: Path, factory: str, kwargs: dict[str, Any]
) -> None:
    filled = json.loads(json.dumps(kwargs).replace("{marker}", str(marker)).replace("{marker!r}", repr(str(marker))))
    pkg = _torch_package(tmp_path / "pkg", factory, filled)
    with pytest.raises(UntrustedTypes) as info:
        load(pkg)
    assert factory.replace(":", ".") in str(info.value) and "--trust" in str(info.value)
    assert "[models] trusted_modules" in str(info.value)
    assert not marker.exists()


def test_a_module_entry_does_not_trust_its_functions(tmp_path: Path, marker: Path) -> None:
    """``--trust os`` trusts os's classes; a callable must be named in full."""
    pkg = _torch_package(tmp_path / "pkg", "os:system", {"command": f"touch {marker}"})
    with pytest.raises(UntrustedTypes, match="os.system"):
        load(pkg, trusted=["os", "subprocess"])
    assert not marker.exists()


def test_cli_serve_refuses_the_factory_with_exit_2(tmp_path: Path, marker: Path, project: Path) -> None:
    from conveyor.cli import app

    pkg = _torch_package(tmp_path / "pkg", "subprocess:run", {"args": ["touch", str(marker)]})
    result = CliRunner().invoke(app, ["serve", str(pkg), "--port", "1"])
    assert result.exit_code == 2, result.output
    assert "subprocess.run" in result.output and "--trust" in result.output
    assert "Traceback" not in result.output
    assert not marker.exists()


def test_a_registered_hostile_package_is_refused_by_serve(tmp_path: Path, marker: Path, project: Path) -> None:
    """The same package logged to a run and registered: ``serve models:/…`` loads nothing."""
    import conveyor
    import conveyor.registry
    from conveyor.cli import app

    pkg = _torch_package(tmp_path / "pkg", "subprocess:run", {"args": ["touch", str(marker)]})
    with conveyor.start_run(experiment="hostile") as run:
        conveyor.tracking.get_tracker().log_artifacts(run.id, pkg, "model")
    # the registry loads a package before it is READY: it refuses it there, records the
    # version FAILED_REGISTRATION, and serving that version is refused too
    with pytest.raises(InvalidInput, match="subprocess.run"):
        conveyor.registry.register(f"runs:/{run.id}/model", "evil")
    assert not marker.exists()
    conveyor.tracking.get_tracker().flush()
    result = CliRunner().invoke(app, ["serve", "models:/evil/1", "--port", "1"])
    assert result.exit_code == 2, result.output
    assert "FAILED_REGISTRATION" in result.output or "subprocess.run" in result.output
    assert not marker.exists()

def _evil_module(tmp_path: Path, marker: Path, monkeypatch: pytest.MonkeyPatch, name: str) -> None:
    """An importable module that writes ``marker`` when imported and has a class with predict."""
    (tmp_path / f"{name}.py").write_text(
        f"open({str(marker)!r}, 'w').close()\n\nclass Model:\n    def predict(self, x):\n        return x\n"
    )
    monkeypatch.syspath_prepend(str(tmp_path))


def test_a_pyfunc_class_from_an_untrusted_module_is_never_imported(
    tmp_path: Path, marker: Path, monkeypatch: pytest.MonkeyPatch, ridge: Any
) -> None:
    name = "conveyor_evil_pyfunc_module"
    _evil_module(tmp_path, marker, monkeypatch, name)
    pkg = tmp_path / "pkg"
    pkg.mkdir()
    (pkg / "state.json").write_text("{}")
    (pkg / META_FILE).write_text(json.dumps({
        "format_version": 1, "flavor": "pyfunc", "signature": None, "input_example": None,
        "flavor_config": {"class": f"{name}:Model", "state": "state.json", "arrays": None, "accepts": "array"},
    }))
    with pytest.raises(UntrustedTypes, match=f"{name}.Model"):
        load(pkg)
    assert name not in sys.modules
    assert not marker.exists()
    # named by the user, it loads: the refusal was the policy, not a broken package
    loaded = load(pkg, trusted=[name])
    assert marker.exists() and loaded.predict(np.ones((1, 2))).shape == (1, 2)


def test_a_pyfunc_class_from_a_trusted_module_gets_no_constructor_call(tmp_path: Path, marker: Path) -> None:
    """numpy is trusted for classes: ``numpy.memmap`` is rebuilt from state, never called."""
    pkg = tmp_path / "pkg"
    pkg.mkdir()
    (pkg / "state.json").write_text(json.dumps({"filename": str(marker), "mode": "w+"}))
    (pkg / META_FILE).write_text(json.dumps({
        "format_version": 1, "flavor": "pyfunc", "signature": None, "input_example": None,
        "flavor_config": {"class": "numpy:memmap", "state": "state.json", "accepts": "array"},
    }))
    with pytest.raises(ConveyorError, match="predict"):
        load(pkg)
    assert not marker.exists()


def _skops_with(tmp_path: Path, model: Any) -> Path:
    pkg = tmp_path / "pkg"
    save(model, pkg)
    return pkg


def test_a_function_reference_to_os_system_in_a_skops_file_is_refused(tmp_path: Path, marker: Path) -> None:
    from sklearn.pipeline import Pipeline
    from sklearn.preprocessing import FunctionTransformer

    from sklearn.linear_model import Ridge

    pkg = _skops_with(tmp_path, Pipeline([("f", FunctionTransformer(func=os.system)), ("m", Ridge())]))
    system = f"{os.system.__module__}.system"  # posix.system on Linux
    recorded = json.loads((pkg / META_FILE).read_text())["references"]
    assert {"name": system, "kind": "callable", "vetted": False} in recorded  # recorded at save
    with pytest.raises(UntrustedTypes) as info:
        load(pkg)
    assert system in str(info.value) and f"--trust {system}" in str(info.value)
    # trusting its module is not enough for a function
    with pytest.raises(UntrustedTypes):
        load(pkg, trusted=[os.system.__module__])
    # the pipelines' materializer shares the policy
    from conveyor.pipelines import get_materializer

    with pytest.raises(UntrustedTypes, match=system):
        get_materializer("sklearn").load(pkg)
    assert not marker.exists()


def test_a_custom_class_from_an_untrusted_module_in_a_skops_file_is_refused(
    tmp_path: Path, marker: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The skops schema names a class of a module that runs code on import: never imported."""
    import skops.io as sio
    from sklearn.linear_model import LinearRegression

    name = "conveyor_evil_skops_module"
    pkg = _skops_with(tmp_path, LinearRegression().fit([[0.0], [1.0]], [0.0, 1.0]))
    _evil_module(tmp_path, marker, monkeypatch, name)
    _rewrite_schema(pkg / "model.skops", lambda s: s.replace('"sklearn.linear_model._base"', f'"{name}"')
                    .replace('"LinearRegression"', '"Model"'))
    _resize(pkg, "model.skops")
    with pytest.raises(UntrustedTypes, match=f"{name}.Model"):
        load(pkg)
    assert name not in sys.modules and not marker.exists()
    assert sio  # skops itself is what would have imported it


def test_module_trust_never_becomes_a_constructor_call(tmp_path: Path, marker: Path, ridge: Any) -> None:
    """numpy is trusted, yet a skops node that *calls* ``numpy.memmap(marker, mode='w+')`` is refused."""
    pkg = _sk_package(tmp_path / "pkg", ridge)

    def json_node(value: Any) -> dict[str, Any]:
        return {"__class__": type(value).__name__, "__module__": "builtins", "__loader__": "JsonNode",
                "content": json.dumps(value), "is_json": True}

    def attack(schema: str) -> str:
        data = json.loads(schema)
        data["content"]["content"]["memmap"] = {
            "__class__": "memmap", "__module__": "numpy", "__loader__": "ConstructorFromReduceNode",
            "content": {"__class__": "tuple", "__module__": "builtins", "__loader__": "TupleNode",
                        "content": [json_node(str(marker)), json_node("uint8"), json_node("w+"), json_node(0),
                                    json_node(4)]},
        }
        return json.dumps(data)

    _rewrite_schema(pkg / "model.skops", attack)
    _resize(pkg, "model.skops")
    with pytest.raises(UntrustedTypes, match=r"numpy\.memmap \(callable\)"):
        load(pkg)
    assert not marker.exists()


def _rewrite_schema(path: Path, edit: Any) -> None:
    with zipfile.ZipFile(path) as src:
        items = {n: src.read(n) for n in src.namelist()}
    items["schema.json"] = edit(items["schema.json"].decode()).encode()
    with zipfile.ZipFile(path, "w") as dst:
        for name, data in items.items():
            dst.writestr(name, data)


def _resize(pkg: Path, name: str) -> None:
    """Record the new size, as an attacker who edits the JSON too would."""
    meta = json.loads((pkg / META_FILE).read_text())
    meta["files"][name] = (pkg / name).stat().st_size
    (pkg / META_FILE).write_text(json.dumps(meta))


# -- files named by a package ---------------------------------------------------------------------
@pytest.mark.parametrize("value", ["/dev/zero", "/etc/passwd", "../outside.skops", "a/../../outside.skops",
                                   "C:/x.skops", "model.skops\x00.txt", 7])
def test_a_file_field_outside_the_package_is_refused(tmp_path: Path, ridge: Any, value: Any) -> None:
    pkg = _sk_package(tmp_path / "pkg", ridge)
    (tmp_path / "outside.skops").write_bytes((pkg / "model.skops").read_bytes())
    _edit_meta(pkg, **{"flavor_config.file": value})
    with pytest.raises(UnsafePath) as info:
        load(pkg)
    assert info.value.field == "flavor_config.file"


@pytest.mark.parametrize("value", ["/dev/zero", "../input_example.json"])
def test_an_input_example_outside_the_package_is_refused(tmp_path: Path, ridge: Any, value: str) -> None:
    pkg = _sk_package(tmp_path / "pkg", ridge)
    _edit_meta(pkg, input_example=value)
    with pytest.raises(UnsafePath):
        load(pkg)


@pytest.mark.parametrize("name", ["../../etc/passwd", "/etc/passwd"])
def test_a_files_record_naming_paths_outside_is_refused(tmp_path: Path, ridge: Any, name: str) -> None:
    pkg = _sk_package(tmp_path / "pkg", ridge)
    meta = json.loads((pkg / META_FILE).read_text())
    meta["files"][name] = 10
    (pkg / META_FILE).write_text(json.dumps(meta))
    with pytest.raises(UnsafePath):
        load(pkg)


def test_a_file_larger_than_recorded_is_refused_before_it_is_read(tmp_path: Path, ridge: Any) -> None:
    pkg = _sk_package(tmp_path / "pkg", ridge)
    with (pkg / "model.skops").open("ab") as f:
        f.write(b"\0" * 4096)
    with pytest.raises(CorruptObject, match="records"):
        load(pkg)


def test_a_file_missing_from_the_record_cannot_be_named(tmp_path: Path, ridge: Any) -> None:
    pkg = _sk_package(tmp_path / "pkg", ridge)
    (pkg / "other.skops").write_bytes((pkg / "model.skops").read_bytes())
    _edit_meta(pkg, **{"flavor_config.file": "other.skops"})
    with pytest.raises(UnsafePath, match="recorded"):
        load(pkg)


@pytest.mark.parametrize("target", ["/dev/zero", "outside"])
def test_a_symlink_inside_the_package_is_refused(tmp_path: Path, ridge: Any, target: str) -> None:
    pkg = _sk_package(tmp_path / "pkg", ridge)
    outside = tmp_path / "outside.skops"
    outside.write_bytes((pkg / "model.skops").read_bytes())
    (pkg / "model.skops").unlink()
    (pkg / "model.skops").symlink_to(target if target.startswith("/") else outside)
    with pytest.raises(UnsafePath, match="symbolic link"):
        load(pkg)


def test_a_device_or_symlinked_description_is_refused(tmp_path: Path, ridge: Any) -> None:
    pkg = _sk_package(tmp_path / "pkg", ridge)
    (pkg / META_FILE).unlink()
    (pkg / META_FILE).symlink_to("/dev/zero")
    with pytest.raises(UnsafePath, match="not a regular file"):
        load(pkg)


def test_a_huge_description_is_refused_unread(tmp_path: Path, ridge: Any) -> None:
    from conveyor.models._meta import MAX_META_BYTES

    pkg = _sk_package(tmp_path / "pkg", ridge)
    with (pkg / META_FILE).open("ab") as f:
        f.truncate(MAX_META_BYTES + 1)  # sparse: no disk used
    with pytest.raises(ConveyorError, match="limit"):
        load(pkg)


def test_cli_serve_of_dev_zero_exits_2_without_reading_it(tmp_path: Path, ridge: Any, project: Path) -> None:
    from conveyor.cli import app

    pkg = _sk_package(tmp_path / "pkg", ridge)
    _edit_meta(pkg, **{"flavor_config.file": "/dev/zero"})
    result = CliRunner().invoke(app, ["serve", str(pkg), "--port", "1"])
    assert result.exit_code == 2, result.output
    assert "/dev/zero" in result.output and "Traceback" not in result.output


# -- the probe's passing cases, kept: pickles inside framework files --------------------------------
class _Payload:
    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self) -> Any:
        return (os.system, (f"touch {self.marker}",))


def test_a_pickle_as_torch_weights_is_refused(tmp_path: Path, marker: Path) -> None:
    pytest.importorskip("torch")
    import pickle

    pkg = tmp_path / "pkg"
    pkg.mkdir()
    (pkg / "model.pt").write_bytes(pickle.dumps(_Payload(marker)))
    (pkg / META_FILE).write_text(json.dumps({
        "format_version": 1, "flavor": "pytorch", "signature": None, "input_example": None,
        "flavor_config": {"format": "torchscript", "file": "model.pt", "input_dtype": "float32"},
    }))
    with pytest.raises(ConveyorError):
        load(pkg)
    assert not marker.exists()


def test_a_pickle_as_a_state_dict_is_refused_by_weights_only(
    tmp_path: Path, marker: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    pytest.importorskip("torch")
    import pickle

    name = "conveyor_trusted_nets"
    (tmp_path / f"{name}.py").write_text("import torch\n\ndef build():\n    return torch.nn.Linear(2, 1)\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    pkg = _torch_package(tmp_path / "pkg", f"{name}:build", {})
    (pkg / "state_dict.pt").write_bytes(pickle.dumps(_Payload(marker), protocol=2))
    with pytest.raises(ConveyorError):
        load(pkg, trusted=[f"{name}.build"])  # the factory is trusted, the weights still are not code
    assert not marker.exists()


def test_a_keras_lambda_is_refused_in_safe_mode(tmp_path: Path, marker: Path) -> None:
    keras = pytest.importorskip("keras")

    inputs = keras.Input((2,))
    model = keras.Model(inputs, keras.layers.Lambda(lambda x: x * 2)(inputs))
    pkg = tmp_path / "pkg"
    save(model, pkg)
    with pytest.raises(UntrustedTypes, match="safe"):
        load(pkg)
    assert not marker.exists()


def test_a_keras_layer_class_from_an_untrusted_module_is_never_imported(
    tmp_path: Path, marker: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    keras = pytest.importorskip("keras")

    name = "conveyor_evil_keras_module"
    _evil_module(tmp_path, marker, monkeypatch, name)
    model = keras.Sequential([keras.Input((2,)), keras.layers.Dense(1)])
    pkg = tmp_path / "pkg"
    save(model, pkg)
    with zipfile.ZipFile(pkg / "model.keras") as src:
        items = {n: src.read(n) for n in src.namelist()}
    items["config.json"] = items["config.json"].replace(b'"module": "keras.layers"', f'"module": "{name}"'.encode())
    with zipfile.ZipFile(pkg / "model.keras", "w") as dst:
        for item, data in items.items():
            dst.writestr(item, data)
    _resize(pkg, "model.keras")
    with pytest.raises(UntrustedTypes, match=f"{name}.Dense"):
        load(pkg)
    assert name not in sys.modules and not marker.exists()


def test_the_refusal_lists_every_reference_once(tmp_path: Path) -> None:
    from sklearn.pipeline import Pipeline
    from sklearn.preprocessing import FunctionTransformer

    from sklearn.linear_model import Ridge

    pkg = _skops_with(tmp_path, Pipeline([("a", FunctionTransformer(func=os.system)),
                                          ("b", FunctionTransformer(func=os.getcwd)), ("m", Ridge())]))
    with pytest.raises(UntrustedTypes) as info:
        load(pkg)
    assert info.value.value == sorted({f"{os.system.__module__}.system", f"{os.getcwd.__module__}.getcwd"})
    assert conveyor.models.current_trust() == TrustPolicy()  # a refusal changes no policy


# -- the flags: every command that loads a model offers --trust -------------------------------------
@pytest.mark.parametrize("command", [["serve"], ["build"], ["ci", "check"], ["models", "register"],
                                     ["monitor", "run"], ["monitor", "watch"], ["monitor", "retrain"]])
def test_every_command_that_loads_a_model_offers_trust(command: list[str]) -> None:
    from conveyor.cli import app

    result = CliRunner().invoke(app, [*command, "--help"], terminal_width=200)
    assert result.exit_code == 0 and "--trust" in result.output, result.output


def test_serve_workers_get_the_parents_policy(
    project: Path, monkeypatch: pytest.MonkeyPatch, ridge: Any, tmp_path: Path
) -> None:
    """``serve --workers N`` hands [models] trusted_modules + --trust to each worker process."""
    from conveyor.serving import _server

    pkg = _sk_package(tmp_path / "pkg", ridge)
    folders = [{"path": str(pkg), "name": "m", "version": "1"}]
    monkeypatch.setenv(_server.SPEC_ENV, json.dumps({"models": [], "folders": folders, "config": {},
                                                      "trust": ["sklearn", "numpy", "mypkg.features.clean"]}))
    _server.worker_app()
    assert conveyor.models.current_trust().entries == ("sklearn", "numpy", "mypkg.features.clean")
    monkeypatch.setenv(_server.SPEC_ENV, json.dumps({"models": [], "folders": folders, "config": {},
                                                      "trust": ["scipy"]}))
    with pytest.raises(UntrustedTypes):  # the worker loads under the parent's policy, not its own default
        _server.worker_app()


def test_ci_check_needs_trust_for_a_user_function_and_passes_with_it(
    project: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The gate loads the candidate under the policy: refused (exit 2) until --trust names the function."""
    import pandas as pd
    from sklearn.datasets import load_wine
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import FunctionTransformer

    import conveyor
    from conveyor.cli import app

    name = "conveyor_gate_features"
    (project / f"{name}.py").write_text("import numpy as np\n\ndef clean(x):\n    return np.sqrt(x)\n")
    monkeypatch.syspath_prepend(str(project))
    import importlib

    clean = importlib.import_module(name).clean
    X, y = load_wine(return_X_y=True, as_frame=True)
    X.columns = [c.replace("/", "_") for c in X.columns]
    model = make_pipeline(FunctionTransformer(clean), LogisticRegression(max_iter=3000)).fit(X.iloc[::2], y.iloc[::2])
    pd.concat([X, pd.Series(y, name="label")], axis=1).iloc[1::2].to_csv(project / "holdout.csv", index=False)
    (project / "conveyor.toml").write_text(
        '[tracking]\nflush_interval = 0.05\n[gates.default]\nmodel = "wine"\ndata = "holdout.csv"\n'
        'metrics = ["accuracy >= 0.8"]\n', encoding="utf-8")
    set_trust(None)
    with conveyor.start_run(experiment="gate") as run:
        conveyor.models.log(model, "model", input_example=X.iloc[:3])
    conveyor.tracking.get_tracker().flush()
    runner = CliRunner()
    refused = runner.invoke(app, ["ci", "check", "--candidate", f"runs:/{run.id}/model"])
    assert refused.exit_code == 2, refused.output
    assert f"{name}.clean" in refused.output and "Traceback" not in refused.output
    passed = runner.invoke(app, ["ci", "check", "--candidate", f"runs:/{run.id}/model", "--trust", f"{name}.clean"])
    assert passed.exit_code == 0, passed.output
    assert "PASSED" in passed.output


# -- trusted classes, hostile state: compiled trees are bounds-checked before any predict ----------
def _wine_xy() -> tuple[Any, Any]:
    from sklearn.datasets import load_wine

    return load_wine(return_X_y=True)


def _broken_tree_model(kind: str) -> Any:
    X, y = _wine_xy()
    if kind in ("tree-child", "tree-feature", "tree-cycle"):
        from sklearn.tree import DecisionTreeClassifier

        model = DecisionTreeClassifier(random_state=0).fit(X, y)
        state = model.tree_.__getstate__()
        nodes = state["nodes"].copy()
        field, value = {"tree-child": ("left_child", 10_000), "tree-feature": ("feature", 500),
                        "tree-cycle": ("right_child", 0)}[kind]
        nodes[field][0] = value
        state["nodes"] = nodes
        model.tree_.__setstate__(state)
        return model
    if kind == "forest-child":
        from sklearn.ensemble import RandomForestClassifier

        model = RandomForestClassifier(n_estimators=3, random_state=0).fit(X, y)
        tree = model.estimators_[2].tree_
        state = tree.__getstate__()
        state["nodes"] = state["nodes"].copy()
        state["nodes"]["left_child"][0] = 99_999
        tree.__setstate__(state)
        return model
    if kind == "hist-gradient-boosting":
        from sklearn.ensemble import HistGradientBoostingClassifier

        model = HistGradientBoostingClassifier(max_iter=2, random_state=0).fit(X, y)
        model._predictors[1][0].nodes["feature_idx"][0] = 1_000
        return model
    from sklearn.neighbors import KNeighborsClassifier

    model = KNeighborsClassifier(algorithm="kd_tree").fit(X, y)
    state = list(model._tree.__getstate__())
    state[1] = state[1].copy()
    state[1][0] = 10_000_000  # an index far past the training rows
    model._tree.__setstate__(tuple(state))
    return model


@pytest.mark.parametrize("kind", ["tree-child", "tree-feature", "tree-cycle", "forest-child",
                                  "hist-gradient-boosting", "kd-tree"])
def test_a_tree_with_out_of_range_indices_is_refused_before_predict(tmp_path: Path, kind: str) -> None:
    """sklearn is trusted, but a tree whose indices leave its arrays would read memory it does not own."""
    pkg = tmp_path / "pkg"
    save(_broken_tree_model(kind), pkg)  # no input example: nothing predicts with the broken model
    with pytest.raises(CorruptObject, match="malformed"):
        load(pkg)
    from conveyor.pipelines import get_materializer

    with pytest.raises(CorruptObject, match="malformed"):  # the materializer runs the same checks
        get_materializer("sklearn").load(pkg)


def test_a_bound_method_reference_is_named_and_refused(tmp_path: Path) -> None:
    """A FunctionTransformer holding a bound method of a trusted class: a callable, named in full."""
    from sklearn.linear_model import Ridge
    from sklearn.pipeline import Pipeline
    from sklearn.preprocessing import FunctionTransformer, StandardScaler

    scaler = StandardScaler().fit(np.ones((3, 2)))
    pkg = _skops_with(tmp_path, Pipeline([("f", FunctionTransformer(func=scaler.transform)), ("m", Ridge())]))
    method = "sklearn.preprocessing._data.StandardScaler.transform"
    with pytest.raises(UntrustedTypes, match=method.replace(".", r"\.")):
        load(pkg)
    assert load(pkg, trusted=[method]).flavor == "sklearn"


@pytest.mark.parametrize("location", ["{secret}", "../secret.bin", "secret.bin"])
def test_onnx_external_data_outside_the_graph_is_never_read(tmp_path: Path, location: str) -> None:
    """An ONNX initializer whose bytes live 'externally' at a path of the attacker's choice."""
    pytest.importorskip("onnxruntime")
    from onnx import TensorProto, helper, numpy_helper

    secret = tmp_path / "secret.bin"
    secret.write_bytes(np.arange(4, dtype="float32").tobytes())
    weights = numpy_helper.from_array(np.zeros(4, dtype="float32"), "w")
    weights.data_location = TensorProto.EXTERNAL
    for key, value in {"location": location.format(secret=secret), "offset": "0", "length": "16"}.items():
        entry = weights.external_data.add()
        entry.key, entry.value = key, value
    weights.ClearField("raw_data")
    graph = helper.make_graph(
        [helper.make_node("Add", ["x", "w"], ["y"])], "g",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [None, 4])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [None, 4])], [weights],
    )
    proto = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)])
    pkg = tmp_path / "pkg"
    pkg.mkdir()
    (pkg / "model.onnx").write_bytes(proto.SerializeToString())
    (pkg / META_FILE).write_text(json.dumps({
        "format_version": 1, "flavor": "onnx", "signature": None, "input_example": None,
        "flavor_config": {"file": "model.onnx"}, "files": {"model.onnx": (pkg / "model.onnx").stat().st_size},
    }))
    (pkg / "secret.bin").write_bytes(secret.read_bytes())  # even next to the graph it is not read
    with pytest.raises(CorruptObject, match="ONNX"):
        load(pkg)
