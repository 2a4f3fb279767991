"""The demo fleet as plain data: tenants, incidents, queue episodes and the planted cases.

The generator (PostgreSQL), the Redis seeder and the Prometheus backfill all read this module, so
the three stores tell the same story. Tests and views refer to the planted cases by these names.
Times are given relative to `now`: either as a clock time on a day counted back from today's
midnight (UTC), or as an age in seconds for the cases that must be "just now".
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

import numpy as np

# --- tenant ids ----------------------------------------------------------------------------------
ACME = "msp-acme-corp"  # the procedures' example tenant: holds one planted ticket per failure mode
GLOBEX = "msp-globex"  # high volume (> 500 tickets/day); ServiceDesk Plus 429s at peak
INITECH = "msp-initech"  # ServiceDesk Plus 401 (expired API key) for a day: bad success rate
UMBRELLA = "msp-umbrella-it"  # network/VPN enhancements rated much worse, with comments saying why
HOOLI = "5b0f7c1e-3d7a-4e2b-9a61-2f8c4d9e7b10"  # UUID tenant_id; kb_timeout_seconds out of range
SOYLENT = "msp-soylent"  # enhancements stopped: webhooks keep arriving, rows stay pending
# Enhancements stopped with no rows to show it (Prometheus' webhook counters tell):
VANDELAY = "msp-vandelay"  # wrong webhook secret: refused before counting, silent for 30 h
KRAMERICA = "msp-kramerica"  # Redis errors at the API: webhooks counted as rejected for 3 h
PENDANT = "msp-pendant"  # jobs queued for 8 h but no worker attempted any (workers stopped)
NEWCO = "msp-stark-newco"  # onboarded 3 days ago, fewer than 50 ticket_history rows
WAYNE = "msp-wayne-legacy"  # inactive (is_active=false), traffic stopped weeks ago

# --- planted tickets of msp-acme-corp ------------------------------------------------------------
TICKET_SDP_TIMEOUT = "12345"  # failed: ServiceDesk Plus API timeout during an incident window
TICKET_LOW_RATED = "67890"  # completed, rated 2 with a comment, plus a thumbs_down
TICKET_QUEUED = "70001"  # waiting in the Redis `celery` list (no enqueue time), pending row
TICKET_STALE_PENDING = "70002"  # pending for 20 minutes, not in any queue (worker lost it)
TICKET_CONTEXT_AS_STRING = "70003"  # completed; context_gathered a JSON string (as every one)
TICKET_LLM_TIMEOUT = "70004"  # completed: the LLM timed out, the worker posted its fallback
TICKET_PLATFORM_BUG = "70005"  # failed: AttributeError in the platform's code
TICKET_SDP_UNAUTHORIZED = "70006"
TICKET_SDP_RATE_LIMIT = "70007"
TICKET_CONTEXT_TIMEOUT = "70008"  # completed with errors: context gathering timed out
TICKET_SOFT_TIME_LIMIT = "70009"
TICKET_RERUN = "70010"  # 3 failed attempts (ServiceDesk Plus update), completed on the 4th
TICKET_STUCK_IN_QUEUE = "70011"  # in enhancement:queue for 47 minutes (> 30 min = stuck)
TICKET_NODE_KEY_BUG = "70012"  # failed: KeyError: 'node_name' in the platform's code

# --- failure modes -------------------------------------------------------------------------------
LLM_TIMEOUT = "llm_timeout"
LLM_RATE_LIMIT = "llm_rate_limit"
SDP_TIMEOUT = "sdp_timeout"
SDP_UNAUTHORIZED = "sdp_unauthorized"
SDP_RATE_LIMIT = "sdp_rate_limit"
CONTEXT_TIMEOUT = "context_timeout"
SOFT_TIME_LIMIT = "soft_time_limit"
PLATFORM_BUG = "platform_bug"
NODE_KEY_BUG = "node_key_bug"
FAILURE_MODES = (
    LLM_TIMEOUT,
    LLM_RATE_LIMIT,
    SDP_TIMEOUT,
    SDP_UNAUTHORIZED,
    SDP_RATE_LIMIT,
    CONTEXT_TIMEOUT,
    SOFT_TIME_LIMIT,
    PLATFORM_BUG,
    NODE_KEY_BUG,
)
# What goes wrong but still completes (contract section 1): an LLM error is caught and replaced
# by a fallback text, a context timeout leaves an errors entry. Neither is a failed row.
COMPLETES_ANYWAY = (LLM_TIMEOUT, LLM_RATE_LIMIT, CONTEXT_TIMEOUT)
LLM_FALLBACK_OUTPUT = (
    "Automatic enhancement unavailable: the AI service did not respond. Similar tickets and "
    "knowledge base articles gathered for this ticket are listed in the ticket history."
)
# error_message of a failed row, as the worker writes it (f"{type(exc).__name__}: {exc}", or
# Celery's soft limit); {url} and {ticket} are filled in per row. None: the run completes.
ERROR_MESSAGES: dict[str, str | None] = {
    LLM_TIMEOUT: None,
    LLM_RATE_LIMIT: None,
    SDP_TIMEOUT: "RuntimeError: Failed to update ticket {ticket} via ServiceDesk Plus API",
    SDP_UNAUTHORIZED: "HTTPStatusError: 401 Unauthorized for url "
    "'{url}/api/v3/requests/{ticket}' (invalid or expired API key)",
    SDP_RATE_LIMIT: "HTTPStatusError: 429 Too Many Requests for url "
    "'{url}/api/v3/requests/{ticket}'",
    CONTEXT_TIMEOUT: None,
    SOFT_TIME_LIMIT: "Task exceeded soft time limit (100s)",
    PLATFORM_BUG: "AttributeError: 'TenantConfig' object has no attribute 'base_url'",
    NODE_KEY_BUG: "KeyError: 'node_name'",
}
CONTEXT_TIMEOUT_ERROR = {"node_name": "all", "message": "Timeout after 30s"}
# Share of each mode among the everyday (non-incident) failures.
BASE_FAILURE_MIX = {
    LLM_TIMEOUT: 0.3,
    LLM_RATE_LIMIT: 0.1,
    SDP_TIMEOUT: 0.3,
    SDP_RATE_LIMIT: 0.05,
    CONTEXT_TIMEOUT: 0.2,
    NODE_KEY_BUG: 0.05,
}

# --- Redis ---------------------------------------------------------------------------------------
CELERY_QUEUE = "celery"
CELERY_PRIORITY_QUEUES = ("celery\x06\x163", "celery\x06\x166", "celery\x06\x169")
ENHANCEMENT_QUEUE = "enhancement:queue"
PAUSE_KEY = "system:pause_processing"
TASK_NAME = "tasks.enhance_ticket"
AGENT_TASK_NAME = "tasks.execute_agent"
# Agent runs waiting in `celery`, by agent id: tasks.execute_agent(args=[agent_id, payload]).
PLANTED_AGENT_RUNS = ("c4a1e2d7-5b3f-4e8a-9c61-7d2f0b9e4a15",)
FAKE_KEY_MARKER = "sdp-FAKE-KEY-DO-NOT-SHOW-"  # tests grep the UI for it: it must never appear

# --- thresholds the planted cases are built to cross ---------------------------------------------
SOFT_TIME_LIMIT_MS = 100_000

DEFAULT_PREFERENCES = {
    "max_enhancement_length": 500,
    "include_monitoring": True,
    "kb_timeout_seconds": 10,
}
DEFAULT_RATE_LIMITS = {"webhooks": {"ticket_created": 100, "ticket_resolved": 100}}


EPISODE_MIN_WEBHOOKS = 12  # see Tenant.episode_start


def day_clock(now: datetime, days_ago: int, hour: float) -> datetime:
    """`hour` o'clock (UTC) on the day `days_ago` days before today."""
    midnight = now.astimezone(UTC).replace(hour=0, minute=0, second=0, microsecond=0)
    return midnight - timedelta(days=days_ago) + timedelta(hours=hour)


@dataclass(frozen=True)
class Tenant:
    tenant_id: str
    name: str
    domain: str  # the MSP's DNS domain: ServiceDesk Plus host, technician e-mails
    tickets_per_day: float  # mean over a week, before --tickets-per-day-scale
    onboarded_days_ago: float
    history_size: int  # resolved tickets bulk-imported into ticket_history at onboarding
    history_span_days: int  # how far back those imported tickets go
    inventory_size: int  # system_inventory rows
    ticket_base: int  # first ServiceDesk Plus request id of the imported history
    is_active: bool = True
    stopped_days_ago: float | None = None  # no traffic after this
    stalled_hours: float | None = None  # nothing completes in the last N hours
    refused_hours: float | None = None  # webhooks refused (bad signature) for the last N hours
    rejected_hours: float | None = None  # the API rejects (cannot queue) for the last N hours
    rejected_share: float = 0.6  # ...this share of the webhooks
    unattempted_hours: float | None = None  # queued, but no worker attempts, for N hours
    base_failure_rate: float = 0.02
    feedback_rate: float = 0.06  # share of completed enhancements that get feedback
    low_rated_kinds: tuple[str, ...] = ()  # ticket kinds whose enhancements techs dislike
    kind_weights: dict[str, float] = field(default_factory=dict)  # overrides Kind.weight
    max_resolved_webhooks: int | None = None  # cap on webhook_resolved ticket_history rows
    preferences: dict = field(default_factory=lambda: dict(DEFAULT_PREFERENCES))
    rate_limits: dict | None = field(default_factory=lambda: dict(DEFAULT_RATE_LIMITS))
    clients: tuple[str, ...] = ("Head office",)  # the MSP's own customers (system_inventory)

    @property
    def servicedesk_url(self) -> str:
        return f"https://helpdesk.{self.domain}"

    def onboarded_at(self, now: datetime) -> datetime:
        return now - timedelta(days=self.onboarded_days_ago)

    def episode_start(self, now: datetime, hours: float) -> datetime:
        """When an episode "of the last `hours` hours" began: stretched back over quiet hours
        (nights, weekends) until it spans EPISODE_MIN_WEBHOOKS expected webhooks, so the
        planted case shows whatever the hour the demo is built or a test runs."""
        minute_ends = now.timestamp() - 60.0 * np.arange(7 * 24 * 60)
        expected = np.cumsum(self.tickets_per_day / 60 * hourly_weight(minute_ends - 1))
        enough = int(np.argmax(expected >= EPISODE_MIN_WEBHOOKS)) + 1
        return now - timedelta(hours=hours, minutes=max(0, enough - hours * 60))


TENANTS: tuple[Tenant, ...] = (
    Tenant(
        ACME,
        "Acme Corp MSP",
        "acme-corp.example",
        85,
        150,
        620,
        180,
        120,
        100000,
        clients=("Acme Manufacturing", "Acme Logistics", "Road Runner Foods"),
    ),
    Tenant(
        GLOBEX,
        "Globex Managed Services",
        "globex.example",
        640,
        300,
        4000,
        365,
        400,
        500000,
        base_failure_rate=0.015,
        feedback_rate=0.04,
        preferences={**DEFAULT_PREFERENCES, "max_enhancement_length": 800},
        rate_limits={"webhooks": {"ticket_created": 600, "ticket_resolved": 300}},
        clients=(
            "Globex Chemicals",
            "Globex Retail",
            "Hank Scorpio Holdings",
            "Cypress Creek Energy",
        ),
    ),
    Tenant(
        INITECH,
        "Initech IT Services",
        "initech.example",
        70,
        200,
        900,
        240,
        90,
        200000,
        clients=("Initech", "Chotchkie's Restaurants"),
    ),
    Tenant(
        UMBRELLA,
        "Umbrella Network Solutions",
        "umbrella-it.example",
        60,
        240,
        750,
        240,
        150,
        400000,
        feedback_rate=0.1,
        low_rated_kinds=("network", "vpn"),
        kind_weights={"network": 0.18, "vpn": 0.16},
        clients=("Umbrella Pharma", "Raccoon City Clinic", "Arklay Labs"),
    ),
    Tenant(
        HOOLI,
        "Hooli Support Partners",
        "hooli-support.example",
        95,
        90,
        300,
        120,
        60,
        300000,
        preferences={**DEFAULT_PREFERENCES, "kb_timeout_seconds": 90},  # out of range 1-60
        clients=("Hooli XYZ", "Pied Piper"),
    ),
    Tenant(
        SOYLENT,
        "Soylent Systems",
        "soylent.example",
        55,
        180,
        500,
        200,
        70,
        600000,
        stalled_hours=24,  # long enough to show at any hour, even at the tests' small scale
        clients=("Soylent Foods",),
    ),
    Tenant(
        VANDELAY,
        "Vandelay IT Import/Export",
        "vandelay.example",
        80,
        220,
        700,
        240,
        90,
        900000,
        refused_hours=30,
        clients=("Vandelay Industries",),
    ),
    Tenant(
        KRAMERICA,
        "Kramerica Managed IT",
        "kramerica.example",
        75,
        160,
        600,
        200,
        60,
        910000,
        rejected_hours=3,
        rejected_share=0.9,
        clients=("Kramerica Industries",),
    ),
    Tenant(
        PENDANT,
        "Pendant Publishing IT",
        "pendant.example",
        70,
        140,
        550,
        200,
        60,
        920000,
        unattempted_hours=8,
        clients=("Pendant Publishing",),
    ),
    Tenant(
        NEWCO,
        "Stark NewCo IT",
        "stark-newco.example",
        50,
        3,
        18,
        10,
        25,
        700000,
        max_resolved_webhooks=20,
        preferences={**DEFAULT_PREFERENCES, "include_monitoring": False},
        clients=("Stark NewCo",),
    ),
    Tenant(
        WAYNE,
        "Wayne Legacy Support",
        "wayne-legacy.example",
        50,
        400,
        1200,
        365,
        80,
        800000,
        is_active=False,
        stopped_days_ago=24,
        rate_limits=None,
        clients=("Wayne Enterprises", "Gotham Clinic"),
    ),
)


def build_fleet(count: int = len(TENANTS)) -> tuple[Tenant, ...]:
    """The first `count` planted tenants, topped up with ordinary ones (50-100 tickets/day)."""
    extra = tuple(
        Tenant(
            f"msp-tenant-{i:03d}",
            f"Demo MSP {i:03d}",
            f"tenant-{i:03d}.example",
            50 + (i * 37) % 51,
            60 + (i * 13) % 300,
            150 + (i * 41) % 400,
            120,
            30 + (i * 7) % 60,
            1_000_000 + i * 100_000,
        )
        for i in range(len(TENANTS) + 1, count + 1)
    )
    return TENANTS[:count] + extra


def tenant(tenant_id: str) -> Tenant:
    return next(t for t in TENANTS if t.tenant_id == tenant_id)


# --- ticket kinds: ticket_history subject/tags, descriptions, enhancement texts, feedback ---------
@dataclass(frozen=True)
class Kind:
    name: str
    tags: tuple[str, ...]
    weight: float
    subjects: tuple[str, ...]
    descriptions: tuple[str, ...]
    resolutions: tuple[str, ...]
    outputs: tuple[str, ...]  # llm_output for a completed enhancement
    complaints: tuple[str, ...] = ()  # feedback comments when techs rate it low


KINDS: tuple[Kind, ...] = (
    Kind(
        "password_reset",
        ("account", "password"),
        0.16,
        (
            "Password reset request",
            "Account locked out after failed logins",
            "User cannot log in to Windows",
        ),
        (
            "User locked out after too many attempts, needs a reset before the 9am shift.",
            "Password expired while the user was on leave; cannot sign in remotely.",
        ),
        (
            "Unlocked the AD account and issued a temporary password.",
            "Reset password, confirmed MFA enrolment, user signed in.",
        ),
        (
            "**Likely cause:** the account is locked by repeated failed sign-ins.\n\n"
            "**Suggested steps:**\n1. Check lockout source in the DC security log (event 4740).\n"
            "2. Unlock the account and issue a temporary password.\n"
            "3. Clear stale credentials on the user's phone mail client.",
            "**Summary:** password expired during leave.\n\n**Suggested steps:**\n"
            "1. Reset via AD Users and Computers with 'change at next logon'.\n"
            "2. Confirm MFA registration before the user signs in remotely.",
        ),
    ),
    Kind(
        "email",
        ("email", "outlook"),
        0.14,
        ("Outlook not syncing mailbox", "Emails stuck in outbox", "Shared mailbox missing"),
        (
            "Outlook shows 'Disconnected' and new mail has not arrived since this morning.",
            "Messages with attachments stay in the outbox and never send.",
        ),
        (
            "Rebuilt the Outlook profile; mailbox synced.",
            "Removed a 40 MB attachment blocking the outbox.",
        ),
        (
            "**Likely cause:** a corrupt Outlook profile or OST file.\n\n**Suggested steps:**\n"
            "1. Check Microsoft 365 service health.\n2. Create a new Outlook profile.\n"
            "3. If it persists, rebuild the OST file.",
            "**Likely cause:** attachment over the 35 MB send limit.\n\n**Suggested steps:**\n"
            "1. Open the outbox and remove the oversized item.\n"
            "2. Share large files through OneDrive links instead.",
        ),
    ),
    Kind(
        "printer",
        ("printer", "hardware"),
        0.1,
        ("Printer offline on 3rd floor", "Print jobs stuck in queue", "Scanner to email fails"),
        (
            "The floor printer shows offline for everyone since the weekend.",
            "Jobs sit in the queue and the spooler needs restarting every hour.",
        ),
        (
            "Restarted the print spooler and updated the driver.",
            "Printer had a new DHCP address; set a reservation.",
        ),
        (
            "**Likely cause:** the printer's IP changed (DHCP) and the port points to the old one."
            "\n\n**Suggested steps:**\n1. Print a config page for the current IP.\n"
            "2. Add a DHCP reservation.\n3. Update the TCP/IP port on the print server.",
            "**Likely cause:** a stuck spooler job.\n\n**Suggested steps:**\n"
            "1. Stop the Print Spooler service and clear C:\\Windows\\System32\\spool\\PRINTERS.\n"
            "2. Restart the spooler and reprint.",
        ),
    ),
    Kind(
        "network",
        ("network", "connectivity"),
        0.09,
        (
            "Intermittent network drops on 2nd floor",
            "Slow network at branch office",
            "No internet access for some users",
        ),
        (
            "Users on the 2nd floor lose connectivity for a few seconds several times an hour.",
            "Branch office reports very slow file transfers to head office since Monday.",
        ),
        (
            "Replaced a failing switch uplink cable; errors stopped.",
            "ISP circuit was flapping; ISP replaced the CPE.",
        ),
        (
            "**Likely cause:** network congestion.\n\n**Suggested steps:**\n"
            "1. Restart the affected workstation.\n2. Reboot the core switch.\n"
            "3. Contact the ISP if the problem persists.",
            "**Summary:** intermittent connectivity.\n\n**Suggested steps:**\n"
            "1. Run ipconfig /release and /renew.\n2. Check the cable.\n"
            "3. Escalate to the network team.",
        ),
        (
            "Generic advice: rebooting the core switch in business hours is not an option.",
            "Ignored the switch port errors in the monitoring data, which was the real cause.",
            "Suggested restarting the PC, but the whole floor was affected.",
            "Did not look at the interface counters; useless for an intermittent drop.",
        ),
    ),
    Kind(
        "vpn",
        ("vpn", "network", "remote-access"),
        0.08,
        (
            "VPN disconnects every 10 minutes",
            "Cannot connect to VPN from home",
            "VPN connected but no access to file shares",
        ),
        (
            "Remote users are dropped from the VPN roughly every 10 minutes since the firewall "
            "update.",
            "VPN connects but internal DNS names do not resolve.",
        ),
        (
            "Raised the IKE phase 2 lifetime that the firmware update had reset.",
            "Pushed the internal DNS suffix to the VPN client profile.",
        ),
        (
            "**Likely cause:** the VPN client is out of date.\n\n**Suggested steps:**\n"
            "1. Reinstall the VPN client.\n2. Restart the laptop.\n3. Try another network.",
            "**Summary:** VPN connectivity issue.\n\n**Suggested steps:**\n"
            "1. Check the user's home internet.\n2. Reset the user's password.\n"
            "3. Reinstall the client.",
        ),
        (
            "Told the user to reinstall the client; it was the firewall's IKE lifetime.",
            "Wrong diagnosis: split tunnel DNS, not the user's home internet.",
            "Same canned VPN answer every time, never mentions the firewall config.",
            "Password reset suggestion makes no sense for a tunnel that drops after 10 minutes.",
        ),
    ),
    Kind(
        "disk_space",
        ("server", "storage"),
        0.08,
        (
            "Low disk space on file server",
            "C: drive full on terminal server",
            "Backup volume almost full",
        ),
        (
            "Monitoring alert: D: on the file server is at 95%.",
            "Users cannot save files; the terminal server C: drive is full.",
        ),
        (
            "Cleared old user profiles and extended the volume by 100 GB.",
            "Moved the IIS logs to another volume and set up log rotation.",
        ),
        (
            "**Likely cause:** growth of user profile and temp folders.\n\n**Suggested steps:**\n"
            "1. Run TreeSize to find the largest folders.\n2. Remove stale profiles older than "
            "90 days.\n3. Extend the volume if growth is expected.",
        ),
    ),
    Kind(
        "performance",
        ("server", "performance"),
        0.09,
        ("Server running slow", "Application very slow since update", "High CPU on SQL server"),
        (
            "ERP users report screens taking 30 seconds to load since this morning.",
            "SQL server CPU at 100% during business hours.",
        ),
        (
            "A runaway report job was killed and rescheduled to night hours.",
            "Added missing index recommended by the query store.",
        ),
        (
            "**Likely cause:** a long-running query or job saturating the SQL server.\n\n"
            "**Suggested steps:**\n1. Check Activity Monitor for the top CPU queries.\n"
            "2. Review scheduled jobs started today.\n3. Compare with the baseline in monitoring.",
        ),
    ),
    Kind(
        "software",
        ("software", "install"),
        0.1,
        (
            "Install Adobe Acrobat for new starter",
            "Teams keeps crashing",
            "License error in accounting software",
        ),
        (
            "New starter needs Acrobat Pro and the accounting client before Monday.",
            "Teams crashes on launch after the latest update.",
        ),
        (
            "Deployed via Intune and assigned the license.",
            "Cleared the Teams cache and reinstalled the new Teams client.",
        ),
        (
            "**Suggested steps:**\n1. Deploy the package through Intune to the user's device group."
            "\n2. Assign the license in the admin portal.\n3. Confirm activation with the user.",
            "**Likely cause:** a corrupt Teams cache after the update.\n\n**Suggested steps:**\n"
            "1. Quit Teams and clear %appdata%\\Microsoft\\Teams.\n"
            "2. Reinstall if it still crashes.",
        ),
    ),
    Kind(
        "backup",
        ("backup", "storage"),
        0.07,
        (
            "Backup job failed overnight",
            "Restore request for deleted folder",
            "Veeam job warning: retention",
        ),
        (
            "Nightly backup of the file server failed with a VSS error.",
            "User deleted a project folder yesterday and needs it restored.",
        ),
        (
            "Restarted the VSS writers and re-ran the job successfully.",
            "Restored the folder from last night's restore point.",
        ),
        (
            "**Likely cause:** a VSS writer in a failed state.\n\n**Suggested steps:**\n"
            "1. Run `vssadmin list writers` and restart failed writers' services.\n"
            "2. Re-run the job and confirm the restore point.",
        ),
    ),
    Kind(
        "access",
        ("permissions", "file-share"),
        0.09,
        (
            "Access denied to shared drive",
            "Need access to finance folder",
            "Mapped drive missing after login",
        ),
        (
            "User moved to finance and cannot open the finance share.",
            "The S: drive is no longer mapped at login for the sales team.",
        ),
        (
            "Added the user to the Finance-RW group; access confirmed after re-login.",
            "Fixed the GPO drive map item targeting.",
        ),
        (
            "**Likely cause:** missing security group membership.\n\n**Suggested steps:**\n"
            "1. Confirm the manager's approval.\n2. Add the user to the share's RW group.\n"
            "3. Ask the user to sign out and back in.",
        ),
    ),
)
KIND_NAMES = tuple(k.name for k in KINDS)

POSITIVE_COMMENTS = (
    "Spot on, saved me 20 minutes.",
    "Good summary of the similar tickets.",
    "Useful steps, resolved on first contact.",
    "The KB link was exactly what I needed.",
    "Clear and accurate.",
)
NEGATIVE_COMMENTS = (
    "Too generic to be useful.",
    "Missed the obvious cause in the ticket description.",
    "Referenced a server this client does not have.",
    "Far too long, I stopped reading.",
)
TECHNICIANS = (
    "jane.doe",
    "raj.patel",
    "maria.garcia",
    "tom.nguyen",
    "lisa.chen",
    "omar.haddad",
    "kate.oconnor",
    "li.wei",
)


# --- incidents: failures cluster in these windows ------------------------------------------------
@dataclass(frozen=True)
class Incident:
    name: str
    failure: str
    days_ago: int
    start_hour: float
    hours: float
    failure_share: float  # share of runs in the window that fail this way
    tenant_id: str | None = None  # None: the whole platform
    # starts on the next weekday when days_ago falls on a weekend: a day of a small tenant's
    # weekend traffic has too few attempts for its success rate to be judged
    working_day: bool = False

    def window(self, now: datetime) -> tuple[datetime, datetime]:
        start = day_clock(now, self.days_ago, self.start_hour)
        while self.working_day and start.weekday() >= 5:
            start += timedelta(days=1)
        return start, start + timedelta(hours=self.hours)


INCIDENTS: tuple[Incident, ...] = (
    Incident("acme-sdp-latency", SDP_TIMEOUT, 1, 10.0, 1.5, 0.4, ACME),
    Incident("openai-rate-limit", LLM_RATE_LIMIT, 2, 14.0, 1.5, 0.35),
    Incident("globex-sdp-429", SDP_RATE_LIMIT, 4, 9.0, 3.0, 0.25, GLOBEX),
    Incident(
        "initech-sdp-401-expired-key",
        SDP_UNAUTHORIZED,
        6,
        7.5,
        26.0,
        0.97,
        INITECH,
        working_day=True,
    ),
    Incident("openai-timeouts", LLM_TIMEOUT, 8, 15.0, 1.0, 0.5),
    Incident("bad-deploy-attributeerror", PLATFORM_BUG, 7, 13.0, 0.75, 0.9),
    Incident("context-db-slow", CONTEXT_TIMEOUT, 11, 10.0, 2.0, 0.45),
)


# --- queue backlog episodes: Prometheus queue length, and queue wait in the database ------------
@dataclass(frozen=True)
class QueueEpisode:
    name: str
    days_ago: int
    start_hour: float
    rise_minutes: float
    plateau_minutes: float
    fall_minutes: float
    peak: float

    def depth(self, ts: np.ndarray, now: datetime) -> np.ndarray:
        """Extra queue depth at epoch seconds `ts`: a trapezoid rising to `peak`."""
        t0 = day_clock(now, self.days_ago, self.start_hour).timestamp()
        m = (ts - t0) / 60.0
        rise = np.clip(m / self.rise_minutes, 0, 1)
        fall = np.clip(1 - (m - self.rise_minutes - self.plateau_minutes) / self.fall_minutes, 0, 1)
        return self.peak * np.minimum(rise, fall) * (m >= 0)


QUEUE_EPISODES: tuple[QueueEpisode, ...] = (
    QueueEpisode("above-100-for-8-minutes", 3, 10.0, 3, 9, 5, 140),  # alert fires, drains
    QueueEpisode("above-200-not-draining", 9, 14.0, 10, 28, 15, 260),  # escalation
    QueueEpisode("elevated-lunchtime", 1, 13.0, 10, 25, 10, 70),  # 50-100: elevated
)
QUEUE_WAIT_SECONDS_PER_JOB = 1.5  # queue wait a job sees per job ahead of it in a backlog


@dataclass(frozen=True)
class WorkerOutage:
    """A worker pod that stopped sending heartbeats (OOMKilled) until it was replaced."""

    days_ago: int
    start_hour: float
    minutes: float
    worker: int  # index into the worker hostnames; < 3 so it is always deployed

    def mask(self, ts: np.ndarray, now: datetime) -> np.ndarray:
        t0 = day_clock(now, self.days_ago, self.start_hour).timestamp()
        return (ts >= t0) & (ts < t0 + self.minutes * 60)


WORKER_OUTAGES: tuple[WorkerOutage, ...] = (WorkerOutage(5, 11.0, 20, 1),)


def queue_backlog(ts: np.ndarray, now: datetime) -> np.ndarray:
    return sum((e.depth(ts, now) for e in QUEUE_EPISODES), np.zeros(len(ts)))


# --- traffic shape: business hours and weekdays (UTC) --------------------------------------------
HOUR_PROFILE = np.array(
    [
        0.15,
        0.12,
        0.1,
        0.1,
        0.12,
        0.2,
        0.35,
        0.7,
        1.3,
        1.9,
        2.1,
        2.0,
        1.5,
        1.8,
        2.0,
        1.9,
        1.6,
        1.1,
        0.7,
        0.45,
        0.35,
        0.3,
        0.25,
        0.2,
    ]
)
WEEKDAY_FACTOR = np.array([1.05, 1.1, 1.0, 1.0, 0.9, 0.3, 0.2])  # Monday first
_WEEK = np.outer(WEEKDAY_FACTOR, HOUR_PROFILE)
_WEEK = _WEEK * 7 / _WEEK.sum()  # a week's weights sum to 7: tickets/day is the weekly mean


def hourly_weight(ts: np.ndarray) -> np.ndarray:
    """Share of a mean day's traffic in the hour holding each epoch second of `ts`."""
    hours = np.floor_divide(ts, 3600).astype(np.int64)
    weekday = (hours // 24 + 3) % 7  # 1970-01-01 was a Thursday
    return _WEEK[weekday, hours % 24]


# --- planted enhancement runs --------------------------------------------------------------------
@dataclass(frozen=True)
class PlantedRun:
    tenant_id: str
    ticket_id: str
    kind: str
    status: str
    failure: str | None = None
    clock: tuple[int, float] | None = None  # (days ago, hour) of created_at
    age_seconds: int | None = None  # or: created_at = now - age
    processing_ms: int | None = None
    queue: str | None = None  # Redis list holding its job (pending runs only)
    celery_priority: int = 0
    job_data_keyword: bool = False  # sent as enhance_ticket(job_data=...), not positionally

    def created_at(self, now: datetime) -> datetime:
        if self.clock is not None:
            return day_clock(now, *self.clock)
        return now - timedelta(seconds=self.age_seconds or 0)


def _queued(
    tenant_id: str,
    ticket_id: str,
    kind: str,
    age: int,
    queue: str,
    priority: int = 0,
    keyword: bool = False,
) -> PlantedRun:
    return PlantedRun(
        tenant_id,
        ticket_id,
        kind,
        "pending",
        age_seconds=age,
        queue=queue,
        celery_priority=priority,
        job_data_keyword=keyword,
    )


_P3, _P6, _P9 = CELERY_PRIORITY_QUEUES
PLANTED_RUNS: tuple[PlantedRun, ...] = (
    PlantedRun(
        ACME, TICKET_SDP_TIMEOUT, "email", "failed", SDP_TIMEOUT, (1, 10.5), processing_ms=47_310
    ),
    PlantedRun(
        ACME, TICKET_LOW_RATED, "printer", "completed", clock=(2, 9.25), processing_ms=21_420
    ),
    PlantedRun(ACME, TICKET_STALE_PENDING, "backup", "pending", age_seconds=20 * 60),
    PlantedRun(
        ACME,
        TICKET_CONTEXT_AS_STRING,
        "vpn",
        "completed",
        clock=(1, 14.0),
        processing_ms=18_950,
    ),
    PlantedRun(
        ACME,
        TICKET_LLM_TIMEOUT,
        "performance",
        "completed",
        LLM_TIMEOUT,
        (3, 11.2),
        processing_ms=33_870,
    ),
    PlantedRun(
        ACME,
        TICKET_PLATFORM_BUG,
        "software",
        "failed",
        PLATFORM_BUG,
        (2, 14.5),
        processing_ms=410,
    ),
    PlantedRun(
        ACME,
        TICKET_NODE_KEY_BUG,
        "email",
        "failed",
        NODE_KEY_BUG,
        (2, 16.25),
        processing_ms=3_880,
    ),
    PlantedRun(
        ACME,
        TICKET_SDP_UNAUTHORIZED,
        "access",
        "failed",
        SDP_UNAUTHORIZED,
        (5, 16.0),
        processing_ms=16_480,
    ),
    PlantedRun(
        ACME,
        TICKET_SDP_RATE_LIMIT,
        "password_reset",
        "failed",
        SDP_RATE_LIMIT,
        (4, 10.0),
        processing_ms=15_230,
    ),
    PlantedRun(
        ACME,
        TICKET_CONTEXT_TIMEOUT,
        "disk_space",
        "completed",
        CONTEXT_TIMEOUT,
        (11, 10.5),
        processing_ms=31_040,
    ),
    PlantedRun(
        ACME,
        TICKET_SOFT_TIME_LIMIT,
        "performance",
        "failed",
        SOFT_TIME_LIMIT,
        (6, 15.3),
        processing_ms=100_412,
    ),
    # One webhook, four attempts: Celery retried the failed update 3 times (backoff), each
    # attempt its own row with its own created_at; the last one completed.
    PlantedRun(
        ACME, TICKET_RERUN, "network", "failed", SDP_TIMEOUT, (3, 9.0), processing_ms=31_020
    ),
    PlantedRun(
        ACME, TICKET_RERUN, "network", "failed", SDP_TIMEOUT, (3, 9.01), processing_ms=30_770
    ),
    PlantedRun(
        ACME, TICKET_RERUN, "network", "failed", SDP_TIMEOUT, (3, 9.02), processing_ms=30_910
    ),
    PlantedRun(ACME, TICKET_RERUN, "network", "completed", clock=(3, 9.03), processing_ms=19_640),
    # Jobs waiting in Redis, each with its pending row: 13 in Celery's lists (no enqueue time
    # in a Celery message), 5 in enhancement:queue. The oldest there (queued 47 min ago) makes
    # the "stuck" rule fire.
    _queued(ACME, TICKET_STUCK_IN_QUEUE, "email", 47 * 60, ENHANCEMENT_QUEUE),
    _queued(ACME, TICKET_QUEUED, "password_reset", 95, CELERY_QUEUE),
    _queued(GLOBEX, "90001", "printer", 240, CELERY_QUEUE),
    _queued(GLOBEX, "90002", "email", 180, CELERY_QUEUE, keyword=True),
    _queued(GLOBEX, "90003", "software", 150, _P3, 3),
    _queued(GLOBEX, "90004", "access", 90, _P3, 3, keyword=True),
    _queued(GLOBEX, "90005", "password_reset", 40, CELERY_QUEUE),
    _queued(GLOBEX, "90006", "backup", 15, _P6, 6),
    _queued(HOOLI, "90011", "disk_space", 200, _P6, 6),
    _queued(HOOLI, "90012", "email", 60, CELERY_QUEUE),
    _queued(INITECH, "90021", "software", 130, _P9, 9),
    _queued(UMBRELLA, "90031", "vpn", 75, _P3, 3),
    _queued(NEWCO, "90041", "printer", 30, CELERY_QUEUE),
    _queued(SOYLENT, "90051", "performance", 900, _P6, 6),
    _queued(GLOBEX, "90007", "network", 300, ENHANCEMENT_QUEUE),
    _queued(UMBRELLA, "90032", "network", 120, ENHANCEMENT_QUEUE),
    _queued(HOOLI, "90013", "access", 45, ENHANCEMENT_QUEUE),
    _queued(SOYLENT, "90052", "email", 20, ENHANCEMENT_QUEUE),
)


def queued_runs(tenant_ids: set[str] | None = None) -> list[PlantedRun]:
    """Planted runs whose job waits in Redis, oldest first."""
    runs = [
        r for r in PLANTED_RUNS if r.queue and (tenant_ids is None or r.tenant_id in tenant_ids)
    ]
    return sorted(runs, key=lambda r: -(r.age_seconds or 0))


@dataclass(frozen=True)
class PlantedFeedback:
    tenant_id: str
    ticket_id: str
    feedback_type: str
    rating_value: int | None
    comment: str | None
    technician: str
    minutes_after: int  # after the run completed


PLANTED_FEEDBACK: tuple[PlantedFeedback, ...] = (
    PlantedFeedback(
        ACME,
        TICKET_LOW_RATED,
        "rating",
        2,
        "Enhancement suggested wrong solution, not applicable to this issue",
        "jane.doe",
        35,
    ),
    PlantedFeedback(ACME, TICKET_LOW_RATED, "thumbs_down", None, None, "jane.doe", 36),
)


# --- platform operations (audit_log) -------------------------------------------------------------
@dataclass(frozen=True)
class AuditEvent:
    clock: tuple[int, float]
    user: str
    operation: str
    status: str
    details: dict


AUDIT_EVENTS: tuple[AuditEvent, ...] = (
    AuditEvent(
        (12, 9.0),
        "ops.admin@aiagents.example",
        "sync_tenant_configs",
        "success",
        {"tenants_synced": 8, "duration_ms": 1840},
    ),
    AuditEvent(
        (9, 14.3),
        "ops.admin@aiagents.example",
        "pause_processing",
        "success",
        {"reason": "queue above 200 and not draining", "queue_depth": 247},
    ),
    AuditEvent(
        (9, 14.55),
        "ops.admin@aiagents.example",
        "resume_processing",
        "success",
        {"reason": "workers scaled to 10", "paused_seconds": 900},
    ),
    AuditEvent(
        (9, 14.6),
        "ops.admin@aiagents.example",
        "clear_queue",
        "failure",
        {"queue": ENHANCEMENT_QUEUE, "error": "confirmation token expired"},
    ),
    AuditEvent(
        (9, 14.62),
        "ops.admin@aiagents.example",
        "clear_queue",
        "success",
        {"queue": ENHANCEMENT_QUEUE, "jobs_removed": 37},
    ),
    AuditEvent(
        (5, 9.5),
        "support.lead@aiagents.example",
        "sync_tenant_configs",
        "success",
        {"tenant_id": INITECH, "reason": "ServiceDesk Plus API key rotated"},
    ),
    AuditEvent(
        (0, 0.0),
        "ops.admin@aiagents.example",
        "sync_tenant_configs",
        "in_progress",
        {"tenants_synced": 0, "triggered_by": "nightly schedule"},
    ),
)
