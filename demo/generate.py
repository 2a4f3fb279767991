"""Load deterministic demo data into the six platform tables, as the stack superuser, with COPY.

    python -m demo.generate --database aiagents_demo [--tenants 8] [--days 30]
        [--tickets-per-day-scale 1] [--seed 42] [--now 2025-11-26T15:00] [--scale 1m|10m]

The same seed and --now give the same rows, ids included. Everything runs in one transaction:
the tables are truncated, enhancement_history's rows are generated with numpy and streamed as
COPY text, and indexes (primary keys included) are dropped before and rebuilt after the load:
one sort per index is much cheaper than a million index insertions. A failed load leaves the
old data in place.
"""

from __future__ import annotations

import argparse
import base64
import json
import time
from dataclasses import dataclass, fields
from datetime import UTC, datetime, timedelta

import numpy as np
import psycopg
from psycopg import sql
from psycopg.copy import QueuedLibpqWriter
from psycopg.types.json import Json

from demo import fleet
from demo.fleet import KINDS, Tenant
from services.db import PLATFORM_TABLES as TABLES

STATUSES = ("pending", "completed", "failed")
PENDING, COMPLETED, FAILED = 0, 1, 2
CONTEXT_TIMEOUT = fleet.FAILURE_MODES.index(fleet.CONTEXT_TIMEOUT)
SOFT_TIME_LIMIT = fleet.FAILURE_MODES.index(fleet.SOFT_TIME_LIMIT)
COMPLETES_ANYWAY = [fleet.FAILURE_MODES.index(m) for m in fleet.COMPLETES_ANYWAY]
LLM_FALLBACK = [fleet.FAILURE_MODES.index(m) for m in (fleet.LLM_TIMEOUT, fleet.LLM_RATE_LIMIT)]

RETRY_SHARE = 0.6  # failed runs that Celery's autoretry runs again (max_retries=3)
MANUAL_RERUN_FAILED = 0.15  # failed runs support re-queued by hand later
MANUAL_RERUN_COMPLETED = 0.003
LOST_SHARE = 0.0002  # runs a crashed worker left pending for good
CONTEXT_VARIANTS = 10  # per (tenant, kind); the last carries a partial kb_search error
OUTPUT_VARIANTS = 4
CHUNK_ROWS = 100_000
NULL = "\\N"  # COPY text format's NULL


@dataclass
class Runs:
    """enhancement_history rows as numpy columns (one entry per run)."""

    tenant: np.ndarray  # index into the fleet
    ticket: np.ndarray  # ServiceDesk Plus request id
    kind: np.ndarray  # index into fleet.KINDS
    status: np.ndarray  # index into STATUSES
    failure: np.ndarray  # index into fleet.FAILURE_MODES, -1 for none
    created: np.ndarray  # epoch seconds
    done: np.ndarray  # epoch seconds, NaN while pending
    processing: np.ndarray  # ms, -1 while pending
    workflow: np.ndarray  # context gathering ms
    planted: np.ndarray

    def __len__(self) -> int:
        return len(self.created)

    def take(self, index: np.ndarray) -> Runs:
        return Runs(*(getattr(self, f.name)[index] for f in fields(self)))

    @staticmethod
    def concat(parts: list[Runs]) -> Runs:
        return Runs(*(np.concatenate([getattr(p, f.name) for p in parts]) for f in fields(Runs)))


@dataclass(frozen=True)
class Window:
    """A failure window that applies to one tenant's runs."""

    start: float
    end: float
    failure: int
    share: float


@dataclass
class Summary:
    database: str
    counts: dict[str, int]
    seconds: float

    def line(self) -> str:
        rows = " ".join(f"{t}={n}" for t, n in self.counts.items())
        return f"{self.database}: {rows} in {self.seconds:.1f} s"


def _copy_escape(text: str) -> str:
    return text.replace("\\", "\\\\").replace("\t", "\\t").replace("\n", "\\n").replace("\r", "\\r")


def _uuids(rng: np.random.Generator, n: int) -> list[str]:
    """Version-4-shaped UUIDs (32 hex digits, which PostgreSQL accepts) from the seeded rng."""
    raw = np.frombuffer(rng.bytes(16 * n), dtype=np.uint8).reshape(n, 16).copy()
    raw[:, 6] = (raw[:, 6] & 0x0F) | 0x40
    raw[:, 8] = (raw[:, 8] & 0x3F) | 0x80
    hexed = raw.tobytes().hex()
    return [hexed[i : i + 32] for i in range(0, 32 * n, 32)]


def _timestamps(seconds: np.ndarray) -> np.ndarray:
    """ISO-8601 UTC strings (ms precision); NULL for NaN."""
    ms = np.round(np.nan_to_num(seconds) * 1000).astype(np.int64).astype("datetime64[ms]")
    out = np.datetime_as_string(ms, unit="ms", timezone="UTC").astype(object)
    out[np.isnan(seconds)] = NULL
    return out


def _at(seconds: float) -> datetime:
    return datetime.fromtimestamp(seconds, UTC)


def _kind_weights(t: Tenant) -> np.ndarray:
    w = np.array([t.kind_weights.get(k.name, k.weight) for k in KINDS])
    return w / w.sum()


def _attempt(
    rng: np.random.Generator,
    ti: int,
    t: Tenant,
    created: np.ndarray,
    kind: np.ndarray,
    ticket: np.ndarray,
    windows: list[Window],
    now: datetime,
) -> Runs:
    """One attempt of each ticket: what went wrong (if anything), timings and the status it
    has at `now`. LLM errors and context timeouts complete anyway (fallback text, errors
    entry); the other modes fail the attempt."""
    n = len(created)
    now_s = now.timestamp()
    failure = np.full(n, -1, np.int8)
    base = rng.random(n) < t.base_failure_rate
    modes = [fleet.FAILURE_MODES.index(m) for m in fleet.BASE_FAILURE_MIX]
    mix = np.array(list(fleet.BASE_FAILURE_MIX.values()))
    failure[base] = rng.choice(modes, base.sum(), p=mix / mix.sum())
    for w in windows:
        failure[(created >= w.start) & (created < w.end) & (rng.random(n) < w.share)] = w.failure

    # Latency: context gathering + LLM (3% slow calls) + ServiceDesk Plus update; p50 ~19 s.
    workflow = np.minimum(rng.lognormal(np.log(3500), 0.5, n), 28_000)
    llm = rng.lognormal(np.log(12_500), 0.45, n) * np.where(
        rng.random(n) < 0.03, rng.uniform(2.5, 8, n), 1
    )
    sdp = rng.lognormal(np.log(1200), 0.6, n)
    jitter = rng.uniform(100, 900, n)
    processing = workflow + llm + sdp
    failure[(failure < 0) & (processing >= fleet.SOFT_TIME_LIMIT_MS)] = SOFT_TIME_LIMIT
    by_mode = {
        fleet.LLM_TIMEOUT: workflow + 30_000 + jitter,
        fleet.LLM_RATE_LIMIT: workflow + jitter * 3,
        fleet.SDP_TIMEOUT: workflow + llm + 30_000,
        fleet.SDP_UNAUTHORIZED: workflow + llm + jitter,
        fleet.SDP_RATE_LIMIT: workflow + llm + jitter,
        fleet.CONTEXT_TIMEOUT: 30_000 + jitter * 3,
        fleet.SOFT_TIME_LIMIT: fleet.SOFT_TIME_LIMIT_MS + jitter,
        fleet.PLATFORM_BUG: jitter / 2,  # fails loading the tenant's configuration
        fleet.NODE_KEY_BUG: workflow + jitter,  # fails merging the context results
    }
    for code, mode in enumerate(fleet.FAILURE_MODES):
        processing = np.where(failure == code, by_mode[mode], processing)
    workflow = np.where(failure == CONTEXT_TIMEOUT, 30_000, workflow)

    # `created` is the webhook; the worker starts the attempt (and inserts its row, created_at)
    # after the queue wait, longer in a backlog.
    backlog = fleet.queue_backlog(created, now)
    created = created + rng.exponential(0.8, n) + backlog * fleet.QUEUE_WAIT_SECONDS_PER_JOB
    done = created + processing / 1000
    stalled = created >= now_s - t.stalled_hours * 3600 if t.stalled_hours else np.zeros(n, bool)
    pending = (done > now_s) | (rng.random(n) < LOST_SHARE) | stalled
    fails = (failure >= 0) & ~np.isin(failure, COMPLETES_ANYWAY)
    status = np.where(pending, PENDING, np.where(fails, FAILED, COMPLETED)).astype(np.int8)
    return Runs(
        tenant=np.full(n, ti, np.int32),
        ticket=ticket,
        kind=kind,
        status=status,
        failure=np.where(pending, -1, failure).astype(np.int8),
        created=created,
        done=np.where(pending, np.nan, done),
        processing=np.where(pending, -1, processing.astype(np.int64)),
        workflow=workflow.astype(np.int64),
        planted=np.zeros(n, bool),
    )


def _tenant_runs(
    rng: np.random.Generator, ti: int, t: Tenant, now: datetime, days: float, scale: float
) -> Runs | None:
    """Webhook arrivals over the window (business-hours and weekday shaped), then retries."""
    start = max(now - timedelta(days=days), t.onboarded_at(now)).timestamp()
    end = now.timestamp()
    if t.stopped_days_ago is not None:
        end = min(end, (now - timedelta(days=t.stopped_days_ago)).timestamp())
    # Refused webhooks (wrong secret) and jobs no worker takes leave no row at all.
    for hours in (t.refused_hours, t.unattempted_hours):
        if hours is not None:
            end = min(end, t.episode_start(now, hours).timestamp())
    if end <= start:
        return None
    hours = np.arange(start // 3600 * 3600, end, 3600.0)
    counts = rng.poisson(t.tickets_per_day * scale * fleet.hourly_weight(hours))
    created = np.repeat(hours, counts) + rng.random(counts.sum()) * 3600
    created = np.sort(created[(created >= start) & (created < end)])
    if t.rejected_hours is not None:  # the API could not queue these: no job, no row
        rejected = created >= t.episode_start(now, t.rejected_hours).timestamp()
        created = created[~(rejected & (rng.random(len(created)) < t.rejected_share))]
    kind = rng.choice(len(KINDS), len(created), p=_kind_weights(t)).astype(np.int8)
    ticket = t.ticket_base + t.history_size + np.arange(len(created), dtype=np.int64)
    windows = []
    for inc in fleet.INCIDENTS:
        if inc.tenant_id in (None, t.tenant_id):
            s, e = inc.window(now)
            windows.append(
                Window(
                    s.timestamp(),
                    e.timestamp(),
                    fleet.FAILURE_MODES.index(inc.failure),
                    inc.failure_share,
                )
            )

    runs = _attempt(rng, ti, t, created, kind, ticket, windows, now)
    parts = [runs]
    for retry in range(3):  # Celery autoretry: backoff 1, 2, 4 s with jitter
        again = np.flatnonzero((runs.status == FAILED) & (rng.random(len(runs)) < RETRY_SHARE))
        at = runs.done[again] + rng.uniform(0.5, 2**retry + 1, len(again))
        again, at = again[at < end], at[at < end]
        runs = _attempt(rng, ti, t, at, runs.kind[again], runs.ticket[again], windows, now)
        parts.append(runs)
    every = Runs.concat(parts)
    share = np.where(
        every.status == FAILED,
        MANUAL_RERUN_FAILED,
        np.where(every.status == COMPLETED, MANUAL_RERUN_COMPLETED, 0),
    )
    manual = np.flatnonzero(rng.random(len(every)) < share)
    at = every.done[manual] + rng.uniform(1800, 6 * 3600, len(manual))
    manual, at = manual[at < end], at[at < end]
    parts.append(_attempt(rng, ti, t, at, every.kind[manual], every.ticket[manual], windows, now))
    return Runs.concat(parts)


def _planted_runs(tenants: tuple[Tenant, ...], now: datetime) -> Runs:
    index = {t.tenant_id: i for i, t in enumerate(tenants)}
    # A job still in the queue has no row yet: the worker inserts one when it starts.
    rows = [r for r in fleet.PLANTED_RUNS if r.tenant_id in index and not r.queue]
    created = np.array([r.created_at(now).timestamp() for r in rows])
    processing = np.array(
        [r.processing_ms if r.status != "pending" else -1 for r in rows], np.int64
    )
    failure = np.array(
        [fleet.FAILURE_MODES.index(r.failure) if r.failure else -1 for r in rows], np.int8
    )
    pending = np.array([r.status == "pending" for r in rows])
    return Runs(
        tenant=np.array([index[r.tenant_id] for r in rows], np.int32),
        ticket=np.array([int(r.ticket_id) for r in rows], np.int64),
        kind=np.array([fleet.KIND_NAMES.index(r.kind) for r in rows], np.int8),
        status=np.array([STATUSES.index(r.status) for r in rows], np.int8),
        failure=failure,
        created=created,
        done=np.where(pending, np.nan, created + 1.2 + processing / 1000),
        processing=processing,
        workflow=np.where(failure == CONTEXT_TIMEOUT, 30_000, 3_400).astype(np.int64),
        planted=np.ones(len(rows), bool),
    )


# --- ticket_history and system_inventory (also the material the context JSON refers to) --------
ROLES = (
    ("dc", "Domain controller", 1),
    ("fs", "File server", 1),
    ("sql", "SQL server", 1),
    ("fw", "Firewall", 1),
    ("vpn", "VPN gateway", 1),
    ("ts", "Terminal server", 1),
    ("bkp", "Backup server", 1),
    ("sw", "Switch", 2),
    ("ap", "Wireless AP", 2),
    ("prn", "Printer", 3),
    ("ws", "Workstation", 10),
)
LOCATIONS = ("HQ", "Branch office", "Datacenter", "Warehouse", "Remote site")


@dataclass
class History:
    """One tenant's ticket_history rows as parallel lists."""

    tickets: list[int]
    kinds: list[int]
    resolved: list[float]
    source: list[str]
    ingested: list[float]


def _bulk_history(rng: np.random.Generator, t: Tenant, now: datetime) -> History:
    onboarded = t.onboarded_at(now).timestamp()
    n = t.history_size
    resolved = np.sort(onboarded - rng.uniform(0.5, t.history_span_days, n) * 86400)
    kinds = rng.choice(len(KINDS), n, p=_kind_weights(t))
    return History(
        list(range(t.ticket_base, t.ticket_base + n)),
        kinds.tolist(),
        resolved.tolist(),
        ["bulk_import"] * n,
        (onboarded + np.arange(n) * 0.05).tolist(),
    )


def _inventory(rng: np.random.Generator, ti: int, t: Tenant) -> list[dict]:
    roles = rng.choice(
        len(ROLES), t.inventory_size, p=np.array([r[2] for r in ROLES]) / sum(r[2] for r in ROLES)
    )
    counters: dict[tuple[str, str], int] = {}
    rows = []
    for i, r in enumerate(roles.tolist()):
        short, role, _ = ROLES[r]
        client = t.clients[i % len(t.clients)]
        prefix = "".join(w[0] for w in client.lower().split())[:3]
        number = counters[(prefix, short)] = counters.get((prefix, short), 0) + 1
        rows.append(
            {
                "ip_address": f"10.{10 + ti % 240}.{i // 250}.{i % 250 + 2}",
                "hostname": f"{prefix}-{short}{number:02d}",
                "role": role,
                "client": client,
                "location": LOCATIONS[(i * 7 + r) % len(LOCATIONS)],
            }
        )
    return rows


class _Texts:
    """Pools of COPY-escaped context_gathered prefixes (JSON strings holding the object, as the
    worker's json.dumps writes them) and llm_output texts.

    Context JSON refers to the tenant's real ticket_history subjects and inventory hosts; each
    row appends its own workflow_execution_time_ms between prefix and suffix.
    """

    def __init__(
        self,
        rng: np.random.Generator,
        tenants: tuple[Tenant, ...],
        bulk: list[History],
        inventory: list[list[dict]],
    ) -> None:
        str_pre: list[str] = []
        for ti, t in enumerate(tenants):
            for ki, kind in enumerate(KINDS):
                similar = [
                    tk for tk, k in zip(bulk[ti].tickets, bulk[ti].kinds, strict=True) if k == ki
                ]
                for v in range(CONTEXT_VARIANTS):
                    context = self._context(
                        rng,
                        t,
                        kind,
                        ki,
                        similar,
                        inventory[ti],
                        partial_error=v == CONTEXT_VARIANTS - 1,
                    )
                    str_pre.append(_copy_escape(json.dumps(context)[:-1]))
        timeout = {
            "similar_tickets": [],
            "kb_articles": [],
            "ip_info": [],
            "errors": [fleet.CONTEXT_TIMEOUT_ERROR],
        }
        text = json.dumps(timeout)[:-1] + ', "workflow_execution_time_ms": '
        str_pre.append(_copy_escape(json.dumps(text)[:-1]))
        self.timeout_index = len(str_pre) - 1
        self.fallback = _copy_escape(fleet.LLM_FALLBACK_OUTPUT)
        self.str_pre = np.array(str_pre, dtype=object)
        self.outputs = np.array(
            [
                _copy_escape(k.outputs[v % len(k.outputs)])
                for k in KINDS
                for v in range(OUTPUT_VARIANTS)
            ],
            dtype=object,
        )

    @staticmethod
    def _context(
        rng: np.random.Generator,
        t: Tenant,
        kind: fleet.Kind,
        ki: int,
        similar: list[int],
        hosts: list[dict],
        partial_error: bool,
    ) -> str:
        picked = rng.choice(similar, min(len(similar), int(rng.integers(0, 4))), replace=False)
        context = {
            "similar_tickets": [
                {
                    "ticket_id": str(tk),
                    "title": kind.subjects[int(tk) % len(kind.subjects)],
                    "similarity_score": round(float(rng.uniform(0.72, 0.97)), 2),
                }
                for tk in picked.tolist()
            ],
            "kb_articles": []
            if partial_error
            else [
                {
                    "title": f"{kind.subjects[a % len(kind.subjects)]}: troubleshooting",
                    "url": f"https://kb.{t.domain}/articles/{1000 + ki * 50 + a}",
                    "relevance_score": round(float(rng.uniform(0.6, 0.95)), 2),
                }
                for a in range(int(rng.integers(0, 3)))
            ],
            "ip_info": [
                {k: h[k] for k in ("ip_address", "hostname", "role", "client", "location")}
                for h in (
                    hosts[int(i)]
                    for i in rng.choice(len(hosts), int(rng.integers(0, 3)), replace=False)
                )
            ],
            "errors": [
                {
                    "node_name": "kb_search",
                    "message": "KB search timed out after "
                    f"{t.preferences.get('kb_timeout_seconds', 10)}s",
                }
            ]
            if partial_error
            else [],
        }
        return json.dumps(context)[:-1] + ', "workflow_execution_time_ms": '


def _history_lines(
    rng: np.random.Generator,
    runs: Runs,
    ids: list[str],
    tenants: tuple[Tenant, ...],
    texts: _Texts,
    copy: psycopg.Copy,
) -> None:
    """Stream enhancement_history as COPY text, CHUNK_ROWS rows at a time."""
    tenant_ids = np.array([t.tenant_id for t in tenants], dtype=object)
    urls = [t.servicedesk_url for t in tenants]
    variant = rng.integers(0, CONTEXT_VARIANTS, len(runs))
    output_variant = rng.integers(0, OUTPUT_VARIANTS, len(runs))
    for lo in range(0, len(runs), CHUNK_ROWS):
        r = runs.take(np.arange(lo, min(lo + CHUNK_ROWS, len(runs))))
        v = variant[lo : lo + CHUNK_ROWS]
        # The worker writes json.dumps(context) on success (a JSON string holding the object);
        # a failed or pending row keeps the JSON null it was inserted with.
        has_context = r.status == COMPLETED
        index = np.where(
            r.failure == CONTEXT_TIMEOUT,
            texts.timeout_index,
            (r.tenant * len(KINDS) + r.kind) * CONTEXT_VARIANTS + v,
        )
        pre = texts.str_pre[index]
        pre[~has_context] = "null"
        suffix = np.where(has_context, '}"', "").tolist()
        workflow = np.where(has_context, r.workflow.astype(str), "").tolist()
        output = np.where(
            r.status == COMPLETED,
            np.where(
                np.isin(r.failure, LLM_FALLBACK),
                texts.fallback,
                texts.outputs[r.kind * OUTPUT_VARIANTS + output_variant[lo : lo + len(r)]],
            ),
            NULL,
        )
        error = np.full(len(r), NULL, dtype=object)
        for i in np.flatnonzero(r.failure >= 0).tolist():
            message = fleet.ERROR_MESSAGES[fleet.FAILURE_MODES[r.failure[i]]]
            if message:
                error[i] = message.format(url=urls[r.tenant[i]], ticket=r.ticket[i])
        processing = np.where(r.processing >= 0, r.processing.astype(str), NULL).tolist()
        lines = [
            f"{a}\t{b}\t{c}\t{d}\t{e}{f}{g}\t{h}\t{i}\t{j}\t{k}\t{m}\n"
            for a, b, c, d, e, f, g, h, i, j, k, m in zip(
                ids[lo : lo + len(r)],
                tenant_ids[r.tenant].tolist(),
                r.ticket.tolist(),
                np.array(STATUSES, dtype=object)[r.status].tolist(),
                pre.tolist(),
                workflow,
                suffix,
                output.tolist(),
                error.tolist(),
                processing,
                _timestamps(r.created).tolist(),
                _timestamps(r.done).tolist(),
                strict=True,
            )
        ]
        copy.write("".join(lines).encode())


THIN_HISTORY = 50  # resolved tickets: below, "insufficient context" (contract section 6)
SLOW_MS = 60_000  # processing time of a run rated worse: past the p95 target


def _feedback(
    rng: np.random.Generator, runs: Runs, ids: list[str], tenants: tuple[Tenant, ...], now: datetime
) -> tuple[list[tuple], list[int]]:
    """Feedback on completed runs (much worse for each tenant's low_rated_kinds), and the ticket
    kind of each row."""
    rate = np.array([t.feedback_rate for t in tenants])[runs.tenant]
    pick = np.flatnonzero(
        (runs.status == COMPLETED) & ~runs.planted & (rng.random(len(runs)) < rate)
    )
    at = runs.done[pick] + 60 + rng.exponential(3 * 3600, len(pick))
    pick, at = pick[at < now.timestamp()], at[at < now.timestamp()]
    low = np.array([[k.name in t.low_rated_kinds for k in KINDS] for t in tenants])
    chance = np.where(low[runs.tenant[pick], runs.kind[pick]], 0.7, 0.1)
    # Technicians also rate worse what came too late (processing over 60 s) and what had too
    # little history to draw on (under the contract's 50 resolved tickets).
    thin = np.array([t.history_size < THIN_HISTORY for t in tenants])[runs.tenant[pick]]
    chance = np.where(thin, np.maximum(chance, 0.45), chance)
    chance = np.where(runs.processing[pick] > SLOW_MS, np.minimum(chance + 0.4, 0.9), chance)
    negative = rng.random(len(pick)) < chance
    is_rating = rng.random(len(pick)) < 0.4
    value = np.where(
        negative,
        rng.choice([1, 2, 3], len(pick), p=[0.4, 0.45, 0.15]),
        rng.choice([3, 4, 5], len(pick), p=[0.1, 0.35, 0.55]),
    )
    commented = rng.random(len(pick)) < np.where(negative, 0.6, 0.25)
    choice = rng.integers(0, 1000, len(pick))
    technician = rng.integers(0, len(fleet.TECHNICIANS), len(pick))
    anonymous = rng.random(len(pick)) < 0.05
    rows, kinds = [], []
    for j, i in enumerate(pick.tolist()):
        t, kind = tenants[runs.tenant[i]], KINDS[runs.kind[i]]
        kinds.append(int(runs.kind[i]))
        comment = None
        if commented[j]:
            pool = (
                kind.complaints
                if negative[j] and kind.name in t.low_rated_kinds
                else fleet.NEGATIVE_COMMENTS
                if negative[j]
                else fleet.POSITIVE_COMMENTS
            )
            comment = pool[choice[j] % len(pool)]
        kind_of = "rating" if is_rating[j] else "thumbs_down" if negative[j] else "thumbs_up"
        email = None if anonymous[j] else f"{fleet.TECHNICIANS[technician[j]]}@{t.domain}"
        rows.append(
            (
                t.tenant_id,
                str(runs.ticket[i]),
                ids[i],
                email,
                kind_of,
                int(value[j]) if is_rating[j] else None,
                comment,
                _at(at[j]),
            )
        )
    for p in fleet.PLANTED_FEEDBACK:
        t = next((t for t in tenants if t.tenant_id == p.tenant_id), None)
        if t is None:
            continue
        i = int(
            np.flatnonzero(
                runs.planted & (runs.ticket == int(p.ticket_id)) & (runs.status == COMPLETED)
            )[0]
        )
        rows.append(
            (
                t.tenant_id,
                p.ticket_id,
                ids[i],
                f"{p.technician}@{t.domain}",
                p.feedback_type,
                p.rating_value,
                p.comment,
                _at(runs.done[i] + p.minutes_after * 60),
            )
        )
        kinds.append(int(runs.kind[i]))
    return rows, kinds


def _resolved_history(
    rng: np.random.Generator,
    feedback: list[tuple],
    kinds: list[int],
    tenants: tuple[Tenant, ...],
    now: datetime,
) -> list[History]:
    """Tickets with feedback were resolved since: webhook_resolved rows (theme analysis joins)."""
    index = {t.tenant_id: i for i, t in enumerate(tenants)}
    resolved: list[History] = [History([], [], [], [], []) for _ in tenants]
    seen: set[tuple[int, int]] = set()
    order = sorted(range(len(feedback)), key=lambda j: feedback[j][-1])
    for j in order:
        tenant_id, ticket, at = feedback[j][0], int(feedback[j][1]), feedback[j][-1]
        ti = index[tenant_id]
        h, cap = resolved[ti], tenants[ti].max_resolved_webhooks
        if (ti, ticket) in seen or (cap is not None and len(h.tickets) >= cap):
            continue
        seen.add((ti, ticket))
        when = min(at.timestamp() + float(rng.uniform(0, 3600)), now.timestamp() - 60)
        h.tickets.append(ticket)
        h.kinds.append(kinds[j])
        h.resolved.append(when)
        h.source.append("webhook_resolved")
        h.ingested.append(when + 2)
    return resolved


def _history_rows(rng: np.random.Generator, t: Tenant, h: History) -> list[tuple]:
    """ticket_history rows with the platform's columns only (no subject, priority or tags)."""
    rows = []
    pick = rng.integers(0, 1000, len(h.tickets))
    for j, (ticket, k) in enumerate(zip(h.tickets, h.kinds, strict=True)):
        kind = KINDS[k]
        ingested = _at(h.ingested[j])
        rows.append(
            (
                t.tenant_id,
                str(ticket),
                kind.descriptions[pick[j] % len(kind.descriptions)],
                kind.resolutions[pick[j] % len(kind.resolutions)],
                _at(h.resolved[j]),
                h.source[j],
                ingested,
                ingested,
                ingested,
            )
        )
    return rows


def _fernet_like(rng: np.random.Generator, at: datetime) -> str:
    """Looks like a Fernet token (version 0x80, timestamp, IV, ciphertext, HMAC); decrypts to
    nothing: the demo never holds a real secret."""
    token = (
        b"\x80"
        + int(at.timestamp()).to_bytes(8, "big")
        + rng.bytes(16)
        + rng.bytes(64)
        + rng.bytes(32)
    )
    return base64.urlsafe_b64encode(token).decode()


def _tenant_config_rows(
    rng: np.random.Generator, tenants: tuple[Tenant, ...], now: datetime
) -> list[tuple]:
    updated = {fleet.INITECH: fleet.day_clock(now, 5, 9.5)}  # API key rotated after the 401s
    rows = []
    for t, uid in zip(tenants, _uuids(rng, len(tenants)), strict=True):
        created = t.onboarded_at(now)
        changed = updated.get(t.tenant_id, created + timedelta(days=min(1, t.onboarded_days_ago)))
        if t.stopped_days_ago is not None:
            changed = now - timedelta(days=t.stopped_days_ago)
        rows.append(
            (
                uid,
                t.tenant_id,
                t.name,
                t.servicedesk_url,
                _fernet_like(rng, created),
                _fernet_like(rng, created),
                Json(t.preferences),
                Json(t.rate_limits) if t.rate_limits is not None else None,
                t.is_active,
                "servicedesk_plus",
                created,
                changed,
            )
        )
    return rows


def _drop_indexes(cur: psycopg.Cursor, table: str) -> list[sql.Composable]:
    """Drop the table's indexes, primary key and unique constraints included; return the
    statements that rebuild them."""
    cur.execute(
        "SELECT conname, pg_get_constraintdef(oid) FROM pg_constraint"
        " WHERE conrelid = %s::regclass AND contype IN ('p', 'u')",
        (table,),
    )
    constraints = cur.fetchall()
    cur.execute(
        "SELECT i.relname, pg_get_indexdef(i.oid) FROM pg_index x"
        " JOIN pg_class i ON i.oid = x.indexrelid WHERE x.indrelid = %s::regclass"
        " AND NOT EXISTS (SELECT 1 FROM pg_constraint c WHERE c.conindid = x.indexrelid)",
        (table,),
    )
    indexes = cur.fetchall()
    rebuild: list[sql.Composable] = []
    for name, definition in constraints:
        cur.execute(
            sql.SQL("ALTER TABLE {} DROP CONSTRAINT {}").format(
                sql.Identifier(table), sql.Identifier(name)
            )
        )
        rebuild.append(
            sql.SQL("ALTER TABLE {} ADD CONSTRAINT {} {}").format(
                sql.Identifier(table), sql.Identifier(name), sql.SQL(definition)
            )
        )
    for name, definition in indexes:
        cur.execute(sql.SQL("DROP INDEX {}").format(sql.Identifier(name)))
        rebuild.append(sql.SQL(definition))
    return rebuild


def _copy_rows(
    cur: psycopg.Cursor, table: str, columns: tuple[str, ...], rows: list[tuple]
) -> None:
    stmt = sql.SQL("COPY {} ({}) FROM STDIN WITH (FREEZE)").format(
        sql.Identifier(table), sql.SQL(", ").join(map(sql.Identifier, columns))
    )
    with cur.copy(stmt) as copy:
        for row in rows:
            copy.write_row(row)


def parse_now(text: str | None) -> datetime:
    """--now as an aware UTC datetime; default: now, truncated to the minute."""
    if text is None:
        return datetime.now(UTC).replace(second=0, microsecond=0)
    value = datetime.fromisoformat(text)
    return (value if value.tzinfo else value.replace(tzinfo=UTC)).astimezone(UTC)


def generate(
    target: str | psycopg.Connection,
    *,
    tenants: int = len(fleet.TENANTS),
    days: float = 30,
    scale: float = 1.0,
    seed: int = 42,
    now: datetime | None = None,
) -> Summary:
    """Replace the six tables' contents with the demo data. `target`: conninfo/URL or an open
    connection of a superuser (or the tables' owner without FORCE RLS)."""
    started = time.monotonic()
    now = now or parse_now(None)
    fleet_ = fleet.build_fleet(tenants)
    conn = psycopg.connect(target) if isinstance(target, str) else target
    try:
        counts = _load(conn, fleet_, days, scale, seed, now)
        database = conn.info.dbname
    finally:
        if isinstance(target, str):
            conn.close()
    return Summary(database, counts, time.monotonic() - started)


def _with_ids(rng: np.random.Generator, rows: list[tuple]) -> list[tuple]:
    return [(uid, *row) for uid, row in zip(_uuids(rng, len(rows)), rows, strict=True)]


def _load(
    conn: psycopg.Connection,
    tenants: tuple[Tenant, ...],
    days: float,
    scale: float,
    seed: int,
    now: datetime,
) -> dict[str, int]:
    # Each part draws from its own stream, so e.g. a new tenant does not reshuffle the others.
    runs = Runs.concat(
        [
            r
            for ti, t in enumerate(tenants)
            if (r := _tenant_runs(np.random.default_rng([seed, 1, ti]), ti, t, now, days, scale))
            is not None
        ]
        + [_planted_runs(tenants, now)]
    )
    runs = runs.take(np.argsort(runs.created, kind="stable"))  # insertion order, as in prod
    ids = _uuids(np.random.default_rng([seed, 2]), len(runs))
    bulk = [
        _bulk_history(np.random.default_rng([seed, 3, ti]), t, now) for ti, t in enumerate(tenants)
    ]
    inventory = [
        _inventory(np.random.default_rng([seed, 4, ti]), ti, t) for ti, t in enumerate(tenants)
    ]
    texts = _Texts(np.random.default_rng([seed, 5]), tenants, bulk, inventory)
    feedback, feedback_kinds = _feedback(np.random.default_rng([seed, 6]), runs, ids, tenants, now)
    resolved = _resolved_history(
        np.random.default_rng([seed, 7]), feedback, feedback_kinds, tenants, now
    )
    rng = np.random.default_rng([seed, 8])
    history = [
        row
        for ti, t in enumerate(tenants)
        for h in (bulk[ti], resolved[ti])
        for row in _history_rows(rng, t, h)
    ]
    hosts = [
        (
            t.tenant_id,
            h["ip_address"],
            h["hostname"],
            h["role"],
            h["client"],
            h["location"],
            t.onboarded_at(now),
            t.onboarded_at(now),
        )
        for t, rows in zip(tenants, inventory, strict=True)
        for h in rows
    ]
    audit = [
        (fleet.day_clock(now, *e.clock), e.user, e.operation, Json(e.details), e.status)
        for e in fleet.AUDIT_EVENTS
    ]

    with conn.transaction(), conn.cursor() as cur:
        cur.execute("SET LOCAL maintenance_work_mem = '512MB'")
        # FREEZE needs the tables truncated in this transaction; it also spares a later VACUUM.
        cur.execute(sql.SQL("TRUNCATE {}").format(sql.SQL(", ").join(map(sql.Identifier, TABLES))))
        rebuild = [stmt for table in TABLES for stmt in _drop_indexes(cur, table)]

        _copy_rows(
            cur,
            "tenant_configs",
            (
                "id",
                "tenant_id",
                "name",
                "servicedesk_url",
                "servicedesk_api_key_encrypted",
                "webhook_signing_secret_encrypted",
                "enhancement_preferences",
                "rate_limits",
                "is_active",
                "tool_type",
                "created_at",
                "updated_at",
            ),
            _tenant_config_rows(np.random.default_rng([seed, 9]), tenants, now),
        )
        stmt = (
            "COPY enhancement_history (id, tenant_id, ticket_id, status, context_gathered,"
            " llm_output, error_message, processing_time_ms, created_at, completed_at)"
            " FROM STDIN WITH (FREEZE)"
        )
        # The queued writer sends from a thread, so PostgreSQL parses while we format.
        with cur.copy(stmt, writer=QueuedLibpqWriter(cur)) as copy:
            _history_lines(np.random.default_rng([seed, 10]), runs, ids, tenants, texts, copy)
        _copy_rows(
            cur,
            "enhancement_feedback",
            (
                "id",
                "tenant_id",
                "ticket_id",
                "enhancement_id",
                "technician_email",
                "feedback_type",
                "rating_value",
                "feedback_comment",
                "created_at",
            ),
            _with_ids(np.random.default_rng([seed, 11]), feedback),
        )
        _copy_rows(
            cur,
            "ticket_history",
            (
                "id",
                "tenant_id",
                "ticket_id",
                "description",
                "resolution",
                "resolved_date",
                "source",
                "ingested_at",
                "created_at",
                "updated_at",
            ),
            _with_ids(np.random.default_rng([seed, 12]), history),
        )
        _copy_rows(
            cur,
            "system_inventory",
            (
                "id",
                "tenant_id",
                "ip_address",
                "hostname",
                "role",
                "client",
                "location",
                "created_at",
                "updated_at",
            ),
            _with_ids(np.random.default_rng([seed, 13]), hosts),
        )
        _copy_rows(
            cur,
            "audit_log",
            ("id", "timestamp", "user", "operation", "details", "status"),
            _with_ids(np.random.default_rng([seed, 14]), audit),
        )
        for stmt in rebuild:
            cur.execute(stmt)
    with conn.cursor() as cur:
        cur.execute(sql.SQL("ANALYZE {}").format(sql.SQL(", ").join(map(sql.Identifier, TABLES))))
        counts = {}
        for table in TABLES:
            cur.execute(sql.SQL("SELECT count(*) FROM {}").format(sql.Identifier(table)))
            counts[table] = cur.fetchone()[0]
    conn.commit()
    return counts


# Named fleet sizes (--scale): tenants, days and the tickets-per-day factor. "10m" is the bench
# fleet of issue 16: 500 tenants, about 10M runs over a year (bench only: `make bench-10m`).
SCALES = {"1m": (len(fleet.TENANTS), 365.0, 1.0), "10m": (500, 365.0, 1.15)}


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--database", required=True, help="database name (libpq PG* env)")
    parser.add_argument(
        "--scale", choices=sorted(SCALES), help="a named fleet size (the flags below override)"
    )
    parser.add_argument("--tenants", type=int)
    parser.add_argument("--days", type=float)
    parser.add_argument("--tickets-per-day-scale", type=float)
    parser.add_argument("--seed", type=int, default=42)
    parser.add_argument("--now", help="ISO timestamp, UTC if naive (default: now, to the minute)")
    args = parser.parse_args()
    tenants, days, scale = SCALES[args.scale] if args.scale else (len(fleet.TENANTS), 30, 1.0)
    summary = generate(
        psycopg.conninfo.make_conninfo(dbname=args.database),
        tenants=args.tenants or tenants,
        days=args.days or days,
        scale=args.tickets_per_day_scale or scale,
        seed=args.seed,
        now=parse_now(args.now),
    )
    print(summary.line())


if __name__ == "__main__":
    main()
