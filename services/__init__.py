"""Everything that knows about data. No Streamlit here except the thin adapters in ui_cache.py."""
