"""The dashboard's page CSS, in one place: one block per page that needs one, and one call to
put it on the page. A block is only injected on its own page (the client view's large metric
tiles would change every other page's tiles)."""

import streamlit as st

CSS = {
    # The investigation timeline (views/investigation.py) and its summary's monospace text area.
    "investigation": """
.inv-tl { margin: 0.2rem 0 0.4rem 0; }
.inv-step { display: grid; grid-template-columns: 9rem 1.6rem 1fr; min-height: 2.1rem; }
.inv-time { color: #6b7385; font-size: 0.85rem; padding-top: 0.12rem;
            font-variant-numeric: tabular-nums; white-space: nowrap; }
.inv-rail { position: relative; }
.inv-rail::before { content: ""; position: absolute; left: 50%; top: 0; bottom: 0; width: 2px;
                    background: #dde2ea; transform: translateX(-50%); }
.inv-step:first-child .inv-rail::before { top: 0.55rem; }
.inv-step:last-child .inv-rail::before { bottom: calc(100% - 0.55rem); }
.inv-dot { position: relative; width: 0.8rem; height: 0.8rem; border-radius: 50%;
           margin: 0.3rem auto 0; box-shadow: 0 0 0 3px #fff; }
.inv-ok .inv-dot { background: #2e8b57; } .inv-bad .inv-dot { background: #c8382d; }
.inv-wait .inv-dot { background: #e08a00; } .inv-info .inv-dot { background: #1f5fbf; }
.inv-muted .inv-dot { background: #9aa5b8; }
.inv-body { padding: 0 0 0.55rem 0.3rem; line-height: 1.45; }
.inv-title { font-weight: 600; } .inv-bad .inv-title { color: #b0302a; }
.inv-detail { color: #3b4557; } .inv-detail code { font-size: 0.85em; }
.inv-note { color: #b06a00; font-size: 0.9rem; }
[class*="st-key-summary-"] textarea { font-family: ui-monospace, Menlo, Consolas, monospace;
                                       font-size: 0.85rem; line-height: 1.45; }
""",
    # The client view's (views/client_view.py) large metric tiles.
    "client_view": """
[data-testid="stMetricValue"] { font-size: 2.6rem; }
[data-testid="stMetricLabel"] p { font-size: 1.1rem; }
""",
}


def use_style(page: str) -> None:
    """Put one page's CSS block on the page (Streamlit draws no element for a bare style tag)."""
    st.html(f"<style>{CSS[page]}</style>")
