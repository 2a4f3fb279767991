"""Throwaway Prometheus servers for the queue and metrics tests: one with a known queue
history written here, one with the demo's history (demo.backfill_prometheus).

The known history (one sample a minute, newest at `end`) holds the cases the Queues page must
find: a half-hour plateau that never drains, a 12-minute spell above 100, a 3-minute spike too
short to count, and a spell above 100 still going on at the end. `celery_worker_up` is left out
on purpose: the page must say that series is missing.
"""

from __future__ import annotations

import shutil
import subprocess
import tempfile
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path

from demo.backfill_prometheus import backfill
from tests.conftest import free_port, stop_process, wait_for_http

HOURS = 26
HPA_MIN, HPA_MAX = 2, 10
API_QUEUE_LENGTH = 2  # enhancement:queue, exported by celery-exporter too
RATE_PER_MIN = {"t-alpha": 2, "t-beta": 1}  # received webhooks per minute


def queue_length(minutes_ago: int) -> float:
    if minutes_ago < 8:  # above 100 right now, for 8 minutes
        return 110
    if 288 < minutes_ago <= 300:  # 12 minutes above 100, peak 160
        return 160 if minutes_ago == 294 else 120
    if 197 < minutes_ago <= 200:  # a 3-minute spike: too short to be an episode
        return 130
    if 90 <= minutes_ago <= 120:  # 30 -> 45 over half an hour: never drains
        return 30 + (120 - minutes_ago) / 2
    if 80 < minutes_ago < 90:  # then drains fast
        return 15
    return 3 + minutes_ago % 5


def replicas(minutes_ago: int) -> float:
    return 6 if 280 < minutes_ago <= 305 else 3


# The episodes the defaults (above 100 for 5 min; not draining 15 min above 20) must find,
# as (kind, start minutes ago, end minutes ago or None, peak).
EXPECTED_EPISODES = [
    ("Above 100", 300, 288, 160.0),
    ("Not draining (15 min)", 120, 89, 45.0),
    ("Above 100", 7, None, 110.0),
]


def openmetrics(end: datetime) -> str:
    """The history as OpenMetrics text (timestamps in seconds), as promtool wants it."""
    minutes = range(HOURS * 60, -1, -1)

    def at(m: int) -> float:
        return (end - timedelta(minutes=m)).timestamp()

    hpa = 'horizontalpodautoscaler="ai-agents-worker-hpa"'
    gauges = {
        'celery_queue_length{queue_name="celery"}': queue_length,
        'celery_queue_length{queue_name="enhancement:queue"}': lambda m: API_QUEUE_LENGTH,
        'kube_deployment_status_replicas_available{deployment="ai-agents-worker"}': replicas,
        f"kube_horizontalpodautoscaler_status_current_replicas{{{hpa}}}": replicas,
        f"kube_horizontalpodautoscaler_spec_min_replicas{{{hpa}}}": lambda m: HPA_MIN,
        f"kube_horizontalpodautoscaler_spec_max_replicas{{{hpa}}}": lambda m: HPA_MAX,
    }
    lines = []
    for series, value in gauges.items():
        family = series.split("{")[0]
        if f"# TYPE {family} gauge" not in lines:  # once per family, its series together
            lines.append(f"# TYPE {family} gauge")
        lines += [f"{series} {value(m)} {at(m):.0f}" for m in minutes]
    lines.append("# TYPE enhancement_requests counter")
    for tenant, per_min in RATE_PER_MIN.items():
        for status, factor in (("received", 1), ("queued", 5)):
            series = f'enhancement_requests_total{{tenant_id="{tenant}",status="{status}"}}'
            lines += [
                f"{series} {per_min * factor * (HOURS * 60 - m)} {at(m):.0f}" for m in minutes
            ]
    lines.append("# EOF")
    return "\n".join(lines) + "\n"


@dataclass
class RunningPrometheus:
    url: str
    process: subprocess.Popen
    directory: Path

    def stop(self) -> None:
        if self.process.poll() is None:
            stop_process(self.process)

    def close(self) -> None:
        self.stop()
        shutil.rmtree(self.directory, ignore_errors=True)


def start_prometheus(end: datetime) -> RunningPrometheus:
    """Backfill the history above with promtool into a temp dir and serve it."""
    return serve_openmetrics(openmetrics(end))


def serve_openmetrics(text: str) -> RunningPrometheus:
    """Backfill OpenMetrics text (timestamps in seconds, a final # EOF) and serve it."""
    directory = Path(tempfile.mkdtemp(prefix="queue-prom-"))
    (directory / "history.om").write_text(text)
    subprocess.run(
        [
            "timeout",
            "120",
            "promtool",
            "tsdb",
            "create-blocks-from",
            "openmetrics",
            str(directory / "history.om"),
            str(directory / "data"),
        ],
        check=True,
        capture_output=True,
    )
    return _serve(directory)


def start_demo_prometheus(now: datetime, days: float) -> RunningPrometheus:
    """The demo's own history (demo.backfill_prometheus: demo.fleet's episodes) served."""
    directory = Path(tempfile.mkdtemp(prefix="queue-prom-demo-"))
    backfill(directory / "data", days=days, now=now)
    return _serve(directory)


def _serve(directory: Path) -> RunningPrometheus:
    """Serve directory/data on a free loopback port with a long retention (backfilled data)."""
    (directory / "prometheus.yml").write_text("global:\n  scrape_interval: 60s\n")
    port = free_port()
    process = subprocess.Popen(
        [
            "prometheus",
            f"--config.file={directory / 'prometheus.yml'}",
            f"--storage.tsdb.path={directory / 'data'}",
            "--storage.tsdb.retention.time=3650d",
            f"--web.listen-address=127.0.0.1:{port}",
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    running = RunningPrometheus(f"http://127.0.0.1:{port}", process, directory)
    try:
        wait_for_http(f"{running.url}/-/ready", seconds=60)
    except RuntimeError:
        running.close()
        raise
    return running
