"""Compose: write a prompt, set parameters, Generate; watch it run; act on the result."""

from __future__ import annotations

import streamlit as st

from flux_core import defaults as D
from flux_core import presentation as P
from flux_core import store
from flux_core.errors import CallFailed
from flux_core.images import ImageProblem, check_reference
from flux_core.params import FluxParams, ParamsError, random_seed
from flux_core.templates import TEMPLATES
from flux_core.workbench import Workbench

if "workbench" not in st.session_state:  # reached without the router (see app.py)
    st.switch_page("app.py", query_params={**st.query_params.to_dict(), "goto": "compose"})

wb: Workbench = st.session_state["workbench"]
session_key = st.session_state.get("sidebar_api_key") or None
state = st.session_state

# --- form state: defaults once, then whatever a loaded recipe asks for -----------------------
for key, value in {
    "compose_width": D.WIDTH,
    "compose_height": D.HEIGHT,
    "compose_seed": 0,
    "compose_seed_random": True,
    "compose_tolerance": D.SAFETY_TOLERANCE,
    "compose_format": D.OUTPUT_FORMAT,
    "compose_ref_urls": "",
    "compose_aspect": "1:1 square",
}.items():
    state.setdefault(key, value)
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
    state["compose_aspect"] = next(
        (name for name, size in D.ASPECT_PRESETS.items() if size == (pending["width"], pending["height"])),
        "Custom",
    )


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


st.title("Compose")
left, right = st.columns([3, 2], gap="large")

with right:
    st.subheader("Parameters")
    st.selectbox(
        "Aspect ratio",
        [*D.ASPECT_PRESETS, "Custom"],
        key="compose_aspect",
        on_change=_apply_aspect,
        persist_state="session",
    )
    c1, c2 = st.columns(2)
    c1.number_input(
        "Width",
        min_value=D.SIZE_MIN,
        max_value=D.SIZE_MAX,
        step=D.SIZE_STEP,
        key="compose_width",
        persist_state="session",
    )
    c2.number_input(
        "Height",
        min_value=D.SIZE_MIN,
        max_value=D.SIZE_MAX,
        step=D.SIZE_STEP,
        key="compose_height",
        persist_state="session",
    )
    c1, c2 = st.columns([1, 1])
    c1.checkbox(
        "Random seed",
        key="compose_seed_random",
        help="A seed is drawn, sent and recorded.",
        persist_state="session",
    )
    c2.number_input(
        "Seed",
        min_value=0,
        max_value=D.SEED_MAX,
        step=1,
        key="compose_seed",
        disabled=state["compose_seed_random"],
        persist_state="session",
    )
    st.slider(
        "Safety tolerance",
        D.SAFETY_MIN,
        D.SAFETY_MAX,
        key="compose_tolerance",
        help="0 is the strictest filter, 6 the most permissive.",
        persist_state="session",
    )
    st.radio(
        "Output format", D.OUTPUT_FORMATS, key="compose_format", horizontal=True, persist_state="session"
    )
    with st.expander("Reference images (up to 8)"):
        st.text_area("Image URLs, one per line", key="compose_ref_urls", height=80, persist_state="session")
        uploads = (
            st.file_uploader(
                "Image files",
                type=["png", "jpg", "jpeg", "webp", "gif"],
                accept_multiple_files=True,
                key="compose_ref_files",
            )
            or []
        )
        urls = [u.strip() for u in state["compose_ref_urls"].splitlines() if u.strip()]
        if urls or uploads:
            thumbs = st.columns(4)
            for i, source in enumerate([*urls, *uploads][:8]):
                thumbs[i % 4].image(source if isinstance(source, str) else source.getvalue(), width=80)
    cost = P.cost_line(wb.price_per_image(session_key))
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
    with st.form("compose_form", border=False):
        st.text_area(
            "Prompt",
            key="prompt",
            bind="query-params",
            height=220,
            placeholder="Describe the image. Ctrl+Enter generates.",
        )
        submitted = st.form_submit_button("Generate", type="primary", key="compose_generate")

    state["compose_values"] = {  # what Compare offers as "from Compose"
        "prompt": state.get("prompt") or "",
        "width": int(state["compose_width"]),
        "height": int(state["compose_height"]),
        "seed": int(state["compose_seed"]),
        "safety_tolerance": int(state["compose_tolerance"]),
        "output_format": state["compose_format"],
    }

    if submitted:
        problems: list[str] = []
        references: list[tuple[bytes, str]] = []
        for upload in uploads:
            data = upload.getvalue()
            try:
                references.append((data, check_reference(data, upload.name)))
            except ImageProblem as exc:
                problems.append(str(exc))
        seed = None if state["compose_seed_random"] else int(state["compose_seed"])
        fields = dict(
            prompt=state.get("prompt") or "",
            width=int(state["compose_width"]),
            height=int(state["compose_height"]),
            seed=seed,
            safety_tolerance=int(state["compose_tolerance"]),
            output_format=state["compose_format"],
        )
        try:
            placeholders = [f"https://upload.invalid/{i}" for i in range(len(references))]
            FluxParams.parse(fields, image_urls=urls + placeholders)
            params = FluxParams.parse(fields, image_urls=urls)
        except ParamsError as exc:
            problems.extend(exc.problems)
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
                st.text(exc.user_text())
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
        box(f"{line.title} · {live['status']}", icon=":material/hourglass_top:")
        st.text(line.detail)

    if row is not None and P.is_active(row):
        st.fragment(run_every=D.LIVE_REFRESH_S)(_draw_status)(row["id"])
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
            st.text(line.detail)

if row is not None and not P.is_active(row):
    picture, about = st.columns([3, 2], gap="large")
    image = wb.image_path(row)
    with picture:
        if row["status"] == store.COMPLETED and image is not None and image.exists():
            st.image(str(image), width="stretch")
        elif row["status"] == store.BLOCKED:
            st.caption("A blocked run has no image. A higher safety tolerance is more permissive.")
    with about:
        if row["status"] == store.COMPLETED and image is not None and image.exists():
            ext = image.suffix.lstrip(".")
            st.download_button(
                "Download image",
                image.read_bytes(),
                file_name=f"flux-lab-{row['id']}.{ext}",
                mime=f"image/{'jpeg' if ext == 'jpg' else ext}",
                key="compose_download",
                icon=":material/download:",
            )
        if row["status"] == store.SUBMIT_UNKNOWN:  # may be billed: sent again only when the user says so
            checked = st.checkbox(
                "I checked Segmind's console: this request is not there",
                key=f"compose_checked_{row['id']}",
            )
            if st.button(
                "Submit it again",
                key="compose_resubmit",
                type="primary",
                disabled=not checked,
                icon=":material/send:",
            ):
                st.query_params["run"] = wb.submit(
                    store.params_of(row),
                    seed_random=bool(row["seed_random"]),
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
            params = store.params_of(row).replace(seed=random_seed())
            st.query_params["run"] = wb.submit(
                params,
                seed_random=True,
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
        favourite = bool(row["favourite"])
        if actions.button(
            "Favourite",
            key="compose_favourite",
            type="primary" if favourite else "secondary",
            icon=":material/star:" if favourite else ":material/star_border:",
            help="Marked as a favourite" if favourite else "Mark as a favourite",
        ):
            wb.ledger.update_curation(row["id"], favourite=not favourite)
            st.rerun()
        st.caption("Recipe")
        st.json(P.recipe(row), expanded=1)
        note = st.text_area("Note", value=row["notes"], key=f"compose_note_{row['id']}", height=68)
        if st.button("Save note", key="compose_save_note"):
            wb.ledger.update_curation(row["id"], notes=note)
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
                st.text(P.STATUS_WORDS[run["status"]])
            st.text(f"seed {run['seed']} · tol {run['safety_tolerance']}")
            st.button(
                "Open",
                key=f"compose_open_{run['id']}",
                on_click=_open,
                args=(run["id"], True),
                help="Show this run and load its recipe into the form",
            )


# while any recent run is in flight, the strip refreshes itself from the ledger
recent_runs = wb.recent()
in_flight = any(P.is_active(r) for r in recent_runs)
if in_flight:
    st.fragment(run_every=D.LIVE_REFRESH_S * 2)(_draw_recent)()
else:
    _draw_recent(recent_runs)
