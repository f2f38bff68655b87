"""Settings: precedence, discovery, errors that name the key, and documentation."""

from __future__ import annotations

from pathlib import Path

import pytest

from conveyor.errors import ConfigError
from conveyor.settings import Settings, iter_settings


def test_defaults_resolve_against_the_working_directory(tmp_path: Path) -> None:
    settings = Settings.load(tmp_path, env={})
    assert settings.root == tmp_path.resolve()
    assert settings.metadata_url == f"sqlite:///{tmp_path.resolve()}/.conveyor/conveyor.db"
    assert settings.artifacts_url == str(tmp_path.resolve() / ".conveyor" / "artifacts")


def test_toml_is_found_walking_up_and_env_wins(tmp_path: Path) -> None:
    (tmp_path / "conveyor.toml").write_text('[store]\nartifacts_url = "blobs"\n[tracking]\nflush_interval = 2.5\n')
    deep = tmp_path / "src" / "pkg"
    deep.mkdir(parents=True)
    settings = Settings.load(deep, env={})
    assert settings.root == tmp_path.resolve()
    assert settings.artifacts_url == str(tmp_path.resolve() / "blobs")
    assert settings.tracking.flush_interval == 2.5
    settings = Settings.load(deep, env={"CONVEYOR_TRACKING_FLUSH_INTERVAL": "0.5",
                                        "CONVEYOR_STORE_ARTIFACTS_URL": "s3://bucket/prefix"})
    assert settings.tracking.flush_interval == 0.5
    assert settings.artifacts_url == "s3://bucket/prefix"


def test_an_empty_variable_counts_as_unset(tmp_path: Path) -> None:
    """CI systems render a secret that was never configured as an empty string."""
    (tmp_path / "conveyor.toml").write_text('[store]\nartifacts_url = "blobs"\n')
    settings = Settings.load(tmp_path, env={"CONVEYOR_STORE_ARTIFACTS_URL": "", "CONVEYOR_STORE_METADATA_URL": "",
                                            "CONVEYOR_STORE_S3_ENDPOINT_URL": ""})
    assert settings.artifacts_url == str(tmp_path.resolve() / "blobs")
    assert settings.metadata_url.startswith("sqlite:///") and settings.store.s3_endpoint_url is None


def test_absolute_and_server_urls_are_kept(tmp_path: Path) -> None:
    env = {"CONVEYOR_STORE_METADATA_URL": "postgresql+psycopg://u@h/db"}
    assert Settings.load(tmp_path, env=env).metadata_url == "postgresql+psycopg://u@h/db"


def test_unknown_key_names_it_and_lists_the_known_ones(tmp_path: Path) -> None:
    (tmp_path / "conveyor.toml").write_text("[tracking]\nflush_intervall = 1\n")
    with pytest.raises(ConfigError) as info:
        Settings.load(tmp_path, env={})
    assert "flush_intervall" in str(info.value) and "flush_interval" in str(info.value)


def test_bad_value_names_key_value_and_origin(tmp_path: Path) -> None:
    with pytest.raises(ConfigError) as info:
        Settings.load(tmp_path, env={"CONVEYOR_TRACKING_BATCH_SIZE": "lots"})
    message = str(info.value)
    assert "'lots'" in message and "CONVEYOR_TRACKING_BATCH_SIZE" in message
    assert info.value.field == "tracking.batch_size"


def test_broken_toml_is_reported(tmp_path: Path) -> None:
    (tmp_path / "conveyor.toml").write_text("[store\n")
    with pytest.raises(ConfigError, match="not valid TOML"):
        Settings.load(tmp_path, env={})


def test_other_tables_are_kept_for_their_owners(tmp_path: Path) -> None:
    (tmp_path / "conveyor.toml").write_text("[gates.default]\nf1 = '>= 0.9'\n")
    assert Settings.load(tmp_path, env={}).section("gates") == {"default": {"f1": ">= 0.9"}}


def test_every_setting_is_documented() -> None:
    doc = (Path(__file__).parents[1] / "docs" / "settings.md").read_text()
    for key, env, _default, description in iter_settings():
        assert description, f"{key} has no description"
        assert f"`{key}`" in doc and f"`{env}`" in doc, f"{key} is missing from docs/settings.md"
