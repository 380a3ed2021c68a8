"""What a History gallery card shows of a run."""

from __future__ import annotations

from flux_core import defaults as D
from flux_ui import gallery
from flux_core.ledger import store
from flux_core.ledger.records import Run
from flux_core.media.images import thumbnail
from flux_core.emulator.render import render_preview
from tests.conftest import run_row


def row(**changes) -> Run:
    return run_row(**{"favourite": 0, "prompt": "  a red\n cube  on <b>marble</b> ", **changes})


def test_a_finished_run_shows_its_thumbnail_by_url(tmp_path):
    digest = "ab" * 32
    thumb = tmp_path / "thumbs" / "ab" / f"{digest}.jpg"
    thumb.parent.mkdir(parents=True)
    thumb.write_bytes(thumbnail(render_preview("a red cube", 42, 512, 512, "png")))
    card = gallery.card(row(favourite=1, thumb_path=f"thumbs/ab/{digest}.jpg"), thumb)
    assert (
        card["thumb"] == f"./_flux/thumbs/{digest}.jpg"
    )  # served by serving.thumbnail; never the full image
    assert card["caption"] == "[max] · seed 42 · tol 2 · ★" and card["status"] == ""
    assert card["prompt"] == "a red cube on <b>marble</b>"  # the browser sets it as text, never markup


def test_a_run_without_a_picture_says_what_became_of_it(tmp_path):
    assert gallery.card(row(status=store.BLOCKED), None) == {
        "id": "01RUN",
        "thumb": None,
        "status": "Blocked by the safety filter",
        "headline": "a red cube on <b>marble</b>",
        "caption": "[max] · seed 42 · tol 2",
        "prompt": "a red cube on <b>marble</b>",
        "checks": [],
        "review": "",
    }
    assert gallery.card(row(status=store.PROCESSING), None)["status"] == "Generating"


def test_a_thumbnail_removed_by_hand_is_said_not_raised(tmp_path):
    card = gallery.card(row(thumb_path="thumbs/ab/gone.jpg"), tmp_path / "gone.jpg")
    assert card["thumb"] is None and card["status"] == "Image file missing"


def test_a_card_leads_with_the_prompts_first_words():
    words = [f"w{i}" for i in range(D.CARD_PROMPT_WORDS + 3)]
    card = gallery.card(row(status=store.BLOCKED, prompt="  ".join(words)), None)
    assert card["headline"] == " ".join(words[: D.CARD_PROMPT_WORDS]) + "…"
    assert card["prompt"] == " ".join(words)  # the whole prompt, for the card's title
    assert gallery.card(row(status=store.BLOCKED, prompt="a teapot"), None)["headline"] == "a teapot"
