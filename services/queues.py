"""The live Redis queues, read safely, judged against the bands, and their history's episodes.

Jobs hold the tenant's decrypted ServiceDesk Plus API key, so a message is parsed inside one
function and only allowlisted fields leave it: never a payload, never logged, never cached.
"""

from __future__ import annotations

import base64
import json
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from typing import Any

import pandas as pd
import redis

from services.config import rules, settings
from services.errors import SourceUnavailable
from services.playbooks import NAMESPACE

CELERY_QUEUE = "celery"
# Celery's Redis transport keeps priorities in extra lists named queue + "\x06\x16" + priority.
CELERY_LISTS = (CELERY_QUEUE, *(f"{CELERY_QUEUE}\x06\x16{p}" for p in (3, 6, 9)))
API_QUEUE = "enhancement:queue"
ALL_LISTS = (*CELERY_LISTS, API_QUEUE)
PAUSE_KEY = "system:pause_processing"
ALLOWED_JOB_FIELDS = ("job_id", "ticket_id", "tenant_id", "priority", "timestamp")
MAX_MESSAGES_READ = 5000  # per list: enough for any real backlog, bounded for the UI path


@dataclass(frozen=True)
class QueuedJob:
    queue: str  # display name: "celery", "celery (priority 3)", "enhancement:queue"
    position: int  # 1 = next to be taken
    job_id: str | None
    ticket_id: str | None
    tenant_id: str | None
    priority: str | None
    enqueued_at: datetime | None


@dataclass(frozen=True)
class QueueSnapshot:
    depth: dict[str, int]  # display queue name -> length
    jobs: tuple[QueuedJob, ...]
    paused: bool
    read_at: datetime

    @property
    def celery_depth(self) -> int:
        return sum(n for name, n in self.depth.items() if name.startswith(CELERY_QUEUE))

    @property
    def total(self) -> int:
        return sum(self.depth.values())

    def oldest_age_seconds(
        self, tenant_id: str | None = None, queue: str | None = None
    ) -> float | None:
        """Oldest wait among the jobs read, optionally of one tenant and/or one queue
        (`celery` covers its priority lists)."""
        times = [
            j.enqueued_at
            for j in self.jobs
            if j.enqueued_at
            and (tenant_id is None or j.tenant_id == tenant_id)
            and (queue is None or j.queue.startswith(queue))
        ]
        return (self.read_at - min(times)).total_seconds() if times else None

    def tenant_counts(self) -> dict[str, int]:
        counts: dict[str, int] = {}
        for job in self.jobs:
            key = job.tenant_id or "(unknown)"
            counts[key] = counts.get(key, 0) + 1
        return counts


def display_name(key: str) -> str:
    if key.startswith(f"{CELERY_QUEUE}\x06\x16"):
        return f"{CELERY_QUEUE} (priority {key.rsplit(chr(0x16), 1)[1]})"
    return key


def client() -> redis.Redis:
    url = settings().redis_url
    if not url:
        raise SourceUnavailable("Redis", "REDIS_URL is not set")
    # Short timeouts and no retries: the page must answer even when Redis does not.
    return redis.Redis.from_url(url, socket_timeout=2, socket_connect_timeout=2, retry=None)


def _job_fields(raw: bytes) -> dict[str, Any]:
    """Allowlisted fields of one message (a raw job or a Celery envelope around one)."""
    try:
        message = json.loads(raw)
        if isinstance(message, dict) and "body" in message and "headers" in message:
            args, kwargs, _embed = json.loads(base64.b64decode(message["body"]))
            job = args[0] if args and isinstance(args[0], dict) else kwargs.get("job", kwargs)
        else:
            job = message
    except (ValueError, TypeError, KeyError, IndexError):
        return {}
    if not isinstance(job, dict):
        return {}
    return {name: job.get(name) for name in ALLOWED_JOB_FIELDS}


def _parse_time(value: Any) -> datetime | None:
    if value is None:
        return None
    try:
        if isinstance(value, int | float):
            return datetime.fromtimestamp(float(value), tz=UTC)
        parsed = datetime.fromisoformat(str(value).replace("Z", "+00:00"))
        return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)
    except (ValueError, OverflowError, OSError):
        return None


def snapshot() -> QueueSnapshot:
    """Depth of every list, the allowlisted fields of each queued job, and the pause flag."""
    try:
        conn = client()
        pipe = conn.pipeline(transaction=False)
        for key in ALL_LISTS:
            pipe.llen(key)
        for key in ALL_LISTS:
            pipe.lrange(key, -MAX_MESSAGES_READ, -1)
        pipe.exists(PAUSE_KEY)
        results = pipe.execute()
    except redis.RedisError as exc:
        raise SourceUnavailable("Redis", str(exc).splitlines()[0] if str(exc) else "error") from exc
    lengths, contents, paused = results[: len(ALL_LISTS)], results[len(ALL_LISTS) : -1], results[-1]
    jobs: list[QueuedJob] = []
    for key, messages in zip(ALL_LISTS, contents, strict=True):
        # LPUSH + BRPOP: the right end is taken next, so position 1 is the last element.
        for position, raw in enumerate(reversed(messages), start=1):
            fields = _job_fields(raw)
            jobs.append(
                QueuedJob(
                    queue=display_name(key),
                    position=position,
                    job_id=_text(fields.get("job_id")),
                    ticket_id=_text(fields.get("ticket_id")),
                    tenant_id=_text(fields.get("tenant_id")),
                    priority=_text(fields.get("priority")),
                    enqueued_at=_parse_time(fields.get("timestamp")),
                )
            )
    return QueueSnapshot(
        depth={display_name(k): int(n) for k, n in zip(ALL_LISTS, lengths, strict=True)},
        jobs=tuple(jobs),
        paused=bool(paused),
        read_at=datetime.now(UTC),
    )


def _text(value: Any) -> str | None:
    return None if value is None else str(value)


# --- Bands and advice (contract section 6, [queue] in dashboard.toml, the procedures) ---------

OK, INFO, WARNING, CRITICAL = "ok", "info", "warning", "critical"
_WORKER_LOGS = f"kubectl logs deployment/ai-agents-worker -n {NAMESPACE} --since=15m"
_SCALE = f"kubectl scale deployment/ai-agents-worker -n {NAMESPACE} --replicas=N"


@dataclass(frozen=True)
class Band:
    key: str
    label: str
    low: int  # depths from low (inclusive) ...
    high: int | None  # ... to high (exclusive); None: no upper bound
    severity: str  # ok | info | warning | critical
    advice: str


def bands() -> tuple[Band, ...]:
    """The depth bands, lowest first, with what the procedures say to do in each."""
    q = rules("queue")
    healthy, target, elevated = q["healthy_below"], q["target_below"], q["elevated_from"]
    alert, escalate = q["alert_above"], q["escalate_above"]
    return (
        Band("healthy", f"Healthy (< {healthy})", 0, healthy, OK, "Nothing to do for the depth."),
        Band(
            "target",
            f"Within target (< {target})",
            healthy,
            target,
            OK,
            "The depth is fine; watch the history below if it keeps climbing.",
        ),
        Band(
            "above_target",
            f"Above target ({target}-{elevated - 1})",
            target,
            elevated,
            INFO,
            f"Tickets may wait more than 5 minutes. If the queue stays above {target} (see the "
            "history below), add workers (the scaling proposal below gives the number: "
            f"`{_SCALE}`) or lower the HPA target to 3 jobs per worker; review slow traces "
            "for bottlenecks (context gathering, LLM, ServiceDesk Plus updates).",
        ),
        Band(
            "elevated",
            f"Elevated ({elevated}-{alert})",
            elevated,
            alert + 1,
            WARNING,
            "High-volume pattern: check which tenants fill the queue (table below) and whether "
            "it is their usual peak (9am-5pm). Raise the HPA minimum for the peak and let it "
            f"scale up faster; if it passes {alert} for {q['alert_minutes']} minutes, scale now.",
        ),
        Band(
            "alert",
            f"Alert (> {alert})",
            alert + 1,
            escalate + 1,
            CRITICAL,
            f"Above {alert} for {q['alert_minutes']} minutes is an alert: scale workers now "
            f"(`{_SCALE}`, N up to the HPA maximum) and check that workers are taking jobs: "
            f"`{_WORKER_LOGS}`.",
        ),
        Band(
            "escalate",
            f"Escalate (> {escalate})",
            escalate + 1,
            None,
            CRITICAL,
            f"Escalate to Engineering (also when the queue has not drained after "
            f"{q['not_draining_minutes']} minutes). Scale to the HPA maximum and check the worker "
            "pods for crashes or OOMKilled.",
        ),
    )


def band_frame() -> pd.DataFrame:
    """The bands as a table (key, label, low, high, severity, advice) for charts."""
    return pd.DataFrame([asdict(b) for b in bands()])


def classify(depth: int) -> Band:
    """The band a celery queue depth falls in."""
    return next(b for b in reversed(bands()) if depth >= b.low)


@dataclass(frozen=True)
class Assessment:
    band: Band
    depth: int  # the celery queue (all priority lists): what the workers consume
    paused: bool
    stuck_queues: tuple[str, ...]  # lists whose oldest job waited past the stuck threshold
    advice: tuple[str, ...]

    @property
    def severity(self) -> str:
        return CRITICAL if self.paused or self.stuck_queues else self.band.severity


def oldest_by_queue(snapshot: QueueSnapshot) -> dict[str, float | None]:
    """Age in seconds of the oldest job in `celery` (all priorities) and in `enhancement:queue`."""
    return {name: snapshot.oldest_age_seconds(queue=name) for name in (CELERY_QUEUE, API_QUEUE)}


def assess(snapshot: QueueSnapshot) -> Assessment:
    """The band of the celery queue and the procedures' advice, plus pause and stuck jobs."""
    band = classify(snapshot.celery_depth)
    stuck_after_s = rules("queue")["oldest_job_stuck_minutes"] * 60
    ages = {name: age for name, age in oldest_by_queue(snapshot).items() if age is not None}
    stuck = tuple(name for name, age in ages.items() if age > stuck_after_s)
    advice: list[str] = []
    if snapshot.paused:
        advice.append(
            f"**Paused**: `{PAUSE_KEY}` is set, so the queue will not drain until processing "
            "is resumed. Check the audit log for who paused it and why."
        )
    for name in stuck:
        advice.append(
            f"**Stuck**: the oldest job in `{name}` has waited {ages[name] / 60:.0f} minutes "
            f"(more than {stuck_after_s / 60:.0f}): jobs are not being taken. Check worker "
            f"health (crashes, OOMKilled): `{_WORKER_LOGS}`."
        )
    advice.append(band.advice)
    return Assessment(band, snapshot.celery_depth, snapshot.paused, stuck, tuple(advice))


def tenant_shares(snapshot: QueueSnapshot) -> pd.DataFrame:
    """Queued jobs per tenant in each queue, its share of all jobs read, and its oldest wait."""
    columns = ["tenant_id", CELERY_QUEUE, API_QUEUE, "queued", "share", "oldest_s"]
    rows = []
    for tenant, queued in snapshot.tenant_counts().items():
        tenant_id = None if tenant == "(unknown)" else tenant
        jobs = [j for j in snapshot.jobs if j.tenant_id == tenant_id]
        rows.append(
            {
                "tenant_id": tenant,
                CELERY_QUEUE: sum(j.queue.startswith(CELERY_QUEUE) for j in jobs),
                API_QUEUE: sum(j.queue == API_QUEUE for j in jobs),
                "queued": queued,
                "share": queued / len(snapshot.jobs),
                "oldest_s": snapshot.oldest_age_seconds(tenant_id) if tenant_id else None,
            }
        )
    frame = pd.DataFrame(rows, columns=columns)
    return frame.sort_values("queued", ascending=False, kind="stable").reset_index(drop=True)


# --- Episodes in the queue's history -------------------------------------------------------------


def episodes(
    series: pd.Series,
    above: float,
    min_minutes: float,
    drain_floor: float,
    drain_minutes: float,
    drain_tolerance: float,
) -> pd.DataFrame:
    """Stretches of a queue-length series (DatetimeIndex on a regular step grid, NaN = no data)
    that stayed above `above` for at least `min_minutes`, or did not drain: stayed above
    `drain_floor` for `drain_minutes` and is still within `drain_tolerance` (a fraction) of the
    highest value of those minutes, i.e. has not come down.

    Returns one row per episode: kind, start, end (NaT while it lasts), minutes, peak."""
    rows: list[dict[str, Any]] = []
    if len(series) > 1:
        step = series.index[1] - series.index[0]
        lag = max(1, round(pd.Timedelta(minutes=drain_minutes) / step))
        window = series.rolling(lag + 1)
        floor_held = (series > drain_floor).astype(float).rolling(lag + 1).min() == 1
        not_draining = floor_held & (series >= window.max() * (1 - drain_tolerance))
        rows += _runs(
            series, series > above, step, f"Above {above:g}", pd.Timedelta(0), min_minutes
        )
        rows += _runs(
            series,
            not_draining,
            step,
            f"Not draining ({drain_minutes:g} min)",
            step * lag,
            drain_minutes,
        )
    frame = pd.DataFrame(rows, columns=["kind", "start", "end", "minutes", "peak"])
    for column in ("start", "end"):  # NaT for an episode still going on
        frame[column] = pd.to_datetime(frame[column], utc=True)
    return frame.sort_values("start", kind="stable").reset_index(drop=True)


def _runs(
    series: pd.Series,
    mask: pd.Series,
    step: pd.Timedelta,
    kind: str,
    lead: pd.Timedelta,
    min_minutes: float,
) -> list[dict[str, Any]]:
    """Maximal runs of True in mask, each starting `lead` before its first point; runs whose
    stretches overlap (a noisy plateau) are one episode."""
    run_id = (mask != mask.shift()).cumsum()
    spans: list[list[Any]] = []  # [start, last point, end or None]
    for _, run in series[mask].groupby(run_id[mask]):
        start = run.index[0] - lead
        after = series.index[series.index > run.index[-1]]
        end = after[0] if len(after) else None
        if spans and spans[-1][2] is not None and start <= spans[-1][2]:
            spans[-1][1:] = [run.index[-1], end]
        else:
            spans.append([start, run.index[-1], end])
    out = []
    for start, last, end in spans:
        minutes = ((end if end is not None else last + step) - start).total_seconds() / 60
        if minutes >= min_minutes:
            peak = series[(series.index >= start) & (series.index <= last)].max()
            out.append(
                {"kind": kind, "start": start, "end": end, "minutes": minutes, "peak": float(peak)}
            )
    return out
