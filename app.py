"""Flux Lab: the router. Shared frame (workbench, sidebar) then the page the user is on.

`streamlit run app.py` finds the `app` below and serves it (uvicorn imports this file as a module);
every browser session then runs this same file as its script, as `__main__`: the router.
"""

from __future__ import annotations

import streamlit as st

from pathlib import Path

from flux_core import defaults as D
from flux_core import logs, settings
from flux_core.errors import LedgerError
from flux_core.settings import key_hint
from flux_core.ledger.store import storage_error
from flux_core.service import Workbench
from flux_core.team import Op
from flux_ui import failure, pictures, signin
from flux_ui import spend


log = logs.logger("app")


def configured_key() -> str | None:
    """SEGMIND_API_KEY from the environment, else from the root of .streamlit/secrets.toml."""
    import os

    key = os.environ.get(D.API_KEY_ENV, "").strip()
    if key:
        return key
    try:
        value = st.secrets.get(D.API_KEY_ENV)
    except Exception:  # no secrets file at all
        return None
    return str(value).strip() or None if value else None


def exposure() -> str:
    """Who can reach this server (settings.exposure): a ValueError when it must not serve."""
    return settings.exposure(st.get_option("server.address"), signin.configured())


def key_status(workbench: Workbench) -> None:
    """The sidebar's key: a field for this session's own key, which key drives the runs, whether
    Segmind took it, and the credits left."""
    session_key = st.text_input(
        "Segmind API key (this session only)",
        type="password",
        key="sidebar_api_key",
        help="Used by this browser session only; never stored. Leave empty to use the configured key "
        "or the offline emulator.",
    )
    backend = workbench.backend(session_key)
    credits = workbench.credits(session_key)  # the first look at a key checks it
    if backend.is_emulator:
        st.info(backend.label, icon=":material/science:")
    else:
        hint = key_hint(backend.connection.api_key)
        check, error = workbench.key_check(session_key)
        if check == "verified":
            st.success(f"Segmind · key {hint} · verified", icon=":material/key:")
        elif check == "rejected":
            status = f" (HTTP {error.status})" if error is not None and error.status else ""
            fix = (
                "Correct it in the field above, or empty the field to use the offline emulator."
                if session_key
                else "Type a valid key into the field above, or ask whoever runs Flux Lab to fix its key."
            )
            st.error(f"Segmind rejected the key {hint}{status}. {fix}", icon=":material/key_off:")
        else:
            st.warning(
                f"Segmind · key {hint} · not checked yet: it is verified when a call with it succeeds.",
                icon=":material/key:",
            )
    if credits is not None:
        st.caption(f"Remaining credits: {credits:.2f}")


def route() -> None:
    st.set_page_config(page_title="Flux Lab", page_icon=":material/science:", layout="wide")
    try:
        reach = exposure()  # the server refuses to start first (see lifespan); this is a second lock
        # who is at the browser: a visitor not let in sees the sign-in page or why, and nothing else
        actor = signin.gate()
        logs.configure(settings.data_dir())
        workbench = Workbench.shared(api_key=configured_key())
    except ValueError as exc:  # a setting that cannot be read, e.g. SEGMIND_RPM=lots
        log.warning("cannot start with these settings: %s", exc)
        st.error("Flux Lab cannot start with these settings:")
        st.text(str(exc))
        st.stop()
    except (LedgerError, OSError) as exc:  # a damaged ledger, a full disk, a read-only data directory
        log.error("cannot open the ledger", exc_info=True)
        exc = exc if isinstance(exc, LedgerError) else storage_error(exc, Path(exc.filename or "."))
        st.error("Flux Lab cannot open its ledger:")
        st.text(exc.user_text())
        st.stop()
    # every page acts for the person signed in (without sign-in: the local user), whose role the
    # service checks on every call; runs nobody drives are the shared workbench's own scan's
    workbench = workbench.acting(actor)
    st.session_state["workbench"] = workbench
    st.session_state["actor"] = actor

    with st.sidebar:
        st.subheader("Flux Lab")
        signin.sidebar(actor)
        if workbench.may(Op.USE_KEY):
            key_status(workbench)
        else:  # a viewer never sees or uses the team's key
            st.caption(
                "You can look at runs and sweeps, compare them and vote; generating needs the member role."
            )
        if workbench.may(Op.CAPS):
            spend.panel(workbench)
        if reach == settings.LOCAL:
            st.caption(
                f"Personal mode: served on {st.get_option('server.address')}, so only this computer can open it."
            )
        elif reach == settings.OPEN:
            st.warning(
                "Open to the network without sign-in: anyone who can reach this port can spend the key, "
                "read every prompt and delete runs.",
                icon=":material/warning:",
            )
        if workbench.resumed:
            st.caption(f"Resumed {len(workbench.resumed)} run(s) left in flight by the last start.")

    pages = {
        "compose": st.Page("pages/compose.py", title="Compose", icon=":material/edit_note:", default=True),
        "compare": st.Page("pages/compare.py", title="Compare", icon=":material/grid_view:"),
        "history": st.Page("pages/history.py", title="History", icon=":material/history:"),
        "present": st.Page("pages/present.py", title="Present", icon=":material/slideshow:"),
    }
    navigation = st.navigation(list(pages.values()))
    pictures.remember_root(navigation.url_path)  # pictures come from the app's cached routes
    # Until app.py has called st.navigation once, a freshly started server may run a pages/ file
    # directly (Streamlit's legacy multipage mode); such a page sends the visitor here with ?goto=.
    goto = st.query_params.get("goto")
    if goto in pages:
        st.switch_page(
            pages[goto], query_params={k: v for k, v in st.query_params.to_dict().items() if k != "goto"}
        )
    try:
        navigation.run()
    except Exception:  # never a traceback on a page: a short message here, the details in the log
        failure.said(navigation.url_path or "compose")


if __name__ == "__main__":
    route()
else:
    # Streamlit's own server, with its frontend bundle sent compressed, the thumbnails served as
    # files a browser keeps and, with sign-in, pictures for a person let in only (see flux_ui/serving.py).
    import asyncio
    import contextlib
    import sys

    from starlette.middleware import Middleware

    from flux_ui import serving

    def open_workbench() -> None:
        """The workbench as the server starts: runs left in flight by the last server are resumed
        now, with nobody visiting, not at the first page view (by then they may have expired)."""
        try:
            logs.configure(settings.data_dir())
            Workbench.shared(api_key=configured_key())
        except (ValueError, LedgerError, OSError):  # the first page view shows what is wrong
            log.exception("Flux Lab could not open its workbench as the server started")

    @contextlib.asynccontextmanager
    async def lifespan(server: object):
        try:
            exposure()
            signin.team()  # a [team] allowlist that cannot be read: no server either
        except ValueError as exc:  # beyond this computer without sign-in or the opt-in: no server
            log.error("%s", exc)
            print(f"Flux Lab: {exc}", file=sys.stderr, flush=True)
            raise SystemExit(2) from None
        async with serving.lifespan(server):
            await asyncio.to_thread(open_workbench)
            yield

    app = st.App(
        __file__,
        routes=serving.routes(settings.data_dir()),
        middleware=[Middleware(serving.CompressedAssets), Middleware(serving.SignedInMedia)],
        lifespan=lifespan,
    )
