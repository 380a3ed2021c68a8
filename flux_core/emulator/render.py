"""The emulator's preview image: deterministic in (prompt, seed, width, height, format).

It draws what the prompt asks for, so the image checks have something to read: every colour of the
prompt's palette (flux_core.checks.expect.colours) as a full-height column, and every string it asks
for (expect.texts) on its own strip, in a font OCR reads. With a seed-dependent chance one string is
drawn misspelt and one colour clearly wrong; `truth(prompt, seed)` is the answer key, and the image is
drawn from it. A prompt with no colours gets a background of shapes: each word a shape whose colour
and kind come from the word itself ("a red cube" draws a red square) and whose place and size come
from the seed. Every image is stamped "EMULATOR PREVIEW" so it is never mistaken for FLUX output.
"""

from __future__ import annotations

import colorsys
import hashlib
import io
import random
import re
from dataclasses import dataclass

from PIL import Image, ImageColor, ImageDraw, ImageFont

from flux_core import defaults as D
from flux_core.checks import expect

_SQUARE = {"cube", "square", "box", "block", "building", "house", "tower", "book", "window", "city"}
_ROUND = {"ball", "sphere", "circle", "sun", "moon", "planet", "eye", "face", "orb", "apple", "bubble"}
_TRIANGLE = {"pyramid", "triangle", "mountain", "tree", "tent", "roof", "cone", "peak"}
_STOP = {"a", "an", "the", "of", "and", "with", "in", "on", "at", "to", "for", "by", "from", "is"}
# Letters OCR may read as another (or miss when doubled): a misspelling never touches them. A
# replacement letter is taken from the second set, none of which is confusable with another.
_NARROW = set("iIlLjJtTfFrR1oO0")
_REPLACEMENTS = "BDHKMNPSWXZ"
_STRIPS = (  # (strip, ink): light strips with dark text, dark with light, or yellow with dark
    ((250, 250, 250), (15, 15, 15)),
    ((15, 15, 15), (250, 250, 250)),
    ((255, 240, 150), (15, 15, 15)),
)


@dataclass(frozen=True)
class Truth:
    """What a preview shows for (prompt, seed): each expected string as drawn, each colour as drawn."""

    texts: dict[str, str]  # expected -> as drawn
    misspelt: list[str]  # the expected strings drawn wrong
    colours: list[tuple[expect.Colour, tuple[int, int, int], bool]]  # expected, drawn rgb, drawn right


def truth(prompt: str, seed: int) -> Truth:
    """The answer key of render_preview(prompt, seed, ...), at every size and format."""
    rng = random.Random(_digest(f"truth\x00{seed}\x00{prompt}"))
    wanted = expect.texts(prompt)
    drawn = {text: text for text in wanted}
    misspelt: list[str] = []
    candidates = [text for text in wanted if _spots(text)]
    if rng.random() < D.EMULATOR_MISSPELL_CHANCE and candidates:
        text = rng.choice(candidates)
        drawn[text] = _misspell(text, rng)
        misspelt.append(text)
    palette = expect.colours(prompt)
    wrong = rng.randrange(len(palette)) if palette and rng.random() < D.EMULATOR_WRONG_COLOUR_CHANCE else -1
    colours = [
        (colour, wrong_colour(colour.rgb) if n == wrong else colour.rgb, n != wrong)
        for n, colour in enumerate(palette)
    ]
    return Truth(drawn, misspelt, colours)


def wrong_colour(rgb: tuple[int, int, int]) -> tuple[int, int, int]:
    """A clearly different colour: the hue turned half way round and the lightness moved far."""
    h, light, s = colorsys.rgb_to_hls(*(c / 255 for c in rgb))
    light = 1 - light if abs(light - 0.5) > 0.2 else (light + 0.4 if light < 0.5 else light - 0.4)
    r, g, b = colorsys.hls_to_rgb((h + 0.5) % 1, light, s)
    return round(r * 255), round(g * 255), round(b * 255)


def render_preview(prompt: str, seed: int, width: int, height: int, output_format: str) -> bytes:
    rng = random.Random(_digest(f"{seed}\x00{prompt}"))
    key = truth(prompt, seed)
    image = Image.new("RGB", (width, height))
    draw = ImageDraw.Draw(image)
    if key.colours:
        _columns(draw, [drawn for _, drawn, _ in key.colours], rng, width, height)
        _outlines(draw, prompt, rng)
    else:
        _shapes(image, draw, prompt, rng)

    unit = min(width, height)
    label = f"EMULATOR PREVIEW  seed {seed}"
    font = ImageFont.load_default(size=max(10, unit // 28))
    pad = max(4, unit // 64)
    text_box = draw.textbbox((pad, pad), label, font=font)
    draw.rectangle([0, 0, text_box[2] + pad, text_box[3] + pad], fill=(20, 20, 20))
    draw.text((pad, pad), label, fill=(255, 255, 255), font=font)
    if key.texts:
        _strings(draw, list(key.texts.values()), _strip_colours(key), rng, top=int(text_box[3] + 3 * pad))

    out = io.BytesIO()
    if output_format == "jpeg":
        image.save(out, "JPEG", quality=90)
    else:
        image.save(out, "PNG", compress_level=1)
    return out.getvalue()


def _spots(text: str) -> list[int]:
    return [i for i, c in enumerate(text) if c.isascii() and c.isalpha() and c not in _NARROW]


def _misspell(text: str, rng: random.Random) -> str:
    """One letter dropped, doubled or replaced by a clearly different one: a change OCR can see."""
    i = rng.choice(_spots(text))
    kind = rng.choice(("drop", "double", "replace"))
    if kind == "drop" and sum(c.isalnum() for c in text) > 2:
        return text[:i] + text[i + 1 :]
    if kind == "double":
        return text[:i] + text[i] + text[i:]
    letter = rng.choice([c for c in _REPLACEMENTS if c != text[i].upper()])
    return text[:i] + (letter if text[i].isupper() else letter.lower()) + text[i + 1 :]


def _columns(
    draw: ImageDraw.ImageDraw, rgbs: list[tuple[int, int, int]], rng, width: int, height: int
) -> None:
    """Each colour a full-height column, in a seed-dependent order and width (none under 3/4 of a share)."""
    order = rgbs[:]
    rng.shuffle(order)
    shares = [1 + rng.uniform(0, 0.3) for _ in order]
    x = 0.0
    for rgb, share in zip(order, shares):
        step = width * share / sum(shares)
        draw.rectangle([round(x), 0, round(x + step), height], fill=rgb)
        x += step


def _outlines(draw: ImageDraw.ImageDraw, prompt: str, rng: random.Random) -> None:
    """The first few nouns as thin outlines the seed places: seeds differ, the palette's areas barely change."""
    width, height = draw.im.size
    unit = min(width, height)
    for word in [w for w in _words(prompt) if not _is_colour(w)][: D.EMULATOR_OUTLINES]:
        size = unit * rng.uniform(0.1, 0.3)
        cx, cy = rng.uniform(0, width), rng.uniform(0, height)
        box = [cx - size / 2, cy - size / 2, cx + size / 2, cy + size / 2]
        if word in _ROUND or _digest(word) % 2:
            draw.ellipse(box, outline=(40, 40, 40), width=max(1, unit // 256))
        else:
            draw.rectangle(box, outline=(40, 40, 40), width=max(1, unit // 256))


def _strip_colours(key: Truth) -> tuple[tuple[int, int, int], tuple[int, int, int]]:
    """The strips furthest from every colour asked for or drawn, so they are not read as the palette."""
    used = [c.rgb for c, _, _ in key.colours] + [drawn for _, drawn, _ in key.colours]

    def distance(option) -> int:
        return min((sum((a - b) ** 2 for a, b in zip(option[0], rgb)) for rgb in used), default=0)

    return max(_STRIPS, key=distance)


def _strings(draw: ImageDraw.ImageDraw, lines: list[str], colours, rng, top: int) -> None:
    """Each string on its own strip, as large as fits the width, the block at a seed-dependent height."""
    strip, ink = colours
    width, height = draw.im.size
    unit = min(width, height)
    pad = max(4, unit // 64)
    sizes = []
    for line in lines:
        size = max(12, unit // 14)
        while size > 12 and ImageFont.load_default(size=size).getlength(line) > width - 10 * pad:
            size -= 1
        sizes.append(size)
    room = (height - top) * 0.8
    total = sum(round(s * 1.7) for s in sizes)
    if total > room:  # more strings than the height holds at those sizes: all of them smaller
        sizes = [max(12, int(s * room / total)) for s in sizes]
        total = sum(round(s * 1.7) for s in sizes)
    y = top + rng.uniform(0, max(0, height - top - total - pad))
    for line, size in zip(lines, sizes):
        font = ImageFont.load_default(size=size)
        x = rng.uniform(3 * pad, max(3 * pad, width - font.getlength(line) - 3 * pad))
        box = draw.textbbox((x, y), line, font=font)
        draw.rectangle([box[0] - 2 * pad, box[1] - pad, box[2] + 2 * pad, box[3] + pad], fill=strip)
        draw.text((x, y), line, fill=ink, font=font)
        y += round(size * 1.7)


def _digest(text: str) -> int:
    return int.from_bytes(hashlib.sha256(text.encode()).digest()[:8], "big")


def _word_colour(word: str) -> tuple[int, int, int]:
    try:
        return ImageColor.getrgb(word)[:3]
    except ValueError:
        h = _digest(word)
        r, g, b = colorsys.hsv_to_rgb(
            (h % 360) / 360, 0.55 + (h >> 9) % 40 / 100, 0.65 + (h >> 17) % 30 / 100
        )
        return int(r * 255), int(g * 255), int(b * 255)


def _words(prompt: str) -> list[str]:
    seen: list[str] = []
    for word in re.findall(r"[a-z]+", prompt.lower()):
        if word not in _STOP and word not in seen:
            seen.append(word)
    return seen[:24] or ["blank"]


def _shapes(image: Image.Image, draw: ImageDraw.ImageDraw, prompt: str, rng: random.Random) -> None:
    """A prompt with no palette: each word a shape, on a gradient between its first and last words' colours."""
    width, height = image.size
    words = _words(prompt)
    colours = [_word_colour(w) for w in words]
    colour_words = [c for w, c in zip(words, colours) if _is_colour(w)]

    top = _word_colour(words[0] + "#bg")
    bottom = _word_colour(words[-1] + "#bg2")
    band = Image.linear_gradient("L").resize((width, height))
    image.paste(
        Image.composite(
            Image.new("RGB", (width, height), bottom), Image.new("RGB", (width, height), top), band
        )
    )
    unit = min(width, height)
    pending_colour = None
    for word, colour in zip(words, colours):
        if _is_colour(word):
            pending_colour = colour
            continue
        fill = pending_colour or (rng.choice(colour_words) if colour_words and rng.random() < 0.3 else colour)
        pending_colour = None
        size = unit * rng.uniform(0.12, 0.38)
        cx, cy = rng.uniform(0, width), rng.uniform(0, height)
        box = [cx - size / 2, cy - size / 2, cx + size / 2, cy + size / 2]
        kind = (
            "square"
            if word in _SQUARE
            else "round"
            if word in _ROUND
            else "triangle"
            if word in _TRIANGLE
            else ("square", "round", "triangle", "star")[_digest(word) % 4]
        )
        outline = tuple(max(0, c - 70) for c in fill)
        line = max(1, unit // 160)
        if kind == "square":
            draw.rectangle(box, fill=fill, outline=outline, width=line)
        elif kind == "round":
            draw.ellipse(box, fill=fill, outline=outline, width=line)
        elif kind == "triangle":
            draw.polygon([(cx, box[1]), (box[2], box[3]), (box[0], box[3])], fill=fill, outline=outline)
        else:
            draw.regular_polygon(
                (cx, cy, size / 2),
                n_sides=5 + _digest(word) % 4,
                rotation=rng.uniform(0, 360),
                fill=fill,
                outline=outline,
            )
    if pending_colour:  # "a red ..." with no noun after it: a wash of that colour
        draw.rectangle([0, height * 0.8, width, height], fill=pending_colour)


def _is_colour(word: str) -> bool:
    try:
        ImageColor.getrgb(word)
    except ValueError:
        return False
    return True
