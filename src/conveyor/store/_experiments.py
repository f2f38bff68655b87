"""Experiments: named groups of runs, with a description, tags and an archived flag."""

from __future__ import annotations

from collections.abc import Mapping

from sqlalchemy import (
    Boolean,
    Column,
    ForeignKey,
    Integer,
    String,
    Table,
    Text,
    func,
    select,
    update,
)
from sqlalchemy.engine import Connection

from conveyor.entities import Experiment, now_ms
from conveyor.errors import AlreadyExists, InvalidInput, NotFound
from conveyor.store._schema import BigInt, metadata

experiments = Table(
    "experiments",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("name", String(256), nullable=False, unique=True),
    Column("description", Text, nullable=False, default=""),
    Column("archived", Boolean, nullable=False, default=False),
    Column("created_at", BigInt, nullable=False),
)

experiment_tags = Table(
    "experiment_tags",
    metadata,
    Column("experiment_id", Integer, ForeignKey("experiments.id", ondelete="CASCADE"), primary_key=True),
    Column("key", String(250), primary_key=True),
    Column("value", Text, nullable=False),
)

DEFAULT_EXPERIMENT = "Default"


def _validate_name(name: object) -> str:
    if not isinstance(name, str) or not name.strip() or len(name) > 256 or "\x00" in name:
        raise InvalidInput(
            f"experiment name {name!r} is not valid",
            field="experiment",
            value=name,
            hint="use a non-empty string of at most 256 characters without NUL",
        )
    return name


class ExperimentRepo:
    """Create, find and change experiments. Every method takes an open connection."""

    def create(
        self, conn: Connection, name: str, *, description: str = "", tags: Mapping[str, str] | None = None
    ) -> Experiment:
        _validate_name(name)
        if conn.execute(select(experiments.c.id).where(experiments.c.name == name)).first():
            raise AlreadyExists("experiment", name)
        created = now_ms()
        new_id = conn.execute(
            experiments.insert().values(name=name, description=description, archived=False, created_at=created)
        ).inserted_primary_key[0]
        if tags:
            conn.execute(
                experiment_tags.insert(),
                [{"experiment_id": new_id, "key": k, "value": str(v)} for k, v in tags.items()],
            )
        return Experiment(new_id, name, description, False, created, dict(tags or {}))

    def get_or_create(self, conn: Connection, name: str) -> int:
        """The id of experiment ``name``, creating it when missing (archived ones are refused)."""
        _validate_name(name)
        row = conn.execute(
            select(experiments.c.id, experiments.c.archived).where(experiments.c.name == name)
        ).first()
        if row is not None:
            if row.archived:
                raise InvalidInput(
                    f"experiment {name!r} is archived",
                    field="experiment",
                    value=name,
                    hint=f"restore it with `conveyor experiments restore {name}` or pick another name",
                )
            return int(row.id)
        return self.create(conn, name).id

    def get(self, conn: Connection, name_or_id: str | int) -> Experiment:
        column = experiments.c.id if isinstance(name_or_id, int) else experiments.c.name
        row = conn.execute(select(experiments).where(column == name_or_id)).first()
        if row is None:
            raise NotFound("experiment", name_or_id, hint="`conveyor experiments list` shows the known ones")
        tags = dict(
            conn.execute(
                select(experiment_tags.c.key, experiment_tags.c.value).where(
                    experiment_tags.c.experiment_id == row.id
                )
            ).all()
        )
        return Experiment(row.id, row.name, row.description, row.archived, row.created_at, tags)

    def list(self, conn: Connection, *, include_archived: bool = False) -> list[Experiment]:
        query = select(experiments).order_by(experiments.c.id)
        if not include_archived:
            query = query.where(experiments.c.archived.is_(False))
        return [
            Experiment(r.id, r.name, r.description, r.archived, r.created_at, {})
            for r in conn.execute(query).all()
        ]

    def set_archived(self, conn: Connection, name: str, archived: bool) -> None:
        result = conn.execute(update(experiments).where(experiments.c.name == name).values(archived=archived))
        if result.rowcount == 0:
            raise NotFound("experiment", name)

    def update(
        self,
        conn: Connection,
        experiment_id: int,
        *,
        description: str | None = None,
        tags: Mapping[str, str] | None = None,
        delete_tags: "list[str] | tuple[str, ...]" = (),
    ) -> None:
        """Change an experiment's description and tags (keys in ``delete_tags`` are removed)."""
        if conn.execute(select(experiments.c.id).where(experiments.c.id == experiment_id)).first() is None:
            raise NotFound("experiment", experiment_id, hint="`conveyor experiments list` shows the known ones")
        if description is not None:
            conn.execute(update(experiments).where(experiments.c.id == experiment_id).values(description=description))
        for key in delete_tags:
            conn.execute(experiment_tags.delete().where(
                experiment_tags.c.experiment_id == experiment_id, experiment_tags.c.key == key))
        for key, value in (tags or {}).items():
            if not isinstance(key, str) or not key or len(key) > 250:
                raise InvalidInput(f"experiment tag key {key!r} is not valid", field="tags", value=key,
                                   hint="use a non-empty string of at most 250 characters")
            conn.execute(experiment_tags.delete().where(
                experiment_tags.c.experiment_id == experiment_id, experiment_tags.c.key == key))
            conn.execute(experiment_tags.insert().values(experiment_id=experiment_id, key=key, value=str(value)))

    def count(self, conn: Connection) -> int:
        return int(conn.execute(select(func.count()).select_from(experiments)).scalar_one())
