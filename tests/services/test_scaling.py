"""The scaling chain without the page: measured arrivals and service times in, the workers
proposed, their simulated check, the costs, each tenant's share and the client's text out."""

from __future__ import annotations

from datetime import UTC, datetime

import pandas as pd
import pytest

from services import capacity, costs, scaling

pytestmark = pytest.mark.unit

SINCE = datetime(2025, 11, 1, tzinfo=UTC)
WINDOW = capacity.Window(SINCE, datetime(2025, 11, 29, tzinfo=UTC))  # 28 days
PRICES = costs.Prices(worker_hour_usd=0.05, llm_per_enhancement_usd=0.20, hours_per_month=720)
CLUSTER = costs.Cluster("production", "ai-agents-worker", "ai-agents-worker-hpa", 2, 10, 3)
WHEN = datetime(2025, 11, 29, 9, 15, tzinfo=UTC)
TARGET = scaling.Targets(wait_minutes=5, share_pct=95)


def _profile(peak_per_hour: float) -> pd.DataFrame:
    """Two tenants: Acme's Tuesday 09:00 peak, Beta a quiet Wednesday hour (as arrival_profile
    gives them: per weekday-hour averages, finished runs and their worker time)."""
    return pd.DataFrame(
        {
            "tenant_id": ["acme", "acme", "beta"],
            "name": ["Acme", "Acme", "Beta"],
            "dow": [2, 2, 3],
            "hour": [9, 10, 9],
            "arrivals": [peak_per_hour * 4, 40, 20],
            "hours": [4, 4, 4],
            "per_hour": [peak_per_hour, 10.0, 5.0],
            "finished": [900, 600, 300],
            "busy_s": [36_000.0, 24_000.0, 12_000.0],  # 40 s a run
        }
    )


def _measured(peak_per_hour: float = 1500, mean_s: float = 40.0) -> scaling.Measurements:
    histogram = pd.DataFrame({"bucket_s": [35, 40], "runs": [900, 900]})
    service = capacity.ServiceTimes(1800, mean_s, 4.0, 40, 44, 45, 47, histogram)
    return scaling.Measurements(WINDOW, _profile(peak_per_hour), service)


def _plan(measured: scaling.Measurements, targets: scaling.Targets = TARGET, **kw):
    return scaling.plan(
        measured, targets, CLUSTER, PRICES, 3.0, "eng@example.com", WHEN, "acme", **kw
    )


def test_the_proposal_is_the_fewest_workers_that_meet_the_target_at_the_peak():
    result = _plan(_measured(1500, 40.0))
    proposal = result.proposal
    # 1500 jobs/h x 40 s = 16.7 Erlangs on 4 slots a worker: 5 workers (20 slots) start 95%
    # within 5 minutes, 4 (16 slots) cannot even keep up
    assert (proposal.peak_dow, proposal.peak_hour, proposal.peak_per_hour) == (2, 9, 1500)
    assert proposal.workers_peak == 5
    assert (
        capacity.share_within(20, 1500, 40, 300) >= 0.95 > capacity.share_within(16, 1500, 40, 300)
    )
    # the median hour of the week has no arrivals: the floor of 2 ([capacity] min_workers)
    assert proposal.workers_min == 2
    assert proposal.concurrency == 4 and proposal.wait_s == 300 and proposal.share == 0.95
    assert 0.95 <= result.simulated <= 1  # the simulated peak hour meets the target too
    assert result.load["per_hour"].sum() == pytest.approx(1515)


def test_a_stricter_target_or_a_new_client_needs_more_workers():
    base = _plan(_measured(1500, 40.0)).proposal.workers_peak
    strict = _plan(_measured(1500, 40.0), scaling.Targets(0.5, 99.9)).proposal
    assert strict.workers_peak > base
    bigger = _plan(_measured(1500, 40.0), scaling.Targets(5, 95, extra_per_day=200)).proposal
    assert bigger.peak_per_hour > 1500 and bigger.workers_peak > base
    assert bigger.extra_per_day == 200


def test_costs_shares_and_text_follow_from_the_proposal():
    result = _plan(_measured(1500, 40.0))
    # 1800 finished runs in 28 days: 1928.6 a month at 30 days a month
    per_month = 1800 * 30 / 28
    assert result.current == costs.monthly("Current", 3.0, per_month, PRICES)
    assert result.current.workers_usd == pytest.approx(3 * 0.05 * 720)
    assert result.proposed.avg_workers == result.proposal.avg_workers
    assert result.proposed.llm_usd == pytest.approx(per_month * 0.20)
    shares = result.shares.set_index("tenant_id")
    assert shares.loc["acme", "share"] == pytest.approx(60_000 / 72_000)
    assert shares["workers_usd"].sum() == pytest.approx(result.proposed.workers_usd)
    assert result.client_line.startswith("Share of Acme: $")
    text = result.text
    assert "Prepared 2025-11-29 09:15 UTC by eng@example.com" in text
    assert "Proposed: HPA min 2 / max 5 workers (Celery concurrency 4 each)" in text
    assert "Current: HPA min 2 / max 10, 3 workers running now." in text
    assert result.client_line in text and "Beta" not in text  # only the client in focus
    assert "--replicas=5" in text


def test_the_new_client_is_priced_too():
    plain = _plan(_measured())
    bigger = _plan(_measured(), scaling.Targets(5, 95, extra_per_day=100))
    assert bigger.proposed.enhancements == pytest.approx(plain.proposed.enhancements + 100 * 30)
    assert bigger.current == plain.current


def test_summary_rows_and_assumptions_say_what_the_page_shows():
    result = _plan(_measured(1500, 40.0), simulate=lambda *args: 0.987)
    assert result.simulated == 0.987
    assert result.summary.startswith("With **5 workers** (20 Celery slots) the model starts **")
    assert "within 5 min at 83% utilisation" in result.summary
    assert result.summary.endswith(
        "gives **98.7%**. Current HPA: min 2, max 10, 3 workers running."
    )
    rows = result.worker_rows().set_index("workers")
    assert rows.index.max() == 12  # the current max of 10, and two more
    assert rows.loc[2, "note"] == "proposed min" and rows.loc[5, "note"] == "proposed max"
    assert rows.loc[10, "note"] == "current max"
    assert rows.loc[4, "mean_wait_s"] == "never drains"
    assert rows.loc[6, "quantile_wait_s"].endswith(" s")
    assert "coefficient of variation 0.10 vs 1" in result.assumptions()
    assert "a new client of 0 tickets per day" in result.assumptions()
    assert result.arrival_choices() == {"": "All tenants", "acme": "Acme", "beta": "Beta"}
    assert result.arrivals("beta")["per_hour"].sum() == 5


def test_no_worker_count_is_enough_and_nothing_is_simulated():
    def never(*args):
        raise AssertionError("no proposal to simulate")

    result = _plan(_measured(10**6, 40.0), simulate=never)
    assert result.proposal.workers_peak is None and result.simulated is None
    assert result.summary is None
    assert "No worker count within the configured maximum reaches the target." in result.text


def test_nothing_to_plan_without_finished_runs():
    empty = capacity.ServiceTimes(0, None, None, None, None, None, None, pd.DataFrame())
    measured = scaling.Measurements(WINDOW, _profile(10), empty)
    assert not measured.measurable
    with pytest.raises(ValueError):
        _plan(measured)


def test_the_cluster_and_the_workers_to_price():
    unknown = scaling.cluster(None)
    assert (unknown.hpa_min, unknown.hpa_max, unknown.replicas) == (None, None, None)
    assert unknown.hpa == "ai-agents-worker-hpa" and unknown.namespace == "production"
    now = scaling.cluster({"hpa_min": 2.0, "hpa_max": 10.0, "replicas_available": 3.0})
    assert (now.hpa_min, now.hpa_max, now.replicas) == (2, 10, 3)
    assert scaling.default_workers(4.26, now) == 4.3
    assert scaling.default_workers(None, now) == 3
    assert scaling.default_workers(None, unknown) == 1
