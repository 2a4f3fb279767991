"""The sign-in form: the only page that exists for a signed-out visitor."""

import streamlit as st

from ui.identity import oidc_configured, sign_in_locally


def sign_in_page() -> None:
    left, middle, right = st.columns([1, 1.2, 1])
    with middle:
        st.title("AI Agents · Support")
        st.caption("Support dashboard for the ticket-enhancement platform. Sign in to continue.")
        if oidc_configured():
            if st.button("Sign in with your company account", type="primary", width="stretch"):
                st.login()
            if st.user.get("is_logged_in"):
                st.error("Your account has no dashboard role yet. Ask an admin to add you.")
        else:
            with st.form("sign_in"):
                email = st.text_input("Email", autocomplete="username")
                password = st.text_input(
                    "Password", type="password", autocomplete="current-password"
                )
                if st.form_submit_button("Sign in", type="primary", width="stretch"):
                    if sign_in_locally(email, password):
                        st.rerun()
                    st.error("Email or password is not correct.")
