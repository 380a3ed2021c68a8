"""The spend caps on a page that can spend: the line of what is spent and left, and a refusal."""

from __future__ import annotations

import string

import streamlit as st

from flux_core import caps
from flux_core import presentation as P
from flux_core.errors import CapReached
from flux_core.params import ParamsError
from flux_core.service import Workbench
from flux_ui import panels


class Unread:
    """The caps' standing not read yet (``line`` reads it)."""


UNREAD = Unread()


def standing(wb: Workbench, session_key: str | None) -> str | ValueError | None:
    """What is spent and left for the caps that are set ("Spend today: $X of $Y (team) · you: …"),
    None without a cap, or the bad cap setting's error (it names its variable)."""
    try:
        return wb.spend_line(session_key=session_key)
    except ValueError as exc:  # a cap variable that is not an amount
        return exc


def line(
    wb: Workbench,
    session_key: str | None,
    estimate: str | None = None,
    spent: str | ValueError | None | Unread = UNREAD,
) -> None:
    """The estimate of what the next request costs (`estimate`), then the caps' standing (`spent`, as
    ``standing`` read it; read now when not given); a bad cap setting is an error naming its
    variable. Drawn as inert text: a dollar sign is never Markdown's math."""
    said = standing(wb, session_key) if isinstance(spent, Unread) else spent
    if isinstance(said, ValueError):
        st.error(P.markdown_text(str(said)), icon=":material/error:")
        said = None
    text = " · ".join(t for t in (estimate, said) if t)
    if text:
        st.caption(_ours(text))


def refused(exc: CapReached | ValueError) -> None:
    """A run refused at a spend cap (or a bad cap setting): the cap's message, nothing was sent."""
    if isinstance(exc, CapReached):
        st.error(_ours(exc.user_text()), icon=":material/block:")
    else:  # it quotes the variable's value as set
        st.error(P.markdown_text(f"{exc}. Nothing was sent."), icon=":material/block:")


def _label(field: str) -> str:
    return caps.TITLES[field].capitalize() + " (USD)"


def _save(wb: Workbench, reset: bool) -> None:
    state = st.session_state
    changes = {f: caps.RESET if reset else state.get(f"caps_{f}") for f, *_ in caps.CAPS}
    try:
        wb.set_caps(**changes)
    except (ParamsError, ValueError) as exc:
        state["caps_said"] = ("error", "; ".join(exc.problems) if isinstance(exc, ParamsError) else str(exc))
        return
    for field, *_ in caps.CAPS:  # the fields show what is in force now
        state.pop(f"caps_{field}", None)
    state["caps_said"] = ("saved", "Caps back to the server's settings." if reset else "Caps saved.")


OPEN_KEY = "caps_open"  # the panel's open state in session state (flux_ui/panels.py)


def panel(wb: Workbench) -> None:
    """An admin's spend caps: each cap in force (empty: no cap) and where it comes from; saving sets
    them in Flux Lab for everyone, over the server's FLUX_LAB_CAP_* variables. In the sidebar of
    every page and rarely opened: its fields are drawn, and the caps read, only while it is open."""
    box = panels.opened("Spend caps", OPEN_KEY, icon=":material/savings:")
    if box is None:
        return
    with box:
        try:
            limits, set_by = wb.cap_limits()  # the limits only: not what was spent against them
        except ValueError as exc:  # a cap variable that is not an amount
            st.error(P.markdown_text(str(exc)), icon=":material/error:")
            return
        who = dict(set_by)
        for field, _, env, _ in caps.CAPS:
            st.number_input(
                _label(field),
                min_value=0.0,
                value=getattr(limits, field),
                step=1.0,
                format="%.2f",
                key=f"caps_{field}",
                placeholder="no cap",
                help=f"Empty: no cap. Set in Flux Lab, it wins over {env} on the server.",
            )
            st.caption(P.markdown_text(f"set in Flux Lab by {who[field]}" if field in who else f"from {env}"))
        st.button("Save caps", key="caps_save", on_click=_save, args=(wb, False), type="primary")
        if who:
            st.button("Back to the server's settings", key="caps_reset", on_click=_save, args=(wb, True))
        said = st.session_state.pop("caps_said", None)
        if said:
            (st.success if said[0] == "saved" else st.error)(P.markdown_text(said[1]))


def _ours(text: str) -> str:
    """Text of ours (amounts, a cap's name, a variable) with its punctuation escaped, so "$0.07 of
    $0.10" is never Markdown's math; it holds no address to keep from becoming a link."""
    return "".join("\\" + c if c in string.punctuation else c for c in text)
