"""Present: a sweep, a selection or a History search for the room, one image at a time, full
screen and keyboard driven, with a live verdict row. The URL says what it shows (flux_core/deck.py):
?sweep=<id>, ?runs=<id>,<id>,... or ?q=<words> with History's filters; &i=<n>, &blind=1."""

from __future__ import annotations

from typing import NoReturn

import streamlit as st

from flux_core import deck
from flux_core import presentation as P
from flux_core.checks import report as check_report
from flux_core.errors import NotAllowed, UnknownRun
from flux_core.ledger import store, sweeps
from flux_core.params import ParamsError
from flux_core.service import Workbench
from flux_core.team import Op
from flux_ui import live, presenter

if "workbench" not in st.session_state:  # reached without the router (see app.py)
    st.switch_page("app.py", query_params={**st.query_params.to_dict(), "goto": "present"})

wb: Workbench = st.session_state["workbench"]
state = st.session_state
PAGES = {"compare": "pages/compare.py", "history": "pages/history.py"}

# the stage takes the window: Streamlit's header, sidebar and wide margins are left out on this page
st.html(
    "<style>[data-testid='stHeader'], [data-testid='stSidebar'], [data-testid='stSidebarCollapsedControl'],"
    " [data-testid='stExpandSidebarButton'] { display: none; }"
    " [data-testid='stMainBlockContainer'] { padding: .5rem 1rem 0; max-width: 100%; }</style>"
)


def leave(back: tuple[str, dict]) -> None:
    page, params = back
    st.switch_page(PAGES[page], query_params=params)


def problem() -> None:
    """Why the viewer's last verdict was not recorded (the service refused it), as text."""
    said = state.pop("present_problem", None)
    if said:
        st.error("Your verdict was not recorded:")
        st.text(said)


def refused(lines: list[str], back: tuple[str, dict] = ("history", {})) -> NoReturn:
    """A link that cannot be shown: what is wrong, as text (it came from a URL), and a way back."""
    problem()
    st.error("This presenter link cannot be shown:")
    for line in lines:
        st.text(line)
    st.button("Back", key="present_back", on_click=leave, args=(back,))
    st.stop()
    raise AssertionError("st.stop() ends the script run")  # for the type checker: never reached


params = {k: st.query_params.get_all(k) for k in st.query_params}
try:
    ask = deck.parse(params)
except ParamsError as exc:
    refused(exc.problems)
back = ask.back()
if state.pop("present_leave", False):
    leave(back)

# --- what the link names, in order ---------------------------------------------------------------
if ask.kind == "sweep":
    view = wb.sweep(ask.sweep_id)
    if view is None:
        refused([f"There is no sweep {ask.sweep_id!r} in the ledger."])
    order = sweeps.arrange([ax.name for ax in view.axes], list(ask.layout))
    cells = deck.sweep_order(view, order)
    rows = [c.run for c in cells]
    labels = [view.label(c) for c in cells]
    title = view.name or view.summary(named=False).describe()
elif ask.kind == "runs":
    rows = wb.runs(list(ask.run_ids))
    missing = [i for i in ask.run_ids if i not in {r.id for r in rows}]
    if missing:
        refused([f"There is no run {', '.join(repr(m) for m in missing)} in the ledger."])
    labels = deck.differing(rows)
    title = f"{len(rows)} selected run(s)"
else:
    try:
        found = wb.find(ask.query({b.name: b.id for b in wb.boards()}))
    except ParamsError as exc:
        refused(exc.problems)
    rows = found.rows
    labels = deck.differing(rows)
    words = (ask.filters or {}).get("h_q", [""])[0]
    title = f"Search: {words}" if words else "History's runs"
    if found.total > len(rows):
        title += f" (the first {len(rows)} of {found.total:,}{'+' if found.capped else ''})"
if not rows:
    refused(["It names no runs: nothing to present."], back)
if ask.index >= len(rows):
    refused([f"i: must be from 1 to {len(rows)} (the images shown), not {ask.index + 1}"], back)

found_checks = wb.checks([r.id for r in rows])
slides = deck.slides(rows, labels, {r.id: check_report.lines(found_checks.get(r.id, {})) for r in rows})
pictures = [
    r.image_path
    if r.status == store.COMPLETED and r.image_path and (wb.data_dir / r.image_path).is_file()
    else None
    for r in rows
]
no_picture = [
    "" if pictures[n] else ("Image file missing" if r.status == store.COMPLETED else P.headline(r).title)
    for n, r in enumerate(rows)
]

# --- who votes: the signed-in person; without sign-in, a name typed for the demo (optional) --------
may_vote = wb.may(Op.REVIEW)
if may_vote and not wb.actor.signed_in:
    typed = st.text_input(
        "Your name",
        key="present_voter",
        persist_state="session",
        placeholder="optional: whose verdicts these are",
        width=260,
    ).strip()
    reviewer = wb.voter(typed)
else:
    reviewer = wb.voter()


def stepped(i: int) -> None:
    if 0 <= i < len(rows):
        st.query_params["i"] = str(i + 1)


def judged(i: int, verdict: str | None) -> None:
    if not 0 <= i < len(rows):
        return
    try:
        wb.set_verdict([rows[i].id], verdict, reviewer=reviewer)
    except (NotAllowed, UnknownRun) as exc:
        state["present_problem"] = exc.user_text()
    except ParamsError as exc:
        state["present_problem"] = "; ".join(exc.problems)


def go_back() -> None:
    state["present_leave"] = True


def stage() -> None:
    """The stage, with everyone's verdicts as they are now: drawn again (alone) when a verdict on
    one of its runs changes, whoever gave it."""
    live.follow(wb, "present_stage", live.mark(wb, live.runs([r.id for r in rows])), first=True)
    verdicts = wb.verdicts([r.id for r in rows])
    problem()
    if state.get("present_leave"):
        st.rerun(scope="app")
    presenter.draw(
        title,
        [
            presenter.slide_data(
                slide,
                full=pictures[n],
                words=no_picture[n],
                blind=ask.blind,
                tally=deck.tally_words(verdicts[slide.run.id]),
                mine=next((v.verdict for v in verdicts[slide.run.id] if v.reviewer == reviewer), None),
            )
            for n, slide in enumerate(slides)
        ],
        start=ask.index,
        blind=ask.blind,
        can_vote=may_vote,
        on_step=stepped,
        on_verdict=judged,
        on_back=go_back,
    )


live.fragment(stage)()
