"""``conveyor ci init``: CI workflows that run the gate on pull requests and promote on main."""

from __future__ import annotations

from pathlib import Path

from conveyor.errors import AlreadyExists, InvalidInput

GITHUB = """\
# Written by `conveyor ci init --provider github`.
# Pull requests: train/evaluate the candidate and post the gate report as a comment.
# main: promote the version that passed its gate (the CD step).
name: conveyor gate
on:
  pull_request:
  push:
    branches: [main]
permissions:
  contents: read
  pull-requests: write
# The team's stores come from repository secrets (Settings > Secrets and variables > Actions);
# without them each job would track into a throw-away SQLite file inside the runner.
env:
{github_env}
jobs:
  gate:
    runs-on: ubuntu-latest
    steps:
      - uses: actions/checkout@v4
      - uses: actions/setup-python@v5
        with:
          python-version: "3.11"
      - run: {install}
      - name: Gate the candidate
        id: gate
        run: conveyor ci check {source} --gate {gate} --report gate-report.md
      - name: Post the report
        if: always() && github.event_name == 'pull_request'
        env:
          GH_TOKEN: ${{{{ github.token }}}}
        run: gh pr comment ${{{{ github.event.pull_request.number }}}} --body-file gate-report.md
      - name: Promote
        if: github.event_name == 'push' && github.ref == 'refs/heads/main'
        run: conveyor ci promote --gate {gate}
"""

GITLAB = """\
# Written by `conveyor ci init --provider gitlab`.
# The team's stores come from CI/CD variables (Settings > CI/CD > Variables, masked):
# {gitlab_env}.
# Without them each job would track into a throw-away SQLite file inside the runner.
stages: [gate, promote]

conveyor-gate:
  stage: gate
  image: python:3.11
  script:
    - {install}
    - conveyor ci check {source} --gate {gate} --report gate-report.md
  artifacts:
    when: always
    paths: [gate-report.md]
    expose_as: gate report
  rules:
    - if: $CI_PIPELINE_SOURCE == "merge_request_event"
    - if: $CI_COMMIT_BRANCH == $CI_DEFAULT_BRANCH

conveyor-promote:
  stage: promote
  image: python:3.11
  script:
    - {install}
    - conveyor ci promote --gate {gate}
  rules:
    - if: $CI_COMMIT_BRANCH == $CI_DEFAULT_BRANCH
"""

#: the settings a CI job needs to reach the team's stores (the values are the CI's secrets)
STORE_VARIABLES = ("CONVEYOR_STORE_METADATA_URL", "CONVEYOR_STORE_ARTIFACTS_URL", "CONVEYOR_STORE_S3_ENDPOINT_URL",
                   "AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY")


def install_command(root: Path) -> str:
    """How the job installs the project and conveyor: the project itself when it is a
    package (pyproject.toml or setup.py), else its requirements.txt, else conveyor alone."""
    if (root / "pyproject.toml").is_file() or (root / "setup.py").is_file():
        return "pip install -e . conveyor-mlops"
    if (root / "requirements.txt").is_file():
        return "pip install -r requirements.txt conveyor-mlops"
    return "pip install conveyor-mlops"


TARGETS = {"github": (".github/workflows/conveyor-gate.yml", GITHUB), "gitlab": (".gitlab-ci.yml", GITLAB)}


def write_workflow(root: Path, provider: str, *, pipeline: str = "train:pipeline", gate: str = "default",
                   force: bool = False) -> Path:
    """Write the workflow file of ``provider`` under ``root`` and return its path.

    Example::

        write_workflow(Path("."), "github", pipeline="train:pipeline")
    """
    if provider not in TARGETS:
        raise InvalidInput(f"unknown CI provider {provider!r}", field="provider", value=provider,
                           hint="use github or gitlab")
    relative, template = TARGETS[provider]
    path = root / relative
    if path.exists() and not force:
        raise AlreadyExists("workflow file", str(path), hint="pass --force to overwrite it")
    path.parent.mkdir(parents=True, exist_ok=True)
    github_env = "\n".join(f"  {name}: ${{{{ secrets.{name} }}}}" for name in STORE_VARIABLES)
    text = template.format(source=f"--pipeline {pipeline}", gate=gate, install=install_command(root),
                           github_env=github_env, gitlab_env=", ".join(STORE_VARIABLES))
    path.write_text(text, encoding="utf-8")
    return path
