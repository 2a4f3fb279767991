"""Prometheus: queue and worker history, and the HPA settings, with short timeouts.

Every PromQL comes from dashboard.toml [promql] (defaults: contract section 4), so operators can
point the dashboard at their own exporters' names. Prometheus down raises SourceUnavailable; a
query that returns nothing, or that Prometheus rejects, is reported per series instead, so one
missing exporter never hides the others.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import pandas as pd
import requests
from prometheus_api_client import PrometheusConnect

from services import timing
from services.config import rules, settings
from services.errors import DashboardError, InvalidInput, QueryTimeout, SourceUnavailable

# [promql] key -> what the page calls it.
SERIES = {
    "queue_length": "Queue length (celery)",
    "api_queue_length": "Queue length (enhancement:queue)",
    "replicas_available": "Workers available",
    "workers_up": "Celery workers up",
    "hpa_current": "HPA current replicas",
    "hpa_min": "HPA min replicas",
    "hpa_max": "HPA max replicas",
    "request_rate": "Webhooks received per minute",
}
HPA_KEYS = ("hpa_min", "hpa_max", "hpa_current", "replicas_available")
STATUSES = ("received", "queued", "rejected")  # enhancement_requests_total's status label


class QueryRejected(DashboardError):
    """Prometheus answered but refused one configured query (bad PromQL, too many points)."""


@dataclass(frozen=True)
class History:
    frame: pd.DataFrame  # UTC DatetimeIndex on a regular step grid, one column per SERIES key
    step_s: int
    missing: dict[str, str]  # SERIES key -> why it has no data

    def mean(self, key: str) -> float | None:
        values = self.frame[key].dropna()
        return float(values.mean()) if len(values) else None


def history_ranges() -> dict[str, timedelta]:
    """The ranges offered (e.g. "1h" -> 1 hour), from the keys of [prometheus] history_steps_s."""
    units = {"h": "hours", "d": "days"}
    return {
        key: timedelta(**{units[key[-1]]: int(key[:-1])})
        for key in rules("prometheus")["history_steps_s"]
    }


def query(promql: str, params: dict[str, Any], kind: str = "query_range") -> list[dict[str, Any]]:
    """One Prometheus API call (`kind` "query", or "query_range" with start, end and step in
    `params`); the `result` list of its answer."""
    base = settings().prometheus_url
    if not base:
        raise SourceUnavailable("Prometheus", "PROMETHEUS_URL is not set")
    timeout = float(rules("prometheus")["timeout_s"])
    server_timeout = {"timeout": f"{timeout:g}s"}
    with requests.Session() as session:
        session.hooks["response"].append(_check_answer)  # before the library reads the answer
        # retry=0: the library's default retries three times with backoff, so a frozen
        # Prometheus would take several timeouts; the dashboard says so after one.
        client = PrometheusConnect(
            base.rstrip("/"), retry=0, session=session, timeout=(2, timeout + 1)
        )
        try:
            if kind == "query":
                return timing.call("prometheus", client.custom_query, promql, params=server_timeout)
            start, end = (datetime.fromtimestamp(params[key], UTC) for key in ("start", "end"))
            return timing.call(
                "prometheus",
                client.custom_query_range,
                promql,
                start,
                end,
                str(params["step"]),
                server_timeout,
            )
        except requests.Timeout as exc:
            raise QueryTimeout("Prometheus") from exc
        except requests.RequestException as exc:
            raise SourceUnavailable("Prometheus", f"no answer ({type(exc).__name__})") from exc


def _check_answer(response: requests.Response, *args: Any, **kwargs: Any) -> None:
    """Raises what a Prometheus answer that holds no query result means (a session hook: the
    library's PrometheusApiClientException only carries a formatted message, and an HTTP 200
    without results would be a KeyError)."""
    try:
        body = response.json()
    except ValueError:
        body = {}
    if not isinstance(body, dict):
        body = {}
    if response.status_code in (400, 422) and body.get("error"):
        if body.get("errorType") == "timeout":
            raise QueryTimeout("Prometheus")
        raise QueryRejected(f"Prometheus rejected the query: {body['error']}")
    if response.status_code != 200:
        raise SourceUnavailable("Prometheus", f"it answered HTTP {response.status_code}")
    data = body.get("data")
    if body.get("status") != "success" or not isinstance(data, dict) or "result" not in data:
        raise SourceUnavailable("Prometheus", _unexpected(body))


def _unexpected(body: dict[str, Any]) -> str:
    """What was wrong with an HTTP 200 answer, in words an engineer can act on."""
    if not body:
        return "it answered HTTP 200, but not with Prometheus' JSON (is PROMETHEUS_URL right?)"
    if body.get("status") == "error":
        return f"it answered with an error: {str(body.get('error'))[:200]}"
    return "it answered HTTP 200 without query results (is PROMETHEUS_URL the Prometheus API?)"


def _as_series(result: list[dict[str, Any]]) -> pd.Series:
    """Sum of every series in a matrix answer, indexed by UTC time (a query without sum()
    still gives one line)."""
    parts = [
        pd.Series({float(t): float(v) for t, v in item["values"]}, dtype=float) for item in result
    ]
    if not parts:
        return pd.Series(dtype=float)
    total = pd.concat(parts, axis=1).sum(axis=1, min_count=1)
    total.index = pd.to_datetime(total.index, unit="s", utc=True)
    return total.sort_index()


def history(range_key: str, now: datetime) -> History:
    """Every SERIES over the range ending at `now`, on one regular grid (NaN where no data)."""
    steps = rules("prometheus")["history_steps_s"]
    if range_key not in steps:
        raise InvalidInput(f"Unknown history range {range_key[:10]!r}.")
    step_s = int(steps[range_key])
    end = pd.Timestamp(now).tz_convert("UTC").floor(f"{step_s}s")
    start = end - pd.Timedelta(history_ranges()[range_key])
    grid = pd.date_range(start, end, freq=f"{step_s}s")
    promql = rules("promql")
    frame = pd.DataFrame(index=grid)
    missing: dict[str, str] = {}
    for key in SERIES:
        params = {"start": start.timestamp(), "end": end.timestamp(), "step": step_s}
        try:
            series = _as_series(query(promql[key], params))
        except QueryRejected as exc:
            series, missing[key] = pd.Series(dtype=float), str(exc)
        frame[key] = series.reindex(grid)
        if key not in missing and frame[key].isna().all():
            missing[key] = "no data in this range"
    return History(frame, step_s, missing)


def current(keys: tuple[str, ...] = HPA_KEYS) -> dict[str, float | None]:
    """The latest value of each series (None: no data or the query was rejected)."""
    promql = rules("promql")
    values: dict[str, float | None] = {}
    for key in keys:
        try:
            result = query(promql[key], {}, kind="query")
        except QueryRejected:
            result = []
        values[key] = sum(float(item["value"][1]) for item in result) if result else None
    return values


@dataclass(frozen=True)
class WebhookTraffic:
    """One tenant's webhooks as the API counted them (enhancement_requests_total), per hour:
    index 0 is the hour ending now. `usual` is the mean of the same hours over the past weeks
    that have data (the same weekday and hour), `weeks` how many such weeks there were."""

    tenant_id: str
    received: tuple[float, ...]
    queued: tuple[float, ...]
    rejected: tuple[float, ...]
    usual: tuple[float, ...]
    weeks: int


def webhook_traffic(now: datetime, tenant_id: str | None = None) -> dict[str, WebhookTraffic]:
    """Every tenant's webhook counts (or one tenant's) over the longest silence window, now and
    at the same hours of each of the past [health] silence_weeks weeks. Raises SourceUnavailable
    or QueryRejected (the caller says the rules could not be judged)."""
    h = rules("health")
    hours = max(max(h["silence_windows_hours"]), h["rejected_window_hours"])
    promql = rules("promql")["webhooks_hourly"]
    end = pd.Timestamp(now).tz_convert("UTC").floor("60s")
    counts: dict[tuple[str, str, int], list[float]] = {}  # (tenant, status, weeks ago) -> hours
    for weeks_ago in range(int(h["silence_weeks"]) + 1):
        week_end = end - pd.Timedelta(weeks=weeks_ago)
        params = {
            "start": (week_end - pd.Timedelta(hours=hours - 1)).timestamp(),
            "end": week_end.timestamp(),
            "step": 3600,
        }
        for item in query(promql, params):
            labels = item["metric"]
            tenant = labels.get("tenant_id")
            if tenant is None or (tenant_id is not None and tenant != tenant_id):
                continue
            series = counts.setdefault(
                (tenant, labels.get("status", ""), weeks_ago), [math.nan] * hours
            )
            for t, v in item["values"]:
                ago = round((week_end.timestamp() - float(t)) / 3600)
                if 0 <= ago < hours:
                    series[ago] = float(v)
    traffic = {}
    for tenant in sorted({key[0] for key in counts}):

        def hourly(status: str, weeks_ago: int = 0, tenant: str = tenant) -> list[float]:
            return counts.get((tenant, status, weeks_ago), [math.nan] * hours)

        past = [
            hourly("received", w)
            for w in range(1, int(h["silence_weeks"]) + 1)
            if not all(math.isnan(v) for v in hourly("received", w))
        ]
        usual = [
            sum(v for v in values if not math.isnan(v)) / len(past) if past else math.nan
            for values in zip(*past, strict=True)
        ] or [math.nan] * hours
        traffic[tenant] = WebhookTraffic(
            tenant,
            *(tuple(0.0 if math.isnan(v) else v for v in hourly(s)) for s in STATUSES),
            tuple(usual),
            len(past),
        )
    return traffic
