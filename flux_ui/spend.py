"""The spend caps on a page that can spend: the line of what is spent and left, and a refusal."""

from __future__ import annotations

import streamlit as st

from flux_core import presentation as P
from flux_core.errors import CapReached
from flux_core.service import Workbench


def line(wb: Workbench, session_key: str | None, estimate: str | None = None) -> None:
    """ "Spend today: $X of $Y (team) · you: … · this month: …" for the caps that are set, after the
    estimate of what the next request costs (`estimate`); a bad cap setting is an error naming its
    variable. Drawn as inert text: a dollar sign is never Markdown's math."""
    try:
        spend = wb.spend(session_key=session_key).line()
    except ValueError as exc:  # a cap variable that is not an amount
        st.error(P.markdown_text(str(exc)), icon=":material/error:")
        spend = None
    text = " · ".join(t for t in (estimate, spend) if t)
    if text:
        st.caption(P.markdown_text(text))


def refused(exc: CapReached | ValueError) -> None:
    """A run refused at a spend cap (or a bad cap setting): the cap's message, nothing was sent."""
    text = exc.user_text() if isinstance(exc, CapReached) else f"{exc}. Nothing was sent."
    st.error(P.markdown_text(text), icon=":material/block:")
