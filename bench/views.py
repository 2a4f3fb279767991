"""Every view (and every tab) as a signed-in user waits for it: browser, server, data sources.

    python bench/views.py [--database aiagents_demo] [--runs 3] [--write docs/performance.md]

Starts a dashboard server of its own with DASHBOARD_TIMINGS set (services/timing.py), signs in
as the demo admin in Chromium, then per view, `--runs` times: clears the server's caches (the
developer menu's "Clear caches" message over the websocket: st.cache_data and st.cache_resource,
global), clicks the view's sidebar link (cold), clicks away and back (warm). Per click: browser
seconds from the click until the script run it caused finished and no skeleton or spinner is
left; server seconds of that run's script; seconds of its SQL, Redis and Prometheus calls.
Prints medians as a Markdown table; `--write` puts it in its section of the file.
"""

from __future__ import annotations

import argparse
import sys
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench import harness  # noqa: E402
from bench.client import Session  # noqa: E402

COLD_TARGET_S = 2.0
WARM_TARGET_S = 0.5
# At 10x the data (--baseline: the 1M table): a view over the whole fleet's window stays within
# FLEET_COLD_TARGET_S cold; any other within SCALE_RATIO of its own 1M time.
FLEET_COLD_TARGET_S = 2.5
SCALE_RATIO = 1.3
TENANT = "msp-globex"  # a busy demo tenant (640 tickets a day)
AWAY = "Data access log"  # where a warm visit comes back from
PURPOSE = "SUP-1601 benchmark"  # the sidebar's purpose of access: a lookup needs a case
TICKET_BOX = "ServiceDesk Plus ticket id"


@dataclass(frozen=True)
class View:
    title: str  # the sidebar link
    tab: str = ""  # a tab of the view, clicked after the view opened
    query: str = ""  # the sidebar's choices first: tenant (none: the fleet), time range
    path: str = ""  # a deep link instead of a sidebar click (screenshare)
    ticket: bool = False  # a lookup: a recent ticket of TENANT typed into the investigation
    fleet: bool = False  # reads every tenant's runs in a time window


VIEWS = (
    View("Tenant health", fleet=True),
    View("Tenant health", query="range=7d", fleet=True),
    View("Tenant health", query="range=30d", fleet=True),
    View("Tenant health", query=f"tenant={TENANT}"),
    View("Tenant health", query=f"tenant={TENANT}&range=30d"),
    View("Tenant profile", query=f"tenant={TENANT}"),
    View("Investigation", query=f"tenant={TENANT}"),
    View("Feedback", fleet=True),
    View("Weekly review", fleet=True),
    View("RLS self-test"),
    View("Data access log"),
    View("Queues and scaling", fleet=True),
    View("Database health", tab="Slow queries"),
    View("Database health", tab="Connections"),
    View("Database health", tab="Tables and indexes"),
    View("Investigation", query=f"tenant={TENANT}", ticket=True),
    View("Service health (screenshare)", path=f"?view=client&tenant={TENANT}"),
)


@dataclass
class Sample:
    browser: float
    script: float
    calls: float
    fault: bool  # the page showed one of the dashboard's fault messages (a timeout, ...)


@dataclass
class Row:
    view: View
    cold: list[Sample]
    warm: list[Sample]

    def median(self, which: str, field: str) -> float:
        return harness.median([getattr(s, field) for s in getattr(self, which)])


def measure(
    browser: harness.Browser, server: harness.Server, view: View, runs: int, ticket: str
) -> Row:
    def sample(action) -> Sample:
        mark = server.timing_mark()
        ran = lambda: bool(server.timing_lines(mark))  # noqa: E731
        seconds = browser.timed(action, ran) if not view.path else browser.goto(view.path)
        script, calls = harness.server_share(server.timing_lines(mark))
        return Sample(seconds, script, calls, browser.shows_fault())

    def open_view() -> None:
        if view.ticket:
            browser.type_in(TICKET_BOX, ticket)
        elif view.tab:
            browser.click_tab(view.tab)
        else:
            browser.click_page(view.title)

    def leave() -> None:
        if view.ticket:
            browser.type_in(TICKET_BOX, "")
        elif view.tab:
            browser.click_tab("Connections" if view.tab != "Connections" else "Slow queries")
        elif not view.path:
            browser.click_page(AWAY if view.title != AWAY else "RLS self-test")

    # Start where the view is one click away, with its tenant chosen (or none).
    browser.goto(f"?{view.query}" if view.query else "")
    browser.timed(lambda: browser.type_in("Purpose of access", PURPOSE))
    if view.tab or view.ticket:
        browser.timed(lambda: browser.click_page(view.title))
    leave_timed = lambda: browser.timed(leave) if not view.path else None  # noqa: E731
    leave_timed()
    cold, warm = [], []
    with Session(server.url, browser.cookies()) as control:
        for _ in range(runs):
            control.clear_caches()
            cold.append(sample(open_view))
            leave_timed()
            warm.append(sample(open_view))
            leave_timed()
    return Row(view, cold, warm)


def verdict(met: bool) -> str:
    return "met" if met else "**missed**"


def scaled_target(view: View, cold_s: float, baseline: dict[str, float]) -> str:
    """The 10x target's cell: fleet views against FLEET_COLD_TARGET_S, the others against
    SCALE_RATIO times their own browser cold time in the baseline table."""
    if view.fleet:
        return verdict(cold_s <= FLEET_COLD_TARGET_S)
    if (before := baseline.get(row_key(name(view), view.tab or "-"))) is None:
        return "no 1M time"
    return f"{verdict(cold_s <= SCALE_RATIO * before)} ({cold_s / before:.2f}x of {before:.2f})"


def table(rows: list[Row], header: str, baseline: dict[str, float] | None = None) -> str:
    def s(x: float) -> str:
        return f"{x:.2f}"

    scaled = (
        f" | 10x: fleet cold <= {FLEET_COLD_TARGET_S} s, others <= {SCALE_RATIO}x their 1M cold"
        if baseline is not None
        else ""
    )
    lines = [
        header,
        "",
        "| view | tab | browser cold | browser warm | server cold | server warm"
        f" | calls cold | calls warm | faults | cold <= 2.0 s | warm <= 0.5 s{scaled} |",
        "|---|---|---|---|---|---|---|---|---|---|---|" + ("---|" if scaled else ""),
    ]
    for row in rows:
        v = row.view
        bc, bw = row.median("cold", "browser"), row.median("warm", "browser")
        lines.append(
            f"| {name(v)} | {v.tab or '-'} | {s(bc)} | {s(bw)}"
            f" | {s(row.median('cold', 'script'))} | {s(row.median('warm', 'script'))}"
            f" | {s(row.median('cold', 'calls'))} | {s(row.median('warm', 'calls'))}"
            f" | {sum(x.fault for x in row.cold + row.warm)}/{len(row.cold + row.warm)}"
            f" | {verdict(bc <= COLD_TARGET_S)} | {verdict(bw <= WARM_TARGET_S)}"
            + (f" | {scaled_target(v, bc, baseline)}" if baseline is not None else "")
            + " |"
        )
    return "\n".join(lines)


def row_key(view_name: str, tab: str) -> str:
    return f"{view_name} / {tab}"


def browser_cold(path: Path, section: str) -> dict[str, float]:
    """Each row's browser cold seconds in the views table of `section` in `path` (as table()
    wrote it)."""
    text = harness.read_section(path, f"views {section}")
    cells = [line.strip("|").split(" | ") for line in text.splitlines() if line.startswith("| ")]
    return {row_key(c[0].strip(), c[1]): float(c[2]) for c in cells[1:]}  # [0]: the header


def name(view: View) -> str:
    choices = [*view.query.split("&"), *(["a ticket"] if view.ticket else [])]
    return view.title + (f" ({', '.join(c for c in choices if c)})" if any(choices) else "")


def run(args: argparse.Namespace) -> str:
    from playwright.sync_api import sync_playwright

    database, runs = args.database, args.runs
    env = harness.stack_env(database)
    count = harness.row_count(database)
    rows: list[Row] = []
    load_before = harness.load_average()
    idp = harness.identity(args, env)
    with harness.running_server(env, idp) as server, sync_playwright() as playwright:
        browser = harness.Browser(playwright, server.url)
        try:
            browser.sign_in(idp)
            ticket = harness.recent_ticket(database, TENANT)
            for view in VIEWS:
                if args.only and name(view) not in args.only:
                    continue
                rows.append(measure(browser, server, view, runs, ticket))
                print(table(rows[-1:], "").splitlines()[-1], file=sys.stderr, flush=True)
        finally:
            browser.close()
    header = (
        f"`{database}`: {count:,} enhancement_history rows; {datetime.now(UTC):%Y-%m-%d %H:%M}"
        f" UTC; load average {load_before} before, {harness.load_average()} after; medians"
        f" of {runs} runs; seconds. Browser: click until rendered; server: the script run;"
        " calls: its SQL + Redis + Prometheus calls; faults: visits that showed a fault message"
        " (a timeout, a source unavailable)."
    )
    baseline = browser_cold(args.write, args.baseline) if args.baseline else None
    return table(rows, header, baseline)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    harness.add_arguments(parser, harness.ADMIN)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--only", nargs="*", help="the rows to measure, by name (default: all)")
    parser.add_argument("--section", default="", help="its section's name (default: database)")
    parser.add_argument(
        "--baseline", default="", help="mark the 10x targets against this section of --write"
    )
    args = parser.parse_args()
    if args.baseline and not args.write:
        parser.error("--baseline reads its section from the --write file")
    text = run(args)
    print(text)
    if args.write:
        harness.write_section(args.write, f"views {args.section or args.database}", text)


if __name__ == "__main__":
    main()
