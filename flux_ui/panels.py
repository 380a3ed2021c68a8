"""Panels a visit rarely opens, drawn only while open.

Every element a page draws is one more for the browser to load the code of and draw on each visit
(bench/page_breakdown.py): the sidebar's Spend caps alone were seven of every page's messages, and
History's Recall panel pulled in the file uploader's zip code. Streamlit's lazy expander
(``on_change="rerun"``) reruns the script, or the fragment it is in, when it is opened or closed,
and says whether it is open, so what is inside is drawn only then.
"""

from __future__ import annotations

from typing import Any

import streamlit as st


def opened(label: str, key: str, *, icon: str | None = None) -> Any | None:
    """An expander under `key` (its open state in session state): the container to draw its
    contents into while it is open, else None. Not for a panel whose widgets are read while it is
    closed: a widget not drawn loses its value (and a file uploader its files)."""
    box = st.expander(label, icon=icon, key=key, on_change="rerun")
    return box if box.open else None
