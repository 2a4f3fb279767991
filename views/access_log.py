"""Data access log (admins): who looked at which tenant's data, when, why, and what came back."""

from datetime import UTC, datetime, timedelta

import streamlit as st

from services import access_log
from services.config import rules
from services.timerange import TimeRange
from ui.common import ViewContext, guard, own_filter, record_view, tenants

ctx: ViewContext = st.session_state["view_context"]
ANY = "(any)"

st.title("Data access log")
if not ctx.user.is_admin:  # the page is only registered for admins; this is the second lock
    st.error("The data access log is for admins only.", icon=":material/lock:")
    st.stop()

retention = rules("access_log")["retention_days"]
st.caption(
    "Every look at a tenant's data: who, when, which tenant, the stated purpose, what was "
    f"queried, how many rows came back and whether sensitive content was revealed. Records older "
    f"than {retention} days are purged nightly (`python -m services.access_log purge`)."
)

today = datetime.now(UTC).date()
with st.container(border=True):
    row1 = st.columns([2, 2, 2, 2])
    period = own_filter(
        row1[0].date_input,
        "Period (UTC)",
        value=(today - timedelta(days=7), today),
        min_value=today - timedelta(days=retention),
        max_value=today,
        key="log_period",
    )
    labels = {t.tenant_id: t.label for t in tenants()}
    tenant = own_filter(
        row1[1].selectbox,
        "Tenant",
        [ANY, access_log.CROSS_TENANT, *labels],
        key="log_tenant",
        format_func=lambda t: {ANY: "Any tenant", "*": "Cross-tenant (admin views)"}.get(
            t, labels.get(t, t)
        ),
    )
    kinds: list[str] = []
    with guard("the query kinds"):
        kinds = access_log.query_kinds()
    kind = own_filter(row1[2].selectbox, "What was queried", [ANY, *kinds], key="log_kind")
    actor = own_filter(
        row1[3].text_input, "Engineer", key="log_actor", placeholder="name or e-mail"
    )
    row2 = st.columns([4, 2, 2], vertical_alignment="bottom")
    text = own_filter(
        row2[0].text_input,
        "Purpose or parameters contain",
        key="log_text",
        placeholder="e.g. SUP-567 or a ticket id",
    )
    sensitive_only = own_filter(
        row2[1].toggle, "Sensitive content revealed only", key="log_sensitive"
    )

if not isinstance(period, tuple) or len(period) != 2:
    st.info("Pick the last day of the period.", icon=":material/date_range:")
    st.stop()

filters = access_log.Filters(
    period=TimeRange.days(period[0], period[1], datetime.now(UTC)),
    tenant_id=None if tenant == ANY else tenant,
    actor=actor,
    query_kind=None if kind == ANY else kind,
    sensitive_only=sensitive_only,
    text=text,
)
filter_params = {
    "period": f"{period[0]}..{period[1]}",
    "tenant": tenant,
    "kind": kind,
    "actor": actor.strip(),
    "text": text.strip(),
    "sensitive_only": sensitive_only,
}


def record_export(row_count: int) -> None:
    record_view(
        ctx, "access_log_export", access_log.CROSS_TENANT, filter_params, row_count=row_count
    )


with guard("the access log"):
    limit = rules("access_log")["export_max_rows"]
    frame = access_log.list_records(filters, limit=limit)
    record_view(ctx, "access_log", access_log.CROSS_TENANT, filter_params, row_count=len(frame))
    tiles = st.columns(4)
    tiles[0].metric("Records", f"{len(frame):,}", border=True)
    tiles[1].metric("Engineers", frame["actor"].nunique(), border=True)
    tiles[2].metric(
        "Tenants", frame.loc[frame["tenant_id"] != "*", "tenant_id"].nunique(), border=True
    )
    tiles[3].metric("Sensitive reveals", int(frame["sensitive_revealed"].sum()), border=True)
    if len(frame) >= limit:
        st.warning(f"Only the newest {limit:,} records are shown and exported: narrow the filters.")
    row2[2].download_button(
        "Export CSV",
        data=access_log.to_csv(frame),
        icon=":material/download:",
        file_name=f"data-access-log-{period[0]}-{period[1]}.csv",
        mime="text/csv",
        on_click=record_export,
        args=(len(frame),),
        disabled=frame.empty,
        width="stretch",
    )
    if frame.empty:
        st.info("No access records match these filters.", icon=":material/search_off:")
    else:
        st.dataframe(
            frame.rename(
                columns={
                    "accessed_at": "When",
                    "actor": "Engineer",
                    "actor_role": "Role",
                    "tenant_id": "Tenant",
                    "purpose": "Purpose",
                    "query_kind": "Queried",
                    "query_params": "Parameters",
                    "row_count": "Rows",
                    "sensitive_revealed": "Sensitive",
                }
            ),
            hide_index=True,
            width="stretch",
            column_config={
                "When": st.column_config.DatetimeColumn(format="YYYY-MM-DD HH:mm:ss"),
                "Purpose": st.column_config.TextColumn(width="medium"),
                "Parameters": st.column_config.TextColumn(width="medium"),
                "Sensitive": st.column_config.CheckboxColumn(),
            },
        )
