"""Streamlit adapters shared by the pages: identity, the sidebar context, caching, errors."""
