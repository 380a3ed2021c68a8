"""Perceptual hashes: near-duplicates among a batch's seeds, and the determinism probe's verdict.

imagehash and numpy are imported by the two functions that read pixels, so the pages that only
compare stored fingerprints (rank.py) do not load them."""

from __future__ import annotations

from collections.abc import Sequence
from itertools import combinations

from PIL import Image

from flux_core import defaults as D

VERSION = 1


def fingerprint(image: Image.Image) -> str:
    """The image's 64-bit perceptual hash (DCT phash) as 16 hex digits."""
    import imagehash

    return str(imagehash.phash(image.convert("RGB")))


def distance(a: str, b: str) -> int:
    """The number of bits in which two fingerprints differ (0..64)."""
    return bin(int(a, 16) ^ int(b, 16)).count("1")


def groups(prints: dict[str, str], within: int = D.NEAR_DUPLICATE_BITS) -> list[list[str]]:
    """Near-duplicate groups: the keys linked by chains of fingerprints at most `within` bits
    apart, each group of two or more in the order of `prints`."""
    keys = list(prints)
    parent = {key: key for key in keys}

    def root(key: str) -> str:
        while parent[key] != key:
            parent[key] = parent[parent[key]]
            key = parent[key]
        return key

    for a, b in combinations(keys, 2):
        if distance(prints[a], prints[b]) <= within:
            parent[root(b)] = root(a)
    members: dict[str, list[str]] = {}
    for key in keys:
        members.setdefault(root(key), []).append(key)
    return [group for group in members.values() if len(group) > 1]


def diversity(prints: Sequence[str]) -> float | None:
    """How different the images are: the mean pairwise distance over half the bits, at most 1."""
    if len(prints) < 2:
        return None
    pairs = [distance(a, b) for a, b in combinations(prints, 2)]
    return min(1.0, sum(pairs) / len(pairs) / D.DIVERSITY_FULL_BITS)


def verdict(a: Image.Image, b: Image.Image) -> tuple[str, int]:
    """The determinism probe: "same image", "small drift" or "different", with the phash distance."""
    import numpy as np

    bits = distance(fingerprint(a), fingerprint(b))
    if a.size == b.size:
        left = np.asarray(a.convert("RGB"), dtype=np.int16)
        right = np.asarray(b.convert("RGB"), dtype=np.int16)
        mean_abs = float(np.abs(left - right).mean())
        if mean_abs == 0 or (bits == 0 and mean_abs <= D.SAME_IMAGE_MEAN_ABS_DIFF):
            return "same image", bits
    if bits <= D.SMALL_DRIFT_BITS:
        return "small drift", bits
    return "different", bits
