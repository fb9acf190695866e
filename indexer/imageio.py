"""Small image helpers: load a still as RGB at the decoder's working size; write thumbnails."""

from __future__ import annotations

import io
import os
from pathlib import Path

import numpy as np
from PIL import Image, UnidentifiedImageError

from indexer.errors import InputError

WORKING_SHORT_SIDE = 256  # must match DecodeConfig.short_side's default


def load_rgb(image, short_side: int = WORKING_SHORT_SIDE) -> np.ndarray:
    """A PIL image, path, raw bytes or uint8 array → uint8 [H, W, 3] RGB with short side
    ``short_side`` (never upscaled), like a frame coming out of the decoder."""
    if isinstance(image, np.ndarray):
        im = Image.fromarray(image.astype(np.uint8))
    elif isinstance(image, Image.Image):
        im = image
    else:
        try:
            if isinstance(image, (bytes, bytearray)):
                im = Image.open(io.BytesIO(image))
            elif isinstance(image, (str, os.PathLike)):
                if not Path(image).is_file():
                    raise InputError(f"image not found: {image}")
                im = Image.open(image)
            else:
                raise InputError(f"unsupported image type: {type(image).__name__}")
            im.load()
        except (UnidentifiedImageError, OSError) as e:
            raise InputError(f"not a readable image: {e}") from e
    im = im.convert("RGB")
    w, h = im.size
    if min(w, h) > short_side:
        scale = short_side / min(w, h)
        im = im.resize((max(1, round(w * scale)), max(1, round(h * scale))), Image.BILINEAR)
    return np.array(im, dtype=np.uint8)  # a writable copy


def jpeg_bytes(rgb: np.ndarray, width: int = 400, quality: int = 85) -> bytes:
    """A uint8 RGB frame as JPEG bytes of the given width (aspect kept)."""
    im = Image.fromarray(rgb)
    w, h = im.size
    if w != width:
        im = im.resize((width, max(1, round(h * width / w))), Image.BICUBIC)
    buf = io.BytesIO()
    im.save(buf, "JPEG", quality=quality)
    return buf.getvalue()


def write_jpeg(
    rgb: np.ndarray, path: str | os.PathLike, width: int = 400, quality: int = 85
) -> str:
    """Write a uint8 RGB frame as a JPEG of the given width (aspect kept); returns the path.
    Written to a temporary name then renamed, so a crash never leaves a half-written file."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp.jpg")
    tmp.write_bytes(jpeg_bytes(rgb, width, quality))
    os.replace(tmp, path)
    return str(path)
