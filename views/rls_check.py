"""RLS self-test: the procedures' verification, run against the live database on demand."""

import pandas as pd
import streamlit as st

from services import rls_check
from ui import reads
from ui.common import ViewContext, guard, md, record_view

ctx: ViewContext = st.session_state["view_context"]

st.title("RLS self-test")
st.caption(
    'Automates the procedures\' "RLS Enforcement Verification", plus what would let the'
    " dashboard's roles get around it (privilege escalation, ownership, readable secrets)."
    " Also runs from the command line for monitoring: `python -m services.rls_check`"
    " (exit code 1 on failure)."
)

with guard("the RLS self-test"):
    with st.spinner("Checking row-level security…"):
        checked_at, checks = reads.rls_self_test()
    record_view(ctx, "rls_self_test", "*", {}, row_count=len(checks))
    failed = [c for c in checks if not c.passed]
    if failed:
        st.error(
            f"**{len(failed)} of {len(checks)} checks FAILED: tenant isolation is not "
            "guaranteed.** Each failing check says how to fix it below.\n\n"
            + "\n".join(f"{line}  " for line in rls_check.ESCALATION),
            icon=":material/gpp_bad:",
        )
    else:
        st.success(
            f"All {len(checks)} checks passed: each tenant sees only its own rows.",
            icon=":material/verified_user:",
        )
    when, again = st.columns([4, 1], vertical_alignment="center")
    when.caption(f"Checked at {checked_at:%H:%M:%S} UTC; the result is kept for a minute.")
    again.button("Run again", icon=":material/refresh:", on_click=reads.rls_self_test.clear)
    for group in rls_check.GROUPS:
        members = [c for c in checks if c.group == group]
        if not members:
            continue
        bad = [c for c in members if not c.passed]
        st.subheader(f"{'❌' if bad else '✅'} {group}", anchor=False)
        for check in bad:
            st.error(f"**{md(check.name)}**  \n**Fix:** {check.fix}", icon=":material/build:")
        st.dataframe(
            pd.DataFrame(
                [
                    {"": "✅" if c.passed else "❌", "check": c.name, "detail": c.detail}
                    for c in members
                ]
            ),
            hide_index=True,
            width="stretch",
            height=38 * (len(members) + 1),
            column_config={
                "": st.column_config.TextColumn(width=40),
                "check": st.column_config.TextColumn(width="large"),
                "detail": st.column_config.TextColumn(width="large"),
            },
        )
