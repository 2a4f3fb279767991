"""The live Redis queues, read safely, judged against the bands, and their history's episodes.

Two databases, as the platform deploys them: its own keys (`enhancement:queue`, the pause flag)
on REDIS_URL, the Celery lists on CELERY_BROKER_URL (the same database when that is not set).
Jobs hold the tenant's decrypted ServiceDesk Plus API key (Celery's `argsrepr` header too), so
a message is parsed inside one function and only allowlisted fields leave it: never a payload,
never logged, never cached.
"""

from __future__ import annotations

import base64
import json
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from typing import Any

import pandas as pd
import redis
from redis.connection import parse_url

from services import kube, timing
from services.config import rules, settings
from services.errors import SourceUnavailable

CELERY_QUEUE = "celery"
# Celery's Redis transport keeps priorities 3-5, 6-8 and 9 in extra lists named queue +
# "\x06\x16" + step (0-2 stay in `celery`), and its workers BRPOP them in this order.
CELERY_LISTS = (CELERY_QUEUE, *(f"{CELERY_QUEUE}\x06\x16{p}" for p in (3, 6, 9)))
API_QUEUE = "enhancement:queue"
PAUSE_KEY = "system:pause_processing"
ENHANCE_TASK = "tasks.enhance_ticket"
AGENT_TASK = "tasks.execute_agent"
# enhancement:queue jobs are the API's EnhancementJob: created_at is when it was queued
# (`timestamp` is when the ticket was created, possibly days earlier, so never a wait).
JOB_FIELDS = ("job_id", "ticket_id", "tenant_id", "priority", "created_at")
# A Celery message carries no enqueue time: its place in the queue is what it has.
CELERY_JOB_FIELDS = ("job_id", "ticket_id", "tenant_id", "priority")
AGENT_RUNS, UNKNOWN = "(agent runs)", "(unknown)"
MAX_MESSAGES_READ = 5000  # per list: enough for any real backlog, bounded for the UI path


@dataclass(frozen=True)
class QueuedJob:
    queue: str  # display name: "celery", "celery (priority 3)", "enhancement:queue"
    position: int  # 1 = next to be taken (in celery: over all its priority lists)
    task: str | None  # the Celery task; None for an enhancement:queue job
    job_id: str | None
    ticket_id: str | None
    tenant_id: str | None
    priority: str | None
    agent_id: str | None  # tasks.execute_agent: the agent it runs
    enqueued_at: datetime | None  # enhancement:queue: its created_at; Celery: not known

    @property
    def family(self) -> str:
        """`celery` (any of its priority lists) or `enhancement:queue`."""
        return CELERY_QUEUE if self.queue.startswith(CELERY_QUEUE) else API_QUEUE

    @property
    def owner(self) -> str:
        """Whose job it is: its tenant, or what it is when it belongs to none."""
        if self.tenant_id:
            return self.tenant_id
        if self.task == AGENT_TASK:
            return AGENT_RUNS
        return f"({self.task})" if self.task and self.task != ENHANCE_TASK else UNKNOWN


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

    def depth_of(self, family: str) -> int:
        return self.celery_depth if family == CELERY_QUEUE else self.depth.get(family, 0)

    def oldest_age_seconds(
        self, tenant_id: str | None = None, queue: str | None = None
    ) -> float | None:
        """Oldest wait among the jobs with an enqueue time (enhancement:queue's), optionally
        of one tenant and/or one queue (`celery` covers its priority lists)."""
        times = [
            j.enqueued_at
            for j in self.jobs
            if j.enqueued_at
            and (tenant_id is None or j.tenant_id == tenant_id)
            and (queue is None or j.family == queue)
        ]
        return (self.read_at - min(times)).total_seconds() if times else None

    def tenant_counts(self) -> dict[str, int]:
        """Jobs per owner: tenant id, or "(agent runs)", "(<other task>)", "(unknown)"."""
        counts: dict[str, int] = {}
        for job in self.jobs:
            counts[job.owner] = counts.get(job.owner, 0) + 1
        return counts


def display_name(key: str) -> str:
    if key.startswith(f"{CELERY_QUEUE}\x06\x16"):
        return f"{CELERY_QUEUE} (priority {key.rsplit(chr(0x16), 1)[1]})"
    return key


def _connect(url: str) -> redis.Redis:
    # Short timeouts and no retries: the page must answer even when Redis does not.
    q = rules("queue")
    return redis.Redis.from_url(
        url,
        socket_timeout=float(q["socket_timeout_s"]),
        socket_connect_timeout=float(q["socket_connect_timeout_s"]),
        retry=None,
    )


def _execute(pipe: redis.client.Pipeline, which: str) -> list[Any]:
    try:
        return timing.call("redis", pipe.execute)
    except redis.RedisError as exc:
        detail = str(exc).splitlines()[0] if str(exc) else "error"
        raise SourceUnavailable("Redis", f"{which}: {detail}") from exc


def _allowed(job: Any, names: tuple[str, ...]) -> dict[str, Any]:
    return {name: job.get(name) for name in names} if isinstance(job, dict) else {}


def _job_fields(raw: bytes, celery: bool) -> dict[str, Any]:
    """Allowlisted fields of one message: an enhancement:queue job, or a Celery message
    (protocol 2: task name in the headers, base64 body [args, kwargs, embed]) around one."""
    try:
        message = json.loads(raw)
        if not celery:
            return _allowed(message, JOB_FIELDS)
        task = message["headers"]["task"]
        args, kwargs, _embed = json.loads(base64.b64decode(message["body"]))
        if task == AGENT_TASK:  # execute_agent(agent_id, payload): the payload is never read
            return {"task": task, "agent_id": args[0] if args else kwargs.get("agent_id")}
        if task == ENHANCE_TASK:  # enhance_ticket(job_data), positional or by keyword
            job = args[0] if args else kwargs.get("job_data")
            return {"task": task, **_allowed(job, CELERY_JOB_FIELDS)}
        return {"task": task}
    except (ValueError, TypeError, KeyError, IndexError, AttributeError):
        return {}


def _parse_time(value: Any) -> datetime | None:
    if value is None:
        return None
    try:
        if isinstance(value, int | float):
            return datetime.fromtimestamp(float(value), tz=UTC)
        # pydantic writes the API's naive datetime.utcnow() without a zone: it is UTC.
        parsed = datetime.fromisoformat(str(value).replace("Z", "+00:00"))
        return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)
    except (ValueError, OverflowError, OSError):
        return None


def snapshot() -> QueueSnapshot:
    """Depth of every list, the allowlisted fields of each queued job, and the pause flag."""
    cfg = settings()
    if not cfg.redis_url:
        raise SourceUnavailable("Redis", "REDIS_URL is not set")
    broker = _connect(cfg.celery_broker_url or cfg.redis_url).pipeline(transaction=False)
    for key in CELERY_LISTS:
        broker.llen(key)
    for key in CELERY_LISTS:
        broker.lrange(key, -MAX_MESSAGES_READ, -1)
    platform = _connect(cfg.redis_url).pipeline(transaction=False)
    platform.llen(API_QUEUE)
    platform.lrange(API_QUEUE, -MAX_MESSAGES_READ, -1)
    platform.exists(PAUSE_KEY)
    celery = _execute(broker, "the Celery broker (CELERY_BROKER_URL)")
    api_length, api_messages, paused = _execute(platform, "the platform's keys (REDIS_URL)")
    lengths = dict(zip(CELERY_LISTS, celery[: len(CELERY_LISTS)], strict=True))
    lengths[API_QUEUE] = api_length
    contents = [*zip(CELERY_LISTS, celery[len(CELERY_LISTS) :], strict=True)]
    contents.append((API_QUEUE, api_messages))
    jobs: list[QueuedJob] = []
    ahead = 0  # celery: the jobs in the lists its workers take from first
    for key, messages in contents:
        ahead = 0 if key == API_QUEUE else ahead
        # LPUSH + BRPOP: the right end is taken next, so position 1 is the last element.
        for index, raw in enumerate(reversed(messages), start=1):
            fields = _job_fields(raw, celery=key != API_QUEUE)
            jobs.append(
                QueuedJob(
                    queue=display_name(key),
                    position=ahead + index,
                    task=_text(fields.get("task")),
                    job_id=_text(fields.get("job_id")),
                    ticket_id=_text(fields.get("ticket_id")),
                    tenant_id=_text(fields.get("tenant_id")),
                    priority=_text(fields.get("priority")),
                    agent_id=_text(fields.get("agent_id")),
                    enqueued_at=_parse_time(fields.get("created_at")),
                )
            )
        ahead += int(lengths[key])
    return QueueSnapshot(
        depth={display_name(k): int(n) for k, n in lengths.items()},
        jobs=tuple(jobs),
        paused=bool(paused),
        read_at=datetime.now(UTC),
    )


def _db(url: str | None) -> int:
    return int(parse_url(url).get("db", 0)) if url else 0


def _shell_key(key: str) -> str:
    """A key as bash reads it: the priority lists' control characters in $'...' quoting."""
    if key.isprintable():
        return key
    return "$'" + "".join(c if c.isprintable() else f"\\x{ord(c):02x}" for c in key) + "'"


def cli_commands(prefix: str | None = None) -> str:
    """Copy-ready redis-cli lines for every list and the pause flag, each on its database
    (`-n`, from CELERY_BROKER_URL and REDIS_URL): the celery depth is the sum of the first 4.
    `prefix` defaults to redis-cli run in the API pod ([kubernetes] in dashboard.toml)."""
    prefix = prefix or kube.names().redis_cli()
    cfg = settings()
    broker, platform = _db(cfg.celery_broker_url), _db(cfg.redis_url)
    lines = [f"{prefix} -n {broker} LLEN {_shell_key(key)}" for key in CELERY_LISTS]
    lines += [
        f"{prefix} -n {platform} LLEN {API_QUEUE}",
        f"{prefix} -n {platform} EXISTS {PAUSE_KEY}",
    ]
    return "\n".join(lines)


def _text(value: Any) -> str | None:
    return None if value is None else str(value)


# --- Bands and advice (contract section 6, [queue] in dashboard.toml, the procedures) ---------

OK, INFO, WARNING, CRITICAL = "ok", "info", "warning", "critical"


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
    cluster = kube.names()
    scale = cluster.scale_workers("N")
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
            f"`{scale}`) or lower the HPA target to 3 jobs per worker; review slow traces "
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
            f"(`{scale}`, N up to the HPA maximum) and check that workers are taking jobs: "
            f"`{cluster.logs(cluster.worker, '15m')}`.",
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
    stuck_queues: tuple[str, ...]  # queues whose oldest job waited past the stuck threshold
    advice: tuple[str, ...]

    @property
    def severity(self) -> str:
        return CRITICAL if self.paused or self.stuck_queues else self.band.severity


def assess(snapshot: QueueSnapshot) -> Assessment:
    """The band of the celery queue and the procedures' advice, plus pause and stuck jobs.
    Stuck is judged where jobs have an enqueue time: enhancement:queue's created_at."""
    band = classify(snapshot.celery_depth)
    stuck_after_s = rules("queue")["oldest_job_stuck_minutes"] * 60
    oldest = snapshot.oldest_age_seconds(queue=API_QUEUE)
    stuck = (API_QUEUE,) if oldest is not None and oldest > stuck_after_s else ()
    advice: list[str] = []
    if snapshot.paused:
        advice.append(
            f"**Paused**: `{PAUSE_KEY}` is set, so the queue will not drain until processing "
            "is resumed. Check the audit log for who paused it and why."
        )
    if stuck:
        cluster = kube.names()
        advice.append(
            f"**Stuck**: the oldest job in `{API_QUEUE}` has waited {oldest / 60:.0f} minutes "
            f"(more than {stuck_after_s / 60:.0f}): jobs are not being taken. Check worker "
            f"health (crashes, OOMKilled): `{cluster.logs(cluster.worker, '15m')}`."
        )
    advice.append(band.advice)
    return Assessment(band, snapshot.celery_depth, snapshot.paused, stuck, tuple(advice))


def tenant_shares(snapshot: QueueSnapshot) -> pd.DataFrame:
    """Queued jobs per owner (tenant, or agent runs and other tasks) in each queue, its share
    of all jobs read, where its next Celery job stands (1 = taken next) and its oldest
    enhancement:queue wait."""
    columns = ["tenant_id", CELERY_QUEUE, API_QUEUE, "queued", "share", "celery_next", "oldest_s"]
    rows = []
    for owner, queued in snapshot.tenant_counts().items():
        jobs = [j for j in snapshot.jobs if j.owner == owner]
        waits = [snapshot.read_at - j.enqueued_at for j in jobs if j.enqueued_at]
        positions = [j.position for j in jobs if j.family == CELERY_QUEUE]
        rows.append(
            {
                "tenant_id": owner,
                CELERY_QUEUE: len(positions),
                API_QUEUE: sum(j.family == API_QUEUE for j in jobs),
                "queued": queued,
                "share": queued / len(snapshot.jobs),
                "celery_next": min(positions) if positions else None,
                "oldest_s": max(waits).total_seconds() if waits else None,
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
