"""The emulator's preview image: deterministic in (prompt, seed, width, height, format).

Each word of the prompt becomes a shape whose colour and kind come from the word itself
(colour names and shape nouns are honoured: "a red cube" draws a red square), and whose place
and size come from the seed. So different prompts and different seeds look clearly different.
Every image is stamped "EMULATOR PREVIEW" so it is never mistaken for FLUX output.
"""

from __future__ import annotations

import colorsys
import hashlib
import io
import random
import re

from PIL import Image, ImageColor, ImageDraw, ImageFont

_SQUARE = {"cube", "square", "box", "block", "building", "house", "tower", "book", "window", "city"}
_ROUND = {"ball", "sphere", "circle", "sun", "moon", "planet", "eye", "face", "orb", "apple", "bubble"}
_TRIANGLE = {"pyramid", "triangle", "mountain", "tree", "tent", "roof", "cone", "peak"}
_STOP = {"a", "an", "the", "of", "and", "with", "in", "on", "at", "to", "for", "by", "from", "is"}


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


def render_preview(prompt: str, seed: int, width: int, height: int, output_format: str) -> bytes:
    rng = random.Random(_digest(f"{seed}\x00{prompt}"))
    words = _words(prompt)
    colours = [_word_colour(w) for w in words]
    colour_words = [c for w, c in zip(words, colours) if _is_colour(w)]

    top = _word_colour(words[0] + "#bg")
    bottom = _word_colour(words[-1] + "#bg2")
    band = Image.linear_gradient("L").resize((width, height))
    image = Image.composite(
        Image.new("RGB", (width, height), bottom), Image.new("RGB", (width, height), top), band
    )
    draw = ImageDraw.Draw(image)
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

    label = f"EMULATOR PREVIEW  seed {seed}"
    font = ImageFont.load_default(size=max(10, unit // 28))
    pad = max(4, unit // 64)
    text_box = draw.textbbox((pad, pad), label, font=font)
    draw.rectangle([0, 0, text_box[2] + pad, text_box[3] + pad], fill=(20, 20, 20))
    draw.text((pad, pad), label, fill=(255, 255, 255), font=font)

    out = io.BytesIO()
    if output_format == "jpeg":
        image.save(out, "JPEG", quality=90)
    else:
        image.save(out, "PNG", compress_level=1)
    return out.getvalue()


def _is_colour(word: str) -> bool:
    try:
        ImageColor.getrgb(word)
    except ValueError:
        return False
    return True
