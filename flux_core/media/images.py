"""Where an image lands on disk: stored by content hash, with a thumbnail, the recipe embedded.

The recipe goes into the file without re-encoding it: an iTXt chunk in a PNG, COM segments in a
JPEG. It holds the request parameters and ids, never the API key.
"""

from __future__ import annotations

import hashlib
import io
import json
import struct
import warnings
import zlib
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from PIL import Image, UnidentifiedImageError

from flux_core import defaults as D

RECIPE_KEY = "flux-lab:recipe"
_JPEG_PREFIX = RECIPE_KEY.encode() + b"\x00"
_JPEG_CHUNK = 65000
MAX_REFERENCE_BYTES = 20 * 1024 * 1024
MAX_REFERENCE_PIXELS = 40_000_000
REFERENCE_FORMATS = {"PNG": "image/png", "JPEG": "image/jpeg", "WEBP": "image/webp", "GIF": "image/gif"}


class ImageProblem(ValueError):
    pass


@dataclass(frozen=True)
class StoredImage:
    sha256: str
    path: str  # relative to the data directory
    thumb_path: str  # relative to the data directory
    width: int
    height: int
    size_bytes: int
    format: str


def inspect(
    data: bytes, *, max_pixels: int = D.OUTPUT_MAX_PIXELS, decode: bool = True
) -> tuple[str, int, int]:
    """(format, width, height) of real image bytes, or ImageProblem. The pixel count is checked
    from the header before anything is decoded (a small file can claim 30000 × 30000 pixels);
    `decode` then reads every pixel, which finds a truncated file that a header check misses."""
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)
            with Image.open(io.BytesIO(data)) as im:
                fmt, width, height = str(im.format), im.width, im.height
                if width * height > max_pixels:
                    raise ImageProblem(
                        f"it claims {width} × {height} pixels; the limit is {max_pixels / 1e6:.0f} MP"
                    )
                if decode:
                    im.load()
                else:
                    im.verify()
    except Image.DecompressionBombError:
        raise ImageProblem(f"it claims too many pixels (the limit is {max_pixels / 1e6:.0f} MP)") from None
    except UnidentifiedImageError:
        raise ImageProblem(_not_an_image(data)) from None
    except (OSError, SyntaxError, ValueError, struct.error) as exc:
        if isinstance(exc, ImageProblem):
            raise
        raise ImageProblem(f"it is not a readable image ({exc})") from None
    return fmt, width, height


def _not_an_image(data: bytes) -> str:
    """What bytes that are no image look like, in words."""
    head = data[:512].lstrip().lower()
    if not data:
        return "it is empty"
    if head.startswith((b"<!doctype html", b"<html", b"<head", b"<body")):
        return "it is not a readable image (it is an HTML page)"
    if head.startswith((b"{", b"[")):
        return "it is not a readable image (it is JSON)"
    if all(32 <= b < 127 or b in (9, 10, 13) for b in head):
        return "it is not a readable image (it is plain text)"
    return "it is not a readable image (not a format Pillow knows)"


def check_reference(data: bytes, name: str = "image") -> str:
    """Validate a local reference image; return its MIME type."""
    if len(data) > MAX_REFERENCE_BYTES:
        raise ImageProblem(
            f"{name} is {len(data) / 1e6:.1f} MB; the limit is {MAX_REFERENCE_BYTES // 2**20} MB"
        )
    try:
        fmt, width, height = inspect(data, max_pixels=MAX_REFERENCE_PIXELS, decode=False)
    except ImageProblem as exc:
        text = str(exc)
        if text.startswith("it is not a readable image") or text == "it is empty":
            formats = ", ".join(list(REFERENCE_FORMATS)[:-1]) + " or " + list(REFERENCE_FORMATS)[-1]
            raise ImageProblem(f"{name} is not a readable image: expected {formats}") from None
        raise ImageProblem(f"{name}: {text}") from None
    if fmt not in REFERENCE_FORMATS:
        raise ImageProblem(f"{name} is {fmt}; allowed: {', '.join(REFERENCE_FORMATS)}")
    return REFERENCE_FORMATS[fmt]


def embed_recipe(data: bytes, recipe: dict[str, Any]) -> bytes:
    text = json.dumps(recipe, sort_keys=True, ensure_ascii=False).encode()
    if data.startswith(b"\x89PNG\r\n\x1a\n"):
        body = RECIPE_KEY.encode() + b"\x00\x00\x00\x00\x00" + text
        chunk = struct.pack(">I", len(body)) + b"iTXt" + body + struct.pack(">I", zlib.crc32(b"iTXt" + body))
        ihdr_end = 8 + 8 + struct.unpack(">I", data[8:12])[0] + 4
        return data[:ihdr_end] + chunk + data[ihdr_end:]
    if data.startswith(b"\xff\xd8"):
        parts = [text[i : i + _JPEG_CHUNK] for i in range(0, len(text), _JPEG_CHUNK)] or [b""]
        segments = b""
        for n, part in enumerate(parts):
            payload = _JPEG_PREFIX + f"{n + 1}/{len(parts)}".encode() + b"\x00" + part
            segments += b"\xff\xfe" + struct.pack(">H", len(payload) + 2) + payload
        return data[:2] + segments + data[2:]
    raise ImageProblem("only PNG and JPEG images can carry a recipe")


def read_recipe(data: bytes) -> dict[str, Any] | None:
    """The recipe embedded by `embed_recipe`, or None."""
    if data.startswith(b"\x89PNG\r\n\x1a\n"):
        pos = 8
        while pos + 8 <= len(data):
            length = struct.unpack(">I", data[pos : pos + 4])[0]
            kind = data[pos + 4 : pos + 8]
            body = data[pos + 8 : pos + 8 + length]
            if kind == b"iTXt" and body.startswith(RECIPE_KEY.encode() + b"\x00"):
                keyword_end = len(RECIPE_KEY) + 1
                rest = body[keyword_end + 2 :]
                rest = rest.split(b"\x00", 2)[2]  # language tag, translated keyword
                return _loads(rest)
            if kind == b"IEND":
                break
            pos += 12 + length
        return None
    if data.startswith(b"\xff\xd8"):
        pos, parts = 2, []
        while pos + 4 <= len(data) and data[pos] == 0xFF:
            marker = data[pos + 1]
            if marker in (0xD9, 0xDA):
                break
            length = struct.unpack(">H", data[pos + 2 : pos + 4])[0]
            payload = data[pos + 4 : pos + 2 + length]
            if marker == 0xFE and payload.startswith(_JPEG_PREFIX):
                parts.append(payload[len(_JPEG_PREFIX) :].split(b"\x00", 1)[1])
            pos += 2 + length
        return _loads(b"".join(parts)) if parts else None
    return None


def _loads(raw: bytes) -> dict[str, Any] | None:
    try:
        value = json.loads(raw.decode())
    except (UnicodeDecodeError, ValueError):
        return None
    return value if isinstance(value, dict) else None


def thumbnail(data: bytes, size: int = D.THUMBNAIL_PX) -> bytes:
    with Image.open(io.BytesIO(data)) as opened:
        im = opened.convert("RGB")
        im.thumbnail((size, size))
        out = io.BytesIO()
        im.save(out, "JPEG", quality=D.THUMBNAIL_QUALITY, optimize=True)
        return out.getvalue()


def store(data_dir: Path, data: bytes, recipe: dict[str, Any]) -> StoredImage:
    """Verify the image (format, pixel count, every pixel readable), embed its recipe, write it
    under images/ by content hash, with a thumbnail. ImageProblem says what is wrong with it."""
    if len(data) > D.OUTPUT_MAX_BYTES:
        raise ImageProblem(f"it is larger than {D.OUTPUT_MAX_BYTES // 2**20} MB")
    fmt, width, height = inspect(data)
    if fmt not in ("PNG", "JPEG"):
        raise ImageProblem(f"it is a {fmt} image; FLUX.2 outputs are PNG or JPEG")
    final = embed_recipe(data, recipe)
    digest = hashlib.sha256(final).hexdigest()
    ext = "png" if fmt == "PNG" else "jpg"
    rel = Path("images") / digest[:2] / f"{digest}.{ext}"
    rel_thumb = Path("thumbs") / digest[:2] / f"{digest}.jpg"
    for target, content in ((rel, final), (rel_thumb, None)):
        path = data_dir / target
        if path.exists():
            continue
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_suffix(path.suffix + ".part")
        tmp.write_bytes(content if content is not None else thumbnail(data))
        tmp.replace(path)
    return StoredImage(digest, rel.as_posix(), rel_thumb.as_posix(), width, height, len(final), fmt.lower())
