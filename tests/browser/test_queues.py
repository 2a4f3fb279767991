"""The Queues page in Chromium: live tiles that refresh themselves, the history chart, and a
plain message when Prometheus goes away mid-session."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
import redis

from demo import fleet
from demo.seed_redis import celery_app, seed, send_enhancement
from services import queues
from tests.conftest import screenshot, start_app, stop_process, visit, wait_rendered
from tests.queue_history import start_demo_prometheus

pytestmark = pytest.mark.browser


def tile(page, label: str) -> str:
    metric = page.locator('[data-testid="stMetric"]').filter(has_text=label).first
    return metric.locator('[data-testid="stMetricValue"]').inner_text()


def test_live_tiles_history_and_prometheus_going_away(browser, fleet_db, redis_url, broker_url):
    now = datetime.now(UTC).replace(second=0, microsecond=0)
    client = redis.Redis.from_url(redis_url)
    depths = seed(client, broker_url, now)
    celery_depth = sum(n for key, n in depths.items() if key.startswith("celery"))
    prometheus = start_demo_prometheus(now, days=8)  # demo.fleet's queue episodes
    app = start_app(
        {
            "DATABASE_URL": fleet_db.reader_url,
            "ADMIN_DATABASE_URL": fleet_db.admin_url,
            "REDIS_URL": redis_url,
            "CELERY_BROKER_URL": broker_url,
            "PROMETHEUS_URL": prometheus.url,
        }
    )
    page = browser.new_page(viewport={"width": 1500, "height": 1500})
    try:
        visit(page, app, "queues?history=7d")
        wait_rendered(page, timeout_ms=60000)
        assert page.locator("h1").first.inner_text() == "Queues and scaling"
        assert tile(page, "Jobs in celery") == str(celery_depth)
        assert tile(page, "Processing") == "Running"
        oldest = tile(page, "Oldest in enhancement:queue")  # from its created_at: 47 min ago
        assert oldest.endswith(" min") and 47 <= int(oldest.split()[0]) <= 49
        charts = page.locator('[data-testid="stPlotlyChart"]')
        assert charts.count() >= 4  # queue + workers history, arrivals, service times
        assert "Queue length" in charts.first.inner_text()
        assert "Traceback" not in page.content()
        screenshot(page, "queues")  # the live tiles and the history charts
        page.set_viewport_size({"width": 1500, "height": 5200})
        page.wait_for_timeout(1500)
        screenshot(page, "queues-full")  # the proposal and the cost calculator too
        page.set_viewport_size({"width": 1500, "height": 1500})

        page.get_by_text("Check it yourself (redis-cli)").click()
        commands = page.locator('[data-testid="stCode"]').first.inner_text()
        assert "redis-cli -h redis -n " + broker_url.rsplit("/", 1)[1] + " LLEN celery" in commands
        assert fleet.FAKE_KEY_MARKER not in page.content()
        page.wait_for_timeout(800)  # the expander opens with an animation
        screenshot(page, "queues-commands")

        # The tiles refresh themselves (st.fragment every 15 s), without reloading the page.
        burst = celery_app(broker_url)
        for i in range(30):
            send_enhancement(burst, {"tenant_id": "t-burst", "job_id": str(i)})
        burst.close()
        client.set(queues.PAUSE_KEY, "true")
        page.wait_for_function(
            """expected => [...document.querySelectorAll('[data-testid="stMetric"]')]
                 .some(m => m.innerText.includes('Jobs in celery')
                            && m.innerText.includes(expected))""",
            arg=str(celery_depth + 30),
            timeout=60000,
        )
        # The fragment's elements repaint one by one: wait for the pause tile too.
        page.wait_for_function(
            """() => [...document.querySelectorAll('[data-testid="stMetric"]')]
                 .some(m => m.innerText.includes('Processing')
                            && m.innerText.includes('Paused'))""",
            timeout=30000,
        )
        assert tile(page, "Processing") == "Paused"
        page.get_by_text("so the queue will not drain").first.wait_for(timeout=10000)

        # Prometheus stops; the next history range the user picks says so, the rest stays.
        prometheus.stop()
        page.get_by_role("radiogroup", name="Range").get_by_role("radio", name="6h").click()
        page.get_by_text("Prometheus is not available").first.wait_for(timeout=30000)
        wait_rendered(page, timeout_ms=60000)
        assert tile(page, "Jobs in celery") == str(celery_depth + 30)
        page.get_by_text("Scaling proposal").first.wait_for(timeout=10000)
        assert "Traceback" not in page.content()
        screenshot(page, "queues-prometheus-down")
    finally:
        page.close()
        stop_process(app.process)
        prometheus.close()
