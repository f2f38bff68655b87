from __future__ import annotations

from typing import Any

import pytest

from conveyor.errors import Conflict, InvalidInput, NotFound


def test_register_numbers_versions_per_name_and_links_the_run(registry: Any, model_run: Any) -> None:
    first = registry.register(model_run(), "churn", tags={"team": "a"})
    second = registry.register(model_run(), "churn")
    other = registry.register(model_run(), "fraud")
    assert (first.version, second.version, other.version) == (1, 2, 1)
    assert first.run_id and first.digest.startswith("blake3:") and first.tags == {"team": "a"}
    assert registry.get_version("churn", 1).source == first.source
    assert [m.name for m in registry.list_models()] == ["churn", "fraud"]


def test_register_records_data_inputs_from_the_run_tag(registry: Any, model_run: Any) -> None:
    source = model_run(tags={"conveyor.data.inputs": "data:/train@2, data:/labels@1"})
    assert registry.register(source, "m").data_versions == ("data:/train@2", "data:/labels@1")


def test_version_numbers_are_never_reused_after_delete(registry: Any, model_run: Any) -> None:
    registry.register(model_run(), "m")
    registry.register(model_run(), "m")
    registry.delete_version("m", 2, reason="bad")
    assert registry.register(model_run(), "m").version == 3
    assert [e.kind for e in registry.history("m")] == ["register", "register", "deleted", "register"]


@pytest.mark.parametrize(
    ("uri", "version", "alias"),
    [("models:/m/1", 1, None), ("models:/m@champion", 2, "champion"), ("models:/m/latest", 2, None), ("m@champion", 2, "champion")],
)
def test_resolve_forms(registry: Any, model_run: Any, uri: str, version: int, alias: str | None) -> None:
    registry.register(model_run(), "m")
    registry.register(model_run(), "m")
    registry.set_alias("m", "champion", 2)
    ref = registry.resolve(uri)
    assert (ref.name, ref.version, ref.alias) == ("m", version, alias)
    assert ref.digest == registry.get_version("m", version).digest


@pytest.mark.parametrize("uri", ["models:/m", "models:/m/0", "models:/m/x", "runs:/abc/model", "models:/@a"])
def test_bad_model_uris_name_the_fix(registry: Any, uri: str) -> None:
    with pytest.raises(InvalidInput, match="models:/"):
        registry.resolve(uri)


def test_alias_on_a_version_that_does_not_exist(registry: Any, model_run: Any) -> None:
    registry.register(model_run(), "m")
    with pytest.raises(NotFound, match="m/7"):
        registry.set_alias("m", "champion", 7)
    with pytest.raises(NotFound, match="nope"):
        registry.set_alias("nope", "champion", 1)
    with pytest.raises(NotFound, match="m@champion"):
        registry.resolve("models:/m@champion")
    assert registry.history("m", alias="champion") == []


def test_register_unknown_artifact_lists_what_the_run_has(registry: Any, model_run: Any) -> None:
    run_id = model_run().split("/")[1]
    with pytest.raises(NotFound, match="model"):
        registry.register(f"runs:/{run_id}/other", "m")


def test_alias_moves_are_audited_and_answer_questions_about_the_past(registry: Any, model_run: Any) -> None:
    for _ in range(3):
        registry.register(model_run(), "m")
    registry.set_alias("m", "champion", 1, reason="first", user="ann", )
    t1 = registry.history("m")[-1].at
    registry.set_alias("m", "champion", 2, reason="better f1", user="bob")
    registry.set_alias("m", "challenger", 3)
    moves = registry.history("m", alias="champion")
    assert [(e.from_value, e.to_value, e.user, e.reason) for e in moves] == [
        (None, "1", "ann", "first"), ("1", "2", "bob", "better f1")
    ]
    assert registry.aliases_at("m", t1) == {"champion": 1}
    assert registry.aliases_at("m", "2000-01-01") == {}
    assert registry.get_model("m").aliases == {"champion": 2, "challenger": 3}


def test_rollback_walks_back_and_is_recorded(registry: Any, model_run: Any) -> None:
    for version in (1, 2, 3):
        registry.register(model_run(), "m")
        registry.set_alias("m", "champion", version)
    assert registry.rollback("m", reason="v3 regressed").to_value == "2"
    assert registry.rollback("m").to_value == "1"
    assert registry.resolve("models:/m@champion").version == 1
    with pytest.raises(Conflict, match="no previous holder"):
        registry.rollback("m")
    assert [e.kind for e in registry.history("m", alias="champion")][-2:] == ["rollback", "rollback"]


def test_archive_and_delete_refuse_alias_holders(registry: Any, model_run: Any) -> None:
    registry.register(model_run(), "m")
    registry.register(model_run(), "m")
    registry.set_alias("m", "champion", 1)
    with pytest.raises(Conflict, match="champion"):
        registry.archive("m", 1)
    with pytest.raises(Conflict, match="champion"):
        registry.delete_version("m", 1)
    registry.archive("m", 2, reason="old")
    with pytest.raises(Conflict, match="ARCHIVED"):
        registry.set_alias("m", "challenger", 2)
    assert registry.resolve("models:/m/latest").version == 1
    status = [e for e in registry.history("m") if e.kind == "status"][0]
    assert (status.from_value, status.to_value, status.reason) == ("READY", "ARCHIVED", "old")


def test_compare_and_set_records_the_lost_attempt(registry: Any, model_run: Any, mode: str) -> None:
    if mode == "remote":
        pytest.skip("remote clients get compare-and-set through the server's promote (test_registry_remote.py)")
    registry.register(model_run(), "m")
    registry.register(model_run(), "m")
    registry.set_alias("m", "champion", 1, expected=None)
    with pytest.raises(Conflict, match="moved"):
        registry.set_alias("m", "champion", 2, expected=None)
    assert [e.kind for e in registry.history("m", alias="champion")] == ["alias", "promote_lost"]
    assert registry.resolve("models:/m@champion").version == 1


def test_deleted_version_package_stays_referenced_by_the_run(registry: Any, model_run: Any, tracker: Any) -> None:
    version = registry.register(model_run(), "m")
    registry.delete_version("m", 1)
    stores = getattr(tracker, "server_tracker", tracker)  # remote mode: the server's stores
    with stores.store.read() as conn:
        assert version.digest in stores.store.referenced_digests(conn)


@pytest.mark.parametrize("alias", ["3", "latest", "a/b", ""])
def test_bad_alias_names(registry: Any, model_run: Any, alias: str) -> None:
    registry.register(model_run(), "m")
    with pytest.raises(InvalidInput):
        registry.set_alias("m", alias, 1)
