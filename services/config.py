"""Settings from the environment and rules from dashboard.toml: one place for both."""

from __future__ import annotations

import os
import tomllib
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any

DEFAULT_CONFIG = Path(__file__).resolve().parent.parent / "dashboard.toml"


@dataclass(frozen=True)
class Settings:
    """Where the data lives. Missing values are reported on the page, not raised at import."""

    database_url: str | None
    admin_database_url: str | None
    # Where the dashboard's own writes go (access records, snapshots): the primary, when the
    # two URLs above point at a read replica. Default: the same URL as the role's reads.
    dashboard_write_url: str | None
    admin_write_url: str | None
    redis_url: str | None  # the platform's own keys: enhancement:queue, the pause flag
    celery_broker_url: str | None  # the Celery lists; the platform keeps them on another db
    prometheus_url: str | None
    jaeger_url: str | None


def settings() -> Settings:
    # Read on every call (cheap) so tests can point the app at their own databases.
    database_url = os.environ.get("DATABASE_URL")
    admin_database_url = os.environ.get("ADMIN_DATABASE_URL")
    return Settings(
        database_url=database_url,
        admin_database_url=admin_database_url,
        dashboard_write_url=os.environ.get("DASHBOARD_WRITE_URL") or database_url,
        admin_write_url=os.environ.get("ADMIN_WRITE_URL") or admin_database_url,
        redis_url=os.environ.get("REDIS_URL"),
        celery_broker_url=os.environ.get("CELERY_BROKER_URL") or os.environ.get("REDIS_URL"),
        prometheus_url=os.environ.get("PROMETHEUS_URL"),
        jaeger_url=os.environ.get("JAEGER_URL"),
    )


@cache
def _load_rules(path: str) -> dict[str, Any]:
    with open(path, "rb") as handle:
        return tomllib.load(handle)


def rules(section: str) -> dict[str, Any]:
    """One section of dashboard.toml (or of the file DASHBOARD_CONFIG names)."""
    return dict(_load_rules(os.environ.get("DASHBOARD_CONFIG", str(DEFAULT_CONFIG)))[section])
