"""``conveyor import mlflow``: copy an MLflow tracking source into this project's stores.

What is copied and how (docs/tutorials/from-mlflow.md says the same for users):

* **Experiments** by name: an MLflow experiment lands in the conveyor experiment of the same
  name (created with its tags when missing; a deleted MLflow experiment is archived).
* **Runs** keep their MLflow run id (so ``runs:/<id>/…`` references still resolve), name,
  user, start and end time, status, params, tags and the *full* history of every metric
  (value, step, timestamp). Deleted runs are copied deleted. Each copied run carries
  ``conveyor.import.source`` (where it came from) and ``conveyor.import.state``
  (``copying`` until its artifacts are in, then ``done``). The run, its params, tags and
  metric points are written in one transaction, so a run is either absent or complete.
* **Artifacts**, file by file into the content-addressed store (an MLflow-format model
  folder is files like any other: nothing is loaded or unpickled). MLflow 3 logged models
  (``models:/m-…``) are copied into their run's artifacts under the model's name.
  Symbolic links and paths that are not plain relative paths (``..``, absolute, ``\\``)
  are refused and listed, never followed.
* **Registered models**: a version whose files are a conveyor model package is registered
  (conveyor's own checks run: it must load and predict its input example) with the MLflow
  version number in tag ``mlflow.version``; its aliases are set. Any other version (an
  MLflow-format model, a single file, files outside the imported runs) is **not**
  registered: its files are in its run's artifacts and the run gets a tag
  ``mlflow.registered_model/<name>/<version>`` whose JSON value keeps the source, artifact
  path, stage, status, aliases, description and tags; the report lists it with the reason.

Idempotent: a run whose id is already in the store with this source's
``conveyor.import.source`` is not copied again (one left ``copying`` gets its artifacts
finished); a version is matched by ``conveyor.import.source`` + ``mlflow.version``.
"""

from __future__ import annotations

import json
import mimetypes
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from typing import Any
from urllib.parse import unquote, urlparse

from sqlalchemy import update

from conveyor.blobs import MANIFEST_MEDIA_TYPE, Digest, Manifest, ManifestEntry
from conveyor.entities import Artifact, RunStatus
from conveyor.errors import ConveyorError, InvalidInput, NotFound
from conveyor.importers._sources import (
    Exp,
    LoggedModel,
    MissingTree,
    RegisteredModel,
    SourceRun,
    Tree,
    Version,
    open_source,
)
from conveyor.store import runs as runs_table

SOURCE_TAG = "conveyor.import.source"
STATE_TAG = "conveyor.import.state"
VERSION_TAG = "mlflow.version"
REGISTRY_TAG = "mlflow.registered_model"
METRIC_CHUNK = 20000

#: MLflow run statuses without a conveyor equivalent
STATUS_MAP = {"SCHEDULED": RunStatus.RUNNING}


@dataclass
class NotRegistered:
    model: str
    version: int
    aliases: list[str]
    reason: str
    run_id: str | None
    artifact_path: str | None


@dataclass
class Report:
    """What one import did; ``--json`` prints it as is."""

    source: str
    kind: str
    experiments_created: int = 0
    experiments_existing: int = 0
    runs_copied: int = 0
    runs_already_imported: int = 0
    runs_resumed: int = 0
    metric_points: int = 0
    params: int = 0
    tags: int = 0
    artifact_files: int = 0
    artifact_bytes: int = 0
    logged_models_copied: int = 0
    versions_registered: int = 0
    versions_already_imported: int = 0
    aliases_set: int = 0
    not_registered: list[NotRegistered] = field(default_factory=list)
    refused: list[dict[str, str]] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


class Progress:
    """What the importer tells its caller while it works (the CLI draws a rich bar)."""

    def start(self, total: int) -> None:
        pass

    def advance(self, label: str) -> None:
        pass


def import_mlflow(
    tracker: Any,
    uri: str,
    *,
    experiments: Sequence[str] = (),
    artifacts_dir: str | None = None,
    progress: Progress | None = None,
) -> Report:
    """Copy the MLflow source at ``uri`` into ``tracker``'s stores; see the module docstring."""
    source = open_source(uri, artifacts_dir=artifacts_dir)
    try:
        return _Importer(tracker, source, progress or Progress()).run(experiments)
    finally:
        source.close()


class _Importer:
    def __init__(self, tracker: Any, source: Any, progress: Progress) -> None:
        self.tracker = tracker
        self.store = tracker.store
        self.source = source
        self.progress = progress
        self.report = Report(source=source.identity, kind=source.kind)
        #: MLflow run id → {logged model id: artifact path in the run}
        self.logged_paths: dict[str, str] = {}
        self.imported_runs: dict[str, SourceRun] = {}
        self.created_experiments: set[str] = set()

    # -- experiments and runs ---------------------------------------------------------------------
    def run(self, wanted: Sequence[str]) -> Report:
        found = self.source.experiments()
        chosen = self._choose(found, wanted)
        plan: list[tuple[Exp, int, list[SourceRun], list[LoggedModel]]] = []
        for exp in chosen:
            exp_runs = self.source.runs(exp)
            plan.append((exp, self._experiment(exp), exp_runs, self.source.logged_models(exp)))
        self.progress.start(sum(len(r) for _, _, r, _ in plan))
        for exp, exp_id, exp_runs, logged in plan:
            by_run: dict[str, list[LoggedModel]] = {}
            for model in logged:
                by_run.setdefault(model.run_id, []).append(model)
            for run in exp_runs:
                self._run(exp, exp_id, run, by_run.get(run.id, []))
                self.progress.advance(f"{exp.name}: {run.name or run.id}")
            if exp.deleted and exp.id in self.created_experiments:
                self._archive(exp.name)  # an existing conveyor experiment is left as it is
        self._parents([run for _, _, exp_runs, _ in plan for run in exp_runs])  # parents may be in another experiment
        self._models(whole=not wanted)
        return self.report

    def _choose(self, found: list[Exp], wanted: Sequence[str]) -> list[Exp]:
        if not wanted:
            return found
        out = []
        for name in wanted:
            match = [e for e in found if e.name == name or e.id == name]
            if not match:
                known = ", ".join(sorted(e.name for e in found)[:20]) or "none"
                raise InvalidInput(f"the MLflow source has no experiment {name!r}", field="--experiment", value=name,
                                   hint=f"its experiments are: {known}")
            out += [e for e in match if e not in out]
        return out

    def _experiment(self, exp: Exp) -> int:
        repo = self.store.experiments

        def body(conn: Any) -> list[Any]:
            try:
                return [int(repo.get(conn, exp.name).id), False]
            except NotFound:
                tags = {k: v for k, v in exp.tags.items()}
                tags[SOURCE_TAG] = f"{self.source.identity}#experiment/{exp.id}"
                created = repo.create(conn, exp.name, description=exp.tags.get("mlflow.note.content", ""), tags=tags)
                return [int(created.id), True]

        # once: after a lost acknowledgement the retry answers "created", as the first attempt did
        exp_id, created = self.store.transaction(body, once=True, what=f"importing experiment {exp.name!r}")
        if created:
            self.report.experiments_created += 1
            self.created_experiments.add(exp.id)
        else:
            self.report.experiments_existing += 1
        return int(exp_id)

    def _write(self, body: Any, what: str) -> None:
        """An idempotent write (upserts, guarded updates), retried through a database blink."""
        self.store.transaction(body, what=what)

    def _archive(self, name: str) -> None:
        self._write(lambda conn: self.store.experiments.set_archived(conn, name, True), f"archiving {name!r}")

    def _known(self, run_id: str) -> dict[str, str] | None:
        """The tags of conveyor run ``run_id``, or None when there is no such run."""

        def body(conn: Any) -> dict[str, str] | None:
            if not self.store.runs.exists(conn, run_id):
                return None
            return self.store.runs.tags_of(conn, [run_id]).get(run_id, {})

        return self.store.query(body, what=f"reading run {run_id}")

    def _artifact_list(self, run_id: str) -> list[Artifact]:
        return self.store.query(lambda conn: self.store.artifacts.list(conn, run_id),
                                what=f"listing the artifacts of run {run_id}")

    def _run(self, exp: Exp, exp_id: int, run: SourceRun, logged: list[LoggedModel]) -> None:
        origin = f"{self.source.identity}#run/{run.id}"
        tags = self._known(run.id)
        if tags is not None:
            if tags.get(SOURCE_TAG) != origin:
                self.report.problems.append(
                    f"run {run.id} ({exp.name}) not copied: a conveyor run with that id exists and was not "
                    f"imported from this source ({tags.get(SOURCE_TAG) or 'logged in conveyor'})")
                return
            self.imported_runs[run.id] = run
            if tags.get(STATE_TAG) == "done":
                self.report.runs_already_imported += 1
                self._remember_logged(run, logged)
                return
            self.report.runs_resumed += 1
        else:
            points = self.source.metrics(run)
            self._insert(exp, exp_id, run, origin, points)
            self.imported_runs[run.id] = run
            self.report.runs_copied += 1
            self.report.metric_points += len(points)
            self.report.params += len(run.params)
            self.report.tags += len(run.tags)
        self._artifacts(run, self.source.artifacts(run), prefix="")
        for model in logged:
            self._logged_model(run, model)
        self._write(lambda conn: self.store.runs.set_tags(conn, run.id, {STATE_TAG: "done"}), f"finishing run {run.id}")

    def _insert(self, exp: Exp, exp_id: int, run: SourceRun, origin: str,
                points: list[tuple[str, float, int, int]]) -> None:
        if run.status in STATUS_MAP:
            status = STATUS_MAP[run.status]
        elif run.status in RunStatus.__members__:
            status = RunStatus(run.status)
        else:
            status = RunStatus.FINISHED
        tags = dict(run.tags)
        tags[SOURCE_TAG] = origin
        tags[STATE_TAG] = "copying"
        if status.value != run.status:
            tags["conveyor.import.mlflow_status"] = run.status

        def body(conn: Any) -> None:
            self.store.runs.insert(conn, exp_id, exp.name, id=run.id, name=(run.name or None),
                                   start_time=run.start or run.end or 0, user=run.user[:256])
            values: dict[str, Any] = {"status": status.value}
            if status.is_terminal:
                values["end_time"] = run.end if run.end is not None else run.start
            conn.execute(update(runs_table).where(runs_table.c.id == run.id).values(**values))
            if run.params:
                self.store.runs.log_params(conn, run.id, run.params)
            self.store.runs.set_tags(conn, run.id, tags)
            for start in range(0, len(points), METRIC_CHUNK):
                self.store.metrics.write(conn, [(run.id, k, v, s, t) for k, v, s, t in points[start:start + METRIC_CHUNK]])
            if run.deleted:
                self.store.runs.set_deleted(conn, [run.id], True)

        # once: the run, its params, tags and every metric point in one transaction that takes
        # effect exactly once (a retry after a lost acknowledgement would insert the run again)
        self.store.transaction(body, once=True, what=f"importing run {run.id}")

    def _parents(self, exp_runs: list[SourceRun]) -> None:
        def body(conn: Any) -> None:  # sets parent_id only where it is still empty: idempotent
            for run in exp_runs:
                parent = run.tags.get("mlflow.parentRunId")
                if parent and run.id in self.imported_runs and self.store.runs.exists(conn, parent):
                    conn.execute(update(runs_table).where(runs_table.c.id == run.id, runs_table.c.parent_id.is_(None))
                                 .values(parent_id=parent))

        self._write(body, "linking imported runs to their parents")

    # -- artifacts --------------------------------------------------------------------------------
    def _artifacts(self, run: SourceRun, tree: Tree, prefix: str) -> int:
        """Copy every file of ``tree`` to ``run`` under ``prefix``; returns how many."""
        if isinstance(tree, MissingTree):
            if tree.location:
                self.report.problems.append(f"run {run.id}: artifacts not copied: {tree.reason}")
            return 0
        files = tree.files()
        for refused in tree.refused:
            self.report.refused.append({"run_id": run.id, "path": refused.path, "reason": refused.reason})
        present = {a.path: a.is_dir for a in self._artifact_list(run.id)}
        folders = tuple(p + "/" for p, is_dir in present.items() if is_dir)
        copied = 0
        for rel, _size in files:
            path = f"{prefix}/{rel}" if prefix else rel
            if path in present or path.startswith(folders):
                continue  # copied by an interrupted import (or now inside a registered package)
            try:
                with tree.fetch(rel) as local:
                    blob = self.tracker.blobs.put_file(local)
            except ConveyorError as exc:
                self.report.refused.append({"run_id": run.id, "path": path, "reason": exc.message})
                continue
            media = mimetypes.guess_type(rel)[0] or "application/octet-stream"
            artifact = Artifact(run.id, path, str(blob.digest), blob.size, media)
            self._write(lambda conn, a=artifact: self.store.artifacts.record(conn, a),  # an upsert
                        f"recording artifact {path!r} of run {run.id}")
            copied += 1
            self.report.artifact_files += 1
            self.report.artifact_bytes += blob.size
        return copied

    def _logged_model(self, run: SourceRun, model: LoggedModel) -> None:
        """An MLflow 3 logged model's files, into its run's artifacts under the model's name
        (``<name>-<model id>`` when the run already has an artifact there). The run's tag
        ``mlflow.logged_model/<id>`` names the path; it is written first, so an interrupted
        import resumes into the same folder."""
        path = self._logged_path(run, model)
        if self._artifacts(run, self.source.model_tree(model), prefix=path):
            self.report.logged_models_copied += 1

    def _logged_path(self, run: SourceRun, model: LoggedModel) -> str:
        key = f"mlflow.logged_model/{model.id}"[:250]
        path = (self._known(run.id) or {}).get(key)
        if not path:
            name = model.name if _plain(model.name) else model.id
            taken = {a.path.split("/", 1)[0] for a in self._artifact_list(run.id)}
            path = name if name not in taken else f"{name}-{model.id}"
            self._write(lambda conn: self.store.runs.set_tags(conn, run.id, {key: path}), f"tagging run {run.id}")
        self.logged_paths[model.id] = path
        return path

    def _remember_logged(self, run: SourceRun, logged: list[LoggedModel]) -> None:
        tags = self._known(run.id) or {}
        for model in logged:
            path = tags.get(f"mlflow.logged_model/{model.id}"[:250])
            if path:
                self.logged_paths[model.id] = path

    # -- the model registry -----------------------------------------------------------------------
    def _models(self, *, whole: bool) -> None:
        from conveyor.registry import Registry

        registry = Registry(self.tracker)
        for model in self.source.registered_models():
            mapped: dict[int, int] = {}
            for version in model.versions:
                if not whole and version.run_id not in self.imported_runs:
                    continue
                number = self._version(registry, model, version)
                if number is not None:
                    mapped[version.version] = number
            if mapped and model.tags:
                self.report.problems.append(
                    f"registered model {model.name}: its tags ({', '.join(sorted(model.tags))}) were not copied; "
                    "conveyor keeps tags on versions, not on registered models")
            if mapped and model.description:
                try:
                    current = registry.get_model(model.name).description
                except NotFound:
                    current = ""
                if not current:
                    registry.set_description(model.name, model.description)
            for alias, number in sorted(model.aliases.items()):
                if number not in mapped:
                    continue
                holder = registry.get_model(model.name).aliases.get(alias)
                if holder == mapped[number]:
                    continue
                try:
                    registry.set_alias(model.name, alias, mapped[number],
                                       reason=f"imported from {self.source.identity} (MLflow version {number})")
                    self.report.aliases_set += 1
                except ConveyorError as exc:
                    self.report.problems.append(f"{model.name}@{alias}: not set: {exc.message}")

    def _existing_version(self, registry: Any, model: RegisteredModel, version: Version) -> int | None:
        try:
            versions = registry.list_versions(model.name)
        except NotFound:
            return None
        for v in versions:
            if v.tags.get(SOURCE_TAG) == self.source.identity and v.tags.get(VERSION_TAG) == str(version.version):
                return int(v.version)
        return None

    def _version(self, registry: Any, model: RegisteredModel, version: Version) -> int | None:
        """The conveyor version number ``version`` became, or None when it is not registered."""
        existing = self._existing_version(registry, model, version)
        if existing is not None:
            self.report.versions_already_imported += 1
            return existing
        aliases = sorted(a for a, n in model.aliases.items() if n == version.version)
        where = self._locate(version)
        if isinstance(where, str):
            self._not_registered(model, version, aliases, where, None, None)
            return None
        run_id, path = where
        tag_key = _registry_tag(model.name, version.version)
        if (self._known(run_id) or {}).get(tag_key):
            self.report.versions_already_imported += 1
            return None  # recorded as not registered by an earlier import
        problem = self._ensure_folder(run_id, path)
        if problem:
            self._not_registered(model, version, aliases, problem, run_id, path)
            return None
        tags = dict(version.tags)
        tags.update({SOURCE_TAG: self.source.identity, VERSION_TAG: str(version.version)})
        if version.stage and version.stage != "None":
            tags["mlflow.stage"] = version.stage
        try:
            registered = registry.register(f"runs:/{run_id}/{path}", model.name, description=version.description,
                                           tags=tags, data_versions=(), user=version.user or None)
        except ConveyorError as exc:
            self._not_registered(model, version, aliases, exc.message, run_id, path)
            return None
        self.report.versions_registered += 1
        return int(registered.version)

    def _locate(self, version: Version) -> tuple[str, str] | str:
        """(conveyor run id, artifact path) of a version's files, or why there are none."""
        source = version.source
        parsed = urlparse(source)
        if source.startswith("models:/m-") or (parsed.scheme == "models" and parsed.path.lstrip("/").startswith("m-")):
            model_id = parsed.path.lstrip("/").split("/", 1)[0]
            path = self.logged_paths.get(model_id)
            if path is None or not version.run_id:
                return f"its source {source} is an MLflow logged model that was not imported with a run"
            return version.run_id, path
        if source.startswith("runs:/"):
            run_id, _, path = source.removeprefix("runs:/").partition("/")
            return (run_id, path.strip("/")) if run_id in self.imported_runs and path.strip("/") else \
                f"its source {source} is not in an imported run"
        run = self.imported_runs.get(version.run_id)
        if run is not None and run.artifact_uri:
            root = _norm(run.artifact_uri)
            target = _norm(source)
            if target.startswith(root + "/"):
                return run.id, target[len(root) + 1:]
        return f"its source {source!r} is outside the artifacts of every imported run"

    def _ensure_folder(self, run_id: str, path: str) -> str | None:
        """Make the conveyor model package at ``path`` of ``run_id`` one folder artifact (a
        manifest of its copied files, no bytes copied; the file entries it replaces are
        removed, as ``conveyor.log_artifacts`` would have logged it); returns why it is not
        a package, or None."""
        artifacts = self._artifact_list(run_id)
        if any(a.path == path for a in artifacts):
            return None
        inside = [a for a in artifacts if a.path.startswith(path + "/") and not a.is_dir]
        if not inside:
            return f"run {run_id} has no artifact at {path!r} (its files were not copied)"
        names = {a.path[len(path) + 1:] for a in inside}
        if "conveyor-model.json" not in names:
            return _why_not_package(self.tracker, run_id, path, names)
        manifest = Manifest.of(ManifestEntry(a.path[len(path) + 1:], Digest.parse(a.digest), a.size) for a in inside)
        blob = self.tracker.blobs.put_bytes(manifest.to_bytes())
        def body(conn: Any) -> None:  # removes the same files and upserts the same folder on a retry
            self.store.artifacts.remove(conn, run_id, [a.path for a in inside])
            self.store.artifacts.record(
                conn, Artifact(run_id, path, str(blob.digest), manifest.total_size, MANIFEST_MEDIA_TYPE, True))

        self._write(body, f"making {path!r} of run {run_id} one model folder")
        return None

    def _not_registered(self, model: RegisteredModel, version: Version, aliases: list[str], reason: str,
                        run_id: str | None, path: str | None) -> None:
        self.report.not_registered.append(NotRegistered(model.name, version.version, aliases, reason, run_id, path))
        if run_id is None:
            return
        record = {"source": version.source, "artifact_path": path, "aliases": aliases, "stage": version.stage,
                  "status": version.status, "description": version.description, "tags": version.tags,
                  "user": version.user, "created": version.created, "not_registered_because": reason}
        tags = {_registry_tag(model.name, version.version): json.dumps(record)}
        self._write(lambda conn: self.store.runs.set_tags(conn, run_id, tags), f"tagging run {run_id}")


def _why_not_package(tracker: Any, run_id: str, path: str, names: set[str]) -> str:
    """A reason a user understands: which MLflow flavors the folder holds (from its MLmodel,
    read as YAML; nothing is loaded)."""
    if "MLmodel" in names:
        flavors = ""
        try:
            import yaml  # type: ignore[import-untyped]

            doc = yaml.safe_load(tracker.read_artifact(run_id, f"{path}/MLmodel"))
            if isinstance(doc, dict) and isinstance(doc.get("flavors"), dict):
                flavors = f" (flavors: {', '.join(sorted(map(str, doc['flavors'])))})"
        except Exception:  # noqa: BLE001 - the reason stays useful without the flavor list
            pass
        return (f"an MLflow-format model{flavors}, not a conveyor model package (no conveyor-model.json); "
                "conveyor never loads MLflow's formats")
    shown = ", ".join(sorted(names)[:5])
    return f"not a conveyor model package: {path}/ holds {shown} but no conveyor-model.json"


def _registry_tag(name: str, version: int) -> str:
    key = f"{REGISTRY_TAG}/{name}/{version}"
    if len(key) <= 250:
        return key
    import hashlib

    return f"{REGISTRY_TAG}/{hashlib.sha256(name.encode()).hexdigest()[:32]}/{version}"


def _plain(name: str) -> bool:
    return bool(name) and "/" not in name and "\\" not in name and name not in (".", "..") and len(name) <= 200


def _norm(uri: str) -> str:
    """A location as comparable text: ``file:///a/b``, ``/a/b`` and ``file:/a/b/`` agree."""
    parsed = urlparse(uri)
    if parsed.scheme in ("", "file"):
        return unquote(parsed.path).rstrip("/")
    return uri.rstrip("/")

