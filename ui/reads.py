"""Every service read a page makes, cached here once with its TTL, so "where does this number
come from, and how fresh is it" is answered in one file. A tenant's read takes the tenant id
(None: the fleet, through the admin path) as its first argument, so the tenant is always part
of the cache key; reads without one are the fleet's only (admin pages)."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any, TypeVar

import pandas as pd
import streamlit as st

from services import (
    capacity,
    events,
    feedback,
    health,
    metrics,
    rls_check,
    scaling,
    tenant_profile,
    tenants,
    themes,
    weekly_review,
)
from services.dbhealth import connections, relations, statements
from services.investigation import lookup
from services.timerange import TimeRange

F = TypeVar("F", bound=Callable[..., Any])


def _cached(ttl_s: int, read: F) -> F:
    return st.cache_data(ttl=ttl_s, show_spinner=False)(read)  # type: ignore[return-value]


tenant_directory = _cached(300, tenants.list_tenants)

# Tenant health, the client screen and the tenant profile
health_metrics = _cached(60, health.metrics)
health_trend = _cached(60, health.trend)
health_failures = _cached(60, health.failures)
traffic = _cached(60, health.read_traffic)
profile = _cached(60, tenant_profile.load)
chart_events = _cached(60, events.for_tenant)

# Investigation: a search is cached briefly; one ticket's lookup is always read fresh
search_runs = _cached(30, lookup.search_runs)

# Feedback
feedback_summary = _cached(60, feedback.summary)
feedback_trend = _cached(60, feedback.trend)
worst_rated = _cached(60, feedback.worst_rated)
feedback_themes = _cached(60, themes.themes)

# Fleet-only (admin pages): the platform's operations and every tenant's own events
platform_events = _cached(60, events.platform_events)
fleet_tenant_events = _cached(600, events.fleet_tenant_events)


def chart_marks(
    tenant_id: str | None, period: TimeRange, trend: pd.DataFrame | None, is_admin: bool
) -> pd.DataFrame:
    """The events drawn on a view's charts: a tenant's own, the incident episodes of its
    `trend` and, for admins, the platform operations; for the fleet (None: admins) every
    tenant's onboarding and configuration changes, the incidents and the operations."""
    if tenant_id:
        return chart_events(tenant_id, period, trend, is_admin)
    fleet_incidents = events.incidents(trend) if trend is not None else events.combined()
    return events.combined(fleet_tenant_events(period), fleet_incidents, platform_events(period))


# Queues and scaling (the fleet's): Prometheus history and now, the measured service times
# and the simulated check of a proposal (the slow step, cached per input)
queue_history = _cached(60, metrics.history)
prometheus_now = _cached(60, metrics.current)
capacity_measure = _cached(3600, scaling.measure)  # called with the hour (views/queues.py)
simulated_share = _cached(600, capacity.simulated_share_within)

# Database health (the platform database's, admins): live activity briefly, sizes for a
# minute; a snapshot never changes once taken, so what is keyed by snapshot ids is kept long
db_connections = _cached(15, connections.connections)
db_long_running = _cached(15, connections.long_running)
db_replication = _cached(15, connections.replication)
db_tables = _cached(60, relations.tables)
db_index_candidates = _cached(60, relations.index_candidates)
db_indexes = _cached(60, relations.indexes)
db_duplicate_indexes = _cached(60, relations.duplicate_indexes)
statements_extension = _cached(60, statements.extension_status)
top_statements = _cached(3600, statements.top_statements)
statement_history = _cached(3600, statements.statement_history)

# The weekly review: a closed week never changes, the current one is read as of its hour
review = _cached(3600, weekly_review.review)


def _rls_self_test() -> tuple[datetime, list[rls_check.Check]]:
    return datetime.now(UTC), rls_check.run_checks()


# The RLS self-test: a live check, kept for a minute so that coming back to the page does not
# run it again; the page says when it ran and its "Run again" clears this.
rls_self_test = _cached(60, _rls_self_test)
