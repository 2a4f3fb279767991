"""What the Database health tabs draw alike: rows of tiles and read-only tables."""

import pandas as pd
import streamlit as st

SIZE = st.column_config.NumberColumn("Size", format="bytes")
SHARE = {"format": "percent", "min_value": 0, "max_value": 1}
DONE = ":material/check_circle:"


def show_tiles(tiles: list[tuple[str, str | int]]) -> None:
    for column, (label, value) in zip(st.columns(len(tiles)), tiles, strict=True):
        column.metric(label, value, border=True)


def show_table(frame: pd.DataFrame, columns: dict) -> None:
    st.dataframe(frame, hide_index=True, width="stretch", column_config=columns)
