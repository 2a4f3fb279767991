"""Capacity: Erlang C against textbook values and a simulation; arrivals and service times
measured in SQL on a database of our own; the proposal checked by simulating its peak hour."""

from __future__ import annotations

import math
from datetime import UTC, datetime, timedelta

import numpy as np
import pandas as pd
import pytest

from services import capacity

# Published Erlang C tables: offered load 10 Erlangs on 11-14 agents.
TEXTBOOK_A10 = {11: 0.6821, 12: 0.4494, 13: 0.2853, 14: 0.1741}


@pytest.mark.unit
def test_erlang_c_small_systems_in_closed_form():
    assert capacity.erlang_c(1, 0.7) == pytest.approx(0.7)  # M/M/1: P(wait) = rho
    assert capacity.erlang_c(2, 1.0) == pytest.approx(1 / 3)
    assert capacity.erlang_c(3, 2.0) == pytest.approx(4 / 9)
    assert capacity.erlang_c(4, 4.0) == 1.0  # unstable: everyone waits
    assert capacity.erlang_c(4, 0.0) == 0.0


@pytest.mark.unit
@pytest.mark.parametrize(("agents", "expected"), TEXTBOOK_A10.items())
def test_erlang_c_matches_the_published_table(agents, expected):
    assert capacity.erlang_c(agents, 10.0) == pytest.approx(expected, abs=5e-5)


@pytest.mark.unit
def test_call_centre_textbook_example():
    """360 calls per half hour, 240 s handling time, 55 agents, 20 s answer target:
    P(wait) 23.9% and service level 86.7% (the standard worked example)."""
    per_hour, handle_s = 720, 240
    assert capacity.erlang_c(55, per_hour / 3600 * handle_s) == pytest.approx(0.2387, abs=5e-4)
    assert capacity.share_within(55, per_hour, handle_s, 20) == pytest.approx(0.8668, abs=5e-4)
    mean = capacity.mean_wait_s(55, per_hour, handle_s)
    assert mean == pytest.approx(0.2387 * 240 / 7, rel=2e-3)  # C / (c mu - lambda)
    # the 86.7% quantile of the wait is the 20 s target itself
    q = capacity.share_within(55, per_hour, handle_s, 20)
    assert capacity.wait_quantile_s(55, per_hour, handle_s, q) == pytest.approx(20, rel=1e-9)


@pytest.mark.unit
@pytest.mark.parametrize(("per_hour", "mean_s", "servers"), [(720, 240, 55), (1300, 40, 16)])
def test_erlang_c_agrees_with_the_simulation(per_hour, mean_s, servers):
    wait_s = mean_s / 4
    sims = [
        capacity.simulate_waits(
            per_hour, servers, capacity.exponential_service(mean_s), 100_000, seed=seed
        )
        for seed in (11, 12, 13)
    ]
    waited = np.mean([(w > 0).mean() for w in sims])
    within = np.mean([(w <= wait_s).mean() for w in sims])
    mean_wait = np.mean([w.mean() for w in sims])
    load = per_hour / 3600 * mean_s
    assert waited == pytest.approx(capacity.erlang_c(servers, load), abs=0.015)
    assert within == pytest.approx(
        capacity.share_within(servers, per_hour, mean_s, wait_s), abs=0.015
    )
    assert mean_wait == pytest.approx(capacity.mean_wait_s(servers, per_hour, mean_s), rel=0.1)


@pytest.mark.unit
def test_worker_table_and_the_fewest_workers():
    table = capacity.worker_table(600, 40, 4, 300, 0.95, range(1, 6))
    assert table["slots"].tolist() == [4, 8, 12, 16, 20]
    # 600 jobs/h x 40 s = 6.67 Erlangs: one or two workers (4 or 8 slots) at 167% / 83% busy
    assert table["utilisation"].iloc[0] == pytest.approx(600 * 40 / 3600 / 4)
    assert math.isinf(table["mean_wait_s"].iloc[0]) and table["share_within"].iloc[0] == 0
    assert table["share_within"].is_monotonic_increasing
    needed = capacity.workers_needed(600, 40, 4, 300, 0.95, 40)
    assert table.loc[table["meets_target"], "workers"].min() == needed
    assert capacity.share_within(needed * 4, 600, 40, 300) >= 0.95
    assert capacity.share_within((needed - 1) * 4, 600, 40, 300) < 0.95
    assert capacity.workers_needed(10**6, 40, 4, 300, 0.95, 3) is None


@pytest.mark.unit
def test_what_if_adds_a_client_with_the_fleet_shape():
    load = capacity.hourly_load(
        pd.DataFrame(
            {
                "dow": [1, 1, 3],
                "hour": [10, 11, 10],
                "per_hour": [30.0, 10.0, 20.0],
            }
        )
    )
    assert len(load) == capacity.HOURS_PER_WEEK
    bigger = capacity.with_new_client(load, per_day=60)
    # 420 extra jobs a week spread like the fleet's 60: Mon 10:00 holds half of them
    assert bigger["per_hour"].sum() == pytest.approx(60 + 420)
    monday_ten = (bigger["dow"] == 1) & (bigger["hour"] == 10)
    assert bigger.loc[monday_ten, "per_hour"].item() == pytest.approx(30 + 210)


# --- Measured from the database --------------------------------------------------------------

NOW = datetime.now(UTC).replace(minute=0, second=0, microsecond=0)
WEEKS = 2


def _monday_ten(weeks_back: int) -> datetime:
    """10:00 UTC on a Monday within the last two weeks."""
    start = NOW - timedelta(days=NOW.weekday(), hours=NOW.hour) + timedelta(hours=10)
    if start >= NOW:
        start -= timedelta(days=7)
    return start - timedelta(days=7 * weeks_back)


@pytest.fixture(scope="module")
def workload_db(make_platform_db):
    """Two tenants over two weeks: Monday 10:00 is the peak (acme 150 + beta 30 per hour);
    every other weekday hour 9-17 gets 12 acme jobs. Processing times cycle 20/40/60/80 s."""
    database = make_platform_db("capacity")
    rows = []

    def add(tenant: str, when: datetime, count: int) -> None:
        for i in range(count):
            created = when + timedelta(seconds=3600 * i / count)
            busy_ms = (20 + 20 * (len(rows) % 4)) * 1000
            rows.append(
                (
                    tenant,
                    f"tk-{len(rows)}",
                    "completed",
                    created,
                    created + timedelta(milliseconds=busy_ms + 5000),
                    busy_ms,
                )
            )

    for week in range(WEEKS):
        add("acme", _monday_ten(week), 150)
        add("beta", _monday_ten(week), 30)
    for day in range(1, 7 * WEEKS):
        when = NOW - timedelta(days=day)
        for hour in range(9, 17):
            slot = when.replace(hour=hour)
            if slot.weekday() < 5 and not (slot.weekday() == 0 and hour == 10) and slot < NOW:
                add("acme", slot, 12)
    with database.superuser() as conn:
        conn.execute(
            "INSERT INTO tenant_configs (tenant_id, name, servicedesk_url,"
            " servicedesk_api_key_encrypted, webhook_signing_secret_encrypted)"
            " VALUES ('acme', 'Acme MSP', 'https://a', 'x', 'y')"
        )
        with conn.cursor().copy(
            "COPY enhancement_history (tenant_id, ticket_id, status, created_at, completed_at,"
            " processing_time_ms) FROM STDIN"
        ) as copy:
            for row in rows:
                copy.write_row(row)
        conn.execute(
            "INSERT INTO enhancement_history (tenant_id, ticket_id, status, created_at)"
            " VALUES ('beta', 'waiting', 'pending', %s)",
            (NOW - timedelta(hours=2),),
        )
    database.use()
    return database, len(rows)


def test_arrival_profile_by_tenant_weekday_and_hour(workload_db):
    _, planted = workload_db
    win = capacity.window(NOW + timedelta(minutes=30), days=7 * WEEKS)
    profile = capacity.arrival_profile(win, "UTC")
    assert profile["arrivals"].sum() == planted + 1  # the pending run arrived too
    peak = profile[(profile["dow"] == 1) & (profile["hour"] == 10)].set_index("tenant_id")
    assert peak.loc["acme", "per_hour"] == pytest.approx(150)
    assert peak.loc["beta", "per_hour"] == pytest.approx(30)
    assert peak.loc["acme", "name"] == "Acme MSP"
    assert peak.loc["beta", "name"] == "beta"  # no configuration row: the id stands in
    assert set(profile["hours"]) == {WEEKS}  # every weekday-hour occurs once a week

    load = capacity.hourly_load(profile)
    busiest = load.loc[load["per_hour"].idxmax()]
    assert (busiest["dow"], busiest["hour"], busiest["per_hour"]) == (1, 10, 180)
    peaks = capacity.tenant_peaks(profile, win.days).set_index("tenant_id")
    assert peaks.loc["beta", "peak"] == "Mon 10:00-11:00"
    assert peaks.loc["beta", "per_day"] == pytest.approx((30 * WEEKS + 1) / (7 * WEEKS))


def test_the_window_starts_where_the_data_starts(workload_db):
    database, _ = workload_db
    with database.superuser() as conn:
        first = conn.execute(
            "SELECT date_trunc('hour', min(created_at)) FROM enhancement_history"
        ).fetchone()[0]
    now = NOW + timedelta(minutes=30)
    win = capacity.measured_window(now, days=28)  # two weeks of data in a four-week window
    assert win.since == first and win.until == NOW
    profile = capacity.arrival_profile(win, "UTC")
    peak = profile[(profile["dow"] == 1) & (profile["hour"] == 10)].set_index("tenant_id")
    assert peak.loc["acme", "per_hour"] == pytest.approx(150)  # not diluted to 75
    # A window that the data covers from its first hour is not shortened. Whether the last 7
    # days start inside the planted business hours depends on the time of day the test runs,
    # so the expected start is read from the data.
    week = capacity.window(now, days=7)
    with database.superuser() as conn:
        first_in_week = conn.execute(
            "SELECT date_trunc('hour', min(created_at)) FROM enhancement_history"
            " WHERE created_at >= %s",
            (week.since,),
        ).fetchone()[0]
    expected_since = week.since if first_in_week <= week.since else first_in_week
    assert capacity.measured_window(now, days=7) == capacity.Window(expected_since, week.until)


def test_service_times_and_usage_from_finished_runs(workload_db):
    win = capacity.window(NOW + timedelta(minutes=30), days=7 * WEEKS)
    service = capacity.service_times(win, time_limit_s=120)
    _, planted = workload_db
    assert service.runs == planted  # the pending run took no worker time
    assert service.mean_s == pytest.approx(50, abs=0.5)  # 20/40/60/80 s in turn
    assert service.p50_s == pytest.approx(50, abs=10)
    assert service.p99_s == pytest.approx(80)
    assert service.cv == pytest.approx(0.447, abs=0.01)  # far below the exponential's 1
    hist = service.histogram.set_index("bucket_s")["runs"]
    assert hist.index.tolist() == [20, 40, 60, 80] and hist.sum() == planted

    usage = capacity.tenant_usage(capacity.arrival_profile(win, "UTC")).set_index("tenant_id")
    assert usage["runs"].sum() == planted
    assert usage.loc["beta", "runs"] == 30 * WEEKS
    assert usage["busy_s"].sum() == pytest.approx(service.mean_s * planted, rel=1e-6)


def test_the_proposal_meets_its_target_in_a_simulation_of_the_peak_hour(workload_db):
    win = capacity.window(NOW + timedelta(minutes=30), days=7 * WEEKS)
    load = capacity.hourly_load(capacity.arrival_profile(win, "UTC"))
    service = capacity.service_times(win, time_limit_s=120)
    # a tight target so the answer is more than one worker: 95% start within 10 seconds
    proposal = capacity.propose(load, service.mean_s, 4, 10, 0.95, 40)
    assert proposal.peak_label == "Mon 10:00-11:00" and proposal.peak_per_hour == 180
    workers = proposal.workers_peak
    assert workers and workers > 1
    assert proposal.workers_min <= workers and proposal.workers_min >= 1
    assert proposal.workers_min <= proposal.avg_workers <= workers

    def simulated(count: int, sampler) -> float:
        waits = capacity.simulate_waits(180, count * 4, sampler, 60_000, seed=5)
        return float((waits <= 10).mean())

    exponential = capacity.exponential_service(service.mean_s)
    at_proposal = simulated(workers, exponential)
    one_fewer = simulated(workers - 1, exponential)
    table = proposal.table.set_index("workers")["share_within"]
    assert at_proposal == pytest.approx(table[workers], abs=0.02)
    assert one_fewer == pytest.approx(table[workers - 1], abs=0.02)
    assert at_proposal >= 0.95 - 0.02 and one_fewer < 0.95
    # The measured times vary less than exponential ones, so the model errs on the safe side.
    measured = capacity.simulated_share_within(180, workers * 4, service.histogram, 10, 60_000, 5)
    assert measured >= at_proposal - 0.01

    bigger = capacity.propose(load, service.mean_s, 4, 10, 0.95, 40, extra_per_day=500)
    assert bigger.peak_per_hour > proposal.peak_per_hour
    assert bigger.workers_peak >= workers


@pytest.mark.unit
def test_the_proposal_never_goes_below_the_floor():
    quiet = capacity.hourly_load(pd.DataFrame({"dow": [1], "hour": [9], "per_hour": [5.0]}))
    alone = capacity.propose(quiet, 40, 4, 300, 0.95, 40)
    assert (alone.workers_min, alone.workers_peak, alone.avg_workers) == (1, 1, 1)
    paired = capacity.propose(quiet, 40, 4, 300, 0.95, 40, floor=2)
    assert (paired.workers_min, paired.workers_peak, paired.avg_workers) == (2, 2, 2)
    hopeless = capacity.propose(quiet.assign(per_hour=10**6), 40, 4, 300, 0.95, 5, floor=2)
    assert hopeless.workers_peak is None and hopeless.workers_min == 5


@pytest.mark.unit
def test_the_service_summary_from_counts_equals_the_one_over_the_runs():
    rng = np.random.default_rng(3)
    ms = np.concatenate([rng.integers(2_000, 90_000, 5_000), [130_000, 130_000, 7]])
    values, runs = np.unique(ms, return_counts=True)
    service = capacity.service_from_counts(pd.DataFrame({"ms": values, "runs": runs}), 120)
    assert service.runs == len(ms)
    assert service.mean_s == pytest.approx(ms.mean() / 1000, rel=1e-12)
    assert service.sd_s == pytest.approx(ms.std(ddof=1) / 1000, rel=1e-12)  # stddev_samp
    for q, got in ((50, service.p50_s), (90, service.p90_s), (95, service.p95_s)):
        assert got == pytest.approx(np.percentile(ms, q) / 1000, rel=1e-12)  # percentile_cont
    assert service.p99_s == pytest.approx(np.percentile(ms, 99) / 1000, rel=1e-12)
    hist = service.histogram.set_index("bucket_s")["runs"]
    assert hist.sum() == len(ms) and hist.loc[120] == 2  # over the time limit: the last bucket
    assert hist.loc[0] == (ms < 5_000).sum()


@pytest.mark.unit
def test_no_finished_runs_summarise_to_nothing():
    service = capacity.service_from_counts(pd.DataFrame({"ms": [], "runs": []}), 120)
    assert (service.runs, service.mean_s, service.p95_s, len(service.histogram)) == (
        0,
        None,
        None,
        0,
    )
