"""A page (or a live part of one) that failed: a short message naming an incident, the details in the
log, never a traceback on the page."""

from __future__ import annotations

import streamlit as st

from flux_core import defaults as D
from flux_core import logs
from flux_core.ledger import store

log = logs.logger("app")


def said(where: str) -> None:
    """Say that `where` failed, in the exception handler of its failure (which goes to the log)."""
    incident = store.new_id()[-8:]
    log.exception("page %s failed (incident %s)", where, incident)
    st.error(
        f"Something went wrong on this page (incident {incident}). Reload the page to try again; "
        "runs already started go on and are kept. If it happens again, the log in the data "
        f"directory (logs/{D.LOG_FILE}) has the details.",
        icon=":material/error:",
    )
