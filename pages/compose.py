"""Compose: write a prompt, set parameters, Generate; watch it run beside the form; act on the result.

The form is the left column (prompt, Generate, the parameters in a tight layout, references in an
expander), the result the right one (live status, the strip of a batch, the image, its actions, the
recipe, the request as code, this session's feed), so each iteration starts without a scroll. On a
phone the columns stack with the result right after Generate, the parameters after it.
"""

from __future__ import annotations

import hashlib
import html
import re
from typing import Any

import streamlit as st

from flux_core import defaults as D
from flux_core import presentation as P
from flux_core import snippets
from flux_core.checks import report
from flux_core.ledger import checks as check_table
from flux_core.ledger import store
from flux_core.errors import CallFailed, CapReached, FluxError, UnknownRun, for_app
from flux_core.media.images import ImageProblem, check_reference
from flux_core.params import FluxParams, ParamsError, reference_url_problems
from flux_ui import gallery, panels, pictures, prompt_form, spend
from flux_ui import live
from flux_ui.live import follow, fragment as live_fragment
from flux_ui.templates import TEMPLATES
from flux_core.service import Workbench
from flux_core.team import Op

if "workbench" not in st.session_state:  # reached without the router (see app.py)
    st.switch_page("app.py", query_params={**st.query_params.to_dict(), "goto": "compose"})

wb: Workbench = st.session_state["workbench"]
session_key = st.session_state.get("sidebar_api_key") or None
state = st.session_state
may_spend = wb.may(Op.SPEND)  # a viewer looks at runs here; Generate and its kin are not drawn

# --- form state ------------------------------------------------------------------------------
# Every field of the draft is bound to the URL, so a reload brings all of it back, and kept for the
# session, so Compose -> History -> Compose finds it as it was left.
DRAFT: dict[str, Any] = {
    "compose_width": D.WIDTH,
    "compose_height": D.HEIGHT,
    "compose_seed": 0,
    "compose_seed_random": True,
    "compose_tolerance": D.SAFETY_TOLERANCE,
    "compose_format": D.OUTPUT_FORMAT,
    "compose_ref_urls": "",
    "compose_count": 1,
    "compose_model": D.MODEL_SLUG,
    "compose_steps": D.FLEX_STEPS,
    "compose_guidance": D.FLEX_GUIDANCE,
    "compose_upsampling": D.FLEX_PROMPT_UPSAMPLING,
}
MODEL_KEYS = {  # the form's model and [flex]'s own fields, by the names a request gives them
    "model": "compose_model",
    "steps": "compose_steps",
    "guidance": "compose_guidance",
    "prompt_upsampling": "compose_upsampling",
}
pending = state.pop("compose_pending", None)
if pending:
    state["prompt"] = pending["prompt"]
    state["compose_width"], state["compose_height"] = pending["width"], pending["height"]
    state["compose_seed"], state["compose_seed_random"] = pending["seed"], pending["seed_random"]
    state["compose_tolerance"], state["compose_format"] = (
        pending["safety_tolerance"],
        pending["output_format"],
    )
    state["compose_ref_urls"] = "\n".join(pending["image_urls"])
    for name, key in MODEL_KEYS.items():  # a recipe from before the model axis is [max]'s
        state[key] = pending.get(name, DRAFT[key])
    # the run the form was recalled from: the next Generate is its "recall" (unchanged) or "edit"
    state["compose_parent"] = pending.get("from_run")

# On a phone (columns stack below 640 px) the result comes right after Generate: the form's two
# parts and the result become one column, in that order.
_ROW = '.st-key-compose_layout > [data-testid="stLayoutWrapper"] > [data-testid="stHorizontalBlock"]'
_PART = '.st-key-compose_layout [data-testid="stLayoutWrapper"]:has(> .st-key-compose_{})'
st.html(
    f"""<style>
@media (max-width: 640px) {{
  {_ROW} {{ flex-direction: column; }}
  {_ROW} > [data-testid="stColumn"],
  {_ROW} > [data-testid="stColumn"] > [data-testid="stVerticalBlock"] {{ display: contents; }}
  {_PART.format("top")} {{ order: 1; width: 100%; }}
  {_PART.format("result")} {{ order: 2; width: 100%; }}
  {_PART.format("params")} {{ order: 3; width: 100%; }}
}}
</style>"""
)


def _aspect_name(width: int, height: int) -> str:
    """The preset that is exactly width x height, else Custom."""
    return next((name for name, size in D.ASPECT_PRESETS.items() if size == (width, height)), "Custom")


def _apply_template() -> None:
    name = state.get("compose_template")
    if name in TEMPLATES:
        state["prompt"] = TEMPLATES[name]
        state.pop("compose_parent", None)  # a fresh start: the next run comes from no run


def _apply_preset() -> None:
    preset = wb.preset(state.get("compose_preset") or "")
    if preset is None:
        return
    state["compose_width"], state["compose_height"] = preset.width, preset.height
    state["compose_seed_random"] = preset.seed is None
    if preset.seed is not None:
        state["compose_seed"] = preset.seed
    state["compose_tolerance"], state["compose_format"] = preset.safety_tolerance, preset.output_format
    if preset.prompt is not None:
        state["prompt"] = preset.prompt


def _save_preset() -> None:
    """Save the form's parameters (and the prompt, if asked) under the name typed; the select then
    shows it. A bad value is named and nothing is saved."""
    try:
        saved = wb.save_preset(
            state.get("compose_preset_name") or "",
            width=_number("compose_width"),
            height=_number("compose_height"),
            seed=None if state.get("compose_seed_random", True) else _number("compose_seed"),
            safety_tolerance=_number("compose_tolerance"),
            output_format=state.get("compose_format") or D.OUTPUT_FORMAT,
            prompt=(state.get("prompt") or "") if state.get("compose_preset_prompt") else None,
        )
    except ParamsError as exc:
        state["compose_preset_said"] = ("refused", exc.problems)
    else:
        state["compose_preset"] = saved.name
        state["compose_preset_said"] = (
            "saved",
            f"Saved preset {P.markdown_text(saved.name)}: {saved.words()}",
        )


def _delete_preset(name: str) -> None:
    wb.delete_preset(name)
    state["compose_preset"] = "—"


def _apply_aspect() -> None:
    size = D.ASPECT_PRESETS.get(state["compose_aspect"])
    if size:
        state["compose_width"], state["compose_height"] = size


def _remember(run_ids: list[str]) -> None:
    """Runs made in this browser session join its feed, newest first (kept across pages)."""
    feed = [r for r in state.get("compose_feed", []) if r not in run_ids]
    state["compose_feed"] = [*reversed(run_ids), *feed][: D.COMPOSE_FEED_MAX]


def _show(run_ids: list[str], current: str | None = None) -> None:
    """Put runs on screen: the main result, and the batch it belongs to (in the URL, too)."""
    st.query_params["run"] = current or run_ids[0]
    if len(run_ids) > 1:
        st.query_params["batch"] = ",".join(run_ids)
    elif "batch" in st.query_params:
        del st.query_params["batch"]


def _pick(run_id: str) -> None:
    """A click on a strip or feed thumbnail: that run becomes the main result."""
    batch = _batch()
    _show(batch if run_id in batch else [run_id], run_id)


def _open(run_id: str, load_form: bool) -> None:
    _show([run_id])
    if load_form:
        row = wb.run(run_id)
        if row:
            state["compose_pending"] = P.form_values(row)


def _acted(then: Any, *args: Any, **kwargs: Any) -> None:
    """A click in a part of the page that follows the ledger (a fragment): the whole page shows it."""
    state["compose_acted"] = True
    then(*args, **kwargs)


def _whole_page_if_acted() -> None:
    """Last in a fragment: a click in it (see _acted) reruns the whole page, which shows what it did."""
    if state.pop("compose_acted", False) and live.fragment_only():
        st.rerun(scope="app")


def _draw_spend(estimate: str) -> None:
    """What the next request costs and what is spent (the caps): drawn again when the ledger changes,
    so a run that lands (its real cost) shows in the standing without a rerun of the page (with a
    cap set: without one the line is the estimate alone)."""
    since = live.mark(wb)  # before the standing is read: a change after it is told, never missed
    spent = spend.standing(wb, session_key)
    if spent is not None:  # a cap in force (or a bad cap setting): follow the ledger
        follow(wb, "compose_spend", since)
    spend.line(wb, session_key, estimate, spent)


def _guard() -> str:
    return state.setdefault("compose_guard", store.new_id())


def _again(run_id: str, **how: Any) -> None:
    """Run a shown run again (vary the seed, the fix its error names); the new run is shown."""
    try:
        new = wb.rerun(run_id, session_key=session_key, guard=_guard(), **how)
    except (CapReached, ValueError) as exc:  # refused at a spend cap: shown above the result
        state["compose_refused"] = exc
        return
    overrides = how.get("overrides") or {}
    if "safety_tolerance" in overrides:  # the form follows, so the next Generate keeps the fix
        state["compose_tolerance"] = overrides["safety_tolerance"]
    _remember([new])
    _show([new])


def _batch() -> list[str]:
    return [r for r in (st.query_params.get("batch") or "").split(",") if r]


def _checked_upload(data: bytes, name: str) -> tuple[str | None, str | None]:
    """(MIME type, None) for a usable reference file, (None, the problem) otherwise; checked once per
    file content in this session, before anything shows or sends it."""
    cache = state.setdefault("compose_ref_checks", {})
    digest = hashlib.sha256(data).hexdigest()
    if digest not in cache:
        try:
            cache[digest] = (check_reference(data, name), None)
        except ImageProblem as exc:
            cache[digest] = (None, str(exc))
    return cache[digest]


def _number(key: str) -> int:
    value: Any = state.get(key)
    return int(value) if value is not None else int(DRAFT[key])


def _model_values() -> dict[str, Any]:
    """The form's model and [flex]'s own fields (shown, and sent, for [flex] only)."""
    return {name: state.get(key, DRAFT[key]) for name, key in MODEL_KEYS.items()}


def _thumb_path(run: Any) -> Any:
    """Where a run's thumbnail is (a card shows it from the browser-cached thumbnail route)."""
    return wb.image_path(run, thumb=True)


_HEX = re.compile(r"#[0-9a-fA-F]{6}")


def _swatches(palette: dict[str, Any]) -> None:
    """The palette check as colour: the prompt's colours (named) above the colours found (with their
    share). Names are escaped and only #rrggbb reaches a style, so nothing in it is markup."""

    def block(colour: str, label: str) -> str:
        fill = colour if _HEX.fullmatch(colour or "") else "transparent"
        return (
            '<span style="display:inline-flex;flex-direction:column;align-items:center;margin-right:6px">'
            f'<span style="width:28px;height:28px;border:1px solid #8884;border-radius:4px;background:{fill}">'
            f'</span><span style="font-size:.7rem">{html.escape(label)}</span></span>'
        )

    names = list(palette.get("expected") or [])
    hexes = list(palette.get("expected_hex") or [])
    shares = list(palette.get("found_shares") or [])
    expected = "".join(block(h, n) for n, h in zip(names, hexes))
    found = "".join(
        block(h, f"{shares[i]:.0%}" if i < len(shares) and isinstance(shares[i], (int, float)) else h)
        for i, h in enumerate(palette.get("found") or [])
    )
    if expected or found:
        st.html(
            '<div data-testid="fl-swatches" style="font-size:.8rem">'
            f"<div>Asked for: {expected}</div><div>Found: {found}</div></div>"
        )


def _has_checks(found: dict[str, Any]) -> bool:
    """Whether the image's own checks are in (a probe's verdict alone is not them)."""
    return any(name in found for name in (check_table.TEXT, check_table.PALETTE, check_table.PRINT))


def _probe_waiting(found: dict[str, Any]) -> bool:
    repro = found.get(check_table.REPRO) or {}
    return bool(repro) and not repro.get("verdict") and not repro.get("error")


def _draw_checks(found: dict[str, Any]) -> None:
    """A shown image's check lines, or "Checking the image…" until they are in (the result part
    follows the ledger meanwhile and draws them the moment they land)."""
    lines = report.lines(found) if _has_checks(found) else None
    if lines is None:
        st.caption("Checking the image…")
        return
    for line in lines:
        st.text(line)  # quotes the prompt's words: text, never Markdown
    if check_table.PALETTE in found:
        _swatches(found[check_table.PALETTE])


def _check_now(run_id: str) -> None:
    try:
        wb.check([run_id])
    except FluxError as exc:
        state["compose_check_said"] = exc.user_text()


def _checks_off(run_id: str) -> None:
    """No background checker on this server (FLUX_LAB_CHECKS=0): say so, and check on request."""
    st.caption("The automatic image checks are off on this server (FLUX_LAB_CHECKS=0).")
    st.button(
        "Check this image",
        key="compose_check_now",
        icon=":material/fact_check:",
        on_click=_check_now,
        args=(run_id,),
        help="Reads the image against its prompt now: the text it asks for and its colours (a few seconds).",
    )
    said = state.pop("compose_check_said", None)
    if said:
        st.text(for_app(said))


def _probe(run_id: str) -> None:
    """Send the run's exact request again (the determinism probe); its verdict lands on its checks."""
    try:
        probe_id = wb.probe(run_id, confirmed=True, session_key=session_key, guard=_guard())
    except (CapReached, ValueError) as exc:
        state["compose_refused"] = exc
        return
    except FluxError as exc:
        state["compose_probe_said"] = exc.user_text()
        return
    state["compose_probe_said"] = f"Sent the same request again as run {probe_id}; the verdict shows here."
    state.pop(f"compose_probe_ok_{run_id}", None)


def _probe_action(row: Any) -> None:
    """ "Check reproducibility": what it costs, and a confirmation before anything is sent."""
    # keyed, so the check lines landing above it do not close it again (see Compare's blind vote)
    with st.expander(
        "Check reproducibility", icon=":material/difference:", key="compose_probe_box", on_change="rerun"
    ):
        st.caption("Compares the two images: same image, small drift or different.")
        spend.line(wb, session_key, wb.probe_estimate(row.id, session_key))
        sure = st.checkbox("Yes, pay for one more image", key=f"compose_probe_ok_{row.id}")
        st.button(
            "Check reproducibility",
            key="compose_probe",
            icon=":material/difference:",
            disabled=not sure,
            on_click=_acted,
            args=(_probe, row.id),
        )
        said = state.pop("compose_probe_said", None)
        if said:
            st.text(for_app(said))


st.title("Compose")
layout = st.container(key="compose_layout")
form, result = layout.columns([5, 6], gap="medium")

with form:
    top = st.container(key="compose_top")
    params_box = st.container(key="compose_params")

# the form: a viewer, who may not generate, gets a line that says so in its place (the result, the
# recipe and the runs stay: looking is everyone's)
submitted = False
ref_urls: list[str] = []
ref_files: list[tuple[bytes, str, str]] = []  # (bytes, MIME type, file name)
ref_problems: list[str] = []
if not may_spend:
    form.info(
        f"You are signed in as a {wb.actor.role.label}: you can look at runs, compare them and vote. "
        "Generating needs the member role; an admin can give it.",
        icon=":material/visibility:",
    )
else:
    with top:
        starts = st.columns(2)
        starts[0].selectbox(
            "Start from a template",
            ["—", *TEMPLATES],
            key="compose_template",
            on_change=_apply_template,
            persist_state="session",
        )
        preset_names = [p.name for p in wb.presets()]
        starts[1].selectbox(
            "Start from a preset",
            ["—", *preset_names],
            key="compose_preset",
            on_change=_apply_preset,
            help="Your saved parameter sets: size, seed, tolerance, format (and a prompt, if saved with one).",
        )
        st.text_area(
            "Prompt",
            key="prompt",
            on_change="ignore",  # a typed draft is kept (URL, session) without rerunning on every blur
            bind="query-params",
            persist_state="session",
            height=150,
            placeholder="Describe the image. Ctrl+Enter generates.",
        )
        prompt_form.draw("prompt")  # a structured prompt's fields, beside its text
        go = st.container(horizontal=True, vertical_alignment="bottom")
        submitted = go.button("Generate", type="primary", key="compose_generate", shortcut="Ctrl+Enter")
        go.number_input(
            "Images",
            min_value=1,
            max_value=D.COMPOSE_MAX_IMAGES,
            value=1,
            step=1,
            key="compose_count",
            width=120,
            help=f"Runs per Generate (1 to {D.COMPOSE_MAX_IMAGES}), each its own seed: with Random seed a seed "
            "is drawn for each image; with a fixed seed N they are N, N+1, N+2, …",
            bind="query-params",
            persist_state="session",
        )

    with params_box:
        st.selectbox(
            "Model",
            list(D.MODELS),
            format_func=P.model_name,
            key="compose_model",
            help="FLUX.2 [max], [pro] or [flex] on Segmind; [flex] also takes steps, guidance and prompt upsampling.",
            bind="query-params",
            persist_state="session",
        )
        if state.get("compose_model") == D.FLEX_SLUG:
            c1, c2, c3 = st.columns(3, vertical_alignment="bottom")
            c1.number_input(
                "Steps",
                min_value=D.FLEX_STEPS_MIN,
                max_value=D.FLEX_STEPS_MAX,
                value=D.FLEX_STEPS,
                step=1,
                key="compose_steps",
                bind="query-params",
                persist_state="session",
            )
            c2.number_input(
                "Guidance",
                min_value=D.FLEX_GUIDANCE_MIN,
                max_value=D.FLEX_GUIDANCE_MAX,
                value=D.FLEX_GUIDANCE,
                step=0.5,
                key="compose_guidance",
                bind="query-params",
                persist_state="session",
            )
            c3.checkbox(
                "Prompt upsampling",
                value=D.FLEX_PROMPT_UPSAMPLING,
                key="compose_upsampling",
                help="The server rewrites the prompt first; off, a seed makes the same image again.",
                bind="query-params",
                persist_state="session",
            )
        c1, c2, c3 = st.columns([2, 1, 1])
        aspect_slot = c1.empty()  # drawn once width and height are known (from the URL, too)
        c2.number_input(
            "Width",
            min_value=D.SIZE_MIN,
            max_value=D.SIZE_MAX,
            value=D.WIDTH,
            step=D.SIZE_STEP,
            key="compose_width",
            bind="query-params",
            persist_state="session",
        )
        c3.number_input(
            "Height",
            min_value=D.SIZE_MIN,
            max_value=D.SIZE_MAX,
            value=D.HEIGHT,
            step=D.SIZE_STEP,
            key="compose_height",
            bind="query-params",
            persist_state="session",
        )
        # the aspect ratio always says what width x height is (Custom when no preset matches)
        state["compose_aspect"] = _aspect_name(_number("compose_width"), _number("compose_height"))
        aspect_slot.selectbox(
            "Aspect ratio",
            [*D.ASPECT_PRESETS, "Custom"],
            key="compose_aspect",
            on_change=_apply_aspect,
        )
        c1, c2 = st.columns(2, vertical_alignment="bottom")
        c1.slider(
            "Safety tolerance",
            D.SAFETY_MIN,
            D.SAFETY_MAX,
            value=D.SAFETY_TOLERANCE,
            key="compose_tolerance",
            help="0 is the strictest filter, 6 the most permissive.",
            bind="query-params",
            persist_state="session",
        )
        c2.radio(
            "Output format",
            D.OUTPUT_FORMATS,
            index=D.OUTPUT_FORMATS.index(D.OUTPUT_FORMAT),
            key="compose_format",
            horizontal=True,
            bind="query-params",
            persist_state="session",
        )
        c1, c2 = st.columns(2, vertical_alignment="bottom")
        c1.number_input(
            "Seed",
            min_value=0,
            max_value=D.SEED_MAX,
            value=0,
            step=1,
            key="compose_seed",
            disabled=bool(state.get("compose_seed_random", True)),
            bind="query-params",
            persist_state="session",
        )
        c2.checkbox(
            "Random seed",
            value=True,
            key="compose_seed_random",
            help="A seed is drawn, sent and recorded.",
            bind="query-params",
            persist_state="session",
        )
        with st.expander("Reference images (up to 8)"):
            url_text = st.text_area(
                "Image URLs, one per line",
                key="compose_ref_urls",
                height=80,
                help="http:// or https:// addresses only; files on your computer go under Image files.",
                bind="query-params",
                persist_state="session",
            )
            uploads = (
                st.file_uploader(
                    "Image files",
                    type=["png", "jpg", "jpeg", "webp", "gif"],
                    accept_multiple_files=True,
                    key="compose_ref_files",
                )
                or []
            )
            # nothing is shown, opened or fetched before flux_core has said it is a reference
            typed = [u.strip() for u in (url_text or "").splitlines() if u.strip()]
            ref_problems = reference_url_problems(typed)
            ref_urls = [u for u in typed if not reference_url_problems([u])]
            ref_files = []  # (bytes, MIME type, file name)
            for upload in uploads:
                data = upload.getvalue()
                mime, problem = _checked_upload(data, upload.name)
                if problem or mime is None:
                    ref_problems.append(problem or f"{upload.name} is not a readable image")
                else:
                    ref_files.append((data, mime, upload.name))
            for problem in ref_problems:
                st.error(problem, icon=":material/error:")
            if ref_urls or ref_files:
                thumbs = st.columns(4)
                sources: list[str | bytes] = [*ref_urls, *(f[0] for f in ref_files)]
                for i, source in enumerate(sources[: D.MAX_IMAGE_URLS]):
                    thumbs[i % 4].image(source, width=80)
        preset_box = panels.opened("Save as preset", "compose_preset_open") if wb.may(Op.PRESET) else None
        if preset_box is not None:
            with preset_box:
                st.text_input("Preset name", key="compose_preset_name", max_chars=D.PRESET_NAME_MAX_CHARS)
                st.checkbox("Include the text typed above", key="compose_preset_prompt")
                st.button(
                    "Save preset",
                    key="compose_preset_save",
                    icon=":material/bookmark_add:",
                    on_click=_save_preset,
                )
                said = state.pop("compose_preset_said", None)
                if said and said[0] == "saved":
                    st.success(said[1])
                elif said:
                    st.error("The preset was not saved. Fix these first:")
                    for problem in said[1]:
                        st.text(f"• {problem}")
                chosen = state.get("compose_preset")
                if chosen in preset_names:
                    st.button(
                        f"Delete the preset {P.markdown_text(chosen)}",
                        key="compose_preset_delete",
                        icon=":material/delete:",
                        on_click=_delete_preset,
                        args=(chosen,),
                    )
        pricing = wb.pricing(session_key)
        model = str(state.get("compose_model") or D.MODEL_SLUG)
        cost = pricing.words(
            pricing.for_size(
                _number("compose_width"), _number("compose_height"), len(ref_urls) + len(ref_files), model
            ),
            models=[model],
        )
        live_fragment(_draw_spend)(cost)

state["compose_values"] = {  # what Compare offers as "from Compose", references included
    "prompt": state.get("prompt") or "",
    "width": _number("compose_width"),
    "height": _number("compose_height"),
    "seed": _number("compose_seed"),
    "safety_tolerance": _number("compose_tolerance"),
    "output_format": state.get("compose_format") or D.OUTPUT_FORMAT,
    "image_urls": ref_urls,
    **_model_values(),
    "reference_files": [(data, mime) for data, mime, _ in ref_files],
    "reference_problems": ref_problems,
}

with result:
    box = st.container(key="compose_result")

with box:
    if refusal := state.pop("compose_refused", None):
        spend.refused(refusal)
    if submitted:
        problems: list[str] = list(ref_problems)  # a refused reference stops the run: never sent without it
        references = [(data, mime) for data, mime, _ in ref_files]
        seed_random = bool(state.get("compose_seed_random", True))
        fields = dict(
            prompt=state.get("prompt") or "",
            width=_number("compose_width"),
            height=_number("compose_height"),
            seed=None if seed_random else _number("compose_seed"),
            safety_tolerance=_number("compose_tolerance"),
            output_format=state.get("compose_format") or D.OUTPUT_FORMAT,
            model=state.get("compose_model") or D.MODEL_SLUG,
            **P.flex_fields(_model_values()),
        )
        count = _number("compose_count")
        try:
            placeholders = [f"https://upload.invalid/{i}" for i in range(len(references))]
            FluxParams.parse(fields, image_urls=ref_urls + placeholders)
            params = FluxParams.parse(fields, image_urls=ref_urls)
            wb.batch_params(params, count, seed_random=seed_random)
        except ParamsError as exc:
            problems.extend(p for p in exc.problems if p not in problems)
        if problems:
            st.error("Nothing was sent. Fix these first:")
            for problem in problems:
                st.text(f"• {problem}")
        else:
            try:
                run_ids = wb.submit_many(
                    params,
                    count,
                    seed_random=seed_random,
                    session_key=session_key,
                    references=references,
                    guard=_guard(),
                    parent=state.get("compose_parent"),
                )
            except CallFailed as exc:  # the reference images' upload failed: nothing was submitted
                st.error("The reference images could not be uploaded; nothing was submitted.")
                st.text(for_app(exc.user_text()))
            except UnknownRun:  # the run the form was recalled from was purged meanwhile
                state.pop("compose_parent", None)
                st.error(
                    "The run this form was recalled from is no longer in the ledger; nothing was sent. "
                    "Generate again to make a run that comes from no run."
                )
            except (CapReached, ValueError) as exc:  # a spend cap (or its setting): nothing was sent
                spend.refused(exc)
            else:
                _remember(run_ids)
                _show(run_ids)
                state["compose_parent"] = run_ids[0]  # the form now holds this run's recipe

    current = st.query_params.get("run")

    def _draw_strip(run_ids: list[str], rows: dict[str, Any], strip_checks: dict[str, Any]) -> None:
        """The runs of one Generate side by side, each with its own status; a click shows one."""
        gallery.draw(
            [rows[r] for r in run_ids if r in rows],
            _thumb_path,
            key="compose_strip_cards",
            columns=len(run_ids),
            action="Show",
            shown=current,
            on_open=lambda run_id: _acted(_pick, run_id),
            checks_of=lambda run: report.lines(strip_checks.get(run.id, {})),
        )

    def _draw_result() -> None:
        """The shown run as it is now: its live status, then (drawn here, in this part alone, the
        moment the ledger says it landed) the image, its checks and its batch's strip.
        It follows the ledger while anything in it can still change: the run or its batch in
        flight, the image's checks not in yet, a reproducibility probe waiting for its verdict."""
        batch = _batch()
        batch = batch if current in batch and len(batch) > 1 else []
        shown_ids = batch or ([current] if current else [])
        since = live.mark(wb, live.runs(shown_ids))  # before anything is read: a change after it is told
        row = wb.run(current) if current else None
        batch_rows = {r.id: r for r in wb.runs(batch)} if batch else {}
        found_checks = wb.checks(shown_ids) if shown_ids else {}
        found = found_checks.get(row.id, {}) if row is not None else {}
        image = wb.image_path(row) if row is not None and not P.is_active(row) else None
        has_image = row is not None and row.status == store.COMPLETED and image is not None and image.exists()
        checks_due = has_image and wb.checking and (not _has_checks(found) or _probe_waiting(found))
        in_flight = (row is not None and P.is_active(row)) or any(P.is_active(r) for r in batch_rows.values())
        if in_flight or checks_due:
            follow(wb, "compose_result", since, first=True)

        if row is not None and P.is_active(row):
            line = P.headline(row)
            alert = st.warning if line.level == "warning" else st.info
            alert(f"{line.title} · {row.status}", icon=":material/hourglass_top:")
            st.text(for_app(line.detail))
        elif row is not None:
            line = P.headline(row)
            shows = {"success": st.success, "warning": st.warning, "error": st.error, "info": st.info}
            icons = {
                "success": ":material/check_circle:",
                "warning": ":material/block:",
                "error": ":material/error:",
                "info": ":material/info:",
            }
            shows[line.level](line.words() if line.level == "success" else line.title, icon=icons[line.level])
            if line.level != "success":
                if line.detail:
                    st.text(for_app(line.detail))
                st.caption(P.times(row))  # how long it took to end, and Segmind's figures if it gave any

        if row is not None and not P.is_active(row):
            if has_image and image is not None:
                longest = D.COMPOSE_IMAGE_MAX_PX
                shown_w = (
                    longest if row.width >= row.height else max(1, round(longest * row.width / row.height))
                )
                pictures.image(
                    row.image_path, wb.data_dir, width=shown_w, where=st.container(key="compose_main_image")
                )
                with st.container(key="compose_checks"):
                    if not _has_checks(found) and not wb.checking:
                        _checks_off(row.id)
                    else:
                        _draw_checks(found)
            elif row.status == store.BLOCKED:
                st.caption("A blocked run has no image. A higher safety tolerance is more permissive.")

        if batch:  # below the main image, so the image stays in view
            _draw_strip(batch, batch_rows, found_checks)
        _whole_page_if_acted()

    def _draw_details() -> None:
        """The shown run's actions and recipe once it has ended: when it lands, drawn (alone) a
        moment after the picture, which comes first."""
        if not current:
            return
        since = live.mark(wb, live.runs([current]))
        row = wb.run(current)
        if row is None:
            return
        if P.is_active(row):
            follow(wb, "compose_details", since)
            return
        image = wb.image_path(row)
        has_image = row.status == store.COMPLETED and image is not None and image.exists()
        _draw_actions(row, image if has_image else None)
        _whole_page_if_acted()

    def _draw_actions(row: Any, image: Any) -> None:
        """What a person can do with a run that has ended, and its recipe."""
        fix = P.fix(row) if may_spend else None
        if fix is not None and fix.action == "tolerance":
            pick = st.container(horizontal=True, vertical_alignment="bottom")
            chosen_tolerance = pick.selectbox(
                "Safety tolerance for the retry",
                fix.choices,
                key=f"compose_fix_tolerance_{row.id}",
                width=220,
            )
            pick.button(
                f"Retry at tolerance {chosen_tolerance}",
                key="compose_fix",
                type="primary",
                icon=":material/replay:",
                on_click=_acted,
                args=(_again, row.id),
                kwargs={"overrides": {"safety_tolerance": chosen_tolerance}},
            )
        elif fix is not None:
            st.button(
                fix.label,
                key="compose_fix",
                type="primary",
                icon=":material/replay:",
                help="The same request again, as a new run",
                on_click=_acted,
                args=(_again, row.id),
            )
        if row.status == store.SUBMIT_UNKNOWN and may_spend:  # may be billed: sent again only when asked
            checked = st.checkbox(
                "I checked Segmind's console: this request is not there",
                key=f"compose_checked_{row.id}",
            )
            if st.button(
                "Submit it again",
                key="compose_resubmit",
                type="primary",
                disabled=not checked,
                icon=":material/send:",
            ):
                _again(row.id, confirmed_unknown=checked)
                st.rerun()
        actions = st.container(horizontal=True)
        if image is not None:
            ext = image.suffix.lstrip(".")
            actions.download_button(
                "Download image",
                image.read_bytes(),
                file_name=f"flux-lab-{row.id}.{ext}",
                mime=f"image/{'jpeg' if ext == 'jpg' else ext}",
                key="compose_download",
                icon=":material/download:",
            )
        if may_spend:
            actions.button(
                "Vary seed",
                key="compose_vary",
                help="The same recipe with a new random seed",
                icon=":material/casino:",
                on_click=_acted,
                args=(_again, row.id),
                kwargs={"vary_seed": True},
            )
        if may_spend and actions.button(
            "Edit and re-run",
            key="compose_edit",
            help="Load this recipe into the form",
            icon=":material/edit:",
        ):
            state["compose_pending"] = P.form_values(row)
            st.rerun()
        favourite = bool(row.favourite)
        may_curate = wb.may(Op.CURATE, row.created_by)
        if may_curate and actions.button(
            "Favourite",
            key="compose_favourite",
            type="primary" if favourite else "secondary",
            icon=":material/star:" if favourite else ":material/star_border:",
            help="Marked as a favourite" if favourite else "Mark as a favourite",
        ):
            wb.curate(row.id, favourite=not favourite)
            st.rerun()
        if image is not None and may_spend:
            _probe_action(row)
        st.caption(f"Recipe · made by {P.markdown_text(row.created_by or 'nobody recorded')}")
        st.json(P.recipe(row), expanded=1)
        code_box = panels.opened("Copy as code", "compose_code_open", icon=":material/code:")
        if code_box is not None:
            with code_box:  # the three snippets are made only when asked for
                st.caption(f"The exact request this run sent. The key is read from ${snippets.KEY_VARIABLE}.")
                for tab, language in zip(
                    st.tabs([snippets.TITLES[x] for x in snippets.LANGUAGES]), snippets.LANGUAGES
                ):
                    tab.code(
                        wb.snippet(row.id, language), language="bash" if language == "curl" else "python"
                    )
        if may_curate:
            note = st.text_area("Note", value=row.notes, key=f"compose_note_{row.id}", height=68)
            if st.button("Save note", key="compose_save_note"):
                wb.curate(row.id, notes=note)
                st.toast("Note saved")
        elif row.notes:
            st.caption("Note")
            st.text(row.notes)

    live_fragment(_draw_result)()
    live_fragment(_draw_details)()

    def _draw_feed(run_ids: list[str]) -> None:
        """This session's runs, newest first: thumbnail, the start of the prompt, seed and status;
        following the ledger while one of them is in flight."""
        since = live.mark(wb, live.runs(run_ids))
        rows = {r.id: r for r in wb.runs(run_ids)}
        if any(P.is_active(r) for r in rows.values()):
            follow(wb, "compose_feed", since)
        gallery.draw(
            [rows[r] for r in run_ids if r in rows],
            _thumb_path,
            key="compose_feed_cards",
            columns=D.COMPOSE_FEED_COLUMNS,
            action="Show",
            shown=current,
            on_open=lambda run_id: _acted(_pick, run_id),
        )
        _whole_page_if_acted()

    feed = state.get("compose_feed", [])
    if feed:
        st.subheader("This session")
        live_fragment(_draw_feed)(feed)

st.divider()
st.subheader("Recent runs")
st.caption("Every run in the ledger, from any session or the CLI: Open shows one and loads its recipe.")


def _draw_recent() -> None:
    """The ledger's newest runs, from anywhere: drawn again (alone) whenever they change."""
    follow(wb, "compose_recent", live.mark(wb, live.recent(D.RECENT_RUNS)))
    recent = wb.recent()
    if not recent:
        st.caption("Nothing yet: your runs appear here.")
    gallery.draw(
        recent,
        _thumb_path,
        key="compose_recent_cards",
        columns=D.RECENT_COLUMNS,
        action_help="Show this run and load its recipe into the form",
        on_open=lambda run_id: _acted(_open, run_id, True),
    )
    _whole_page_if_acted()


live_fragment(_draw_recent)()
