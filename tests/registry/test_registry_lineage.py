from __future__ import annotations

from typing import Any

import pandas as pd


def test_registered_version_links_the_data_the_run_read_and_records_an_edge(
    registry: Any, model_run: Any, tracker: Any
) -> None:
    import conveyor.data as cd

    stores = getattr(tracker, "server_tracker", tracker)  # remote mode: data is versioned on the server's side
    version = cd.add(pd.DataFrame({"a": [1, 2, 3]}), name="train", tracker=stores)
    source = model_run()
    run_id = source.split("/")[1]
    cd.log_input(f"data:/train@{version.version}", run_id, tracker=stores)
    registered = registry.register(source, "m")
    assert registered.data_versions == (f"data:/train@{version.version}",)
    graph = cd.lineage_graph(stores, "models:/m/1", direction="up", depth=2)
    assert f"runs:/{run_id}" in {str(n) for n in graph.nodes}
    assert f"data:/train@{version.version}" in {str(n) for n in graph.nodes}


def test_public_names_are_pinned() -> None:
    import conveyor.ci
    import conveyor.gates
    import conveyor.registry

    for module in (conveyor.registry, conveyor.gates, conveyor.ci):
        assert module.__all__ == sorted(module.__all__)
        assert all(hasattr(module, name) for name in module.__all__)


def test_model_card_names_the_training_data_and_its_schema(
    registry: Any, model_run: Any, tracker: Any, tmp_path: Any, mode: str
) -> None:
    if mode == "remote":
        import pytest

        pytest.skip("the server writes the card with its own [model_cards] (test_registry_remote.py)")
    import conveyor.data as cd
    from conveyor.registry import model_card
    from conveyor.settings import Settings

    added = cd.add(pd.DataFrame({"age": [30, 41], "income": [1.5, 2.5]}), name="train", tracker=tracker)
    registry.register(model_run(), "m", data_versions=[f"data:/train@{added.version}"])
    settings = Settings.from_mapping(tmp_path, {"model_cards": {"m": {"intended_use": "ranking leads"}}})
    card = model_card("models:/m/1", registry=registry, settings=settings)
    assert "ranking leads" in card and f"data:/train@{added.version}" in card
    assert "`age` int" in card and "`income`" in card


def test_model_card_settings_errors_name_the_key() -> None:
    import pytest

    from conveyor.errors import ConfigError
    from conveyor.registry._card import card_settings

    with pytest.raises(ConfigError, match=r"\[model_cards.m\] intended_usage") as info:
        card_settings({"m": {"intended_usage": "typo"}}, "m")
    assert info.value.field == "model_cards.m.intended_usage" and "intended_use" in str(info.value.hint)
