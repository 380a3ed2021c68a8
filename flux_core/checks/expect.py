"""What a prompt asks to see: the strings to appear in the image, and the colours of its palette."""

from __future__ import annotations

import colorsys
import re
from dataclasses import dataclass

from PIL import ImageColor

TEXT_KEYS = {
    "masthead", "headline", "headlines", "title", "subtitle", "caption", "text", "logo", "sign", "label",
    "banner", "slogan", "tagline", "wording", "lettering", "quote",
}  # fmt: skip
CUES_BEFORE = {
    "text", "words", "word", "reading", "reads", "says", "saying", "titled", "lettering", "written",
    "spelling", "branding", "logo", "sign", "caption", "headline",
}  # fmt: skip
CUES_AFTER = {"text", "typography", "type", "lettering", "font", "logo", "branding", "sign", "lettered"}
CUE_WINDOW = 3  # words before a quote that may hold its cue
PALETTE_KEYS = {"color_palette", "colour_palette", "palette", "colors", "colours"}
EXTRA_COLOURS = {
    "peach": (255, 203, 164), "apricot": (251, 206, 177), "mint": (152, 255, 152), "sage": (188, 184, 138),
    "mustard": (225, 173, 1), "burgundy": (128, 0, 32), "terracotta": (226, 114, 91),
    "cream": (255, 253, 208), "charcoal": (54, 69, 79), "rust": (183, 65, 14), "emerald": (80, 200, 120),
    "cobalt": (0, 71, 171), "lilac": (200, 162, 200), "blush": (222, 93, 131), "mauve": (224, 176, 255),
    "ochre": (204, 119, 34), "amber": (255, 191, 0), "taupe": (72, 60, 50), "offwhite": (250, 249, 246),
    "sand": (194, 178, 128), "mocha": (150, 114, 92), "jade": (0, 168, 107), "ruby": (224, 17, 95),
}  # fmt: skip
MODIFIERS = {"dark", "deep", "light", "pale", "pastel", "vibrant", "bright", "neon"}

_QUOTE = re.compile(r"(?<![\w])(['\"‘“])([^\n'\"‘’“”]*?(?:\w['’]\w[^\n'\"‘’“”]*?)*)(['\"’”])(?!\w)")
_KEY = re.compile(r"^\s*(?:-\s*)?([A-Za-z][\w ]*?)\s*:\s*(.*)$")
_ITEM = re.compile(r"^\s*-\s*(.*)$")
_WORD = re.compile(r"[A-Za-z]+")
_HEX = re.compile(r"(?<![\w#])#(?:[0-9a-fA-F]{6}|[0-9a-fA-F]{3})(?![\w])")
_TOKEN = re.compile(r"[A-Za-z]+")


@dataclass(frozen=True)
class Colour:
    name: str
    rgb: tuple[int, int, int]

    @property
    def hex(self) -> str:
        return "#{:02x}{:02x}{:02x}".format(*self.rgb)


def _is_text_key(key: str) -> bool:
    words = re.split(r"[\s_]+", key.strip().lower())
    return bool(words) and words[-1] in TEXT_KEYS


def _quoted(line: str) -> list[tuple[str, int, int]]:
    """The quoted strings of one line, with where they start and end (quotes included)."""
    found = []
    for m in _QUOTE.finditer(line):
        if m.group(2).strip():
            found.append((m.group(2).strip(), m.start(), m.end()))
    return found


def _cued(line: str, start: int, end: int) -> bool:
    before = [w.lower() for w in _WORD.findall(line[:start])][-CUE_WINDOW:]
    after = _WORD.findall(line[end:])[:1]
    return any(w in CUES_BEFORE for w in before) or bool(after and after[0].lower() in CUES_AFTER)


def texts(prompt: str) -> list[str]:
    """The strings the prompt asks to appear in the image, in prompt order, each once."""
    found: list[str] = []
    parent = ""  # the last `key:` with no value, whose `- item` lines follow
    for line in prompt.splitlines():
        key = _KEY.match(line)
        item = _ITEM.match(line)
        if key and not item:
            name, value = key.group(1), key.group(2)
            if not value.strip():
                parent = name
                continue
            in_key = _is_text_key(name)
            for text, start, end in _quoted(line):
                if (in_key and start >= key.start(2)) or _cued(line, start, end):
                    found.append(text)
            continue
        quoted = _quoted(line)
        if item and _is_text_key(parent):
            body = item.group(1).strip()
            if quoted:
                found.extend(text for text, _, _ in quoted)
            elif body:
                found.append(body)
            continue
        found.extend(text for text, start, end in quoted if _cued(line, start, end))
    return list(dict.fromkeys(found))


def _named(words: list[str]) -> tuple[int, int, int] | None:
    joined = "".join(words).lower()
    if joined in ImageColor.colormap:
        return ImageColor.getrgb(joined)[:3]
    return EXTRA_COLOURS.get(joined)


def _modified(modifier: str, rgb: tuple[int, int, int]) -> tuple[int, int, int]:
    h, light, s = colorsys.rgb_to_hls(*(c / 255 for c in rgb))
    if modifier in ("dark", "deep"):
        light *= 0.6
    elif modifier in ("light", "pale"):
        light += (1 - light) * 0.5
    elif modifier == "pastel":
        light, s = max(light, 0.8), min(s, 0.6)
    else:  # vibrant, bright, neon
        light, s = 0.5, 1.0 if s > 0.05 else s
    return tuple(round(c * 255) for c in colorsys.hls_to_rgb(h, light, s))  # type: ignore[return-value]


def _line_colours(text: str) -> list[Colour]:
    tokens = list(_TOKEN.finditer(text))
    found: list[tuple[int, Colour]] = [
        (m.start(), Colour(m.group(0), _hex_rgb(m.group(0)))) for m in _HEX.finditer(text)
    ]
    i = 0
    while i < len(tokens):
        best = None
        for n in (3, 2, 1):
            span = tokens[i : i + n]
            if len(span) < n or any(
                not re.fullmatch(r"[\s-]*", text[a.end() : b.start()]) for a, b in zip(span, span[1:])
            ):
                continue
            words = [t.group(0) for t in span]
            rgb = _named(words)
            if rgb is None and n > 1 and words[0].lower() in MODIFIERS and (base := _named(words[1:])):
                rgb = _modified(words[0].lower(), base)
            if rgb is not None:
                best = (n, Colour(text[span[0].start() : span[-1].end()], rgb))
                break
        if best:
            found.append((tokens[i].start(), best[1]))
            i += best[0]
        else:
            i += 1
    return [c for _, c in sorted(found, key=lambda pair: pair[0])]


def _hex_rgb(code: str) -> tuple[int, int, int]:
    return ImageColor.getrgb(code)[:3]


def colours(prompt: str) -> list[Colour]:
    """The colours the prompt asks for: its palette line's if it has one, else every colour it names."""
    lines = prompt.splitlines()
    chosen: list[str] = []
    for n, line in enumerate(lines):
        key = _KEY.match(line)
        if key and key.group(1).strip().lower().replace(" ", "_") in PALETTE_KEYS:
            chosen.append(key.group(2))
            if not key.group(2).strip():  # `palette:` then `- item` lines
                for following in lines[n + 1 :]:
                    if not (item := _ITEM.match(following)):
                        break
                    chosen.append(item.group(1))
    found: list[Colour] = []
    for text in chosen or [prompt]:
        found.extend(_line_colours(text))
    seen: dict[str, Colour] = {}
    for colour in found:
        seen.setdefault(colour.name.lower(), colour)
    return list(seen.values())
