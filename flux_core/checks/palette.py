"""The palette check: are the colours a prompt names among an image's dominant colours?

Dominant colours come from Pillow's quantisation of a downscaled copy; closeness is CIEDE2000
(Sharma, Wu and Dalal 2005) between CIELAB colours (sRGB, D65 white).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any, Protocol

from PIL import Image

from flux_core import defaults as D

VERSION = 1

RGB = tuple[int, int, int]
Lab = tuple[float, float, float]

_D65 = (0.95047, 1.0, 1.08883)  # the reference white's X, Y, Z


class NamedColour(Protocol):
    @property
    def name(self) -> str: ...

    @property
    def rgb(self) -> tuple[int, int, int]: ...


def hex_of(rgb: RGB) -> str:
    return "#{:02x}{:02x}{:02x}".format(*rgb)


def dominant(image: Image.Image, k: int = D.PALETTE_COLOURS) -> list[tuple[RGB, float]]:
    """Up to `k` dominant colours of `image` with the share of pixels each covers, largest first."""
    sample = image.convert("RGB")
    sample.thumbnail((D.PALETTE_SAMPLE_PX, D.PALETTE_SAMPLE_PX), Image.Resampling.BOX)
    quantised = sample.quantize(colors=k, method=Image.Quantize.MEDIANCUT)
    palette = quantised.getpalette() or []
    total = sample.width * sample.height
    counts = quantised.getcolors(k) or []
    colours: list[tuple[RGB, float]] = []
    for count, index in sorted(counts, key=lambda c: (-c[0], c[1])):
        assert isinstance(index, int)  # a "P" image's colours are palette indices
        r, g, b = palette[3 * index : 3 * index + 3]
        colours.append(((r, g, b), count / total))
    return colours


def srgb_to_lab(rgb: RGB) -> Lab:
    """An 8-bit sRGB colour in CIELAB (D65)."""

    def linear(channel: int) -> float:
        c = channel / 255
        return c / 12.92 if c <= 0.04045 else ((c + 0.055) / 1.055) ** 2.4

    r, g, b = (linear(c) for c in rgb)
    x = 0.4124564 * r + 0.3575761 * g + 0.1804375 * b
    y = 0.2126729 * r + 0.7151522 * g + 0.0721750 * b
    z = 0.0193339 * r + 0.1191920 * g + 0.9503041 * b

    def f(t: float) -> float:
        return t ** (1 / 3) if t > (6 / 29) ** 3 else t / (3 * (6 / 29) ** 2) + 4 / 29

    fx, fy, fz = f(x / _D65[0]), f(y / _D65[1]), f(z / _D65[2])
    return (116 * fy - 16, 500 * (fx - fy), 200 * (fy - fz))


def ciede2000(lab1: Lab, lab2: Lab) -> float:
    """The CIEDE2000 colour difference of two CIELAB colours (kL = kC = kH = 1)."""
    l1, a1, b1 = lab1
    l2, a2, b2 = lab2
    c_mean = (math.hypot(a1, b1) + math.hypot(a2, b2)) / 2
    g = 0.5 * (1 - math.sqrt(c_mean**7 / (c_mean**7 + 25**7)))
    a1p, a2p = (1 + g) * a1, (1 + g) * a2
    c1p, c2p = math.hypot(a1p, b1), math.hypot(a2p, b2)
    h1p = math.degrees(math.atan2(b1, a1p)) % 360 if c1p else 0.0
    h2p = math.degrees(math.atan2(b2, a2p)) % 360 if c2p else 0.0

    dl = l2 - l1
    dc = c2p - c1p
    if c1p * c2p == 0:
        dh = 0.0
    elif abs(h2p - h1p) <= 180:
        dh = h2p - h1p
    elif h2p - h1p > 180:
        dh = h2p - h1p - 360
    else:
        dh = h2p - h1p + 360
    dh_big = 2 * math.sqrt(c1p * c2p) * math.sin(math.radians(dh / 2))

    l_mean = (l1 + l2) / 2
    cp_mean = (c1p + c2p) / 2
    if c1p * c2p == 0:
        hp_mean = h1p + h2p
    elif abs(h1p - h2p) <= 180:
        hp_mean = (h1p + h2p) / 2
    elif h1p + h2p < 360:
        hp_mean = (h1p + h2p + 360) / 2
    else:
        hp_mean = (h1p + h2p - 360) / 2

    t = (
        1
        - 0.17 * math.cos(math.radians(hp_mean - 30))
        + 0.24 * math.cos(math.radians(2 * hp_mean))
        + 0.32 * math.cos(math.radians(3 * hp_mean + 6))
        - 0.20 * math.cos(math.radians(4 * hp_mean - 63))
    )
    d_theta = 30 * math.exp(-(((hp_mean - 275) / 25) ** 2))
    r_c = 2 * math.sqrt(cp_mean**7 / (cp_mean**7 + 25**7))
    s_l = 1 + 0.015 * (l_mean - 50) ** 2 / math.sqrt(20 + (l_mean - 50) ** 2)
    s_c = 1 + 0.045 * cp_mean
    s_h = 1 + 0.015 * cp_mean * t
    r_t = -math.sin(math.radians(2 * d_theta)) * r_c
    return math.sqrt(
        (dl / s_l) ** 2 + (dc / s_c) ** 2 + (dh_big / s_h) ** 2 + r_t * (dc / s_c) * (dh_big / s_h)
    )


def check(image: Image.Image, expected: Sequence[NamedColour]) -> dict[str, Any]:
    """The palette check of one image against the colours its prompt names."""
    present = [(rgb, share) for rgb, share in dominant(image) if share >= D.PALETTE_MIN_SHARE]
    labs = [srgb_to_lab(rgb) for rgb, _ in present]
    result: dict[str, Any] = {
        "score": None,
        "expected": [c.name for c in expected],
        "expected_hex": [hex_of(c.rgb) for c in expected],
        "found": [hex_of(rgb) for rgb, _ in present],
        "found_shares": [round(share, 4) for _, share in present],
        "matched": [],
        "missing": [],
        "distance": {},
    }
    closeness: list[float] = []
    for colour in expected:
        lab = srgb_to_lab(colour.rgb)
        nearest = min((ciede2000(lab, other) for other in labs), default=math.inf)
        result["distance"][colour.name] = round(nearest, 2)
        result["matched" if nearest <= D.PALETTE_MATCH_DELTA_E else "missing"].append(colour.name)
        closeness.append(max(0.0, 1 - nearest / D.PALETTE_DELTA_E_CEILING))
    if expected:
        result["score"] = sum(closeness) / len(closeness)
    return result
