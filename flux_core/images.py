"""Where an image lands on disk: stored by content hash, with a thumbnail, the recipe embedded.

The recipe goes into the file without re-encoding it: an iTXt chunk in a PNG, COM segments in a
JPEG. It holds the request parameters and ids, never the API key.
"""

from __future__ import annotations

import hashlib
import io
import json
import struct
import zlib
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from PIL import Image, ImageDraw, UnidentifiedImageError

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


def inspect(data: bytes) -> tuple[str, int, int]:
    """(format, width, height) of real image bytes, or ImageProblem."""
    try:
        with Image.open(io.BytesIO(data)) as im:
            im.verify()
        with Image.open(io.BytesIO(data)) as im:
            return str(im.format), im.width, im.height
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError):
        formats = ", ".join(list(REFERENCE_FORMATS)[:-1]) + " or " + list(REFERENCE_FORMATS)[-1]
        raise ImageProblem(f"not a readable image: expected {formats}") from None


def check_reference(data: bytes, name: str = "image") -> str:
    """Validate a local reference image; return its MIME type."""
    if len(data) > MAX_REFERENCE_BYTES:
        raise ImageProblem(
            f"{name} is {len(data) / 1e6:.1f} MB; the limit is {MAX_REFERENCE_BYTES // 2**20} MB"
        )
    Image.MAX_IMAGE_PIXELS = MAX_REFERENCE_PIXELS
    try:
        fmt, width, height = inspect(data)
    except ImageProblem as exc:
        raise ImageProblem(f"{name} is {exc}") from None
    except Image.DecompressionBombError:
        raise ImageProblem(
            f"{name} has too many pixels (limit {MAX_REFERENCE_PIXELS // 1_000_000} MP)"
        ) from None
    if fmt not in REFERENCE_FORMATS:
        raise ImageProblem(f"{name} is {fmt}; allowed: {', '.join(REFERENCE_FORMATS)}")
    if width * height > MAX_REFERENCE_PIXELS:
        raise ImageProblem(f"{name} has too many pixels (limit {MAX_REFERENCE_PIXELS // 1_000_000} MP)")
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
    with Image.open(io.BytesIO(data)) as im:
        im = im.convert("RGB")
        im.thumbnail((size, size))
        out = io.BytesIO()
        im.save(out, "JPEG", quality=D.THUMBNAIL_QUALITY, optimize=True)
        return out.getvalue()


def store(data_dir: Path, data: bytes, recipe: dict[str, Any]) -> StoredImage:
    """Verify the image, embed its recipe, write it under images/ by content hash, with a thumbnail."""
    fmt, width, height = inspect(data)
    if fmt not in ("PNG", "JPEG"):
        raise ImageProblem(f"the server sent a {fmt} image; expected PNG or JPEG")
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


def wipe(image_a: Path, image_b: Path, position: float) -> Image.Image:
    """A over B: the left `position` (0..1) of the frame shows A, the rest B, with a divider."""
    with Image.open(image_a) as a, Image.open(image_b) as b:
        a, b = a.convert("RGB"), b.convert("RGB")
        if b.size != a.size:
            b = b.resize(a.size)
        out = b.copy()
        cut = int(round(a.width * min(1.0, max(0.0, position))))
        if cut:
            out.paste(a.crop((0, 0, cut, a.height)), (0, 0))
        ImageDraw.Draw(out).line(
            [(cut, 0), (cut, a.height)], fill=(255, 255, 255), width=max(2, a.width // 256)
        )
        return out
