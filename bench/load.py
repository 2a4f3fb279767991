"""Concurrent sessions against dashboard servers, with protocol-level clients under Locust.

    python bench/load.py [--database aiagents_demo] [--users 1 5 10 20] [--rounds 2]
        [--think 0 0] [--arrival 0] [--replicas 1] [--write docs/performance.md]

Starts `--replicas` dashboard servers of its own (bench/harness.py; user i keeps to server
i mod replicas, as a sticky load balancer would) and signs in once per simulated user
over HTTP (bench/client.py: st.login's OIDC flow with the demo identity provider; every user
is the demo support account, each with its own cookie and session). Per concurrency level: the
server's caches are cleared, then Locust starts that many users; each opens, `--rounds`
times, tenant health, a ticket investigation and feedback for its own tenant (Streamlit's
websocket protocol: a rerun_script per step, timed until script_finished). `--think LO HI`: a
pause of LO-HI s (uniform) after each step, as an engineer reads the page (0 0: none, every
session clicking back to back); `--arrival S`: the users start over S s, not all at once
(Locust's spawn rate). A step whose page does not show its tenant counts as an error. Meanwhile
the dashboard's PostgreSQL connections (pg_stat_activity, application_name support-dashboard) and
the servers' RSS (summed) are sampled. Prints p50/p95 per step and level, errors, connections,
memory.
"""

from __future__ import annotations

import argparse
import os
import random
import sys
import time
from contextlib import ExitStack
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

import gevent
import psycopg
from locust import User, events, task
from locust.env import Environment
from locust.exception import StopUser

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench import harness  # noqa: E402
from bench.client import RunResult, Session, sign_in  # noqa: E402

APP_NAME = "support-dashboard"  # services/db.py's application_name
PURPOSE = "SUP-1601 load test"  # the sidebar's purpose of access: a lookup needs a case


@dataclass
class Persona:
    url: str  # its server
    cookies: dict[str, str]
    tenant: str
    ticket: str


@dataclass
class Plan:
    """What the users of one level share: their sign-ins, rounds, results."""

    personas: list[Persona] = field(default_factory=list)
    rounds: int = 2
    think_s: tuple[float, float] = (0.0, 0.0)
    results: list[RunResult] = field(default_factory=list)
    next_persona: int = 0


PLAN = Plan()


def steps(persona: Persona) -> list[tuple[str, str, dict[str, str]]]:
    """(step name, page, query) of one round."""
    tenant = {"tenant": persona.tenant}
    return [
        ("tenant health", "", tenant),
        ("investigation", "investigation", {**tenant, "ticket": persona.ticket}),
        ("feedback", "feedback", tenant),
    ]


class DashboardUser(User):
    """One signed-in session working through its own tenant's steps, `PLAN.rounds` times."""

    def wait_time(self) -> float:  # Locust pauses this long after each step
        return random.uniform(*PLAN.think_s)

    def on_start(self) -> None:
        self.persona = PLAN.personas[PLAN.next_persona % len(PLAN.personas)]
        PLAN.next_persona += 1
        self.session = Session(self.persona.url, self.persona.cookies, timeout_s=120)
        self.done = 0  # steps
        # The purpose, typed in on a page that caches nothing: every step below starts cold.
        first = self.session.run("investigation", {"tenant": self.persona.tenant})
        self.session.type_text(first.text_inputs["Purpose of access"], PURPOSE)

    def on_stop(self) -> None:
        self.session.close()

    @task
    def step(self) -> None:
        todo = steps(self.persona)
        if self.done >= PLAN.rounds * len(todo):
            raise StopUser
        name, page, query = todo[self.done % len(todo)]
        result = self.session.run(page, query)
        result.page = name
        if not any(f"`{self.persona.tenant}`" in text for text in result.markdown):
            result.errors.append(f"{name}: the page did not show tenant {self.persona.tenant}")
        PLAN.results.append(result)
        events.request.fire(
            request_type="ws",
            name=name,
            response_time=result.seconds * 1000,
            response_length=result.deltas,
            exception=None if result.ok else RuntimeError("; ".join(result.errors)),
            context={},
        )
        self.done += 1


def personas(
    servers: list[harness.Server], idp: harness.Identity, database: str, count: int
) -> list[Persona]:
    """`count` signed-in users, each with its own tenant (the busiest first) and a ticket of it
    from the last day (for the investigation), signed in at server i mod len(servers)."""
    sql = """
        SELECT DISTINCT ON (tenant_id) tenant_id, ticket_id, n
          FROM (SELECT tenant_id, ticket_id, count(*) OVER (PARTITION BY tenant_id) AS n,
                       row_number() OVER (PARTITION BY tenant_id ORDER BY created_at DESC) AS r
                  FROM enhancement_history WHERE created_at > now() - interval '1 day') t
         WHERE r = 1 ORDER BY tenant_id"""
    with psycopg.connect(harness.superuser_conninfo(database)) as conn:
        rows = sorted(conn.execute(sql).fetchall(), key=lambda row: -row[2])[:count]
    urls = [servers[i % len(servers)].url for i in range(len(rows))]
    return [
        Persona(url, sign_in(url, idp.email, idp.password), tenant, ticket)
        for url, (tenant, ticket, _) in zip(urls, rows, strict=True)
    ]


@dataclass
class Sampler:
    """The dashboard's connections to PostgreSQL and the servers' RSS, every half second."""

    servers: list[harness.Server]
    database: str
    connections: list[int] = field(default_factory=list)
    rss: list[float] = field(default_factory=list)

    def run(self) -> None:
        sql = "SELECT count(*) FROM pg_stat_activity WHERE application_name = %s"
        with psycopg.connect(harness.superuser_conninfo(self.database), autocommit=True) as conn:
            while True:
                self.connections.append(conn.execute(sql, (APP_NAME,)).fetchone()[0])
                self.rss.append(rss_mib(self.servers))
                gevent.sleep(0.5)


@dataclass
class Level:
    users: int
    seconds: float
    results: list[RunResult]
    max_connections: int
    max_rss_mib: float


def rss_mib(servers: list[harness.Server]) -> float:
    return sum(server.rss_mib() for server in servers)


def run_level(servers: list[harness.Server], database: str, users: int, arrival_s: float) -> Level:
    PLAN.results, PLAN.next_persona = [], 0
    for persona in PLAN.personas[: len(servers)]:  # one signed-in session per server
        with Session(persona.url, persona.cookies) as control:
            control.clear_caches()  # every level starts cold
    env = Environment(user_classes=[DashboardUser], events=events)
    runner = env.create_local_runner()
    sampler = Sampler(servers, database)
    sampling = gevent.spawn(sampler.run)
    start = time.perf_counter()
    runner.start(users, spawn_rate=users / arrival_s if arrival_s else users)
    gevent.sleep(0.5)
    while runner.user_count:
        gevent.sleep(0.2)
    seconds = time.perf_counter() - start
    runner.quit()
    sampling.kill()
    return Level(users, seconds, list(PLAN.results), max(sampler.connections), max(sampler.rss))


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(round(q * (len(ordered) - 1))))] if values else 0.0


def table(levels: list[Level], header: str, baseline_rss: float) -> str:
    lines = [
        header,
        "",
        "| sessions | step | runs | p50 s | p95 s | p95 / 1-session p95 | errors"
        " | max PG connections | server RSS MiB (per session) |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    single: dict[str, float] = {}
    for level in levels:
        for name in ("tenant health", "investigation", "feedback"):
            times = [r.seconds for r in level.results if r.page == name]
            errors = sum(not r.ok for r in level.results if r.page == name)
            p95 = percentile(times, 0.95)
            single.setdefault(name, p95)
            ratio = p95 / single[name] if single[name] else float("nan")
            per_session = (level.max_rss_mib - baseline_rss) / level.users
            lines.append(
                f"| {level.users} | {name} | {len(times)} | {percentile(times, 0.5):.2f}"
                f" | {p95:.2f} | {ratio:.1f}{'' if ratio <= 2 else ' (**missed**)'}"
                f" | {errors} | {level.max_connections}"
                f"{'' if level.max_connections <= 10 else ' (**missed**)'}"
                f" | {level.max_rss_mib:.0f} ({per_session:+.0f}) |"
            )
    messages = sorted({e for level in levels for r in level.results for e in r.errors})
    if messages:
        lines += ["", "Errors seen:", *[f"- {m[:300]}" for m in messages[:10]]]
    return "\n".join(lines)


def run(args: argparse.Namespace) -> str:
    database, levels, rounds = args.database, args.users, args.rounds
    env = harness.stack_env(database)
    idp = harness.identity(args, env)
    PLAN.rounds, PLAN.think_s = rounds, (args.think[0], args.think[1])
    load_before = harness.load_average()
    with ExitStack() as stack:
        servers = [
            stack.enter_context(harness.running_server(env, idp)) for _ in range(args.replicas)
        ]
        PLAN.personas = personas(servers, idp, database, max(levels))
        baseline = rss_mib(servers)
        done = []
        for users in levels:
            done.append(run_level(servers, database, users, args.arrival))
            print(f"{users} sessions: {done[-1].seconds:.1f} s", file=sys.stderr, flush=True)
    processes = "one server process" if args.replicas == 1 else f"{args.replicas} server processes"
    low, high = args.think
    pacing = (
        f"a pause of {low:g}-{high:g} s after each step (reading the page)"
        if high
        else "no pause between steps (each session clicks back to back)"
    )
    arrival = f"users starting over {args.arrival:g} s" if args.arrival else "all starting at once"
    header = (
        f"`{database}`: {harness.row_count(database):,} enhancement_history rows;"
        f" {datetime.now(UTC):%Y-%m-%d %H:%M} UTC; load average {load_before} before,"
        f" {harness.load_average()} after; {processes}; each session {rounds} rounds"
        f" of tenant health, investigation, feedback for its own tenant, {pacing}, {arrival};"
        f" caches cleared before each level; server RSS {baseline:.0f} MiB after sign-in,"
        " before the load;"
        f" {os.cpu_count()} CPU cores for the servers, PostgreSQL and the clients."
    )
    return table(done, header, baseline)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    harness.add_arguments(parser, harness.SUPPORT)
    parser.add_argument("--users", type=int, nargs="+", default=[1, 5, 10, 20])
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--replicas", type=int, default=1, help="dashboard server processes")
    parser.add_argument(
        "--think",
        type=float,
        nargs=2,
        default=[0.0, 0.0],
        metavar=("LO", "HI"),
        help="pause after each step, uniform between LO and HI seconds",
    )
    parser.add_argument("--arrival", type=float, default=0.0, help="start the users over S s")
    args = parser.parse_args()
    text = run(args)
    print(text)
    if args.write:
        replicas = f" x{args.replicas}" if args.replicas > 1 else ""
        paced = " paced" if args.think[1] else ""
        harness.write_section(args.write, f"load {args.database}{replicas}{paced}", text)


if __name__ == "__main__":
    main()
