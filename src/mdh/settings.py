"""Process settings: one frozen object per process, read from MDH_* variables in entry points."""

from __future__ import annotations

from pathlib import Path

from pydantic import SecretStr
from pydantic_settings import BaseSettings, SettingsConfigDict


class Settings(BaseSettings):
    """Everything a process needs to know about where things live.

    Built once in an entry point and passed down; nothing reads the environment elsewhere.
    """

    model_config = SettingsConfigDict(env_prefix="MDH_", frozen=True, extra="ignore")

    home: Path = Path(".mdh")
    """Where the embedded PostgreSQL, Debezium offsets and logs live."""

    database_url: SecretStr | None = None
    """An external PostgreSQL for the hub. When set, no embedded server is ever started."""

    database_name: str = "mdh"
    """The hub database on the embedded server."""

    pg_port: int | None = None
    """TCP port for the embedded server on 127.0.0.1; chosen and remembered on first start."""

    config_file: Path | None = None
    """The declarative config (mappings, survivorship, match spec, targets)."""

    log_level: str = "INFO"

    @property
    def pg_dir(self) -> Path:
        return self.home / "pg"
