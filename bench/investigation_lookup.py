"""Investigation lookup timings: the database and Redis work on the 1M-row demo database
(read-only), and the page's own rendering on a small scratch database (the page writes an access
record, and the demo database must not be written to).

    source .stack/env && .venv/bin/python bench/investigation_lookup.py 2>/dev/null

Prints medians over several runs. Target: a lookup renders in under 1 s.
"""

from __future__ import annotations

import os
import statistics
import sys
import time
import uuid
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import psycopg  # noqa: E402
from sqlalchemy import text  # noqa: E402
from streamlit.testing.v1 import AppTest  # noqa: E402

from demo import dbsetup, fleet  # noqa: E402
from demo.generate import generate  # noqa: E402
from services import db  # noqa: E402
from services.investigation import lookup, narrative  # noqa: E402

RUNS = 9
DEMO_DB = "aiagents_demo"
PURPOSE = "SUP-1 benchmark"


def median_of(action: Callable[[], object]) -> float:
    samples = []
    for _ in range(RUNS):
        start = time.perf_counter()
        action()
        samples.append(time.perf_counter() - start)
    return statistics.median(samples)


def full_lookup(tenant_id: str, ticket_id: str) -> None:
    """Everything the page computes for one ticket: lookup, trace link, commands, summary."""
    found = lookup.lookup(tenant_id, ticket_id, reveal=True)
    link = narrative.jaeger_link(
        tenant_id, ticket_id, *narrative.trace_window(found.runs, found.read_at)
    )
    narrative.commands(found)
    narrative.root_cause(found)
    narrative.summary(found, "bench", "SUP-1", link, found.read_at)


def role_url(role: str, password_var: str, database: str) -> str:
    return (
        f"postgresql://{role}:{os.environ[password_var]}@127.0.0.1:{os.environ['PGPORT']}"
        f"/{database}"
    )


def use_database(database: str) -> None:
    os.environ["DATABASE_URL"] = role_url("dashboard_reader", "STACK_READER_PASSWORD", database)
    os.environ["ADMIN_DATABASE_URL"] = role_url("dashboard_admin", "STACK_ADMIN_PASSWORD", database)
    db.dispose_engines()


def plan_uses(tenant_id: str, ticket_id: str) -> str:
    """The index the lookup's main query uses (EXPLAIN, read-only)."""
    with db.tenant_scope(tenant_id) as conn:
        plan = (
            conn.execute(
                text("EXPLAIN " + lookup.RUNS_SQL),
                {
                    "tenant": tenant_id,
                    "ticket": ticket_id,
                    "reveal": False,
                    "limit": 50,
                    "stuck_s": 120,
                },
            )
            .scalars()
            .all()
        )
    used = [line.split(" using ")[1].split(" ")[0] for line in plan if " using " in line]
    return ", ".join(used) or "no index"


def demo_database() -> None:
    use_database(DEMO_DB)
    with db.admin_scope() as conn:
        rows = conn.execute(text("SELECT count(*) FROM enhancement_history")).scalar_one()
        busiest = conn.execute(
            text(
                "SELECT tenant_id, ticket_id FROM enhancement_history WHERE tenant_id = :t"
                " GROUP BY 1, 2 ORDER BY count(*) DESC, ticket_id LIMIT 1"
            ),
            {"t": fleet.GLOBEX},
        ).one()
    print(f"{DEMO_DB}: {rows:,} enhancement_history rows; {RUNS} runs each, medians")
    print(f"{'lookup (SQL + Redis + summary)':<46}{'median':>9}{'first':>9}  index")
    cases = [
        ("failed, SDP timeout", fleet.ACME, fleet.TICKET_SDP_TIMEOUT),
        ("3 runs (re-run)", fleet.ACME, fleet.TICKET_RERUN),
        ("low rated, with feedback", fleet.ACME, fleet.TICKET_LOW_RATED),
        ("queued in Redis", fleet.ACME, fleet.TICKET_QUEUED),
        ("stuck pending", fleet.ACME, fleet.TICKET_STALE_PENDING),
        (f"busiest ticket of {fleet.GLOBEX}", busiest.tenant_id, busiest.ticket_id),
        ("not found", fleet.ACME, "99999999"),
    ]
    for label, tenant_id, ticket_id in cases:
        start = time.perf_counter()
        full_lookup(tenant_id, ticket_id)
        first = time.perf_counter() - start
        median = median_of(lambda t=tenant_id, k=ticket_id: full_lookup(t, k))
        print(f"{label:<46}{median:>8.3f}s{first:>8.3f}s  {plan_uses(tenant_id, ticket_id)}")
    now = datetime.now(UTC)
    print(f"{'find a ticket (search)':<58}{'median':>9}")
    for label, days, statuses, needle in (
        ("failed, 24h", 1, ["failed"], ""),
        ("all statuses, 30d", 30, [], ""),
        ("failed, 30d, error text 'timeout'", 30, ["failed"], "timeout"),
        ("stuck, 30d", 30, ["stuck"], ""),
        ("all statuses, 30d, text matching nothing", 30, [], "zzzz-no-match"),
    ):
        for tenant_id in (fleet.ACME, fleet.GLOBEX):
            median = median_of(
                lambda t=tenant_id, d=days, s=statuses, n=needle: lookup.search_runs(
                    t, now - timedelta(days=d), now, s, n
                )
            )
            print(f"{label + ' · ' + tenant_id:<58}{median:>8.3f}s")


def page_render() -> None:
    """The page script itself (AppTest), on a scratch database of the demo fleet at small scale."""
    name = f"bench_investigation_{uuid.uuid4().hex[:6]}"
    dbsetup.prepare(name)
    try:
        with psycopg.connect(
            dbname=name,
            host=os.environ["PGHOST"],
            port=os.environ["PGPORT"],
            user="postgres",
            autocommit=True,
        ) as conn:
            generate(conn, days=8, scale=0.25)
        use_database(name)
        print(f"\npage script on a scratch database ({name}); {RUNS} runs each, medians")
        print(f"{'page':<46}{'first run':>10}{'rerun':>9}{'lookup alone':>14}")
        for label, ticket in (
            ("3 runs (re-run)", fleet.TICKET_RERUN),
            ("low rated, with feedback", fleet.TICKET_LOW_RATED),
        ):
            firsts, reruns = [], []
            for _ in range(RUNS):
                at = AppTest.from_file(str(ROOT / "app.py"), default_timeout=60)
                at.query_params["tenant"] = fleet.ACME
                at.query_params["ticket"] = ticket
                at.session_state["purpose"] = PURPOSE
                at.run()
                start = time.perf_counter()
                at.switch_page("views/investigation.py").run()  # lookup + access record
                firsts.append(time.perf_counter() - start)
                if at.exception or not at.text_area:  # the summary is the page's last element
                    raise SystemExit(f"page failed: {at.exception or [e.value for e in at.error]}")
                start = time.perf_counter()
                at.run()  # an interaction: the lookup runs again, already recorded
                reruns.append(time.perf_counter() - start)
            alone = median_of(lambda k=ticket: full_lookup(fleet.ACME, k))
            print(
                f"{label:<46}{statistics.median(firsts):>9.3f}s"
                f"{statistics.median(reruns):>8.3f}s{alone:>13.3f}s"
            )
    finally:
        db.dispose_engines()
        dbsetup.drop_database(name)


if __name__ == "__main__":
    demo_database()
    page_render()
