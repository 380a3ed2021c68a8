from __future__ import annotations

import io

import pytest
from PIL import Image

from flux_core import defaults as D
from flux_core.media import images
from flux_core.emulator.render import render_preview


@pytest.mark.parametrize("fmt", ["png", "jpeg"])
def test_recipe_round_trips_without_reencoding(fmt):
    data = render_preview("a red cube", 1, 256, 128, fmt)
    recipe = {"params": {"prompt": "ünïcode " + "long " * 20000, "seed": 1}, "run_id": "R"}
    embedded = images.embed_recipe(data, recipe)
    assert images.read_recipe(embedded) == recipe
    with Image.open(io.BytesIO(embedded)) as im:
        im.load()
        assert im.size == (256, 128)
    with Image.open(io.BytesIO(embedded)) as a, Image.open(io.BytesIO(data)) as b:
        assert a.tobytes() == b.tobytes()  # pixels untouched


def test_store_by_content_hash_with_a_thumbnail(data_dir):
    data = render_preview("a blue ball", 2, 512, 512, "png")
    stored = images.store(data_dir, data, {"seed": 2})
    path = data_dir / stored.path
    assert path.exists() and stored.sha256 in path.name and (stored.width, stored.height) == (512, 512)
    with Image.open(data_dir / stored.thumb_path) as thumb:
        assert max(thumb.size) == D.THUMBNAIL_PX
    again = images.store(data_dir, data, {"seed": 2})
    assert again == stored


def test_garbage_is_not_stored_as_an_image(data_dir):
    with pytest.raises(images.ImageProblem):
        images.store(data_dir, b"<html>not an image</html>", {})


def test_reference_images_must_be_real_and_bounded():
    png = render_preview("x", 1, 64, 64, "png")
    assert images.check_reference(png) == "image/png"
    with pytest.raises(images.ImageProblem, match="not a readable image"):
        images.check_reference(b"GIF89a broken")
    with pytest.raises(images.ImageProblem, match="limit"):
        images.check_reference(b"\0" * (images.MAX_REFERENCE_BYTES + 1))


def test_previews_differ_by_seed_and_prompt_and_repeat_exactly():
    a = render_preview("a red cube", 1, 128, 128, "png")
    assert a == render_preview("a red cube", 1, 128, 128, "png")
    assert a != render_preview("a red cube", 2, 128, 128, "png")
    assert a != render_preview("a green tree", 1, 128, 128, "png")
    with Image.open(io.BytesIO(a)) as im:
        red = dict((colour, n) for n, colour in im.convert("RGB").getcolors(1 << 16)).get((255, 0, 0), 0)
    assert red > 100  # "a red cube" draws red
