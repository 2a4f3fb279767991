"""Prometheus exporter of the dashboard's verdicts, so the on-call rotation can be alerted.

`python -m services.exporter --port 9464` serves /metrics. Each scrape judges the fleet through
services.health.verdicts (the same gateway, admin scope, and rules as the pages; at most once per
`cache_seconds`). Only tenant ids, statuses and rule names are exposed: never ticket content,
reason texts (they quote counts, but nothing of a ticket), names or secrets.

Metrics:
- aiagents_dashboard_tenant_status{tenant_id}: 0 healthy or inactive, 1 degraded, 2 critical
- aiagents_dashboard_rule_failing{tenant_id, rule, severity}: 1 for each failing rule
- aiagents_dashboard_rule_not_judged{tenant_id, rule}: 1 for a ratio on too small a sample
- aiagents_dashboard_check_success: 1 when the last check could read its data, else 0
- aiagents_dashboard_check_timestamp_seconds: when the verdicts were computed
"""

from __future__ import annotations

import argparse
import logging
import threading
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

from prometheus_client import CollectorRegistry, start_http_server
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector

from services import health
from services.errors import DashboardError

log = logging.getLogger(__name__)
PREFIX = "aiagents_dashboard"


class VerdictCollector(Collector):
    """Judges on scrape, keeping the last verdicts for cache_seconds (scrapes of several
    Prometheus replicas cost one read)."""

    def __init__(self, window: timedelta, cache_seconds: float) -> None:
        self.window = window
        self.cache_seconds = cache_seconds
        self._lock = threading.Lock()
        self._at = 0.0
        self._found: list[health.Verdict] = []
        self._ok = False

    def _refresh(self) -> None:
        with self._lock:
            if time.monotonic() - self._at < self.cache_seconds and self._at:
                return
            try:
                self._found, _ = health.verdicts(datetime.now(UTC), self.window)
                self._ok = True
            except DashboardError as exc:
                log.warning("verdicts could not be computed: %s", exc)
                self._found, self._ok = [], False
            self._at = time.monotonic()

    def collect(self) -> Iterator[GaugeMetricFamily]:
        self._refresh()
        status = GaugeMetricFamily(
            f"{PREFIX}_tenant_status",
            "Tenant verdict: 0 healthy or inactive, 1 degraded, 2 critical",
            labels=["tenant_id"],
        )
        failing = GaugeMetricFamily(
            f"{PREFIX}_rule_failing",
            "1 for each health rule failing for a tenant",
            labels=["tenant_id", "rule", "severity"],
        )
        not_judged = GaugeMetricFamily(
            f"{PREFIX}_rule_not_judged",
            "1 for a ratio rule not judged: too small a sample",
            labels=["tenant_id", "rule"],
        )
        for v in self._found:
            status.add_metric([v.tenant_id], health.EXIT_CODES[v.assessment.status])
            for reason in v.assessment.failing:
                failing.add_metric([v.tenant_id, reason.rule, reason.severity], 1)
            for reason in v.assessment.reasons:
                if reason.severity == health.NOT_JUDGED:
                    not_judged.add_metric([v.tenant_id, reason.rule], 1)
        yield status
        yield failing
        yield not_judged
        yield GaugeMetricFamily(
            f"{PREFIX}_check_success",
            "1 when the last check read its data",
            value=1 if self._ok else 0,
        )
        yield GaugeMetricFamily(
            f"{PREFIX}_check_timestamp_seconds",
            "Unix time of the last check",
            value=time.time() - (time.monotonic() - self._at),
        )


def serve(port: int, host: str, window: timedelta, cache_seconds: float) -> None:
    registry = CollectorRegistry()
    registry.register(VerdictCollector(window, cache_seconds))
    start_http_server(port, addr=host, registry=registry)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m services.exporter")
    parser.add_argument("--port", type=int, default=9464)
    parser.add_argument("--host", default="127.0.0.1", help="listen address (loopback)")
    parser.add_argument("--window-hours", type=float, default=24.0)
    parser.add_argument("--cache-seconds", type=float, default=30.0)
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO)
    serve(args.port, args.host, timedelta(hours=args.window_hours), args.cache_seconds)
    log.info("serving verdict metrics on http://%s:%d/metrics", args.host, args.port)
    threading.Event().wait()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
