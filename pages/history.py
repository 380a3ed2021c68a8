"""History: find any run again (search, filters, paging), compare any runs side by side, recall,
curate, share the view by URL, export, and see the ledger's insights."""

from __future__ import annotations

import hashlib
import html

import pandas as pd
import streamlit as st

from flux_core import defaults as D
from flux_core.report import file_name as report_file_name
from flux_core.checks import report as check_report
from flux_ui import gallery
from flux_core.ledger import history
from flux_core.ledger import lineage as lineages
from flux_core.ledger import reviews
from flux_ui import ab_view
from flux_ui import live, panels, pictures, spend
from flux_core.ledger import store
from flux_core import presentation as P
from flux_core.errors import CallFailed, CapReached, NotAllowed, UnknownRun, for_app
from flux_core.ledger.records import Run
from flux_core.params import ParamsError
from flux_core.service import Workbench
from flux_core.team import Op

if "workbench" not in st.session_state:  # reached without the router (see app.py)
    st.switch_page("app.py", query_params={**st.query_params.to_dict(), "goto": "history"})

wb: Workbench = st.session_state["workbench"]
session_key = st.session_state.get("sidebar_api_key") or None
state = st.session_state


def outcome(prefix: str, headline: str) -> None:
    """What the last action of one part of the page said: `<prefix>_problem` as an error (its words
    as text: they may quote what a person typed), `<prefix>_done` as a toast; each said once."""
    problem = state.pop(f"{prefix}_problem", None)
    if problem:
        st.error(headline)
        st.text(problem)
    done = state.pop(f"{prefix}_done", None)
    if done:
        st.toast(done)


SIZES = {f"{w}x{h}": f"{w}×{h} ({name})" for name, (w, h) in D.ASPECT_PRESETS.items()}

st.title("History")

# Switching to Compose, Streamlit first writes Compose's query into this page's own entry in the
# browser's history, so Back would land on /history?run=… with no filters. That entry is given back
# the view it was left from (on a Back, Streamlit replaces the entry rather than adding one).
left_for = state.get("h_left_for")
if left_for and left_for[0] and st.query_params.to_dict() == left_for[0]:
    state.pop("h_left_for")
    st.query_params.from_dict(left_for[1])
    st.rerun()


@st.cache_data(ttl=30, show_spinner=False)
def known_tags(ledger_path: str) -> list[str]:
    return wb.tags()


# --- selection lives in the URL (?h_sel=id,id) so a link reopens the same comparison ----------
def selected() -> list[str]:
    raw = st.query_params.get("h_sel", "")
    return [i for i in raw.split(",") if i]


def set_selected(ids: list[str]) -> None:
    if ids:
        st.query_params["h_sel"] = ",".join(dict.fromkeys(ids))
    else:
        st.query_params.pop("h_sel", None)


def token(ids: list[str]) -> str:
    """A short name for a set of runs: a widget keyed with it starts afresh when the set changes."""
    return hashlib.sha1(",".join(ids).encode()).hexdigest()[:12]


def open_run(run_id: str | None) -> None:
    if run_id:
        st.query_params["h_run"] = run_id
    else:
        st.query_params.pop("h_run", None)


def go_to_compose(run_id: str | None) -> None:
    """Open Compose (on a run, when given), so that Back returns to this very view of History."""
    target = {"run": run_id} if run_id else {}
    state["h_left_for"] = (target, {k: st.query_params.get_all(k) for k in st.query_params})
    st.switch_page("pages/compose.py", query_params=target)


def to_compose(row: Run, *, rerun: str | None = None, confirmed_unknown: bool = False) -> None:
    """Open a run's full recipe in Compose; optionally run it again first (identically or new seed)."""
    run_id = row.id
    if rerun is not None:
        try:
            run_id = wb.rerun(
                row.id,
                vary_seed=rerun == "vary",
                confirmed_unknown=confirmed_unknown,
                session_key=session_key,
                guard=state.setdefault("history_guard", store.new_id()),
            )
        except (CapReached, ValueError) as exc:  # a spend cap: nothing was sent
            spend.refused(exc)
            return
    state["compose_pending"] = P.form_values(row) if rerun is None else P.form_values(wb.run(run_id) or row)
    go_to_compose(run_id)


def name_version(run_id: str) -> None:
    try:
        kept = wb.name_version(run_id, state.get(f"h_version_{run_id}") or "")
    except ParamsError as exc:
        state["h_version_problem"] = "; ".join(exc.problems)
    else:
        state["h_version_done"] = f"Named this version {kept}"


def pin_version(run_id: str, pinned: bool) -> None:
    wb.pin(run_id, pinned=pinned)
    state["h_version_done"] = "Pinned as the best of its lineage" if pinned else "Unpinned"


def draw_lineage(run: Run) -> None:
    """The run's lineage: its ancestors above it, the runs made from it below, each edge with its
    word diff (escaped: the prompts are text, never markup) and the other fields that changed; and
    the run's version name and pin."""
    tree = wb.lineage(run.id)
    with st.container(key="h_lineage"):
        st.subheader("Lineage")
        if len(tree.runs) == 1:
            st.caption("This run comes from no other run, and no run was made from it yet.")
        else:
            st.caption(
                "Ancestors above, the runs made from it below; along each edge, the word diff "
                "(struck: taken out; green: added)."
            )
        for node, depth in tree.walk() if len(tree.runs) > 1 else []:
            shown = tree.runs[node]
            indent = f"margin-left:{depth * 1.5}rem"
            edge = tree.edges.get(node)
            if edge is not None:
                changed = f" · {edge.words()}" if edge.changed else ""
                how = lineages.WORDS.get(edge.kind, edge.kind or "made from it")
                diff = P.word_diff_html(tree.runs[edge.parent].prompt, shown.prompt)
                st.html(
                    f'<div data-testid="fl-lineage-edge" style="{indent};font-size:.85rem">'
                    f"↓ {html.escape(how + changed)}{diff}</div>"
                )
            row_box = st.container(horizontal=True, vertical_alignment="center", key=f"h_lin_node_{node}")
            marks = (" 📌 pinned" if node == tree.pinned else "") + ("  ← this run" if node == run.id else "")
            row_box.text(
                f"{lineages.indent(depth)}{lineages.label(shown)} · {lineages.first_words(shown.prompt)}{marks}"
            )
            if node != run.id:
                row_box.button(
                    "Open", key=f"h_lin_open_{node}", type="tertiary", on_click=open_run, args=(node,)
                )
        if wb.may(Op.VERSION):
            bar = st.container(horizontal=True, vertical_alignment="bottom")
            bar.text_input(
                "Name this version",
                value=run.version_name or "",
                key=f"h_version_{run.id}",
                max_chars=D.VERSION_NAME_MAX_CHARS,
                placeholder="v3 – tighter headline",
                width=320,
            )
            bar.button("Save name", key="h_version_save", on_click=name_version, args=(run.id,))
            label, key, icon = (
                ("Unpin", "h_unpin", ":material/keep_off:")
                if run.pinned
                else ("Pin as best", "h_pin", ":material/keep:")
            )
            bar.button(label, key=key, icon=icon, on_click=pin_version, args=(run.id, not run.pinned))
        outcome("h_version", "The name was not saved.")


# --- the query, every part of it bound to the URL ----------------------------------------------
search = st.text_input(
    "Search prompts, notes and tags",
    key="h_q",
    bind="query-params",
    placeholder="words from a prompt, a note or a tag",
)
# Boards: one click on a chip shows the runs on it (bound to the URL like every filter).
all_boards = wb.boards()
board_name = None
linked = st.query_params.get("h_board")
if linked and linked not in {b.name for b in all_boards}:  # a link to a board deleted or renamed since
    st.warning("This link names a board that does not exist (any more), so every run is shown. It names:")
    st.text(linked)
if all_boards:
    board_name = st.pills(
        "Board",
        [b.name for b in all_boards],
        format_func=P.markdown_text,  # a chip's label is Markdown: a name is shown as typed
        key="h_board",
        bind="query-params",
        help="The runs on one board. Put runs on a board from the selection below, or in a run's panel.",
    )
board = next((b for b in all_boards if b.name == board_name), None)
top = st.columns([3, 2, 2, 1])
statuses = top[0].multiselect("Status", list(history.STATUS_GROUPS), key="h_status", bind="query-params")
sort = top[1].selectbox("Sort by", list(history.SORTS), key="h_sort", bind="query-params")
view_mode = (
    top[2].segmented_control(
        "View", ["Gallery", "Table"], key="h_view", bind="query-params", default="Gallery"
    )
    or "Gallery"
)
trash = top[3].toggle("Trash", key="h_trash", bind="query-params", help="Deleted runs, until purged")
FILTER_KEYS = (
    "h_seed",
    "h_tol",
    "h_size",
    "h_fmt",
    "h_model",
    "h_fav",
    "h_rating",
    "h_tag",
    "h_sweep",
    "h_from",
    "h_to",
    "h_backend",
    "h_by",
    "h_textcheck",
    "h_verdict",
    "h_field",
)
# The filters are drawn only when asked for (or when the URL sets one): the first visit stays light.
show_filters = st.toggle("Filters", key="h_filters", value=any(k in st.query_params for k in FILTER_KEYS))
seed_text, tolerances, size, formats, favourite, min_rating = "", [], None, [], False, 0
tag, sweep_id, date_from, date_to, backends, by = None, "", None, None, [], None
text_check, verdict, models, field_filter = None, None, [], ""
VERDICT_FILTERS = {**{v: v for v in reviews.VERDICTS}, reviews.UNREVIEWED: "no verdict"}
if show_filters:
    f = st.columns(4)
    seed_text = f[0].text_input("Seed", key="h_seed", bind="query-params")
    tolerances = f[1].multiselect(
        "Safety tolerance", list(range(D.SAFETY_MIN, D.SAFETY_MAX + 1)), key="h_tol", bind="query-params"
    )
    size = f[2].selectbox(
        "Size",
        list(SIZES),
        format_func=lambda size: SIZES[size],
        index=None,
        key="h_size",
        bind="query-params",
        placeholder="any size",
    )
    formats = f[3].multiselect("Format", D.OUTPUT_FORMATS, key="h_fmt", bind="query-params")
    g = st.columns(4)
    favourite = g[0].checkbox("Favourites only", key="h_fav", bind="query-params")
    min_rating = g[1].select_slider(
        "Rating at least", [0, 1, 2, 3, 4, 5], key="h_rating", bind="query-params"
    )
    tag = g[2].selectbox(
        "Tag",
        known_tags(str(wb.ledger.path)),
        index=None,
        key="h_tag",
        bind="query-params",
        placeholder="any tag",
    )
    sweep_id = g[3].text_input("Sweep id", key="h_sweep", bind="query-params")
    h = st.columns(4)
    date_from = h[0].date_input("From", value=None, key="h_from", bind="query-params")
    date_to = h[1].date_input("To", value=None, key="h_to", bind="query-params")
    backends = h[2].multiselect("Backend", ["emulator", "segmind"], key="h_backend", bind="query-params")
    by = h[3].selectbox(
        "Made by",
        wb.people(),
        index=None,
        key="h_by",
        bind="query-params",
        placeholder="anyone",
        help="The runs one person made",
    )
    v = st.columns(4)
    text_check = v[0].selectbox(
        "Text check",
        list(history.TEXT_FILTERS),
        index=None,
        key="h_textcheck",
        bind="query-params",
        placeholder="all runs",
        help="The runs whose image's text was read against its prompt: every word right, or some misspelt or missing",
    )
    verdict = v[1].selectbox(
        "Verdict",
        list(VERDICT_FILTERS),
        format_func=VERDICT_FILTERS.__getitem__,
        index=None,
        key="h_verdict",
        bind="query-params",
        placeholder="any verdict",
        help="The runs someone gave this verdict, or those nobody has reviewed yet",
    )
    # by slug, as a link carries it (?h_model=flux-2-pro): a bound widget puts its options' words in the URL
    models = v[2].multiselect(
        "Model", list(D.MODELS), key="h_model", bind="query-params", help="FLUX.2 [max], [pro] or [flex]"
    )
    field_filter = v[3].text_input(
        "Field of the prompt",
        key="h_field",
        bind="query-params",
        placeholder="subject.attire.top = green",
        help="Runs whose structured prompt (JSON or YAML-style) has this field holding these words",
    )

# the view's filters by their URL names, read by the one parser of a History view (a link to the
# presenter view is read by it too): a value it cannot use is named, as text (it may come from a link)
view_filters = {
    "h_q": search,
    "h_status": statuses,
    "h_seed": seed_text,
    "h_tol": tolerances,
    "h_size": size,
    "h_fmt": formats,
    "h_model": models,
    "h_fav": favourite,
    "h_rating": min_rating,
    "h_tag": tag,
    "h_sweep": sweep_id,
    "h_board": board.name if board else None,
    "h_from": date_from,
    "h_to": date_to,
    "h_backend": backends,
    "h_by": by,
    "h_textcheck": text_check,
    "h_verdict": verdict,
    "h_field": field_filter,
    "h_sort": sort,
    "h_trash": trash,
}
try:
    query = history.query_from(view_filters, {b.name: b.id for b in all_boards})
except history.FilterError as exc:
    for label, allowed, value in exc.bad:
        st.error(f"{label} must be {allowed}. The {label} filter holds:")
        st.text(value)
    st.stop()
# the page asked for (the pager's, or the URL's on a fresh visit): its count reaches
# HISTORY_COUNT_AHEAD past it, so the pager always offers the pages beyond
try:
    wanted = max(1, int(state.get("h_page") or st.query_params.get("h_page") or 1))
except (TypeError, ValueError):
    wanted = 1
seen = wb.changes.version  # the first page follows the ledger from here (draw_list)
page = wb.find(query.with_page(wanted))
if wanted > page.pages:  # fewer runs match now than when that page was chosen: the last one
    page = wb.find(query.with_page(page.pages))
    state["h_page"] = page.page
if page.pages > 1:
    st.pagination(page.pages, key="h_page", bind="query-params")
list_place = st.container()  # the count and the runs (draw_list, below), above the page's buttons

if page.rows and st.button(
    "Present these results",
    key="h_present",
    icon=":material/slideshow:",
    help="This search and its filters, one image at a time, full screen, for the room",
):
    found = {key.removeprefix("h_"): value for key, value in history.to_url(view_filters).items()}
    st.switch_page("pages/present.py", query_params={"q": search, **found})

chosen = selected()
if len(chosen) >= 2:  # the comparison is drawn below the page of runs: one click away
    st.button(
        f"See the {len(chosen)} selected runs side by side",
        key="h_goto_compare",
        icon=":material/arrow_downward:",
        on_click=lambda: state.__setitem__("h_compare_token", store.new_id()),
    )
if trash and page.rows and wb.may(Op.DELETE):  # one's own runs; an admin's, anyone's
    t1, t2, t3 = st.columns([1, 2, 2], vertical_alignment="center")
    if t1.button("Restore selected", key="h_restore", disabled=not chosen):
        try:
            wb.restore(chosen)
        except NotAllowed as exc:
            st.error(exc.user_text())
        else:
            set_selected([])
            st.rerun()
if trash and page.rows and wb.may(Op.PURGE):  # admins only (who may purge may restore: t2, t3 exist)
    purge_confirmed = t2.checkbox(
        f"I want to delete the {len(chosen)} selected run(s) for good",
        key=f"h_confirm_purge_{token(chosen)}",
        disabled=not chosen,
    )
    if t3.button(
        "Delete selected for good",
        key="h_purge",
        type="primary",
        disabled=not (chosen and purge_confirmed),
    ):
        n = wb.purge(chosen)
        set_selected([])
        st.toast(f"{n} run(s) deleted for good")
        st.rerun()


# --- the list --------------------------------------------------------------------------------
def acted(then):
    """A callback of the list that the whole page must show (the list may be a fragment's)."""

    def run(*args):
        state["h_list_acted"] = True
        then(*args)

    return run


def draw_list(page: history.Page, live_list: bool) -> None:
    """The count and the runs. The first page follows the ledger (flux_ui/live.py): a run made
    anywhere (another tab, another person, the CLI) appears without a reload, and only this part of
    the page is drawn again. A click in it (a selection, an Open) is the whole page's to show."""
    if live_list and live.follow(wb, "h_list") != seen:  # a rerun of this fragment: read anew
        page = wb.find(query.with_page(page.page))
    count = f"{page.total:,}{'+' if page.capped else ''}"
    start = (page.page - 1) * query.page_size
    st.caption(
        f"{count} run(s) · showing {start + 1 if page.rows else 0}–{start + len(page.rows)} · newest first"
        if sort in (None, "newest")
        else f"{count} run(s) · showing {start + 1 if page.rows else 0}–"
        f"{start + len(page.rows)} · sorted by {sort}"
    )
    if not page.rows:
        st.info(
            "No runs match."
            if any(
                [
                    search,
                    statuses,
                    seed_text,
                    tolerances,
                    size,
                    formats,
                    models,
                    favourite,
                    min_rating,
                    tag,
                    sweep_id,
                    board,
                    date_from,
                    date_to,
                    backends,
                    verdict,
                    field_filter,
                ]
            )
            else "No runs yet."
        )
    elif view_mode == "Table":
        table = pd.DataFrame(
            [
                {
                    "created": r.created_at[:19].replace("T", " "),
                    "status": r.status,
                    "model": P.model_name(r.model),
                    "prompt": " ".join(r.prompt.split())[:120],
                    "seed": r.seed,
                    "size": f"{r.width}×{r.height}",
                    "tolerance": r.safety_tolerance,
                    "format": r.output_format,
                    "wait s": r.wait_s,
                    "inference s": r.inference_time,
                    "queue s": r.queue_time,
                    "rating": r.rating,
                    "★": "★" if r.favourite else "",
                    "id": r.id,
                }
                for r in page.rows
            ]
        )
        # The table shows the selection in the URL (the gallery's too): it is keyed by it, so a change
        # made anywhere else (the gallery, "Clear selection", a delete) draws it afresh with those rows
        # ticked, and a change made in it reaches the URL before the page is drawn again.
        here = [r.id for r in page.rows]
        ticked = [i for i in here if i in selected()]
        table_key = f"h_table_{token(ticked)}"

        def table_picked(key: str = table_key, here: list[str] = here) -> None:
            state["h_list_acted"] = True
            picked = [here[i] for i in st.session_state[key].selection.rows]
            set_selected([i for i in selected() if i not in here] + picked)

        st.dataframe(
            table,
            hide_index=True,
            on_select=table_picked,
            selection_mode="multi-row",
            selection_default={"selection": {"rows": [here.index(i) for i in ticked]}},
            key=table_key,
            column_config={
                "id": None,
                "wait s": st.column_config.NumberColumn(help=P.TIME_HELP["wait_s"], format="%.1f"),
                "inference s": st.column_config.NumberColumn(help=P.TIME_HELP["inference_s"], format="%.1f"),
                "queue s": st.column_config.NumberColumn(help=P.TIME_HELP["queue_s"], format="%.1f"),
            },
        )
    else:
        shown_ids = [row.id for row in page.rows]
        found_checks = wb.checks(shown_ids)
        given, commented = wb.verdicts(shown_ids), wb.comment_counts(shown_ids)
        gallery.draw(
            page.rows,
            lambda row: wb.image_path(row, thumb=True),
            selected(),
            on_selection=acted(set_selected),
            on_open=acted(open_run),
            checks_of=lambda row: check_report.lines(found_checks.get(row.id, {})),
            review_of=lambda row: P.review_words(reviews.tally(given[row.id]), commented[row.id]),
        )
    if state.pop("h_list_acted", False) and live_list:  # from the fragment: the rest of the page shows it
        st.rerun(scope="app")


with list_place:
    if page.page == 1:
        live.fragment(draw_list)(page, True)
    else:
        draw_list(page, False)


# --- review (issue 17): a run's verdicts and comments; a verdict for the whole selection ---------
reviewer_drawn = False  # this run of the page drew the "Your name" field already


def reviewer_field() -> None:
    """Without sign-in, whose verdicts and comments these are (a demo at one computer, as Compare's
    vote): drawn once a page, where review is first offered."""
    global reviewer_drawn
    if not wb.actor.signed_in and not reviewer_drawn:
        reviewer_drawn = True
        st.text_input(
            "Your name",
            key="h_reviewer",
            persist_state="session",
            placeholder=wb.actor.id,
            help="Whose verdicts and comments these are (empty: yours, as the local user)",
        )


def reviewer() -> str | None:
    return (state.get("h_reviewer") or "").strip() or None


def reviewed(action, *args, said: str = "h_review_problem") -> None:
    """A review button (on_click, before the page is drawn again): one service call; what went wrong
    is said (under `said`, where that button is) when the page is drawn."""
    try:
        action(*args)
    except ParamsError as exc:
        state[said] = "; ".join(exc.problems)
    except (UnknownRun, NotAllowed) as exc:
        state[said] = exc.user_text()


def give_verdict(run_ids: list[str], verdict: str | None) -> None:
    wb.set_verdict(run_ids, verdict, reviewer=reviewer())


def send_comment(run_id: str, box: str, reply_to: int | None = None) -> None:
    wb.comment(run_id, state.get(box) or "", reply_to=reply_to, author=reviewer())
    state[box] = ""  # a callback runs before the box is drawn: it starts empty again
    state.pop("h_replying", None)


def review_panel(run: Run) -> None:
    """The open run's review: the verdict row (the viewer's own highlighted), everyone's verdicts,
    the comment threads (indented by depth; every word shown as text) with Reply and Delete, and a
    box to write a comment."""
    st.caption("Review")
    may_review = wb.may(Op.REVIEW)
    if may_review:
        reviewer_field()
    verdicts = wb.verdicts([run.id])[run.id]
    mine = next((v.verdict for v in verdicts if v.reviewer == wb.voter(reviewer())), None)
    if may_review:
        row = st.container(horizontal=True, key="h_verdicts")
        for verdict in (reviews.APPROVE, reviews.NEEDS_WORK, reviews.REJECT):
            row.button(
                P.VERDICT_LABELS[verdict],
                key=f"h_verdict_{verdict.replace(' ', '_')}",
                type="primary" if verdict == mine else "secondary",
                on_click=reviewed,
                args=(give_verdict, [run.id], verdict),
            )
        if mine is not None:
            row.button(
                "Withdraw", key="h_verdict_withdraw", on_click=reviewed, args=(give_verdict, [run.id], None)
            )
    for given_by in verdicts:  # names are text, never Markdown
        st.text(f"{given_by.reviewer}: {given_by.verdict}")
    outcome("h_review", "Nothing was saved.")
    replying = state.get("h_replying")
    for depth, comment in wb.comments(run.id):
        indent = min(depth, D.COMMENT_INDENT_MAX)
        box = st.columns([indent, 12 - indent])[1] if indent else st.container()
        with box.container(key=f"h_comment_{comment.id}"):
            at = comment.at[:16].replace("T", " ")
            st.caption(f"{P.markdown_text(comment.author)} · {at} UTC")
            if comment.deleted:
                st.caption("(deleted)")
            else:
                st.text(comment.body)  # as typed: <script>, **bold** and links stay text
            acts = st.container(horizontal=True)
            if may_review:
                acts.button(
                    "Reply",
                    key=f"h_reply_{comment.id}",
                    type="tertiary",
                    on_click=state.__setitem__,
                    args=("h_replying", comment.id),
                )
            if not comment.deleted and wb.may(Op.UNCOMMENT, comment.author):  # the service's rule
                acts.button(
                    "Delete",
                    key=f"h_uncomment_{comment.id}",
                    type="tertiary",
                    on_click=reviewed,
                    args=(wb.delete_comment, comment.id),
                )
            if may_review and replying == comment.id:
                st.text_area("Your reply", key=f"h_reply_text_{comment.id}", height=68)
                st.button(
                    "Send reply",
                    key=f"h_reply_send_{comment.id}",
                    on_click=reviewed,
                    args=(send_comment, run.id, f"h_reply_text_{comment.id}", comment.id),
                )
    if may_review:
        st.text_area(
            "Comment",
            key=f"h_comment_text_{run.id}",
            height=68,
            max_chars=D.COMMENT_MAX_CHARS,
            placeholder="What do you make of it?",
        )
        st.button(
            "Comment",
            key="h_comment_send",
            icon=":material/comment:",
            on_click=reviewed,
            args=(send_comment, run.id, f"h_comment_text_{run.id}"),
        )


# --- one run: its image, recipe, curation and recall -----------------------------------------
current_id = st.query_params.get("h_run")
current = wb.run(current_id) if current_id else None
if current is not None:
    st.divider()
    gallery.scroll_here("run", current.id)
    head = st.columns([6, 1])
    head[0].subheader("Run")
    head[1].button("Close", key="h_close", on_click=open_run, args=(None,))
    left, right = st.columns([3, 2], gap="large")
    with left:
        if current.status != store.COMPLETED or not pictures.image(current.image_path, wb.data_dir):
            line = P.headline(current)
            st.warning(line.title)
            st.text(line.detail)
        st.caption(P.times(current))  # the person's wait, and Segmind's own figures apart
    with right:
        unknown = current.status == store.SUBMIT_UNKNOWN  # may be billed: the user checks first
        checked = unknown and st.checkbox(
            "I checked Segmind's console: this request is not there", key=f"h_checked_{current.id}"
        )
        actions = st.container(horizontal=True)
        if actions.button("Open in Compose", key="h_compose", icon=":material/edit:"):
            to_compose(current)
        if wb.may(Op.SPEND) and actions.button(
            "Re-run identically", key="h_rerun", icon=":material/replay:", disabled=unknown and not checked
        ):
            to_compose(current, rerun="same", confirmed_unknown=bool(checked))
        if wb.may(Op.SPEND) and actions.button("Vary seed", key="h_vary", icon=":material/casino:"):
            to_compose(current, rerun="vary")
        for said in check_report.lines(wb.checks([current.id]).get(current.id, {})):
            st.text(said)  # the prompt's words are in it: text, never Markdown
        st.caption(f"Made by {P.markdown_text(current.created_by or 'nobody recorded')}")
        st.json(P.recipe(current), expanded=1)
        activity = wb.activity(current.id)
        if activity:
            with st.expander(f"Activity ({len(activity)})", icon=":material/group:"):
                for done_by in activity:  # names, notes and tags are text, never Markdown
                    st.text(f"{done_by.at[:16].replace('T', ' ')} · {done_by.words()}")
        review_panel(current)
        may_curate = wb.may(Op.CURATE, current.created_by)
        if may_curate:
            fav = st.toggle("Favourite", value=bool(current.favourite), key=f"h_fav_{current.id}")
            stars = st.feedback(
                "stars",
                key=f"h_stars_{current.id}",
                default=current.rating - 1 if current.rating else None,
            )
            tags = st.multiselect(
                "Tags",
                sorted(set(known_tags(str(wb.ledger.path))) | set(current.tags)),
                default=list(current.tags),
                accept_new_options=True,
                key=f"h_tags_{current.id}",
            )
            note = st.text_area("Note", value=current.notes, key=f"h_note_{current.id}", height=80)
            on_boards = [b.name for b in wb.boards_of(current.id)]
            picked_boards = st.multiselect(
                "Boards",
                sorted({b.name for b in all_boards} | set(on_boards), key=str.casefold),
                default=on_boards,
                accept_new_options=True,
                key=f"h_boards_{current.id}",
                placeholder="put it on a board, or type a new one's name",
            )
            rating = current.rating if stars is None else stars + 1
            if st.button("Save", key="h_save", type="primary"):
                try:  # the boards first: a bad new name saves nothing
                    wb.set_boards(current.id, picked_boards)
                except ParamsError as exc:
                    st.error("Nothing was saved.")
                    st.text("; ".join(exc.problems))
                else:
                    wb.curate(current.id, favourite=fav, rating=rating, notes=note, tags=tags)
                    known_tags.clear()  # a new tag is offered at once, for every run
                    st.toast("Saved")
                    st.rerun()
        st.caption(f"Rating: {'★' * (current.rating or 0)}{'☆' * (5 - (current.rating or 0))}")
        if current.notes:
            st.caption("Note")
            st.text(current.notes)
        if current.tags and not may_curate:
            st.caption("Tags")
            st.text(", ".join(current.tags))
        if not current.deleted_at and wb.may(Op.DELETE, current.created_by):
            confirm = st.checkbox("I want to delete this run", key=f"h_confirm_{current.id}")
            if st.button("Delete", key="h_delete", disabled=not confirm, icon=":material/delete:"):
                wb.delete([current.id])
                state["h_undo"] = [current.id]
                open_run(None)
                st.rerun()
    draw_lineage(current)
# Undo offers the runs this session deleted that are still in the trash (not restored, not purged).
undoable = [r.id for r in wb.runs(state.get("h_undo", [])) if r.deleted_at]
if undoable:
    u1, u2 = st.columns([4, 1])
    u1.info(f"Deleted {len(undoable)} run(s): they stay in the trash until deleted for good.")
    if u2.button("Undo", key="h_undo_button"):
        wb.restore(undoable)
        state.pop("h_undo", None)
        st.rerun()
else:
    state.pop("h_undo", None)


# --- organise the selected runs: each action one call, for every selected run at once -----------
def bulk(action: str, chosen: list[str], board_id: str | None) -> None:
    """A bulk action's button (on_click, before the page is drawn again): one service call for the
    whole selection; what it did (or why it did nothing) is said when the page is drawn."""
    value = st.session_state.get
    try:
        if action == "tag":
            done = f"Tagged {wb.curate_many(chosen, add_tags=value('h_bulk_tags') or [])} run(s)"
            known_tags.clear()
        elif action == "untag":
            done = f"Took the tag off {wb.curate_many(chosen, remove_tags=[str(value('h_bulk_untag') or '')])} run(s)"
        elif action == "rate":
            done = f"Rated {wb.curate_many(chosen, rating=value('h_bulk_rating'))} run(s)"
        elif action == "favourite":
            done = f"Marked {wb.curate_many(chosen, favourite=True)} run(s) as favourites"
        elif action == "board":
            put = wb.add_to_board(str(value("h_bulk_board") or ""), chosen, create=True)
            done = f"{len(chosen)} run(s) on the board, which holds {put.runs}"
        else:  # off the board chosen above
            done = f"Took {wb.remove_from_board(board_id or '', chosen)} run(s) off the board"
    except (ParamsError, UnknownRun, NotAllowed) as exc:
        state["h_bulk_problem"] = "; ".join(exc.problems) if isinstance(exc, ParamsError) else exc.user_text()
        return
    state["h_bulk_done"] = done


def organise(chosen: list[str], rows: list[Run]) -> None:
    """Tags, a rating, a favourite mark and boards for the whole selection."""
    bar = st.container(horizontal=True, vertical_alignment="bottom", key="h_bulk")

    def button(label: str, action: str, key: str, **kw) -> None:
        bar.button(label, key=key, on_click=bulk, args=(action, chosen, board.id if board else None), **kw)

    new_tags = bar.multiselect(
        "Tags to add",
        known_tags(str(wb.ledger.path)),
        accept_new_options=True,
        key="h_bulk_tags",
        placeholder="tags, or type new ones",
        width=220,
    )
    button("Add tags", "tag", "h_bulk_tag", disabled=not new_tags)
    their_tags = sorted({t for r in rows for t in r.tags})
    old_tag = bar.selectbox(
        "Tag to remove", their_tags, index=None, key="h_bulk_untag", placeholder="a tag", width=160
    )
    button("Remove tag", "untag", "h_bulk_untag_go", disabled=old_tag is None)
    stars = bar.selectbox(
        "Rating",
        [1, 2, 3, 4, 5],
        index=None,
        format_func=lambda n: "★" * n,
        key="h_bulk_rating",
        placeholder="stars",
        width=120,
    )
    button("Rate", "rate", "h_bulk_rate", disabled=stars is None)
    button("Favourite", "favourite", "h_bulk_fav", icon=":material/star:")
    target = bar.selectbox(
        "Board",
        [b.name for b in all_boards],
        index=None,
        accept_new_options=True,
        key="h_bulk_board",
        placeholder="a board, or type a new name",
        width=220,
    )
    button("Add to board", "board", "h_bulk_board_add", disabled=not target)
    if board is not None:
        button(
            "Remove from this board",
            "unboard",
            "h_bulk_board_remove",
            help="The board chosen above; the runs stay",
        )
    outcome("h_bulk", "Nothing was changed.")


def verdict_for_all(run_ids: list[str]) -> None:
    """One verdict for every selected run: one call."""
    reviewer_field()
    bar = st.container(horizontal=True, vertical_alignment="bottom", key="h_bulk_review")
    choices = {**P.VERDICT_LABELS, "withdraw": "No verdict (take mine back)"}
    picked = bar.selectbox(
        "Verdict",
        list(choices),
        format_func=choices.__getitem__,
        index=None,
        key="h_bulk_verdict",
        placeholder="a verdict for all of them",
        width=240,
    )
    bar.button(
        "Give the verdict",
        key="h_bulk_verdict_go",
        disabled=picked is None,
        on_click=reviewed,
        args=(give_verdict, run_ids, None if picked == "withdraw" else picked),
        kwargs={"said": "h_bulk_review_problem"},
    )
    outcome("h_bulk_review", "Nothing was changed.")


# --- compare the selected runs ----------------------------------------------------------------
rows = wb.runs(chosen)
if rows:
    st.divider()
    if len(rows) >= 2 and state.get("h_compare_token"):
        gallery.scroll_here("compare", state["h_compare_token"])
    st.subheader(f"Selected: {len(rows)} run(s)")
    bar = st.container(horizontal=True, vertical_alignment="center")
    bar.download_button(
        "Export selected (ZIP)",
        lambda: wb.export_zip(chosen),
        file_name="flux-lab-runs.zip",
        mime="application/zip",
        key="h_export",
        icon=":material/folder_zip:",
    )
    if bar.button("Present selected", key="h_present_selected", icon=":material/slideshow:"):
        st.switch_page("pages/present.py", query_params={"runs": ",".join(chosen)})
    bar.download_button(
        "Download report",
        lambda: wb.report(run_ids=[r.id for r in rows])[1],
        file_name=report_file_name(runs=len(rows)),
        mime="text/html",
        key="h_report",
        icon=":material/description:",
        help="One HTML file that opens anywhere, offline: the pictures, settings, costs, checks, verdicts and comments",
    )
    bar.button("Clear selection", key="h_clear", on_click=set_selected, args=([],))
    if not trash and wb.may(Op.DELETE):  # asks first, as deleting one run does
        delete_confirmed = bar.checkbox(
            f"I want to delete the {len(rows)} selected run(s)", key=f"h_confirm_selected_{token(chosen)}"
        )
        if bar.button(
            "Delete selected",
            key="h_delete_selected",
            icon=":material/delete:",
            disabled=not delete_confirmed,
        ):
            try:
                wb.delete(chosen)
            except NotAllowed as exc:  # someone else's run among them: none is deleted
                st.error(exc.user_text())
            else:
                state["h_undo"] = list(chosen)
                set_selected([])
                st.rerun()
    if not trash and wb.may(Op.CURATE):
        organise(chosen, rows)
    if not trash and wb.may(Op.REVIEW):
        verdict_for_all([r.id for r in rows])
if len(rows) >= 2:
    names = [f"#{i + 1}" for i in range(len(rows))]
    width = max(160, min(340, 1200 // len(rows)))
    shown = st.columns(len(rows))
    for name, row, col in zip(names, rows, shown):
        with col:
            st.text(f"{name} · {P.model_name(row.model)} · seed {row.seed} · tol {row.safety_tolerance}")
            if row.status != store.COMPLETED or not pictures.image(row.image_path, wb.data_dir, width=width):
                st.text(P.STATUS_WORDS[row.status])
            if st.button("Open in Compose", key=f"h_compose_{row.id}", icon=":material/edit:"):
                to_compose(row)
    only = st.toggle("Differences only", key="h_diff_only", help="Settings only: outcomes are shown apart")
    for title, table in P.compare_tables(rows, names, differences_only=only).items():
        st.caption(title)
        st.table(table, hide_index=True)
    st.caption(
        "Prompt: the fields that changed, then word by word (struck: only in #1; green: only in the other)"
    )
    for name, row in zip(names[1:], rows[1:]):
        st.text(f"#1 → {name}")
        for change in P.field_changes(rows[0].prompt, row.prompt):
            st.text(change)  # the prompts' words: text, never Markdown
        st.html(P.word_diff_html(rows[0].prompt, row.prompt))
    a_path, b_path = wb.image_path(rows[0]), wb.image_path(rows[1])
    if len(rows) == 2 and a_path and b_path and a_path.exists() and b_path.exists():
        ab_view.draw("h_ab", rows[0].image_path or "", names[0], rows[1].image_path or "", names[1])

# --- runs made elsewhere, recall from a file, and insights --------------------------------------
import_box = (  # admins: it reads every request of the key
    panels.opened("Import runs made elsewhere (Segmind's request history)", "h_imp_open")
    if wb.may(Op.IMPORT)
    else None
)
if import_box is not None:
    with import_box:
        st.caption(
            "Brings this key's FLUX.2 [max] requests that the ledger does not hold (made in Segmind's "
            "playground, by scripts, or by a teammate) into History, marked imported; their images are "
            "downloaded while Segmind still has them (seven days). Importing again adds nothing twice."
        )
        i1, i2 = st.columns([1, 2])
        days = i1.number_input(
            "Days back", min_value=1, max_value=D.IMPORT_MAX_DAYS, value=D.IMPORT_DAYS, key="h_imp_days"
        )
        email = i2.text_input("A teammate's e-mail (optional, inside a Segmind team)", key="h_imp_email")
        if st.button("Import", key="h_imp_go", icon=":material/download:"):
            try:
                report = wb.import_history(days=int(days), user_email=email or None, session_key=session_key)
            except ParamsError as exc:
                st.error("Nothing was imported: " + "; ".join(exc.problems))
            except CallFailed as exc:
                st.error("Segmind's request history could not be read; nothing was imported.")
                st.text(for_app(exc.user_text()))
            else:
                st.success(report.words())
                for request_id, why in report.skipped:
                    st.text(f"Skipped {request_id}: {why}")

recall_box = panels.opened("Recall a recipe from an image file", "h_recall_open")
if recall_box is not None:
    with recall_box:
        upload = st.file_uploader(
            "An image Flux Lab saved (PNG or JPEG)", type=["png", "jpg", "jpeg"], key="h_import"
        )
        if upload is not None:
            try:
                recalled = history.recall_image(upload.getvalue())
            except ParamsError as exc:
                st.error("No recipe found.")
                st.text(str(exc))
            else:
                st.json(recalled.params.fields())
                if st.button("Open in Compose", key="h_import_open"):
                    known = recalled.run_id if recalled.run_id and wb.run(recalled.run_id) else None
                    state["compose_pending"] = {
                        **recalled.params.payload(),
                        **P.flex_values(recalled.params),
                        "seed_random": False,
                        "image_urls": list(recalled.params.image_urls),
                        "from_run": known,  # the next Generate names the file's run as its parent
                    }
                    go_to_compose(known)

if st.toggle("Insights", key="h_insights", help="Charts drawn from the ledger"):
    data = wb.insights()
    c1, c2 = st.columns(2)
    with c1:
        st.caption("Segmind's inference time (s) against megapixels")
        if data["speed"]:
            st.scatter_chart(pd.DataFrame(data["speed"]), x="megapixels", y="inference_s", color="format")
    with c2:
        st.caption("Outcome by safety tolerance")
        if data["outcomes"]:
            st.bar_chart(pd.DataFrame(data["outcomes"]), x="safety_tolerance", y="runs", color="outcome")
    if data["daily"]:  # bars: a single day is one bar, not an invisible one-point line
        daily = pd.DataFrame(data["daily"])
        c3, c4, c5 = st.columns(3)
        c3.caption("Runs per day")
        c3.bar_chart(daily, x="day", y="runs")
        c4.caption("Real spend per day (USD, from Segmind's record)")
        c4.bar_chart(daily, x="day", y="spend_usd")
        c5.caption("Credits reported per day")
        c5.bar_chart(daily, x="day", y="credits")
        spent = sum(d["spend_usd"] for d in data["daily"])
        st.caption(f"Real spend in the ledger: ${spent:.4g} over {len(data['daily'])} day(s).")
    if data["people"]:
        st.caption("By person: runs, images made and real spend (USD, from Segmind's record)")
        st.dataframe(
            pd.DataFrame(data["people"]).rename(
                columns={
                    "person": "Person",
                    "runs": "Runs",
                    "images": "Images",
                    "spend_usd": "Real spend (USD)",
                }
            ),
            hide_index=True,
            width="content",
        )
