"""Shared page plumbing: the sidebar context, error display and access recording."""

from __future__ import annotations

import logging
import os
import re
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, TypeVar
from urllib.parse import urlencode

import streamlit as st
from streamlit.runtime.scriptrunner import get_script_run_ctx

from services import access_log, db
from services.db import TENANT_ID_PATTERN
from services.errors import DashboardError, UnsafeRole
from services.investigation.model import case_reference
from services.tenants import Tenant
from services.timerange import DEFAULT_RANGE, RANGES, TimeRange
from ui import reads
from ui.identity import User, current_user, sign_out

log = logging.getLogger("dashboard")
F = TypeVar("F", bound=Callable[..., Any])
# What a client screen says when anything is missing: no cause, no host, nothing internal.
PUBLIC_UNAVAILABLE = "This information is temporarily unavailable. Please check back shortly."
T = TypeVar("T")


@contextmanager
def guard(what: str = "this view", public: bool = False) -> Iterator[None]:
    """Show a plain message instead of a traceback; unexpected errors are logged with a ref.
    public=True (client screens) shows no detail at all, only that data is unavailable."""
    try:
        yield
    except Exception as exc:  # noqa: BLE001 - the page must survive anything; the log keeps it
        ref = uuid.uuid4().hex[:8]
        if public:
            log.warning("error on a client screen in %s (ref %s): %s", what, ref, exc)
            st.info(PUBLIC_UNAVAILABLE)
        elif isinstance(exc, DashboardError):
            st.error(str(exc), icon=":material/error:")
        else:
            log.exception("unexpected error in %s (ref %s)", what, ref)
            st.error(
                f"Something went wrong while loading {what}. It has been logged as ref {ref}.",
                icon=":material/error:",
            )


def refuse_unsafe_roles(public: bool = False) -> None:
    """Fail closed: while a configured database role is one RLS does not apply to, no page
    shows anything but what is wrong (a client screen: only that data is unavailable)."""
    try:
        db.check_roles()
    except UnsafeRole as exc:
        if public:
            log.error("client screen refused: %s", exc)
            st.info(PUBLIC_UNAVAILABLE)
        else:
            st.error(str(exc), icon=":material/gpp_bad:")
        st.stop()


def session_replaced() -> bool:
    """True on the first run of a session that replaced one this server does not hold: the
    replica that held it stopped or restarted, and the load balancer sent the browser here.
    Streamlit's browser code sends the id of its last session when it reconnects."""
    if "_session_replaced" in st.session_state:
        return False  # said once, at the session's first run
    entries = st.context.headers.get("Sec-Websocket-Protocol", "").split(",")
    previous = entries[2].strip() if len(entries) > 2 else ""
    run = get_script_run_ctx()
    st.session_state["_session_replaced"] = True
    return bool(previous and run is not None and previous != run.session_id)


@dataclass(frozen=True)
class ViewContext:
    user: User
    tenant_id: str | None
    range_key: str
    range: TimeRange  # the sidebar's range, ending now
    purpose: str

    @property
    def now(self) -> datetime:
        """The moment the page reads as now (the end of the sidebar's range)."""
        return self.range.until


def tenants() -> list[Tenant]:
    """The tenant directory. While it cannot be read, the last list this session saw, so the
    chosen tenant survives an outage and its data comes back with the database."""
    with guard("the tenant list"):
        known = reads.tenant_directory()
        st.session_state["_known_tenants"] = known
        return known
    return st.session_state.get("_known_tenants", [])


def presentable(tenant_id: str | None) -> bool:
    """Whether a screenshare of this tenant may start; says why not in client-safe words."""
    with guard("service health", public=True):  # a shared screen shows no internals
        if tenant_id in {t.tenant_id for t in reads.tenant_directory()}:
            return True
        st.error("Pick a tenant before presenting: ?view=client&tenant=<tenant id>.")
    return False


# CommonMark: any ASCII punctuation character may be backslash-escaped, and is then literal.
_PUNCTUATION = re.compile(r"([!-/:-@\[-`{-~])")


def md(value: object) -> str:
    """Any value from a user or the data, shown literally inside Markdown: no links, images,
    HTML, emphasis, code, math, headings or directives, whatever it holds. One line: a line
    break (or any control character) becomes a space, so it cannot start a block."""
    one_line = re.sub(r"[\x00-\x1f\x7f]", " ", str(value))
    escaped = _PUNCTUATION.sub(r"\\\1", one_line)
    # Bare URLs and e-mail addresses are linked after escaping (GFM autolinks): an invisible
    # word joiner before ':', '.' of www. and '@' keeps them text.
    return re.sub(r"(?=\\[:@])|(?<=www)(?=\\\.)", "\u2060", escaped, flags=re.I)


def _tenant_picker(labels: dict[str, str]) -> str | None:
    """Tenant selectbox kept in step with ?tenant=<id> by hand: Streamlit's own binding would
    put the display label in the URL, and links must carry the plain tenant id."""
    # A page switch clears the URL's parameters; a URL edited by hand is a new session.
    wanted = st.query_params.get("tenant") or st.session_state.get("tenant")
    if wanted and not labels and TENANT_ID_PATTERN.fullmatch(wanted):
        labels = {wanted: wanted}  # the directory cannot be read: keep the tenant the URL names
    if wanted != st.session_state.get("_tenant_in_url"):  # first load, or the URL was edited
        st.session_state["_tenant_in_url"] = wanted
        st.session_state["tenant"] = wanted if wanted in labels else None
        if wanted and wanted not in labels:
            st.warning(f"No tenant “{md(wanted[:100])}” is known; showing the fleet.")
    tenant_id = st.selectbox(
        "Tenant",
        list(labels),
        index=None,
        key="tenant",
        format_func=lambda t: labels.get(t, t),
        placeholder="All tenants (fleet)",
    )
    if tenant_id:
        st.query_params["tenant"] = tenant_id
    else:
        st.query_params.pop("tenant", None)
    st.session_state["_tenant_in_url"] = tenant_id
    return tenant_id


def own_filter(widget: Callable[..., T], *args: Any, key: str, **kwargs: Any) -> T:
    """A view's own filter, bound to ?<key>=...: a link's value wins; a view opened by the back
    button on an entry without it gets the value this user last chose in this session, written
    back to the URL (Streamlit would reset it to the default). Kept under a non-widget key
    because Streamlit drops the widget keys of pages not drawn."""
    chosen: dict[str, Any] = st.session_state.setdefault("_own_filters", {})
    restore: set[str] = st.session_state.setdefault("_own_filters_restore", set())
    run = get_script_run_ctx()
    if key not in st.query_params and key in chosen:
        if run is not None and run.is_history_navigation:
            # A back-button run forces missing bound parameters to their default even over
            # st.session_state, so restore them in a plain rerun of the same page.
            restore.update(k for k in chosen if k not in st.query_params)
            st.rerun()
        if key in restore:
            st.session_state[key] = chosen[key]
    restore.discard(key)
    value = widget(*args, key=key, bind="query-params", **kwargs)
    if key in st.query_params:  # a value the user chose; the default is never in the URL
        chosen[key] = st.session_state[key]  # st.tabs returns its containers, not the value
    else:
        chosen.pop(key, None)
    return value


def lazy_expander(label: str, key: str, draw: Callable[[], object], **kwargs: Any) -> None:
    """An expander whose content `draw` builds only while it is open: a closed st.expander
    still sends its content and the browser draws it. Opening or closing it reruns the page."""
    box = st.expander(label, key=key, on_change="rerun", **kwargs)
    if box.open:
        with box:
            draw()


def sidebar() -> ViewContext:
    """The shared sidebar: tenant and time range (both in the URL), and the access purpose."""
    user = current_user()
    with st.sidebar:
        known = tenants()
        labels = {t.tenant_id: t.label for t in known}
        tenant_id = _tenant_picker(labels)
        range_key = (
            st.segmented_control(
                "Time range",
                list(RANGES),
                default=DEFAULT_RANGE,
                key="range",
                bind="query-params",
                required=True,
            )
            or DEFAULT_RANGE
        )
        purpose = st.text_input(
            "Purpose of access",
            key="purpose",
            placeholder="e.g. SUP-567 or weekly review",
            help="Recorded with every access to a tenant's data.",
        ).strip()
        if tenant_id:
            st.link_button(
                "Present to client",
                f"?view=client&tenant={tenant_id}",
                icon=":material/present_to_all:",
                width="stretch",
                help="Opens this tenant's client-safe health screen in a new tab.",
            )
        st.caption(f"Signed in as **{user.email}** ({user.role})")
        if replica := os.environ.get("DASHBOARD_REPLICA"):  # which process holds this session
            st.caption(f"Served by replica `{replica}`")
        if st.button("Sign out", icon=":material/logout:", type="tertiary"):
            sign_out()
    return context(user, tenant_id, range_key, purpose)


def context(
    user: User, tenant_id: str | None, range_key: str = DEFAULT_RANGE, purpose: str = ""
) -> ViewContext:
    # Round to the minute so cached results are shared between reruns within that minute.
    now = datetime.now(UTC).replace(second=0, microsecond=0)
    period = TimeRange.last(range_key, now)
    return ViewContext(user, tenant_id, range_key, period, purpose or "routine monitoring")


class AccessNotRecorded(DashboardError):
    """No record, no data: the view stops before drawing anything of the tenant."""


def record_view(
    ctx: ViewContext,
    kind: str,
    tenant_id: str,
    params: dict[str, Any],
    row_count: int | None = None,
    sensitive: bool = False,
) -> None:
    """Record an access before its data is drawn: the one place that decides whether a view may
    show tenant data, cached or not. Raises AccessNotRecorded when the record cannot be written;
    the view's guard shows that instead of the data. Recorded once per session for the same
    view, tenant, parameters and purpose."""
    key = ("access", kind, tenant_id, repr(sorted(params.items())), ctx.purpose, sensitive)
    seen: set = st.session_state.setdefault("_recorded_access", set())
    if key in seen:
        return
    try:
        access_log.record(
            access_log.Access(
                actor=ctx.user.email,
                actor_role=ctx.user.role,
                tenant_id=tenant_id,
                purpose=ctx.purpose,
                query_kind=kind,
                query_params=params,
                row_count=row_count,
                sensitive_revealed=sensitive,
            )
        )
    except DashboardError as exc:
        raise AccessNotRecorded(
            f"This access could not be recorded, so no data is shown ({exc})"
        ) from exc
    except Exception as exc:
        ref = uuid.uuid4().hex[:8]
        log.exception("access record failed (ref %s)", ref)
        raise AccessNotRecorded(
            f"This access could not be recorded, so no data is shown (logged as ref {ref})."
        ) from exc
    seen.add(key)


def record_refusal(ctx: ViewContext, params: dict[str, Any]) -> None:
    """Record an access that was refused (a client asking for another tenant): the attempt is
    part of the audit trail too. The user sees their own tenant whether or not this succeeds."""
    try:
        access_log.record(
            access_log.Access(
                actor=ctx.user.email,
                actor_role=ctx.user.role,
                tenant_id=ctx.tenant_id or access_log.CROSS_TENANT,
                purpose=ctx.purpose,
                query_kind=access_log.ACCESS_REFUSED,
                query_params=params,
            )
        )
    except Exception:  # noqa: BLE001 - a refusal must never break the page that refused it
        log.exception("could not record a refused access")


STATUS_BADGE = {
    "critical": ":red-badge[:material/error: Critical]",
    "degraded": ":orange-badge[:material/warning: Degraded]",
    "healthy": ":green-badge[:material/check_circle: Healthy]",
    "inactive": ":gray-badge[Inactive]",
}
STATUS_ICON = {"critical": "🔴", "degraded": "🟠", "healthy": "🟢", "inactive": "⚪"}


def investigation_link(tenant_id: str, ticket_id: str) -> str:
    """Relative link to one ticket in the investigation view (views/investigation.py), so it
    also works when the app is served under a base path."""
    return f"investigation?{urlencode({'tenant': tenant_id, 'ticket': ticket_id})}"


def ticket_link(tenant_id: str, ticket_id: str, name_tenant: bool) -> str:
    """A Markdown link to that ticket, its text escaped (ids are platform data)."""
    text = f"{md(tenant_id)} #{md(ticket_id)}" if name_tenant else f"#{md(ticket_id)}"
    return f"[{text}]({investigation_link(tenant_id, ticket_id)})"


def custom_days(ctx: ViewContext, key: str) -> TimeRange:
    """The sidebar's range, or whole UTC days picked here (both kept in the URL)."""
    if not own_filter(
        st.toggle,
        "Custom dates",
        key=f"{key}_custom_dates",
        help="Any range of whole days (UTC) instead of the sidebar's range.",
    ):
        return ctx.range
    default = (ctx.range.since.date(), ctx.now.date())
    picked = own_filter(
        st.date_input, "Dates (UTC)", value=default, max_value=ctx.now.date(), key=f"{key}_dates"
    )
    first, last = (picked[0], picked[-1]) if picked else default
    return TimeRange.days(first, last, ctx.now)


def client_consent(
    ctx: ViewContext, tenant_id: str, what: str, kind: str, params: dict[str, Any]
) -> bool:
    """Sensitive content only with the client's consent for the support case named in the
    purpose; the reveal is recorded as a sensitive access before it is shown."""
    case = case_reference(ctx.purpose)
    label = f"The client consented to showing {what}" + (f" for **{case}**" if case else "")
    consent = st.checkbox(
        label,
        key=f"{kind}_consent_{tenant_id}_{case}",
        disabled=case is None,
        help=None
        if case
        else "Name the support case (e.g. SUP-567) in the sidebar's 'Purpose of access' first.",
    )
    if consent:
        record_view(ctx, kind, tenant_id, params, sensitive=True)
    return consent
