"""Configuration from the environment, read once and passed in (never at import time)."""

from __future__ import annotations

from pathlib import Path

from pydantic_settings import BaseSettings, SettingsConfigDict


class Settings(BaseSettings):
    """``PROMISE_DATABASE_URL`` and ``PROMISE_DIR``, with working defaults."""

    model_config = SettingsConfigDict(env_prefix="PROMISE_", extra="ignore")

    database_url: str = "sqlite:///promise.db"
    """SQLAlchemy URL; the default is a SQLite file in the working directory."""
    dir: Path = Path("promises")
    """The promise catalog."""
