"""The seed hunt on the Compare page: the form that starts one (beside the base request), and the panel
that watches one (hits, misses, hit rate, real cost per hit, why it stopped, its hits). The rules
are flux_core/hunt.py's and the work the service's (Workbench.start_hunt): this only draws."""

from __future__ import annotations

from typing import Any, Callable

import streamlit as st

from flux_core import defaults as D
from flux_core import hunt as hunting
from flux_core.errors import CapReached
from flux_core.ledger import store
from flux_core.params import FluxParams, ParamsError
from flux_core.service import Workbench
from flux_core.team import Op
from flux_ui import pictures, spend

CHECK_LABELS = {
    hunting.TEXT: "The text all right",
    hunting.PALETTE: "Palette score at least …",
    hunting.DISTINCT: "Not a near-duplicate of an earlier hit",
}
SEED_MODES = ("In order from a list", "At random")


def marks(found: hunting.HuntView | None) -> dict[str, tuple[str, float]]:
    """Each judged cell's mark on the grid: HIT (green) or miss (red)."""
    if found is None:
        return {}
    return {r.run_id: ("HIT", 1.0) if r.hit else ("miss", 0.0) for r in found.row.results}


def plan(
    wb: Workbench, session_key: str | None, base_fields: dict[str, Any], opened: Callable[[str], None]
) -> None:
    """The hunt's own fields and Start hunt; the base request is the form's (`base_fields`)."""
    state = st.session_state
    for key, value in {
        "compare_hunt_checks": [hunting.TEXT],
        "compare_hunt_palette": D.HUNT_PALETTE_MIN,
        "compare_hunt_hits": 3,
        "compare_hunt_seed_mode": SEED_MODES[0],
        "compare_hunt_seeds": "1-100",
        "compare_hunt_max_images": D.HUNT_IMAGES_DEFAULT,
        "compare_hunt_max_usd": 0.0,
    }.items():
        state.setdefault(key, value)
    st.caption("Find seeds that pass: only the seed changes; each image is checked as it lands")
    chosen = st.multiselect(
        "Checks an image must pass",
        list(CHECK_LABELS),
        format_func=CHECK_LABELS.__getitem__,
        key="compare_hunt_checks",
    )
    if hunting.PALETTE in chosen:
        st.number_input("Palette score at least", 0.0, 1.0, step=0.05, key="compare_hunt_palette")
    c1, c2 = st.columns(2)
    c1.number_input("Hits wanted", 1, D.HUNT_MAX_HITS, key="compare_hunt_hits")
    mode = c2.radio("Seeds", SEED_MODES, key="compare_hunt_seed_mode")
    if mode == SEED_MODES[0]:
        st.text_input("Seeds in order (1-100, 1,5,9)", key="compare_hunt_seeds")
    l1, l2 = st.columns(2)
    l1.number_input("At most this many images", 1, D.HUNT_MAX_IMAGES, key="compare_hunt_max_images")
    l2.number_input("At most this many USD (0: no limit)", 0.0, step=0.5, key="compare_hunt_max_usd")
    checks = [
        f"{hunting.PALETTE}:{float(state['compare_hunt_palette']):g}" if c == hunting.PALETTE else c
        for c in chosen
    ]
    usd = float(state["compare_hunt_max_usd"])
    try:
        base = FluxParams.parse(**base_fields)
        spec = hunting.plan(
            base,
            checks=checks,
            hits=int(state["compare_hunt_hits"]),
            seeds="random" if mode == SEED_MODES[1] else state["compare_hunt_seeds"],
            max_images=int(state["compare_hunt_max_images"]),
            max_usd=usd if usd > 0 else None,
            batch=wb.hunt_batch(session_key),
        )
    except ParamsError as exc:
        st.error("This hunt cannot start yet:")
        for problem in exc.problems:
            st.text(f"• {problem}")
        return
    each = wb.pricing(session_key).usd(base.width, base.height, len(base.image_urls))
    st.info(
        f"Up to {spec.max_images} images ({spec.limit_words}), {spec.batch} in flight at once; "
        f"about ${each:.4g} an image, at most ${each * spec.max_images:.4g}. "
        f"It stops submitting at {spec.hits} hit(s): {spec.checks_words}.",
        icon=":material/travel_explore:",
    )
    spend.line(wb, session_key)
    if st.button("Start hunt", key="compare_hunt_start", type="primary", icon=":material/play_arrow:"):
        try:
            hunt_id = wb.start_hunt(
                base,
                checks=checks,
                hits=spec.hits,
                seeds="random" if spec.seeds_random else state["compare_hunt_seeds"],
                max_images=spec.max_images,
                max_usd=spec.max_usd,
                name=state.get("compare_name", ""),
                session_key=session_key,
                guard=state.setdefault("compare_guard", store.new_id()),
            )
        except ParamsError as exc:  # a field refused: its words quote what was typed, as text
            st.error("The hunt was not started:")
            for problem in exc.problems:
                st.text(f"• {problem}")
            return
        except (CapReached, ValueError) as exc:  # a spend cap (or a bad cap setting): nothing was sent
            spend.refused(exc)
            return
        opened(hunt_id)
        st.rerun()


def panel(wb: Workbench, found: hunting.HuntView) -> None:
    """The hunt as it goes: its counts, what it asked, why it stopped, Stop, and the hits."""
    spec = found.spec
    st.markdown("**Seed hunt**")
    st.text(f"Wanted: {spec.hits} hit(s) with {spec.checks_words}; {spec.limit_words}.")
    cols = st.columns(4)
    cols[0].metric(f"Hits ({spec.hits} wanted)", found.hits)
    cols[1].metric("Misses", found.misses)
    cols[2].metric("Hit rate", f"{found.hit_rate:.0%}" if found.hit_rate is not None else "–")
    per_hit = f"${found.cost_per_hit:.4g}" if found.cost_per_hit is not None else "–"
    cols[3].metric("Cost per hit", per_hit, help=f"Cost so far ${found.cost_usd:.4g} ({found.cost_basis})")
    st.text(
        f"{found.status_words()} {found.submitted} submitted; cost ${found.cost_usd:.4g} ({found.cost_basis})."
    )
    if found.state == "hunting" and wb.may(Op.SPEND):
        st.button(
            "Stop the hunt",
            key="compare_hunt_stop",
            icon=":material/stop:",
            on_click=wb.stop_hunt,
            args=(found.id,),
            help="No more seeds are submitted; those in flight finish, are checked and kept",
        )
    hits = [c for c in found.sweep.cells if found.results.get(c.run.id) and found.results[c.run.id].hit]
    if hits:
        strip = st.container(horizontal=True, gap="small", key="compare_hunt_hits_strip")
        for cell in hits:
            card = strip.container(border=True, width=D.SWEEP_CARD_PX + 34)
            pictures.thumbnail(cell.run.thumb_path, wb.data_dir, width=D.SWEEP_CARD_PX, where=card)
            card.text(f"HIT · seed {cell.run.seed}")
            card.text(found.results[cell.run.id].why)  # what the OCR read: text, never Markdown
