"""Ray gets what it needs: on a head started without any AWS_* variable, a pipeline whose
artifacts live in S3 runs from the CLI with the project code shipped as working_dir, the
driver's credentials passed in the task argument (never printed), and a step's own error reported; a step's
traceback survives a failed log upload."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

FLOW = """
import os
from pathlib import Path
from conveyor.pipelines import pipeline, step

@step
def shipped() -> dict:
    # marker.txt is read relative to the worker's working directory: only there if the
    # project folder was shipped as the runtime_env working_dir
    return {"marker": Path("marker.txt").read_text(), "cwd": os.getcwd()}

@step
def broken(info: dict) -> int:
    raise ValueError("own-error-" + info["marker"])

@pipeline
def flow(fail: bool = False):
    info = shipped()
    if fail:
        broken(info)
"""


@pytest.mark.ray
@pytest.mark.s3
@pytest.mark.slow
def test_a_cluster_without_aws_variables_runs_s3_steps_with_shipped_code(
    ray_cluster: str, s3_server: str, s3_bucket_url: str, tmp_path: Path
) -> None:
    project = tmp_path / "project"
    project.mkdir()
    (project / "flowmod_ray.py").write_text(textwrap.dedent(FLOW), encoding="utf-8")
    (project / "marker.txt").write_text("shipped-42", encoding="utf-8")
    (project / "conveyor.toml").write_text(
        f'[store]\nartifacts_url = "{s3_bucket_url}/c"\ns3_endpoint_url = "{s3_server}"\n', encoding="utf-8"
    )
    env = {k: v for k, v in os.environ.items() if not k.startswith("CONVEYOR_")}
    assert env.get("AWS_SECRET_ACCESS_KEY"), "the driver has credentials (from the S3 fixture)"
    conveyor = [sys.executable, "-m", "conveyor"]
    subprocess.run([*conveyor, "init", "."], cwd=project, env=env, check=True, capture_output=True, timeout=120)
    done = subprocess.run(
        [*conveyor, "pipeline", "run", "flowmod_ray:flow", "-p", "fail=true", "--executor", "ray",
         "--ray-address", ray_cluster, "--json"],
        cwd=project, env=env, capture_output=True, text=True, timeout=600,
    )
    assert env["AWS_SECRET_ACCESS_KEY"] not in done.stdout + done.stderr  # never printed
    summary = json.loads(done.stdout)
    steps = summary["steps"]
    assert steps["shipped"]["status"] == "FINISHED", steps
    assert steps["broken"]["status"] == "FAILED"
    # its own error, not an upload failure; and the marker it read relative to the worker's
    # working directory proves the project folder was shipped as working_dir
    assert "own-error-shipped-42" in steps["broken"]["error"]


def test_a_steps_own_error_survives_a_failed_log_upload(tmp_path: Path) -> None:
    from conveyor.pipelines._worker import execute

    code = tmp_path / "code"
    code.mkdir()
    (code / "doomed_step.py").write_text("def run():\n    raise KeyError('the-real-cause')\n", encoding="utf-8")
    not_a_folder = tmp_path / "artifacts"
    not_a_folder.write_text("a file where the artifact store should be", encoding="utf-8")
    result = execute({
        "node": "run", "module": "doomed_step", "qualname": "run", "sys_path": [str(code)],
        "blobs": {"url": str(not_a_folder)}, "inputs": {}, "params": {},
        "outputs": ["out"], "metrics": False, "materializers": {},
    })
    assert result["status"] == "FAILED"
    assert "the-real-cause" in result["error"] and "log could not be stored" in result["error"]
    assert "KeyError" in result["traceback"]
    sys.modules.pop("doomed_step", None)


@pytest.mark.parametrize("chunk", [1, 3, 7, 64, 1 << 20])
def test_the_token_is_masked_in_a_log_across_chunk_edges(tmp_path: Path, chunk: int) -> None:
    from conveyor.pipelines._remote import mask, mask_file

    token = "tok_abcdefgh12345"
    text = f"start {token}\nmiddle {token}{token} end {token}".encode() + b"\xff\xfe binary"
    log = tmp_path / "step.log"
    log.write_bytes(text)
    mask_file(log, token, chunk=chunk)
    assert log.read_bytes() == text.replace(token.encode(), b"***")
    clean = tmp_path / "clean.log"
    clean.write_bytes(b"nothing secret")
    before = clean.stat().st_ino
    mask_file(clean, token, chunk=chunk)
    assert clean.read_bytes() == b"nothing secret" and clean.stat().st_ino == before  # left alone
    assert not list(tmp_path.glob("*.masked"))
    assert mask(f"x {token} y", token) == "x *** y"
    assert mask("short ab", "ab") == "short ab"  # too short to be a token: not masked
