"""The settings of ``callboard serve`` and ``callboard worker``, in one model.

Each setting comes from, highest first: its command-line flag, its
``CALLBOARD_*`` environment variable (``DATABASE_URL`` is also accepted for
the database), the TOML file named by ``--config`` (or ``CALLBOARD_CONFIG``),
then its default. docs/operations.md lists them all in one table.
"""

from __future__ import annotations

from argparse import Namespace
from collections.abc import Mapping
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import AliasChoices, Field, SecretStr, field_validator
from pydantic_settings import (
    BaseSettings,
    EnvSettingsSource,
    NoDecode,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
    TomlConfigSettingsSource,
)

from actors import GRACE_PERIOD_DEFAULT
from runtime.api.server import BIND_DEFAULT
from runtime.cli.retention import retention_from
from runtime.jobs.sweeper import JobRetention
from runtime.runtime import DATABASE_URL_DEFAULT

CONFIG_ENV = "CALLBOARD_CONFIG"
LOG_LEVELS = ("debug", "info", "warning", "error")
_RETENTION_FIELDS = {"retain", "max_finished", "max_finished_per_type"}

Items = Annotated[list[str], NoDecode]  # comma-separated in the environment, not JSON


class ServiceSettings(BaseSettings):
    """Every option of ``serve`` and ``worker`` (the API ones only matter to ``serve``)."""

    model_config = SettingsConfigDict(
        env_prefix="CALLBOARD_", extra="forbid", populate_by_name=True, frozen=True
    )

    db: str = Field(
        DATABASE_URL_DEFAULT,
        validation_alias=AliasChoices("db", "CALLBOARD_DB", "DATABASE_URL"),
        description="database URL",
    )
    apps: Items = Field(default_factory=list, description="modules with job types")
    demo: bool = False
    migrate: bool = Field(True, description="upgrade the schema at start (serve)")
    # API (serve only)
    bind: str = BIND_DEFAULT
    tokens_file: str | None = None
    insecure: bool = False
    body_limit: int | None = Field(None, gt=0)
    header_timeout: float | None = Field(None, gt=0)
    body_timeout: float | None = Field(None, gt=0)
    send_timeout: float | None = Field(None, gt=0)
    streams_per_token: int | None = Field(None, ge=1)
    # Workers
    queues: Items | None = None  # serve: NAME=CAPACITY items; worker: NAME[=CAPACITY] to run
    grace_period: float = Field(GRACE_PERIOD_DEFAULT, ge=0)
    # None: the runtime's default for the store (1 s on SQLite, 30 s on PostgreSQL).
    poll_interval: float | None = Field(None, gt=0, allow_inf_nan=False)
    lease: float | None = Field(None, gt=0, allow_inf_nan=False)
    heartbeat_interval: float | None = Field(None, gt=0, allow_inf_nan=False)
    loop: Literal["trio", "asyncio"] = "trio"
    # Retention of finished jobs (runtime.cli.retention reads these)
    retain: Items = Field(default_factory=list, description="STATUS=AGE items")
    max_finished: int | None = Field(None, ge=0)
    max_finished_per_type: int | None = Field(None, ge=0)
    sweep_interval: float | None = Field(None, gt=0, allow_inf_nan=False)
    # Status hooks
    hook_secret: SecretStr | None = None
    hook_allow: Items = Field(default_factory=list, description="networks and host names")
    # Logs
    log_level: Literal["debug", "info", "warning", "error"] = "info"
    log_format: Literal["text", "json"] = "text"
    otel: bool = Field(False, description="OpenTelemetry spans (the otel extra)")

    @field_validator("apps", "hook_allow", "queues", "retain", mode="before")
    @classmethod
    def _split(cls, value: Any) -> Any:
        if isinstance(value, str):
            return [item.strip() for item in value.split(",") if item.strip()]
        return value

    @field_validator("log_level", mode="before")
    @classmethod
    def _lower(cls, value: Any) -> Any:
        return value.lower() if isinstance(value, str) else value

    def retention(self) -> JobRetention | None:
        """The retention policy these settings describe; None: the runtime's default.
        ``ValueError`` names a bad ``retain`` item."""
        return retention_from(Namespace(**self.model_dump(include=_RETENTION_FIELDS)))

    def hook_env(self) -> dict[str, str]:
        """The hook secret as :meth:`HookSettings.from_env` reads it."""
        if self.hook_secret is None:
            return {}
        return {"CALLBOARD_HOOK_SECRET": self.hook_secret.get_secret_value()}


def load_settings(
    flags: Mapping[str, Any], env: Mapping[str, str], config: str | None = None
) -> ServiceSettings:
    """Settings from ``flags`` (those given: not None), ``env`` and the TOML file
    ``config`` (or ``$CALLBOARD_CONFIG``), in that order of precedence.

    Raises ``ValueError`` for a config file that cannot be read and
    ``pydantic.ValidationError`` for a bad value, wherever it came from.
    """
    lowered = {k.lower(): v for k, v in env.items()}
    path = config or lowered.get(CONFIG_ENV.lower())
    if path and not Path(path).is_file():
        raise ValueError(f"config file {path!r} not found")
    given = {k: v for k, v in flags.items() if v is not None}

    class _Loaded(ServiceSettings):
        @classmethod
        def settings_customise_sources(
            cls,
            settings_cls: type[BaseSettings],
            init_settings: PydanticBaseSettingsSource,
            env_settings: PydanticBaseSettingsSource,
            dotenv_settings: PydanticBaseSettingsSource,
            file_secret_settings: PydanticBaseSettingsSource,
        ) -> tuple[PydanticBaseSettingsSource, ...]:
            sources: list[PydanticBaseSettingsSource] = [init_settings, _MappingEnv(cls, lowered)]
            if path:
                sources.append(TomlConfigSettingsSource(settings_cls, toml_file=Path(path)))
            return tuple(sources)

    return _Loaded(**given)


class _MappingEnv(PydanticBaseSettingsSource):
    """The environment source, reading a given mapping (tests pass their own)."""

    def __init__(self, settings_cls: type[BaseSettings], env: Mapping[str, str]) -> None:
        super().__init__(settings_cls)
        self._source = EnvSettingsSource(settings_cls)
        self._source.env_vars = dict(env)

    def get_field_value(self, field: Any, field_name: str) -> tuple[Any, str, bool]:
        return self._source.get_field_value(field, field_name)

    def __call__(self) -> dict[str, Any]:
        return self._source()
