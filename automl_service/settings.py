"""Settings: one root with a nested model per concern.

Sources, strongest first: init arguments, environment (``AUTOML_SERVICE_`` prefix, ``__``
between levels, e.g. ``AUTOML_SERVICE_QUEUE__KIND=azure_storage``), a TOML file named by
``AUTOML_SERVICE_SETTINGS_FILE`` (or ``--settings``), then defaults. The local backend
needs none of them. Secrets are ``SecretStr``: they come from the environment and never
appear in logs, results or health answers.
"""

from __future__ import annotations

import difflib
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, SecretStr, ValidationError
from pydantic_settings import (
    BaseSettings,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
    TomlConfigSettingsSource,
)

from .errors import ConfigurationError

ENV_PREFIX = "AUTOML_SERVICE_"
SETTINGS_FILE_ENV = f"{ENV_PREFIX}SETTINGS_FILE"


class _Section(BaseModel):
    """A settings section: a misspelt key is an error naming it, never silently ignored."""

    model_config = ConfigDict(extra="forbid")


class QueueSettings(_Section):
    kind: Literal["sqlite", "azure_storage"] = "sqlite"
    name: str = "automl-requests"
    #: SQLite file; relative paths are under ``local.data_dir``.
    sqlite_path: Path = Path("queue.db")
    account_url: str | None = None
    connection_string: SecretStr | None = None
    create_queues: bool = True
    message_encoding: Literal["auto", "text", "base64"] = "auto"
    result_queue: str | None = None


class LocalSettings(_Section):
    data_dir: Path = Path(".automl-service")
    max_concurrent_jobs: int = Field(1, ge=1, le=64)
    #: A trainer that dies without an error of its own (the OOM killer, a node drain, a
    #: container stop) is started again under the same parent run, up to this many starts
    #: in all. Restarts never spend the request's failure budget (worker.max_failures).
    max_trainer_starts: int = Field(10, ge=1, le=1000)
    #: Tracking/registry store; default: SQLite file in ``data_dir``.
    tracking_uri: str | None = None
    endpoint_host: str = "127.0.0.1"
    #: Port of ``automl-service serve``; scoring URIs name it (0 picks a free port).
    endpoint_port: int = Field(8090, ge=0, le=65535)
    #: Models ``serve`` keeps loaded at once (least recently used are dropped).
    endpoint_cache_size: int = Field(8, ge=1, le=256)

    def resolve(self, path: Path) -> Path:
        return path if path.is_absolute() else self.data_dir / path

    @property
    def mlflow_uri(self) -> str:
        if self.tracking_uri:
            return self.tracking_uri
        return f"sqlite:///{(self.data_dir / 'mlflow.db').resolve()}"

    @property
    def artifact_root(self) -> Path:
        return (self.data_dir / "artifacts").resolve()


class AzureSettings(_Section):
    subscription_id: str | None = None
    resource_group: str | None = None
    workspace_name: str | None = None
    config_path: Path | None = None
    #: Client id of a user-assigned managed identity.
    client_id: str | None = None
    compute: str | None = None
    tracking_uri: str | None = None
    #: Instance types a request may deploy on (empty: any).
    allowed_instance_types: list[str] = Field(default_factory=list)
    max_instance_count: int = Field(4, ge=1, le=100)
    #: A deployment still provisioning after this long has failed.
    deployment_timeout_seconds: float = Field(3600.0, gt=0)
    #: A running job's status is fetched every tenth of its age, within these bounds.
    poll_min_seconds: float = Field(15.0, ge=0)
    poll_max_seconds: float = Field(300.0, ge=0)


class WorkerSettings(_Section):
    poll_interval_seconds: float = Field(2.0, gt=0)
    max_poll_interval_seconds: float = Field(30.0, gt=0)
    visibility_timeout_seconds: float = Field(300.0, gt=0)
    #: How long a not-ready request stays hidden before the next check.
    recheck_seconds: float = Field(15.0, gt=0)
    max_recheck_seconds: float = Field(300.0, gt=0)
    #: Base and cap of the backoff after a real (transient) failure.
    retry_seconds: float = Field(10.0, gt=0)
    max_retry_seconds: float = Field(600.0, gt=0)
    max_failures: int = Field(5, ge=1)
    batch_size: int = Field(4, ge=1, le=32)
    shutdown_grace_seconds: float = Field(20.0, ge=0)


class HealthSettings(_Section):
    enabled: bool = False
    host: str = "127.0.0.1"
    port: int = Field(8080, ge=0, le=65535)
    #: ``/healthz`` answers 503 once the worker loop has shown no sign of life this long.
    stale_after_seconds: float = Field(120.0, gt=0)
    #: ``/readyz`` answers 503 when its checks take longer than this.
    readiness_timeout_seconds: float = Field(8.0, gt=0)


class PolicySettings(_Section):
    """What a request may touch and spend; checked at submit and again at receive."""

    #: Caps on a request's limits (None: only the schema's own bounds).
    max_timeout_seconds: int = Field(24 * 3600, ge=5)
    max_trial_timeout_seconds: int | None = Field(None, ge=1)
    max_trials: int | None = Field(None, ge=1)
    max_concurrent_trials: int = Field(8, ge=1)
    #: Lower limits over a cap to the cap (recorded on the result) instead of refusing.
    clamp_limits: bool = False
    #: Folders local data may be read from, symlinks resolved (empty: any readable file).
    data_roots: list[Path] = Field(default_factory=list)
    #: Prefixes remote data references must start with, e.g. ``azureml://datastores/x/``
    #: (empty: any).
    allowed_data_prefixes: list[str] = Field(default_factory=list)
    #: Compute targets a request may name (empty: any); "serverless" allows jobs on
    #: serverless ``resources`` without a named compute.
    allowed_computes: list[str] = Field(default_factory=list)
    #: VM sizes a request's serverless ``resources`` may ask for (empty: any), and at most
    #: how many nodes.
    allowed_training_instance_types: list[str] = Field(default_factory=list)
    max_training_instance_count: int | None = Field(None, ge=1)
    #: Endpoint names must start with this.
    endpoint_name_prefix: str = ""
    #: Queues a request may name in ``reply_to`` (empty: any).
    allowed_reply_queues: list[str] = Field(default_factory=list)


class LoggingSettings(_Section):
    format: Literal["auto", "json", "console"] = "auto"
    level: Literal["debug", "info", "warning", "error"] = "info"


class Settings(BaseSettings):
    """Everything the service can be told. Construct with ``load_settings``."""

    model_config = SettingsConfigDict(
        env_prefix=ENV_PREFIX,
        env_nested_delimiter="__",
        extra="forbid",
    )

    backend: Literal["local", "azure"] = "local"
    queue: QueueSettings = Field(default_factory=QueueSettings)
    local: LocalSettings = Field(default_factory=LocalSettings)
    azure: AzureSettings = Field(default_factory=AzureSettings)
    worker: WorkerSettings = Field(default_factory=WorkerSettings)
    health: HealthSettings = Field(default_factory=HealthSettings)
    policy: PolicySettings = Field(default_factory=PolicySettings)
    logging: LoggingSettings = Field(default_factory=LoggingSettings)

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        sources: list[PydanticBaseSettingsSource] = [init_settings, env_settings]
        path = settings_cls.model_config.get("toml_file") or os.environ.get(SETTINGS_FILE_ENV)
        if path:
            sources.append(TomlConfigSettingsSource(settings_cls, toml_file=Path(str(path))))
        return tuple(sources)


def load_settings(path: str | Path | None = None, **overrides: Any) -> Settings:
    """Settings from the environment, an optional TOML file, and ``overrides``.

    Raises ConfigurationError naming every unknown key (``AUTOML_SERVICE_*`` variable or
    TOML key) and every invalid value.
    """
    unknown = unknown_env_names(os.environ)
    if unknown:
        raise ConfigurationError(
            "unknown settings in the environment: "
            + ", ".join(f"{name}{_suggestion(name)}" for name in unknown)
        )
    path = path or os.environ.get(SETTINGS_FILE_ENV)
    if path and not Path(path).is_file():
        raise ConfigurationError(f"settings file not found: {path}")
    cls: type[Settings] = Settings
    if path:
        cls = type(
            "Settings", (Settings,), {"model_config": {**Settings.model_config, "toml_file": path}}
        )
    try:
        return cls(**overrides)
    except ValidationError as exc:
        raise ConfigurationError(_describe(exc)) from None


#: ``AUTOML_SERVICE_*`` variables that are not settings.
NOT_SETTINGS = {SETTINGS_FILE_ENV, "AUTOML_SERVICE_CRASH_AFTER_STEP"}


def setting_names(model: type[BaseModel] = Settings, prefix: str = ENV_PREFIX) -> set[str]:
    """Every environment variable name that sets a value, e.g. ``AUTOML_SERVICE_QUEUE__KIND``."""
    names: set[str] = set()
    for field, info in model.model_fields.items():
        name = f"{prefix}{field.upper()}"
        names.add(name)
        kind = info.annotation
        if isinstance(kind, type) and issubclass(kind, BaseModel):
            names |= setting_names(kind, f"{name}__")
    return names


def unknown_env_names(environ: Mapping[str, str]) -> list[str]:
    """``AUTOML_SERVICE_*`` variables in ``environ`` that name no setting."""
    known = setting_names() | NOT_SETTINGS
    return sorted(
        name
        for name in environ
        if name.upper().startswith(ENV_PREFIX) and name.upper() not in known
    )


def _suggestion(name: str) -> str:
    close = difflib.get_close_matches(name.upper(), setting_names(), n=1, cutoff=0.8)
    return f" (did you mean {close[0]}?)" if close else ""


def _describe(exc: ValidationError) -> str:
    lines = []
    for err in exc.errors(include_url=False):
        where = ".".join(str(part) for part in err["loc"])
        if err["type"] == "extra_forbidden":
            lines.append(f"{where}: unknown setting")
        else:
            lines.append(f"{where}: {err['msg']}")
    return "; ".join(lines)
