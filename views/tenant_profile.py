"""Tenant profile: configuration as stored, onboarding checklist and cheatsheet, for one tenant."""

import json

import streamlit as st

from services import health, playbooks
from ui import reads
from ui.common import ViewContext, guard, md, record_view

ctx: ViewContext = st.session_state["view_context"]


def mark(ok: bool) -> str:
    return "✅" if ok else "❌"


def show(tenant_id: str) -> None:
    profile = reads.profile(tenant_id, ctx.now)
    if profile is None:
        st.warning(f"No tenant `{tenant_id}` is configured.")
        return
    record_view(ctx, "tenant_profile", tenant_id, {})
    config = profile.config
    st.title(f"{md(config['name'])} · profile")
    st.caption(
        f"`{tenant_id}` · {md(config['tool_type'])} · created {config['created_at']:%Y-%m-%d}"
        f" · configuration updated {config['updated_at']:%Y-%m-%d %H:%M} UTC"
    )

    left, right = st.columns(2)
    with left:
        st.subheader("Post-onboarding checklist")
        for item in profile.checklist:
            st.markdown(f"{mark(item.ok)} **{item.name}**: {item.detail}")
    with right:
        st.subheader("Configuration")
        st.markdown(
            f"- **ServiceDesk Plus URL:** {md(config['servicedesk_url'])}\n"
            f"- **Active:** {'yes' if config['is_active'] else 'no'}\n"
            f"- **Jira:** {md(config['jira_url'] or '–')} {md(config['jira_project_key'] or '')}"
        )
        st.markdown("**Secrets** (never read, only whether they are stored)")
        st.markdown(
            "\n".join(
                f"- {name}: {'set' if present else '**missing**'}"
                for name, present in profile.secrets.items()
            )
        )
        st.markdown("**Enhancement preferences**")
        st.markdown(
            "\n".join(
                f"- {mark(p.ok)} **{md(p.name)}**: {md(p.detail)}" for p in profile.preferences
            )
        )
        st.markdown("**Rate limits** (per minute)")
        st.code(json.dumps(config["rate_limits"], indent=2), language="json")
        st.caption(
            "Model, temperature, time limits and concurrency are platform-wide, not per tenant."
        )

    st.subheader("Troubleshooting cheatsheet")
    metrics = reads.health_metrics(tenant_id, ctx.range)
    verdict = health.assess(metrics.iloc[0].to_dict())
    failing = {reason.rule: reason.text for reason in verdict.failing}
    state_icon = {"firing": "🔴", "clear": "🟢", "manual": "🔎"}
    for scenario in playbooks.cheatsheet(
        tenant_id, failing, f"{config['updated_at']:%Y-%m-%d %H:%M} UTC"
    ):
        with st.expander(
            f"{state_icon[scenario.state]} {scenario.name}", expanded=scenario.state == "firing"
        ):
            st.markdown(scenario.detail)
            book = scenario.playbook
            if book and scenario.state == "firing":
                st.markdown(
                    f"- **Quick diagnosis:** {book.diagnosis}\n"
                    f"- **Quick fix:** {book.fix}\n- **Escalate:** {book.escalate}"
                )


with guard("the tenant profile"):
    if ctx.tenant_id:
        show(ctx.tenant_id)
    else:
        st.title("Tenant profile")
        st.info("Pick a tenant in the sidebar to see its configuration and onboarding checklist.")
