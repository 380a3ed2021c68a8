"""Compose: write a prompt, set parameters, Generate; watch it run; act on the result."""

from __future__ import annotations

import hashlib
from typing import Any

import streamlit as st

from flux_core import defaults as D
from flux_core import presentation as P
from flux_core.ledger import store
from flux_core.errors import CallFailed, for_app
from flux_core.media.images import ImageProblem, check_reference
from flux_core.params import FluxParams, ParamsError, reference_url_problems
from flux_ui.templates import TEMPLATES
from flux_core.service import Workbench

if "workbench" not in st.session_state:  # reached without the router (see app.py)
    st.switch_page("app.py", query_params={**st.query_params.to_dict(), "goto": "compose"})

wb: Workbench = st.session_state["workbench"]
session_key = st.session_state.get("sidebar_api_key") or None
state = st.session_state

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


def _aspect_name(width: int, height: int) -> str:
    """The preset that is exactly width x height, else Custom."""
    return next((name for name, size in D.ASPECT_PRESETS.items() if size == (width, height)), "Custom")


def _apply_template() -> None:
    name = state.get("compose_template")
    if name in TEMPLATES:
        state["prompt"] = TEMPLATES[name]


def _apply_aspect() -> None:
    size = D.ASPECT_PRESETS.get(state["compose_aspect"])
    if size:
        state["compose_width"], state["compose_height"] = size


def _open(run_id: str, load_form: bool) -> None:
    st.query_params["run"] = run_id
    if load_form:
        row = wb.run(run_id)
        if row:
            state["compose_pending"] = P.form_values(row)


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


st.title("Compose")
left, right = st.columns([3, 2], gap="large")

with right:
    st.subheader("Parameters")
    aspect_slot = st.container()  # drawn once width and height are known (from the URL, too)
    c1, c2 = st.columns(2)
    c1.number_input(
        "Width",
        min_value=D.SIZE_MIN,
        max_value=D.SIZE_MAX,
        value=D.WIDTH,
        step=D.SIZE_STEP,
        key="compose_width",
        bind="query-params",
        persist_state="session",
    )
    c2.number_input(
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
    c1, c2 = st.columns([1, 1])
    c1.checkbox(
        "Random seed",
        value=True,
        key="compose_seed_random",
        help="A seed is drawn, sent and recorded.",
        bind="query-params",
        persist_state="session",
    )
    c2.number_input(
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
    st.slider(
        "Safety tolerance",
        D.SAFETY_MIN,
        D.SAFETY_MAX,
        value=D.SAFETY_TOLERANCE,
        key="compose_tolerance",
        help="0 is the strictest filter, 6 the most permissive.",
        bind="query-params",
        persist_state="session",
    )
    st.radio(
        "Output format",
        D.OUTPUT_FORMATS,
        index=D.OUTPUT_FORMATS.index(D.OUTPUT_FORMAT),
        key="compose_format",
        horizontal=True,
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
        ref_files: list[tuple[bytes, str, str]] = []  # (bytes, MIME type, file name)
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
    pricing = wb.pricing(session_key)
    cost = pricing.words(
        pricing.for_size(_number("compose_width"), _number("compose_height"), len(ref_urls) + len(ref_files))
    )
    if cost:
        st.caption(cost)

with left:
    st.selectbox(
        "Start from a template",
        ["—", *TEMPLATES],
        key="compose_template",
        on_change=_apply_template,
        persist_state="session",
    )
    st.text_area(
        "Prompt",
        key="prompt",
        on_change="ignore",  # a typed draft is kept (URL, session) without rerunning on every blur
        bind="query-params",
        persist_state="session",
        height=220,
        placeholder="Describe the image. Ctrl+Enter generates.",
    )
    submitted = st.button("Generate", type="primary", key="compose_generate", shortcut="Ctrl+Enter")

    state["compose_values"] = {  # what Compare offers as "from Compose", references included
        "prompt": state.get("prompt") or "",
        "width": _number("compose_width"),
        "height": _number("compose_height"),
        "seed": _number("compose_seed"),
        "safety_tolerance": _number("compose_tolerance"),
        "output_format": state.get("compose_format") or D.OUTPUT_FORMAT,
        "image_urls": ref_urls,
        "reference_files": [(data, mime) for data, mime, _ in ref_files],
        "reference_problems": ref_problems,
    }

    if submitted:
        problems: list[str] = list(ref_problems)  # a refused reference stops the run: never sent without it
        references = [(data, mime) for data, mime, _ in ref_files]
        seed = None if state.get("compose_seed_random", True) else _number("compose_seed")
        fields = dict(
            prompt=state.get("prompt") or "",
            width=_number("compose_width"),
            height=_number("compose_height"),
            seed=seed,
            safety_tolerance=_number("compose_tolerance"),
            output_format=state.get("compose_format") or D.OUTPUT_FORMAT,
        )
        try:
            placeholders = [f"https://upload.invalid/{i}" for i in range(len(references))]
            FluxParams.parse(fields, image_urls=ref_urls + placeholders)
            params = FluxParams.parse(fields, image_urls=ref_urls)
        except ParamsError as exc:
            problems.extend(p for p in exc.problems if p not in problems)
        if problems:
            st.error("Nothing was sent. Fix these first:")
            for problem in problems:
                st.text(f"• {problem}")
        else:
            guard = state.setdefault("compose_guard", store.new_id())
            try:
                run_id = wb.submit(
                    params,
                    seed_random=seed is None,
                    session_key=session_key,
                    references=references,
                    guard=guard,
                )
            except CallFailed as exc:  # the reference images' upload failed: nothing was submitted
                st.error("The reference images could not be uploaded; nothing was submitted.")
                st.text(for_app(exc.user_text()))
            else:
                st.query_params["run"] = run_id

    current = st.query_params.get("run")
    row = wb.run(current) if current else None

    def _draw_status(run_id: str) -> None:
        live = wb.run(run_id)
        if live is None or not P.is_active(live):
            st.rerun()
        line = P.headline(live)
        box = st.warning if line.level == "warning" else st.info
        box(f"{line.title} · {live.status}", icon=":material/hourglass_top:")
        st.text(for_app(line.detail))

    if row is not None and P.is_active(row):
        st.fragment(run_every=D.LIVE_REFRESH_S)(_draw_status)(row.id)
    elif row is not None:
        line = P.headline(row)
        shows = {"success": st.success, "warning": st.warning, "error": st.error, "info": st.info}
        icons = {
            "success": ":material/check_circle:",
            "warning": ":material/block:",
            "error": ":material/error:",
            "info": ":material/info:",
        }
        shows[line.level](
            f"{line.title} {line.detail}" if line.level == "success" else line.title, icon=icons[line.level]
        )
        if line.detail and line.level != "success":
            st.text(for_app(line.detail))

if row is not None and not P.is_active(row):
    picture, about = st.columns([3, 2], gap="large")
    image = wb.image_path(row)
    with picture:
        if row.status == store.COMPLETED and image is not None and image.exists():
            st.image(str(image), width="stretch")
        elif row.status == store.BLOCKED:
            st.caption("A blocked run has no image. A higher safety tolerance is more permissive.")
    with about:
        if row.status == store.COMPLETED and image is not None and image.exists():
            ext = image.suffix.lstrip(".")
            st.download_button(
                "Download image",
                image.read_bytes(),
                file_name=f"flux-lab-{row.id}.{ext}",
                mime=f"image/{'jpeg' if ext == 'jpg' else ext}",
                key="compose_download",
                icon=":material/download:",
            )
        if row.status == store.SUBMIT_UNKNOWN:  # may be billed: sent again only when the user says so
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
                st.query_params["run"] = wb.rerun(
                    row.id,
                    confirmed_unknown=checked,
                    session_key=session_key,
                    guard=state.setdefault("compose_guard", store.new_id()),
                )
                st.rerun()
        actions = st.container(horizontal=True)
        if actions.button(
            "Vary seed",
            key="compose_vary",
            help="The same recipe with a new random seed",
            icon=":material/casino:",
        ):
            st.query_params["run"] = wb.rerun(
                row.id,
                vary_seed=True,
                session_key=session_key,
                guard=state.setdefault("compose_guard", store.new_id()),
            )
            st.rerun()
        if actions.button(
            "Edit and re-run",
            key="compose_edit",
            help="Load this recipe into the form",
            icon=":material/edit:",
        ):
            state["compose_pending"] = P.form_values(row)
            st.rerun()
        favourite = bool(row.favourite)
        if actions.button(
            "Favourite",
            key="compose_favourite",
            type="primary" if favourite else "secondary",
            icon=":material/star:" if favourite else ":material/star_border:",
            help="Marked as a favourite" if favourite else "Mark as a favourite",
        ):
            wb.curate(row.id, favourite=not favourite)
            st.rerun()
        st.caption("Recipe")
        st.json(P.recipe(row), expanded=1)
        note = st.text_area("Note", value=row.notes, key=f"compose_note_{row.id}", height=68)
        if st.button("Save note", key="compose_save_note"):
            wb.curate(row.id, notes=note)
            st.toast("Note saved")

st.divider()
st.subheader("Recent runs")


def _draw_recent(recent: list | None = None) -> None:
    recent = wb.recent() if recent is None else recent  # a refresh of the fragment reads anew
    if not recent:
        st.caption("Nothing yet: your runs appear here.")
    columns = st.columns(6)
    for i, run in enumerate(recent):
        with columns[i % 6]:
            thumb = wb.image_path(run, thumb=True)
            if thumb is not None and thumb.exists():
                st.image(str(thumb), width="stretch")
            else:
                st.text(P.STATUS_WORDS[run.status])
            st.text(f"seed {run.seed} · tol {run.safety_tolerance}")
            st.button(
                "Open",
                key=f"compose_open_{run.id}",
                on_click=_open,
                args=(run.id, True),
                help="Show this run and load its recipe into the form",
            )


# while any recent run is in flight, the strip refreshes itself from the ledger
recent_runs = wb.recent()
in_flight = any(P.is_active(r) for r in recent_runs)
if in_flight:
    st.fragment(run_every=D.RECENT_REFRESH_S)(_draw_recent)()
else:
    _draw_recent(recent_runs)
