"""The spend caps on a page that can spend: the line of what is spent and left, and a refusal."""

from __future__ import annotations

import string

import streamlit as st

from flux_core import presentation as P
from flux_core.errors import CapReached
from flux_core.service import Workbench


def line(wb: Workbench, session_key: str | None, estimate: str | None = None) -> None:
    """ "Spend today: $X of $Y (team) · you: … · this month: …" for the caps that are set, after the
    estimate of what the next request costs (`estimate`); a bad cap setting is an error naming its
    variable. Drawn as inert text: a dollar sign is never Markdown's math."""
    try:
        spend = wb.spend_line(session_key=session_key)
    except ValueError as exc:  # a cap variable that is not an amount
        st.error(P.markdown_text(str(exc)), icon=":material/error:")
        spend = None
    text = " · ".join(t for t in (estimate, spend) if t)
    if text:
        st.caption(_ours(text))


def refused(exc: CapReached | ValueError) -> None:
    """A run refused at a spend cap (or a bad cap setting): the cap's message, nothing was sent."""
    if isinstance(exc, CapReached):
        st.error(_ours(exc.user_text()), icon=":material/block:")
    else:  # it quotes the variable's value as set
        st.error(P.markdown_text(f"{exc}. Nothing was sent."), icon=":material/block:")


def _ours(text: str) -> str:
    """Text of ours (amounts, a cap's name, a variable) with its punctuation escaped, so "$0.07 of
    $0.10" is never Markdown's math; it holds no address to keep from becoming a link."""
    return "".join("\\" + c if c in string.punctuation else c for c in text)
