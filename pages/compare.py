"""Compare: plan a sweep over seeds, safety tolerances and prompt variants, watch the grid fill in
(every slice at once, axes placed by the person, a lightbox on any cell), read it (safety matrix,
A/B in the browser with differences highlighted), blind-vote on it, name it, export it."""

from __future__ import annotations


import pandas as pd
import streamlit as st

from flux_core import defaults as D
from flux_core import presentation as P
from flux_core import structured
from flux_core.checks import rank
from flux_core.ledger import reviews, store
from flux_core.report import file_name as report_file_name
from flux_core.ledger import sweeps
from flux_core.hunt import HuntView
from flux_core.errors import CallFailed, CapReached, ConfirmationNeeded, NotAllowed, UnknownRun, for_app
from flux_core.params import FLEX_DEFAULTS, FluxParams, ParamsError, parse_seeds
from flux_core.service import Workbench
from flux_core.team import Op
from flux_ui import ab_view, hunt_view, pictures, spend, sweep_grid
from flux_ui import live
from flux_ui.live import follow, fragment as live_fragment

if "workbench" not in st.session_state:  # reached without the router (see app.py)
    st.switch_page("app.py", query_params={**st.query_params.to_dict(), "goto": "compare"})

wb: Workbench = st.session_state["workbench"]
session_key = st.session_state.get("sidebar_api_key") or None
state = st.session_state
AXIS_NAMES = {label: name for name, label in sweeps.AXIS_LABELS.items()}
CELL_SIZES = {"Fit the screen": True, "Large": False}  # the grid's cells: fit every slice, or use the width
OUTCOME_WORDS = {"done": "passed", "blocked": "BLOCKED", "failed": "failed", "pending": "pending"}

# a cell's "Open in Compose" (from the grid's lightbox): its recipe, loaded into Compose
to_compose = state.pop("compare_to_compose", None)
if to_compose and (row := wb.run(to_compose)) is not None:
    state["compose_pending"] = P.form_values(row)
    st.switch_page("pages/compose.py", query_params={"run": row.id})

st.title("Compare")


def _open_sweep(sweep_id: str | None) -> None:
    if sweep_id:
        st.query_params["sweep"] = sweep_id
    else:
        st.query_params.pop("sweep", None)
    st.query_params.pop("layout", None)


def _load_base(values: dict) -> None:
    state["compare_prompt"] = values["prompt"]
    state["compare_width"], state["compare_height"] = values["width"], values["height"]
    state["compare_seed"], state["compare_tolerance"] = values["seed"], values["safety_tolerance"]
    state["compare_format"] = values["output_format"]
    # the model, and [flex]'s own fields (its defaults unless given), sent when the base is [flex]
    state["compare_model"] = values.get("model", D.MODEL_SLUG)
    state["compare_flex"] = {name: values.get(name, default) for name, default in FLEX_DEFAULTS.items()}
    # the reference images come along: URLs as they are, Compose's files to be uploaded at Run sweep
    state["compare_image_urls"] = list(values.get("image_urls", []))
    state["compare_reference_files"] = list(values.get("reference_files", []))
    state["compare_reference_problems"] = list(values.get("reference_problems", []))


def _drop_references() -> None:
    state["compare_image_urls"], state["compare_reference_files"] = [], []
    state["compare_reference_problems"] = []


def _from_compose() -> None:
    if state.get("compose_values"):
        _load_base(state["compose_values"])
        state.pop("compare_base_from", None)


def _from_run() -> None:
    row = wb.run(state.get("compare_base_run") or "")
    if row:
        _load_base(P.form_values(row))
        state["compare_base_from"] = row.id  # the sweep's new cells name it as their parent


def _draw_random_seeds() -> None:
    state["compare_random_drawn"] = sweeps.random_seeds(int(state["compare_n_random"]))


def plan_page() -> None:
    defaults = state.get("compose_values") or {
        "prompt": "",
        "width": D.WIDTH,
        "height": D.HEIGHT,
        "seed": 1,
        "safety_tolerance": D.SAFETY_TOLERANCE,
        "output_format": D.OUTPUT_FORMAT,
    }
    for key, value in {
        "compare_prompt": defaults["prompt"],
        "compare_width": defaults["width"],
        "compare_height": defaults["height"],
        "compare_seed": defaults["seed"],
        "compare_tolerance": defaults["safety_tolerance"],
        "compare_format": defaults["output_format"],
        "compare_model": defaults.get("model", D.MODEL_SLUG),
        "compare_flex": {name: defaults.get(name, default) for name, default in FLEX_DEFAULTS.items()},
        "compare_models": list(D.MODELS)[:2],
        "compare_axes": ["Seed", "Safety tolerance"],
        "compare_seed_mode": "List",
        "compare_seeds": "1, 2, 3",
        "compare_n_random": 4,
        "compare_tolerances": [2, 4],
        "compare_prompt_mode": "Search and replace",
        "compare_phrase": "",
        "compare_replacements": "",
        "compare_prompts": "",
        "compare_sizes": ["1:1 square"],
        "compare_formats": ["png", "jpeg"],
        "compare_image_urls": list(defaults.get("image_urls", [])),
        "compare_reference_files": list(defaults.get("reference_files", [])),
        "compare_reference_problems": list(defaults.get("reference_problems", [])),
    }.items():
        state.setdefault(key, value)
    state.setdefault("compare_random_drawn", sweeps.random_seeds(int(state["compare_n_random"])))

    live_fragment(saved_sweeps)()
    if not wb.may(Op.SPEND):
        st.info(
            f"You are signed in as a {wb.actor.role.label}: open a saved sweep above to look at its grid, "
            "compare its cells and vote. Planning a sweep needs the member role; an admin can give it.",
            icon=":material/visibility:",
        )
        return

    st.subheader("Plan a sweep")
    hunting = (
        st.segmented_control(
            "Plan",
            ["Sweep", "Seed hunt"],
            key="compare_mode",
            default="Sweep",
            help="Seed hunt: resample only the seed until enough images pass the checks",
            label_visibility="collapsed",
        )
        == "Seed hunt"
    )
    base_col, axes_col = st.columns([1, 1], gap="large")
    with base_col:
        st.caption("Base request")
        b1, b2 = st.columns([1, 1])
        b1.button(
            "Take from Compose",
            key="compare_from_compose",
            on_click=_from_compose,
            disabled=not state.get("compose_values"),
        )
        recent_runs = {r.id: f"seed {r.seed} · {' '.join(r.prompt.split())[:50]}" for r in wb.recent(30)}
        if recent_runs:
            b2.selectbox(
                "or from a past run",
                list(recent_runs),
                format_func=lambda run_id: recent_runs[run_id],
                key="compare_base_run",
                on_change=_from_run,
                index=None,
                placeholder="Choose a past run",
                persist_state="session",
            )
        st.text_area("Base prompt", key="compare_prompt", height=140, persist_state="session")
        c1, c2 = st.columns(2)
        c1.number_input(
            "Width", D.SIZE_MIN, D.SIZE_MAX, step=D.SIZE_STEP, key="compare_width", persist_state="session"
        )
        c2.number_input(
            "Height", D.SIZE_MIN, D.SIZE_MAX, step=D.SIZE_STEP, key="compare_height", persist_state="session"
        )
        c1.number_input("Seed (when not an axis)", 0, D.SEED_MAX, key="compare_seed", persist_state="session")
        c2.number_input(
            "Tolerance (when not an axis)",
            D.SAFETY_MIN,
            D.SAFETY_MAX,
            key="compare_tolerance",
            persist_state="session",
        )
        st.radio(
            "Output format (when not an axis)",
            D.OUTPUT_FORMATS,
            key="compare_format",
            horizontal=True,
            persist_state="session",
        )
        st.selectbox(
            "Model (when not an axis)",
            list(D.MODELS),
            format_func=P.model_name,
            key="compare_model",
            persist_state="session",
        )
        st.text_input("Name (optional)", key="compare_name", persist_state="session")
        ref_urls, ref_files = state["compare_image_urls"], state["compare_reference_files"]
        if ref_urls or ref_files:
            files = (
                f" and {len(ref_files)} file(s) from Compose, uploaded when the sweep runs"
                if ref_files
                else ""
            )
            st.caption(f"Reference images: {len(ref_urls)} URL(s){files}; every cell uses them")
            for url in ref_urls:
                st.text(url)
            st.button(
                "Drop the reference images",
                key="compare_drop_refs",
                on_click=_drop_references,
            )
        for problem in state["compare_reference_problems"]:  # said, not dropped silently
            st.warning(f"Not taken from Compose: {problem}", icon=":material/warning:")

    if hunting:
        with axes_col:
            if ref_files:
                st.caption("A hunt sends the reference URLs only; Compose's files are not uploaded for it.")
            hunt_view.plan(
                wb,
                session_key,
                {
                    "prompt": state["compare_prompt"],
                    "width": int(state["compare_width"]),
                    "height": int(state["compare_height"]),
                    "seed": 0,
                    "safety_tolerance": int(state["compare_tolerance"]),
                    "output_format": state["compare_format"],
                    "image_urls": list(ref_urls),
                },
                _open_sweep,
            )
        return
    with axes_col:
        chosen = st.multiselect(
            "Axes (up to 3)",
            list(AXIS_NAMES),
            key="compare_axes",
            max_selections=D.SWEEP_MAX_AXES,
            persist_state="session",
        )
        axes: list[sweeps.Axis] = []
        models: list[str] = []  # the model axis' values, when it is one
        problems: list[str] = []
        base_prompt = state["compare_prompt"]
        try:
            for label in chosen:
                name = AXIS_NAMES[label]
                if name == "seed":
                    mode = st.radio(
                        "Seeds",
                        ["List", "Random"],
                        key="compare_seed_mode",
                        horizontal=True,
                        persist_state="session",
                    )
                    if mode == "List":
                        text = st.text_input(
                            "Seeds, separated by commas", key="compare_seeds", persist_state="session"
                        )
                        values = parse_seeds(text)  # every bad seed named at once
                    else:
                        c1, c2 = st.columns([2, 1])
                        c1.number_input(
                            "How many random seeds",
                            1,
                            64,
                            key="compare_n_random",
                            on_change=_draw_random_seeds,
                            persist_state="session",
                        )
                        c2.button("Draw again", key="compare_redraw", on_click=_draw_random_seeds)
                        values = list(state["compare_random_drawn"])
                        st.text(f"Drawn: {', '.join(map(str, values))}")
                    axes.append(sweeps.axis("seed", values))
                elif name == "safety_tolerance":
                    values = st.multiselect(
                        "Safety tolerances",
                        list(range(D.SAFETY_MIN, D.SAFETY_MAX + 1)),
                        key="compare_tolerances",
                    )
                    axes.append(sweeps.axis("safety_tolerance", sorted(values)))
                elif name == "prompt":
                    mode = st.radio(
                        "Prompt variants",
                        ["Search and replace", "Whole prompts"],
                        key="compare_prompt_mode",
                        horizontal=True,
                        persist_state="session",
                    )
                    if mode == "Search and replace":
                        phrase = st.text_input(
                            "Phrase in the base prompt", key="compare_phrase", persist_state="session"
                        )
                        alternatives = st.text_area(
                            "Put in its place (one per line)",
                            key="compare_replacements",
                            persist_state="session",
                        )
                        prompts, labels = sweeps.replace_variants(
                            base_prompt, phrase, alternatives.splitlines()
                        )
                    else:
                        text = st.text_area(
                            "Prompts, separated by a line of ---",
                            key="compare_prompts",
                            height=140,
                            persist_state="session",
                        )
                        prompts, labels = sweeps.whole_prompts(text)
                    axes.append(sweeps.axis("prompt", prompts, labels))
                    if prompts:  # every full prompt the sweep will send, before it runs
                        st.caption(f"The sweep sends these {len(prompts)} prompt(s):")
                        for label, prompt in zip(labels, prompts):
                            st.text(f"{label}: {' '.join(prompt.split())}")
                elif name == "field":
                    doc = structured.try_parse(base_prompt)
                    paths = [n.path for n in doc.fields()] if doc else []
                    if not paths:
                        raise ParamsError(
                            [
                                "a field axis needs a structured base prompt (JSON or YAML-style `key: value` lines)"
                            ]
                        )
                    path = st.selectbox(
                        "Field of the base prompt", paths, key="compare_field_path", persist_state="session"
                    )
                    st.text(f"Now: {structured.value_at(base_prompt, path)}")  # the prompt's words: text
                    listed = st.text_area(
                        "Its values (one per line)", key="compare_field_values", persist_state="session"
                    )
                    axes.append(sweeps.field_axis(path, listed.splitlines()))
                elif name == "prompt_form":
                    forms = st.multiselect(
                        "Send the same content",
                        list(structured.FORMS),
                        format_func=lambda form: sweeps.FORM_LABELS[form],
                        key="compare_prompt_forms",
                        persist_state="session",
                    )
                    axes.append(sweeps.axis("prompt_form", forms))
                elif name == "size":
                    names = st.multiselect(
                        "Sizes", list(D.ASPECT_PRESETS), key="compare_sizes", persist_state="session"
                    )
                    axes.append(
                        sweeps.axis(
                            "size", [f"{w}x{h}" for w, h in (D.ASPECT_PRESETS[n] for n in names)], names
                        )
                    )
                elif name == "model":
                    models = st.multiselect(
                        "Models",
                        list(D.MODELS),
                        format_func=P.model_name,
                        key="compare_models",
                        persist_state="session",
                    )
                    axes.append(sweeps.axis("model", models))
                else:
                    formats = st.multiselect(
                        "Output formats",
                        list(D.OUTPUT_FORMATS),
                        key="compare_formats",
                        persist_state="session",
                    )
                    axes.append(sweeps.axis("output_format", formats))
            placeholders = [f"https://upload.invalid/{i}" for i in range(len(ref_files))]
            model = sweeps.base_model(state["compare_model"], models)
            flex = state["compare_flex"] if model == D.FLEX_SLUG else {}
            if flex:
                st.caption(
                    f"{P.model_name(D.FLEX_SLUG)} cells: steps {flex['steps']} · guidance {flex['guidance']} · "
                    f"prompt upsampling {'on' if flex['prompt_upsampling'] else 'off'}"
                )
            base = FluxParams.parse(
                model=model,
                **flex,
                prompt=base_prompt,
                width=int(state["compare_width"]),
                height=int(state["compare_height"]),
                seed=int(state["compare_seed"]),
                safety_tolerance=int(state["compare_tolerance"]),
                output_format=state["compare_format"],
                image_urls=[*ref_urls, *placeholders],  # Compose's files stand in until they are uploaded
            )
            plan = sweeps.make_plan(base, axes)
        except ParamsError as exc:
            problems = exc.problems
            plan = None

    st.divider()
    if plan is None:
        st.error("This sweep cannot run yet:")
        for problem in problems:
            st.text(f"• {problem}")
        return
    run_again = st.checkbox(
        "Run again even where the ledger already has the exact result",
        key="compare_run_again",
        persist_state="session",
    )
    est = wb.estimate(plan, session_key=session_key, run_again=run_again)
    shape = " × ".join(f"{len(a.values)} {a.plural}" for a in plan.axes)
    cost = est.cost_words
    st.info(
        f"{est.cells} cells ({shape}) · {est.new} new, {est.reused} reused from the ledger · "
        f"estimated wait about {est.seconds:.0f} s (Run sweep to the last image) · estimated cost {cost}",
        icon=":material/calculate:",
    )
    spend.line(wb, session_key)
    cap = wb.sweep_cap()
    confirmed = True
    if sweeps.needs_confirmation(est, cap):
        confirmed = st.checkbox(
            f"Yes, run {est.new} new images (more than {cap}); estimated cost {cost}",
            key="compare_confirm",
            persist_state="session",
        )
    if st.button(
        "Run sweep", key="compare_run", type="primary", disabled=not confirmed, icon=":material/play_arrow:"
    ):
        try:
            sweep_id = wb.start_sweep(
                sweeps.make_plan(plan.base.replace(image_urls=list(ref_urls)), list(plan.axes)),
                session_key=session_key,
                name=state.get("compare_name", ""),
                run_again=run_again,
                confirmed=confirmed,
                references=ref_files,
                guard=state.setdefault("compare_guard", store.new_id()),
                parent=state.get("compare_base_from"),
            )
        except CallFailed as exc:
            st.error("The reference images could not be uploaded; nothing was submitted.")
            st.text(for_app(exc.user_text()))
            return
        except ConfirmationNeeded as exc:
            st.error(exc.user_text())
            return
        except UnknownRun:  # the past run the base came from was purged meanwhile
            state.pop("compare_base_from", None)
            st.error("The past run this base came from is no longer in the ledger; nothing was started.")
            return
        except (CapReached, ValueError) as exc:  # the whole sweep would go past a spend cap
            spend.refused(exc)
            return
        _open_sweep(sweep_id)
        st.rerun()


def saved_sweeps() -> None:
    """The saved sweeps as a row of cards: the first done cell's picture, the name (or what was
    swept), the size and the date. A fragment that follows the ledger: a sweep started anywhere
    (another tab, another person, the CLI) shows up, and its picture once its first cell is done."""
    follow(wb, "compare_saved", live.mark(wb, live.sweeps(D.SWEEP_CARDS)))
    previous = wb.recent_sweeps(limit=D.SWEEP_CARDS)
    if not previous:
        return
    st.subheader("Open a saved sweep", anchor=False)
    cards = st.container(horizontal=True, gap="small", key="compare_saved")
    hunts = wb.hunts_among([row.id for row in previous])
    for row in previous:
        card = cards.container(border=True, width=D.SWEEP_CARD_PX + 34, key=f"compare_card_{row.id}")
        if not pictures.thumbnail(row.thumb_path, wb.data_dir, width=D.SWEEP_CARD_PX, where=card):
            card.text("No picture yet")
        card.text(f"Seed hunt · {row.title}" if row.id in hunts else row.title)
        card.caption(f"{row.shape} ({row.cells} cells) · {row.created_at[:16].replace('T', ' ')}")
        if row.created_by:
            card.caption(f"by {P.markdown_text(row.created_by)}")
        if card.button("Open", key=f"compare_open_{row.id}"):
            _open_sweep(row.id)
            st.rerun(scope="app")  # from the fragment: the whole page becomes the sweep's


def _place_axis(slot: int, order_names: list[str]) -> None:
    """An axis put in a place (rows, columns, stacked): the axis that was there takes its old place."""
    placed = sweep_grid.place(order_names, slot, state[f"compare_place_{slot}"])
    st.query_params["layout"] = ",".join(placed)


def layout(view: sweeps.SweepView) -> list[int]:
    """Where each axis goes, as the person placed them (kept in the URL: ?layout=seed,prompt,...)."""
    names = [a.name for a in view.axes]
    order = sweeps.arrange(names, st.query_params.get("layout", "").split(","))
    places = st.columns([2] * len(names) + [2] if len(names) > 1 else [2, 4])
    places[-1].segmented_control(
        "Cells",
        list(CELL_SIZES),
        key="compare_cells",
        default=next(iter(CELL_SIZES)),
        bind="query-params",
        help="Fit the screen: every slice in the window at once. Large: the columns share the page's width.",
    )
    if len(names) < 2:
        return order
    order_names = [names[i] for i in order]
    for slot, col in enumerate(places[: len(names)]):
        state[f"compare_place_{slot}"] = order_names[slot]
        col.selectbox(
            sweep_grid.PLACES[slot],
            names,
            format_func=lambda name: sweeps.AXIS_LABELS[name],
            key=f"compare_place_{slot}",
            on_change=_place_axis,
            args=(slot, order_names),
        )
    return order


def _cell_action(sweep_id: str, what: str, idx: int) -> None:
    """What a person did in the grid's lightbox, done before the page is drawn again."""
    view = wb.sweep(sweep_id)
    cell = next((c for c in view.cells if c.idx == idx), None) if view else None
    if cell is None:
        return
    try:
        if what == "compose":
            state["compare_to_compose"] = cell.run.id  # the page switches to Compose as it starts
        elif what == "favourite":
            wb.curate(cell.run.id, favourite=not cell.run.favourite)
        elif what == "retry":
            wb.retry_cell(sweep_id, idx, session_key=session_key)
    except ParamsError as exc:
        state["compare_problem"] = "; ".join(exc.problems)
    except NotAllowed as exc:  # the lightbox offers only what the role may do; a forged click ends here
        state["compare_problem"] = exc.user_text()
    except (CapReached, ValueError) as exc:
        state["compare_refused"] = exc


def grid(view: sweeps.SweepView, order: list[int], found: HuntView | None) -> None:
    """The sweep's progress, times and grid; `found`: its hunt, if it is one (its hits and misses
    marked on the cells)."""
    by = state.get("compare_rank") or "none"
    counts = view.progress()
    total = max(1, len(view.cells))
    st.progress(
        (total - counts["pending"]) / total,
        text=" · ".join(
            f"{counts[k]} {w}"
            for k, w in (
                ("done", "done"),
                ("blocked", "blocked"),
                ("failed", "failed"),
                ("pending", "pending"),
            )
        ),
    )
    st.caption(P.sweep_times([c.run for c in view.cells if not c.reused]))  # its waits, Segmind's apart
    sweep_grid.draw(
        view,
        order,
        wb.data_dir,
        on_action=lambda what, idx: _cell_action(view.id, what, idx),
        fit=CELL_SIZES.get(state.get("compare_cells") or "", True),
        may=lambda what, run: wb.may(Op.CURATE, run.created_by) if what == "favourite" else wb.may(Op.SPEND),
        checks=wb.checks([c.run.id for c in view.cells]) if by != "none" else None,
        by=by,
        reviews={
            run_id: P.verdict_tally(reviews.tally(given))
            for run_id, given in wb.verdicts([c.run.id for c in view.cells]).items()
        },
        marks=hunt_view.marks(found),
    )
    if state.get("compare_to_compose"):
        st.rerun(scope="app")  # from the live grid's fragment: the page itself switches to Compose


def _running(view: sweeps.SweepView, found: HuntView | None) -> bool:
    """Whether the sweep is still filling in: a cell pending, or a hunt (`found`) not done (between
    batches every cell may have landed while the hunt goes on)."""
    return not view.finished or (found is not None and found.state != "done")


def live_grid(sweep_id: str, order: list[int]) -> None:
    """The grid of a sweep in flight: drawn again (alone) at once each time something of the sweep
    changes in the ledger, a cell landing."""
    follow(wb, "compare_grid", live.mark(wb, live.sweep(sweep_id)), first=True)
    view = wb.sweep(sweep_id)
    if view is None:
        return
    found = wb.hunt(sweep_id, session_key)
    if found is not None:
        hunt_view.panel(wb, found)
    grid(view, order, found)
    if not _running(view, found) and state.get("compare_was_running"):
        state["compare_was_running"] = False
        st.rerun()


def _rename(sweep_id: str) -> None:
    try:
        wb.rename_sweep(sweep_id, state.get(f"compare_rename_{sweep_id}", ""))
    except ParamsError as exc:
        state["compare_problem"] = "Not renamed: " + "; ".join(exc.problems)


def sweep_page(sweep_id: str) -> None:
    view = wb.sweep(sweep_id)
    if view is None:
        st.error("No such sweep in the ledger.")
        st.button("Plan a new sweep", key="compare_new", on_click=_open_sweep, args=(None,))
        return
    top = st.columns([4, 1])
    top[0].subheader(P.markdown_text(view.name) if view.name else "Sweep", anchor=False)
    top[0].text(view.summary(named=False).describe())
    spent, known = view.spend()
    if known:
        top[0].caption(f"Real spend: ${spent:.4g} for {known} image(s), from Segmind's record.")
    if view.created_by:
        top[0].caption(f"Started by {P.markdown_text(view.created_by)}")
    reviewed = P.sweep_review(wb.sweep_verdicts(view.id), len(view.cells))
    if reviewed:
        top[0].text(reviewed)  # reviewers' names are text, never Markdown
    top[1].button(
        "Plan a new sweep" if wb.may(Op.SPEND) else "All sweeps",
        key="compare_new",
        on_click=_open_sweep,
        args=(None,),
    )
    if top[1].button(
        "Present",
        key="compare_present",
        icon=":material/slideshow:",
        help="One cell at a time, full screen, for the room: arrows step, 1 / 2 / 3 give a verdict",
    ):
        placed = st.query_params.get("layout")
        st.switch_page(
            "pages/present.py", query_params={"sweep": view.id, **({"layout": placed} if placed else {})}
        )
    if wb.may(Op.SWEEP, view.created_by):
        with top[1].popover("Rename", icon=":material/edit:"):
            st.text_input(
                "Name",
                view.name,
                key=f"compare_rename_{view.id}",
                help=f"At most {D.SWEEP_NAME_MAX_CHARS} characters",
            )
            st.button("Save the name", key="compare_rename_save", on_click=_rename, args=(view.id,))
    problem = state.pop("compare_problem", None)
    if problem:
        st.error(problem, icon=":material/error:")  # a message of ours; names in it are quoted text
    if refusal := state.pop("compare_refused", None):
        spend.refused(refusal)
    failed = sweeps.failed_cells(view) if wb.may(Op.SPEND) else []
    if failed:
        spend.line(wb, session_key)
    if failed and st.button(
        f"Retry the {len(failed)} failed cell(s)", key="compare_retry", icon=":material/refresh:"
    ):
        try:
            wb.retry_failed(view.id, session_key=session_key)
        except (CapReached, ValueError) as exc:
            spend.refused(exc)
        else:
            st.rerun()
    order = layout(view)
    st.segmented_control(
        "Colour by / rank by check",
        list(D.CHECK_RANKS),
        key="compare_rank",
        default="none",
        bind="query-params",
        help="Tint each cell by its check's score (red 0 to green 1), with the score on it",
    )
    found = wb.hunt(view.id, session_key)
    if _running(view, found):
        state["compare_was_running"] = True
        live_fragment(live_grid)(sweep_id, order)
        return
    if found is not None:
        hunt_view.panel(wb, found)
    grid(view, order, found)
    seeds_by_checks(view)

    tables = sweeps.safety_matrix(view)
    if tables:
        st.subheader("Safety matrix")
        for table in tables:
            st.text(
                f"{table.prompt_label}: lowest tolerance that passed: "
                f"{table.lowest_passing if table.lowest_passing is not None else 'none'}"
            )
            data = {
                seed: [
                    P.SAFETY_WORDS.get(word, word)
                    for word in (table.cells.get((t, seed), "—") for t in table.tolerances)
                ]
                for seed in table.seeds
            }
            frame = pd.DataFrame(data, index=pd.Index(table.tolerances, name="tolerance"))
            st.dataframe(frame, hide_index=False, width="content")

    done = [c for c in view.cells if c.outcome == "done"]
    if len(done) >= 2:
        ab(view, done)
        blind_vote(view)
    export(view, [view.axes[i].name for i in order])


def seeds_by_checks(view: sweeps.SweepView) -> None:
    """Each prompt variant's best seed by its checks, its diversity and its seeds that look alike."""
    found = wb.checks([c.run.id for c in view.cells if c.outcome == "done"])
    if not found:
        return
    st.subheader("Seeds by their checks", anchor=False)
    groups = sweep_grid.variants(view)
    for n, (label, cells) in enumerate(groups, start=1):
        ids = [c.run.id for c in cells]
        seed_of = {c.run.id: c.run.seed for c in cells}
        name = f" for variant {n}" if len(groups) > 1 else ""
        with st.container(key=f"compare_variant_{n}"):
            if label and len(groups) > 1:
                st.caption(f"Variant {n}: {P.markdown_text(label)}")
            top = rank.best(ids, found)
            if top is not None:
                st.text(f"Best seed{name}: {seed_of[top]} ({sweep_grid.score_words(found.get(top, {}))})")
            spread = rank.diversity(ids, found)
            if spread is not None:
                st.text(f"Diversity{name}: {spread.figure:.2f} (0: all alike, 1: all different)")
                for group in spread.groups:
                    seeds = sorted(seed_of[r] for r in group)
                    st.text(f"seeds {', '.join(map(str, seeds[:-1]))} and {seeds[-1]} look alike")


def ab(view: sweeps.SweepView, done: list[sweeps.Cell]) -> None:
    st.subheader("A/B")
    labels = {c.idx: view.label(c) for c in done}
    c1, c2 = st.columns(2)
    a_idx = c1.selectbox(
        "A", list(labels), format_func=lambda i: labels[i], key="compare_a", index=0, persist_state="session"
    )
    b_idx = c2.selectbox(
        "B", list(labels), format_func=lambda i: labels[i], key="compare_b", index=1, persist_state="session"
    )
    a, b = view.cells[a_idx], view.cells[b_idx]
    pa, pb = wb.image_path(a.run), wb.image_path(b.run)
    if pa is None or pb is None or not pa.is_file() or not pb.is_file():  # a run purged since
        st.text("One of these runs no longer has its image.")
        return
    ab_view.draw("compare_ab", a.run.image_path or "", labels[a_idx], b.run.image_path or "", labels[b_idx])
    ab_view.check_lines(wb.checks([a.run.id, b.run.id]), a.run.id, b.run.id)
    only = st.toggle("Differences only", key="compare_diff_only", persist_state="session")
    for title, table in P.compare_tables([a.run, b.run], ["A", "B"], differences_only=only).items():
        st.caption(title)
        st.table(table, hide_index=True)
    if a.run.prompt != b.run.prompt:
        st.caption("Prompt: the fields that changed, then word by word (struck: only in A; green: only in B)")
        for line in P.field_changes(a.run.prompt, b.run.prompt):
            st.text(line)  # the prompts' words: text, never Markdown
        st.html(P.word_diff_html(a.run.prompt, b.run.prompt))


def blind_vote(view: sweeps.SweepView) -> None:
    # keyed, its state kept by the server: the check lines landing above it (the background checker)
    # redraw the page, and an unkeyed expander opened a moment before would close again
    with st.expander("Blind vote (for demos)", key="compare_blind_vote", on_change="rerun"):
        if wb.actor.signed_in:  # one vote per signed-in person per pair, under their own address
            voter = wb.voter()
            st.caption(f"Voting as {P.markdown_text(wb.actor.id)}")
        else:  # a demo at one computer: each person types a name
            typed = st.text_input("Your name", key="compare_voter", persist_state="session").strip()
            voter = wb.voter(typed) if typed else ""
        if voter:
            pairs = sweeps.vote_pairs(view, voter, wb.data_dir)
            voted = wb.voted_pairs(view.id, voter)
            skipped = state.setdefault("compare_skipped", {}).setdefault((view.id, voter), set())
            todo = [(a, b) for a, b in pairs if frozenset((a.run.id, b.run.id)) not in voted | skipped]
            st.text(sweeps.vote_progress(pairs, voted, skipped).line())
            if todo:
                left, right = todo[0]
                c1, c2 = st.columns(2)
                pictures.image(left.run.image_path, wb.data_dir, where=c1)
                pictures.image(right.run.image_path, wb.data_dir, where=c2)
                if c1.button("Left is better", key="compare_vote_left", width="stretch"):
                    wb.vote(view.id, left.run.id, right.run.id, voter=voter)
                    st.rerun()
                if c2.button("Right is better", key="compare_vote_right", width="stretch"):
                    wb.vote(view.id, right.run.id, left.run.id, voter=voter)
                    st.rerun()
                if st.button("Skip this pair", key="compare_vote_skip"):
                    skipped.add(frozenset((left.run.id, right.run.id)))
                    st.rerun()
        if st.toggle("Reveal settings and results", key="compare_reveal", persist_state="session"):
            for title, rows in wb.tally(view).items():
                if title != "votes":
                    st.text(title)
                    st.dataframe(rows, hide_index=True, width="content")


def export(view: sweeps.SweepView, placed: list[str]) -> None:
    st.subheader("Export")
    c1, c2, c3 = st.columns(3)
    c1.download_button(
        "Contact sheet (PNG)",
        lambda: sweeps.contact_sheet(view, wb.data_dir),
        file_name=f"sweep-{view.id}.png",
        mime="image/png",
        key="compare_sheet",
        icon=":material/grid_on:",
    )
    c2.download_button(
        "Images and manifest (ZIP)",
        lambda: sweeps.export_zip(view, wb.data_dir),
        file_name=f"sweep-{view.id}.zip",
        mime="application/zip",
        key="compare_zip",
        icon=":material/folder_zip:",
    )
    c3.download_button(  # the grid placed as on this page
        "Download report",
        lambda: wb.report(view.id, layout=placed)[1],
        file_name=report_file_name(sweep_id=view.id),
        mime="text/html",
        key="compare_report",
        icon=":material/description:",
        help="One HTML file that opens anywhere, offline: the grid, the safety matrix, settings, costs, "
        "the votes (folded until revealed), checks, verdicts and comments",
    )


current = st.query_params.get("sweep")
if current:
    sweep_page(current)
else:
    plan_page()
