"""Settings: defaults, TOML files, environment overrides and secrets."""

from __future__ import annotations

from pathlib import Path

import pytest

from automl_service.errors import ConfigurationError
from automl_service.settings import (
    SETTINGS_FILE_ENV,
    Settings,
    load_settings,
    unknown_env_names,
)

SETTINGS_DIR = Path(__file__).resolve().parents[1] / "settings"


def test_local_backend_needs_no_settings() -> None:
    """With nothing set, the service is the local backend on a SQLite queue."""
    s = load_settings()
    assert s.backend == "local"
    assert s.queue.kind == "sqlite"
    assert s.local.mlflow_uri.startswith("sqlite:///")


def test_environment_overrides_nested_values(monkeypatch: pytest.MonkeyPatch) -> None:
    """AUTOML_SERVICE_<SECTION>__<FIELD> sets a nested value."""
    monkeypatch.setenv("AUTOML_SERVICE_WORKER__MAX_FAILURES", "9")
    monkeypatch.setenv("AUTOML_SERVICE_LOCAL__DATA_DIR", "/srv/automl")
    s = load_settings()
    assert s.worker.max_failures == 9
    assert s.local.data_dir == Path("/srv/automl")


def test_file_then_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    """A settings file is read, and the environment wins over it."""
    monkeypatch.setenv("AUTOML_SERVICE_WORKER__RECHECK_SECONDS", "7")
    s = load_settings(SETTINGS_DIR / "azure.toml")
    assert s.backend == "azure"
    assert s.queue.kind == "azure_storage"
    assert s.worker.recheck_seconds == 7.0


@pytest.mark.parametrize("name", ["local.toml", "azure.toml", "container.toml"])
def test_shipped_files_are_valid(name: str) -> None:
    """Every file under settings/ loads without errors."""
    assert isinstance(load_settings(SETTINGS_DIR / name), Settings)


def test_file_named_by_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    """AUTOML_SERVICE_SETTINGS_FILE names the file when no path is given."""
    monkeypatch.setenv(SETTINGS_FILE_ENV, str(SETTINGS_DIR / "container.toml"))
    s = load_settings()
    assert s.health.enabled is True
    assert s.logging.format == "json"


def test_missing_file_is_a_configuration_error() -> None:
    """A settings path that does not exist is refused clearly."""
    with pytest.raises(ConfigurationError, match="not found"):
        load_settings("/nonexistent/settings.toml")


def test_secrets_never_render(monkeypatch: pytest.MonkeyPatch) -> None:
    """A connection string from the environment is usable but never printed."""
    canary = "DefaultEndpointsProtocol=https;AccountKey=CANARY-SECRET-123"
    monkeypatch.setenv("AUTOML_SERVICE_QUEUE__CONNECTION_STRING", canary)
    s = load_settings()
    assert s.queue.connection_string is not None
    assert s.queue.connection_string.get_secret_value() == canary
    assert "CANARY" not in repr(s)
    assert "CANARY" not in s.model_dump_json()


@pytest.mark.parametrize(
    ("name", "fragment"),
    [
        (
            "AUTOML_SERVICE_QUEUE__CONNECTION_STRNG",
            "did you mean AUTOML_SERVICE_QUEUE__CONNECTION_STRING?",
        ),
        ("AUTOML_SERVICE_QUEUEE__KIND", "did you mean AUTOML_SERVICE_QUEUE__KIND?"),
        ("AUTOML_SERVICE_NOTHING_LIKE_IT", "AUTOML_SERVICE_NOTHING_LIKE_IT"),
    ],
)
def test_misspelt_environment_variables_are_refused_by_name(
    monkeypatch: pytest.MonkeyPatch, name: str, fragment: str
) -> None:
    """An AUTOML_SERVICE_* variable that sets nothing is an error naming it, with the
    nearest real name when there is one."""
    monkeypatch.setenv(name, "x")
    with pytest.raises(ConfigurationError, match=fragment.replace("?", r"\?")):
        load_settings()


def test_misspelt_toml_keys_are_refused_by_name(tmp_path: Path) -> None:
    """A key of a settings file that sets nothing is an error naming it."""
    path = tmp_path / "s.toml"
    path.write_text('[worker]\nmax_failure = 3\n[queue]\nkind = "sqlite"\n')
    with pytest.raises(ConfigurationError, match=r"worker\.max_failure: unknown setting"):
        load_settings(path)


def test_every_setting_has_a_variable_name() -> None:
    """Each nested field can be set from the environment, and hooks that are not settings
    are known."""
    variables = {"AUTOML_SERVICE_WORKER__MAX_FAILURES": "1", SETTINGS_FILE_ENV: "x"}
    assert unknown_env_names(variables) == []
    assert unknown_env_names({"automl_service_worker__max_failures": "1"}) == []
