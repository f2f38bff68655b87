"""The context `conveyor build` writes installs and runs: a fresh virtualenv gets exactly the
Dockerfile's `pip install` (conveyor from the wheel in the context, everything else from the
package index), then the image's command serves the model, with the store named by the
environment as the manifest does, and answers predictions over HTTP."""

from __future__ import annotations

import json
import os
import shlex
import subprocess
import sys
import time
import venv
from pathlib import Path

import httpx
import numpy as np
import pytest
from typer.testing import CliRunner

from conftest import free_port


def _image_steps(ctx: Path) -> tuple[list[str], list[str]]:
    """The Dockerfile's pip install and CMD, with /srv (the image's WORKDIR) mapped to ``ctx``."""
    lines = (ctx / "Dockerfile").read_text().splitlines()
    install = next(line for line in lines if line.startswith("RUN pip install"))
    pip_args = [a.replace("/srv/", f"{ctx}/") for a in shlex.split(install.removeprefix("RUN pip install"))]
    command = json.loads(next(line for line in lines if line.startswith("CMD ")).removeprefix("CMD "))
    return pip_args, [a.replace("/srv/", f"{ctx}/") for a in command]


@pytest.mark.slow
def test_the_context_installs_into_a_fresh_venv_and_serves(project: Path, tmp_path: Path) -> None:
    import pandas as pd
    import yaml
    from sklearn.linear_model import Ridge
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import PolynomialFeatures, StandardScaler

    import conveyor
    import conveyor.models
    import conveyor.registry
    from conveyor.cli import app
    from conveyor.tracking import set_tracker

    x = pd.DataFrame({"a": np.linspace(0, 1, 40), "b": np.linspace(1, 2, 40)})
    model = make_pipeline(PolynomialFeatures(2), StandardScaler(), Ridge(alpha=0.1)).fit(x, x["a"] ** 2 * 3 + x["b"])
    with conveyor.start_run(experiment="build") as run:
        conveyor.models.log(model, "model", input_example=x[:3])
    version = conveyor.registry.register(f"runs:/{run.id}/model", "forest").version
    conveyor.registry.set_alias("forest", "champion", version)
    set_tracker(None)

    built = CliRunner().invoke(app, ["build", "models:/forest@champion", "--out", "ctx", "--json"])
    assert built.exit_code == 0, built.output
    ctx = project / "ctx"
    pip_args, command = _image_steps(ctx)
    assert pip_args[:1] == ["--no-cache-dir"] and pip_args[1].endswith(".whl") and Path(pip_args[1]).is_file()
    container = next(d for d in yaml.safe_load_all((ctx / "kubernetes.yaml").read_text())
                     if d["kind"] == "Deployment")["spec"]["template"]["spec"]["containers"][0]
    secret_env = {e["name"]: e["valueFrom"]["secretKeyRef"] for e in container["env"]}
    assert secret_env["CONVEYOR_STORE_METADATA_URL"] == {"name": "conveyor-store", "key": "metadata_url"}
    assert secret_env["CONVEYOR_STORE_ARTIFACTS_URL"] == {"name": "conveyor-store", "key": "artifacts_url"}

    env_dir = tmp_path / "venv"
    venv.EnvBuilder(with_pip=True, clear=True).create(env_dir)
    bin_dir = env_dir / "bin"
    clean = {k: v for k, v in os.environ.items()
             if not k.startswith(("CONVEYOR_", "PYTHON", "VIRTUAL_ENV", "PIP_"))}
    installed = subprocess.run([str(bin_dir / "python"), "-m", "pip", "install", "--quiet", "--disable-pip-version-check",
                                *pip_args], env=clean, capture_output=True, text=True, timeout=1500, check=False)
    assert installed.returncode == 0, installed.stderr[-3000:]
    where = subprocess.run([str(bin_dir / "python"), "-c", "import conveyor; print(conveyor.__file__)"],
                           env=clean, capture_output=True, text=True, check=True, cwd=tmp_path).stdout
    assert str(env_dir) in where  # conveyor came from the wheel, not this source tree

    # The image's command, as the container runs it: no conveyor.toml in the working folder,
    # the store named by the environment (here the project's own, as the Secret would).
    workdir = tmp_path / "srv"
    workdir.mkdir()
    port = free_port()
    args = [str(bin_dir / "conveyor"), *command[1:]]
    args[args.index("--host") + 1] = "127.0.0.1"
    args[args.index("--port") + 1] = str(port)
    without_store = subprocess.run(args, env=clean, cwd=workdir, capture_output=True, text=True, timeout=120)
    assert without_store.returncode == 4 and "CONVEYOR_STORE_METADATA_URL" in without_store.stderr
    assert list(workdir.iterdir()) == []  # no silent local .conveyor/
    store_env = {**clean, "CONVEYOR_STORE_METADATA_URL": f"sqlite:///{project / '.conveyor' / 'conveyor.db'}",
                 "CONVEYOR_STORE_ARTIFACTS_URL": str(project / ".conveyor" / "artifacts")}
    proc = subprocess.Popen(args, env=store_env, cwd=workdir, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    try:
        url = f"http://127.0.0.1:{port}"
        _wait_ready(url, proc)
        rows = x.iloc[[5, 30]]
        r = httpx.post(f"{url}/v2/models/forest/infer", json={"inputs": [
            {"name": c, "shape": [2], "datatype": "FP64", "data": rows[c].tolist()} for c in ("a", "b")]})
        assert r.status_code == 200, r.text
        assert r.json()["model_version"] == str(version)
        assert r.json()["outputs"][0]["data"] == pytest.approx(model.predict(rows).tolist())
        r = httpx.post(f"{url}/invocations", json={"dataframe_records": rows.to_dict(orient="records")})
        assert r.status_code == 200, r.text
    finally:
        proc.terminate()
        proc.wait(60)
    assert list(workdir.iterdir()) == []


def _wait_ready(url: str, proc: subprocess.Popen[bytes], seconds: float = 120) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise AssertionError(f"server exited: {proc.stderr.read().decode() if proc.stderr else ''}")
        try:
            if httpx.get(f"{url}/v2/health/ready", timeout=1).status_code == 200:
                return
        except httpx.TransportError:
            pass
        time.sleep(0.3)
    raise AssertionError("server did not become ready")


if sys.platform == "win32":  # pragma: no cover - the venv layout above is POSIX
    pytestmark = pytest.mark.skip(reason="POSIX virtualenv layout")
