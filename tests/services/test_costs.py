"""Cost arithmetic, tenant shares and the proposal text."""

from __future__ import annotations

from datetime import UTC, datetime

import pandas as pd
import pytest

from services import capacity, costs

pytestmark = pytest.mark.unit

PRICES = costs.Prices(worker_hour_usd=0.05, llm_per_enhancement_usd=0.20, hours_per_month=720)


def test_defaults_come_from_the_contract():
    assert costs.Prices.defaults() == PRICES
    assert PRICES.days_per_month == 30


def test_monthly_totals_match_the_procedures_example():
    # "10 workers * $0.05/hour = $0.50/hour = $360/month"
    ten = costs.monthly("Current", 10, 0, PRICES)
    assert ten.workers_usd == pytest.approx(360)
    assert ten.total_usd == pytest.approx(360)
    busy = costs.monthly("Proposed", 4.5, 12_000, PRICES)
    assert busy.workers_usd == pytest.approx(4.5 * 0.05 * 720)
    assert busy.llm_usd == pytest.approx(2400)
    assert busy.total_usd == pytest.approx(162 + 2400)


def test_comparison_has_the_difference():
    table = costs.comparison(
        costs.monthly("Current", 10, 9000, PRICES), costs.monthly("Proposed", 6, 9300, PRICES)
    ).set_index("")
    assert table.index.tolist() == ["Current", "Proposed", "Difference"]
    assert table.loc["Difference", "Workers $"] == pytest.approx(-4 * 36)
    assert table.loc["Difference", "LLM $"] == pytest.approx(300 * 0.2)
    assert table.loc["Difference", "Total $"] == pytest.approx(-144 + 60)
    assert table.loc["Difference", "Average workers"] == pytest.approx(-4)


def test_tenant_shares_split_the_worker_bill_by_worker_seconds():
    usage = pd.DataFrame(
        {
            "tenant_id": ["a", "b", "c"],
            "name": ["A", "B", "C"],
            "runs": [30, 10, 0],
            "busy_s": [1200.0, 400.0, 0.0],
        }
    )
    shares = costs.tenant_shares(
        usage, window_days=3, workers_usd=100, concurrency=4, prices=PRICES
    ).set_index("tenant_id")
    assert shares.loc["a", "share"] == pytest.approx(0.75)
    assert shares.loc["a", "workers_usd"] == pytest.approx(75)
    assert shares.loc["a", "enhancements"] == pytest.approx(300)  # 30 in 3 days -> 30 days
    assert shares.loc["a", "worker_s"] == pytest.approx(1200 / 4 * 10)
    assert shares.loc["a", "llm_usd"] == pytest.approx(60)
    assert shares.loc["a", "total_usd"] == pytest.approx(135)
    assert shares.loc["c", "total_usd"] == 0
    assert shares["workers_usd"].sum() == pytest.approx(100)
    assert shares.index.tolist() == ["a", "b", "c"]  # most expensive first
    assert costs.client_line(shares.reset_index(), "a") == (
        "Share of A: $135.00 per month (workers $75.00, LLM $60.00, 300 enhancements)."
    )
    assert costs.client_line(shares.reset_index(), "nobody") is None
    assert costs.client_line(shares.reset_index(), None) is None
    idle = costs.tenant_shares(usage.assign(busy_s=0.0), 3, 100, 4, PRICES)
    assert (idle["share"] == 0).all() and (idle["workers_usd"] == 0).all()


def _proposal(per_hour: float, max_workers: int = 40) -> capacity.Proposal:
    load = capacity.hourly_load(
        pd.DataFrame(
            {"dow": [2, 2, 3], "hour": [9, 10, 9], "per_hour": [per_hour, per_hour / 2, 20.0]}
        )
    )
    return capacity.propose(load, 45.0, 4, 300, 0.95, max_workers)


CLUSTER = costs.Cluster(
    "production",
    "ai-agents-worker",
    "ai-agents-worker-hpa",
    hpa_min=2,
    hpa_max=10,
    replicas=3,
)


def test_proposal_text_with_numbers_and_kubectl_commands():
    proposal = _proposal(1500)
    current = costs.monthly("Current", 3, 9000, PRICES)
    proposed = costs.monthly("Proposed", proposal.avg_workers, 9000, PRICES)
    text = costs.proposal_text(
        proposal,
        CLUSTER,
        current,
        proposed,
        "eng@example.com",
        datetime(2025, 11, 26, 10, 30, tzinfo=UTC),
        client_line="Share of Acme: $12.00 per month",
    )
    top, low = proposal.workers_peak, proposal.workers_min
    assert top and top > low >= 1
    assert "Prepared 2025-11-26 10:30 UTC by eng@example.com" in text
    assert "Target: 95% of enhancement jobs start within 5 minutes of arriving." in text
    assert "Busiest hour: Tue 09:00-10:00 UTC, 1500 jobs per hour" in text
    assert "Current: HPA min 2 / max 10, 3 workers running now." in text
    assert f"Proposed: HPA min {low} / max {top} workers (Celery concurrency 4 each)" in text
    patch = (
        "kubectl patch hpa ai-agents-worker-hpa -n production --type merge -p "
        f'\'{{"spec":{{"minReplicas":{low},"maxReplicas":{top}}}}}\''
    )
    assert patch in text
    assert (f"kubectl scale deployment/ai-agents-worker -n production --replicas={top}") in text
    assert f"{current.workers_usd:,.2f}" in text and f"{proposed.total_usd:,.2f}" in text
    assert f"Difference per month: {proposed.total_usd - current.total_usd:+,.2f}" in text
    assert "Share of Acme: $12.00 per month" in text
    assert "Assumptions:" in text


def test_proposal_text_when_no_worker_count_is_enough():
    proposal = _proposal(100_000, max_workers=3)
    assert proposal.workers_peak is None
    cost = costs.monthly("Current", 3, 0, PRICES)
    unknown = costs.Cluster("ns", "dep", "hpa", None, None, None)
    text = costs.proposal_text(
        proposal, unknown, cost, cost, "eng@example.com", datetime(2025, 11, 26, tzinfo=UTC)
    )
    assert "No worker count within the configured maximum reaches the target." in text
    assert "HPA min unknown / max unknown, unknown workers running now." in text
    assert "kubectl" not in text and costs.kubectl_commands(proposal, unknown) == []
