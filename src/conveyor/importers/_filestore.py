"""The reader of an MLflow file store (``mlruns/``: YAML and text files)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

from conveyor.errors import InvalidInput
from conveyor.importers._records import (
    RUN_STATUS,
    Exp,
    LoggedModel,
    RegisteredModel,
    SourceRun,
    Tree,
    Version,
    int_or_none,
    tree_for,
)


def _yaml(path: Path) -> dict[str, Any]:
    import yaml  # type: ignore[import-untyped]

    with path.open(encoding="utf-8") as handle:
        data = yaml.safe_load(handle)
    return data if isinstance(data, dict) else {}


def _key_files(folder: Path) -> dict[str, Path]:
    """``tags/``, ``params/``, ``metrics/``: one file per key, ``/`` in a key is a sub-folder."""
    out: dict[str, Path] = {}
    if not folder.is_dir():
        return out
    for path in sorted(folder.rglob("*")):
        if path.is_file() and not path.is_symlink():
            out[path.relative_to(folder).as_posix()] = path
    return out


class FileSource:
    """MLflow's file store: ``mlruns/<experiment id>/meta.yaml``, ``…/<run id>/{meta.yaml,
    params,metrics,tags,artifacts}``, ``mlruns/.trash`` and ``mlruns/models``."""

    kind = "file store"

    def __init__(self, root: Path, proxied_root: Path | None) -> None:
        self.root = root
        self.identity = root.resolve().as_uri()
        self.proxied_root = proxied_root
        self.bases = [root.parent, Path.cwd()]
        self._exp_dirs: dict[str, Path] = {}
        if not any((p / "meta.yaml").is_file() for p in self._candidates()) and not (root / "models").is_dir():
            raise InvalidInput(
                f"{root} is not an MLflow file store: no <experiment id>/meta.yaml in it",
                field="--from", value=str(root),
                hint="point --from at the mlruns folder MLflow wrote (the one holding 0/meta.yaml), "
                     "at sqlite:///path/to/mlflow.db, or at the tracking server's http(s):// URL",
            )

    def _candidates(self) -> Iterator[Path]:
        for parent in (self.root, self.root / ".trash"):
            if parent.is_dir():
                for child in sorted(parent.iterdir()):
                    if child.is_dir() and not child.is_symlink() and child.name not in ("models", ".trash"):
                        yield child

    def close(self) -> None:
        pass

    def experiments(self) -> list[Exp]:
        out = []
        for folder in self._candidates():
            meta_file = folder / "meta.yaml"
            if not meta_file.is_file():
                continue
            meta = _yaml(meta_file)
            exp_id = str(meta.get("experiment_id", folder.name))
            tags = {k: p.read_text(encoding="utf-8") for k, p in _key_files(folder / "tags").items()}
            self._exp_dirs[exp_id] = folder
            out.append(Exp(exp_id, str(meta.get("name", exp_id)),
                           meta.get("lifecycle_stage") == "deleted" or folder.parent.name == ".trash",
                           tags, int_or_none(meta.get("creation_time")), str(meta.get("artifact_location") or "")))
        return out

    def runs(self, exp: Exp) -> list[SourceRun]:
        folder = self._exp_dirs[exp.id]
        out = []
        for child in sorted(folder.iterdir()):
            meta_file = child / "meta.yaml"
            if child.name in ("tags", "models", "datasets", "traces") or not meta_file.is_file():
                continue
            meta = _yaml(meta_file)
            status = meta.get("status")
            params = {k: p.read_text(encoding="utf-8") for k, p in _key_files(child / "params").items()}
            tags = {k: p.read_text(encoding="utf-8") for k, p in _key_files(child / "tags").items()}
            out.append(SourceRun(
                id=str(meta.get("run_id") or meta.get("run_uuid") or child.name), experiment_id=exp.id,
                name=str(meta.get("run_name") or tags.get("mlflow.runName") or ""),
                status=RUN_STATUS.get(status, str(status)) if isinstance(status, int) else str(status or "FINISHED"),
                start=int_or_none(meta.get("start_time")), end=int_or_none(meta.get("end_time")),
                user=str(meta.get("user_id") or ""), deleted=meta.get("lifecycle_stage") == "deleted",
                params=params, tags=tags, artifact_uri=str(meta.get("artifact_uri") or ""),
            ))
        return out

    def _run_dir(self, run: SourceRun) -> Path:
        return self._exp_dirs[run.experiment_id] / run.id

    def metrics(self, run: SourceRun) -> list[tuple[str, float, int, int]]:
        out = []
        for key, path in _key_files(self._run_dir(run) / "metrics").items():
            for line in path.read_text(encoding="utf-8").splitlines():
                parts = line.split()
                if len(parts) < 2:
                    continue
                stamp, value = int(parts[0]), float(parts[1])
                step = int(parts[2]) if len(parts) > 2 else 0
                out.append((key, value, step, stamp))
        return out

    def artifacts(self, run: SourceRun) -> Tree:
        return tree_for(run.artifact_uri, self.bases, self.proxied_root)

    def logged_models(self, exp: Exp) -> list[LoggedModel]:
        folder = self._exp_dirs[exp.id] / "models"
        out = []
        if folder.is_dir():
            for child in sorted(folder.iterdir()):
                meta_file = child / "meta.yaml"
                if not meta_file.is_file():
                    continue
                meta = _yaml(meta_file)
                out.append(LoggedModel(str(meta.get("model_id") or child.name), str(meta.get("name") or child.name),
                                       str(meta.get("source_run_id") or ""), exp.id,
                                       str(meta.get("artifact_location") or (child / "artifacts").as_uri())))
        return out

    def model_tree(self, model: LoggedModel) -> Tree:
        return tree_for(model.artifact_location, self.bases, self.proxied_root)

    def registered_models(self) -> list[RegisteredModel]:
        folder = self.root / "models"
        out = []
        if not folder.is_dir():
            return out
        for child in sorted(folder.iterdir()):
            meta_file = child / "meta.yaml"
            if not meta_file.is_file():
                continue
            meta = _yaml(meta_file)
            name = str(meta.get("name") or child.name)
            aliases = {k: int(p.read_text(encoding="utf-8").strip()) for k, p in _key_files(child / "aliases").items()}
            versions = []
            for vdir in sorted(child.glob("version-*")):
                if not (vdir / "meta.yaml").is_file():
                    continue
                v = _yaml(vdir / "meta.yaml")
                versions.append(Version(
                    model=name, version=int(v.get("version") or vdir.name.split("-", 1)[1]),
                    source=str(v.get("source") or ""), run_id=str(v.get("run_id") or ""),
                    status=str(v.get("status") or "READY"), stage=str(v.get("current_stage") or "None"),
                    description=str(v.get("description") or ""), user=str(v.get("user_id") or ""),
                    created=int_or_none(v.get("creation_timestamp")),
                    tags={k: p.read_text(encoding="utf-8") for k, p in _key_files(vdir / "tags").items()},
                ))
            versions.sort(key=lambda x: x.version)
            tags = {k: p.read_text(encoding="utf-8") for k, p in _key_files(child / "tags").items()}
            out.append(RegisteredModel(name, str(meta.get("description") or ""), tags, aliases, versions))
        return out
