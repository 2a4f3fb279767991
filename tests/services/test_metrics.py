"""services.metrics against a real Prometheus backfilled with a known history."""

from __future__ import annotations

import socket
import time
from datetime import UTC, datetime

import pandas as pd
import pytest

from services import metrics
from services.errors import QueryTimeout, SourceUnavailable
from tests.conftest import free_port, use_config
from tests.queue_history import (
    API_QUEUE_LENGTH,
    HPA_MAX,
    HPA_MIN,
    RATE_PER_MIN,
    queue_length,
    start_prometheus,
)


def _minute_now() -> datetime:
    return pd.Timestamp(datetime.now(UTC)).floor("60s").to_pydatetime()


END = _minute_now()


@pytest.fixture(scope="module")
def prometheus():
    # The history must end when this module runs, not when the suite was collected: instant
    # queries (metrics.current) only look 5 minutes back.
    global END
    END = _minute_now()
    running = start_prometheus(END)
    yield running
    running.close()


@pytest.fixture
def use_prometheus(prometheus, monkeypatch):
    monkeypatch.setenv("PROMETHEUS_URL", prometheus.url)
    return prometheus


def test_history_reads_every_configured_series(use_prometheus):
    history = metrics.history("6h", END)
    frame = history.frame
    assert history.step_s == 60
    assert list(frame.columns) == list(metrics.SERIES)
    assert frame.index[-1] == pd.Timestamp(END) and len(frame) == 6 * 60 + 1
    assert str(frame.index.tz) == "UTC"
    # the backfilled queue, sample for sample
    expected = [queue_length(m) for m in range(6 * 60, -1, -1)]
    assert frame["queue_length"].tolist() == pytest.approx(expected)
    assert frame["queue_length"].max() == 160
    assert set(frame["api_queue_length"]) == {API_QUEUE_LENGTH}  # its own series, not summed in
    assert set(frame["hpa_min"].dropna()) == {HPA_MIN}
    assert set(frame["hpa_max"].dropna()) == {HPA_MAX}
    assert set(frame["replicas_available"].dropna()) == {3, 6}
    assert (frame["hpa_current"] == frame["replicas_available"]).all()
    # only status="received" counts, summed over tenants, per minute
    assert frame["request_rate"].iloc[-30:].to_numpy() == pytest.approx(
        sum(RATE_PER_MIN.values()), rel=0.02
    )
    # celery_worker_up was never exported: reported, not fatal
    assert history.missing == {"workers_up": "no data in this range"}
    assert history.mean("workers_up") is None
    assert history.mean("hpa_max") == HPA_MAX


def test_every_range_stays_under_the_point_limit(use_prometheus):
    for key, span in metrics.history_ranges().items():
        history = metrics.history(key, END)
        assert len(history.frame) <= 11_000
        assert history.frame.index[-1] - history.frame.index[0] == span
    week = metrics.history("7d", END)
    assert week.frame["queue_length"].first_valid_index() >= pd.Timestamp(END) - pd.Timedelta(
        hours=26
    )  # nothing before the backfill starts


def test_current_hpa_settings(use_prometheus):
    now = metrics.current()
    assert now == {
        "hpa_min": HPA_MIN,
        "hpa_max": HPA_MAX,
        "hpa_current": 3,
        "replicas_available": 3,
    }


def test_a_rejected_query_is_reported_per_series(use_prometheus, tmp_path, monkeypatch):
    use_config(tmp_path, monkeypatch, "request_rate = '", "request_rate = 'sum(rate(oops[5m]) ")
    history = metrics.history("1h", END)
    assert history.missing["request_rate"].startswith("Prometheus rejected the query:")
    assert history.frame["queue_length"].notna().all()  # the others still arrive
    assert metrics.current(("hpa_min",)) == {"hpa_min": HPA_MIN}


@pytest.mark.unit
def test_prometheus_down_or_not_configured(monkeypatch):
    monkeypatch.delenv("PROMETHEUS_URL", raising=False)
    with pytest.raises(SourceUnavailable, match="PROMETHEUS_URL is not set"):
        metrics.history("1h", END)
    monkeypatch.setenv("PROMETHEUS_URL", f"http://127.0.0.1:{free_port()}")
    with pytest.raises(SourceUnavailable, match="Prometheus is not available: no answer"):
        metrics.current()


@pytest.mark.unit
def test_a_silent_prometheus_times_out(tmp_path, monkeypatch):
    """A port that accepts connections but never answers: QueryTimeout, within the budget."""
    use_config(tmp_path, monkeypatch, "timeout_s = 5 ", "timeout_s = 1 ")
    with socket.socket() as server:
        server.bind(("127.0.0.1", 0))
        server.listen()
        monkeypatch.setenv("PROMETHEUS_URL", f"http://127.0.0.1:{server.getsockname()[1]}")
        started = time.monotonic()
        with pytest.raises(QueryTimeout, match="Prometheus did not answer in time"):
            metrics.query("up", {}, kind="query")
        assert time.monotonic() - started < 4


@pytest.mark.parametrize(
    ("body", "said"),
    [
        (b"<html>Grafana login</html>", "not with Prometheus' JSON"),
        (b'{"status": "error", "error": "bad_data: parse error"}', "an error: bad_data"),
        (b'{"status": "success"}', "without query results"),
    ],
)
@pytest.mark.unit
def test_an_http_200_that_is_not_an_answer_says_what_was_wrong(monkeypatch, body, said):
    import threading
    from http.server import BaseHTTPRequestHandler, HTTPServer

    class NotPrometheus(BaseHTTPRequestHandler):
        def do_GET(self):  # noqa: N802 - the http.server interface
            self.send_response(200)
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args):  # keep the test output clean
            pass

    server = HTTPServer(("127.0.0.1", 0), NotPrometheus)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        monkeypatch.setenv("PROMETHEUS_URL", f"http://127.0.0.1:{server.server_port}")
        with pytest.raises(SourceUnavailable, match=said):
            metrics.current(("hpa_min",))
    finally:
        server.shutdown()
