"""Small image helpers: load a still as RGB at the decoder's working size; write thumbnails."""

from __future__ import annotations

import io
import os
import warnings
from pathlib import Path

import numpy as np
from PIL import Image, UnidentifiedImageError

from scenesearch.indexer.config import DecodeConfig
from scenesearch.indexer.errors import InputError, printable

# Query stills: a 445 KB PNG can declare 144 megapixels (≈ 1 GB once decoded), so the size in the
# header is checked before any pixel is decoded. 40 MP is above any camera still or 8K frame.
MAX_IMAGE_PIXELS = 40_000_000
MAX_IMAGE_BYTES = 50 << 20  # a query image file larger than this is refused unread


def _check_pixels(w: int, h: int) -> None:
    if w * h > MAX_IMAGE_PIXELS:
        raise InputError(
            f"image too large: {w}×{h} = {w * h / 1e6:.0f} megapixels; at most "
            f"{MAX_IMAGE_PIXELS / 1e6:.0f} megapixels"
        )


def _open_checked(src) -> Image.Image:
    """Image.open (reads the header only), refusing a decompression bomb before decoding."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", Image.DecompressionBombWarning)  # refused below anyway
        try:
            im = Image.open(src)
        except Image.DecompressionBombError as e:
            raise InputError(f"image too large (a decompression bomb?): {e}") from e
    _check_pixels(*im.size)
    return im


def load_rgb(image, short_side: int = DecodeConfig.short_side) -> np.ndarray:
    """A PIL image, path, raw bytes or uint8 array → uint8 [H, W, 3] RGB with short side
    ``short_side`` (never upscaled), like a frame coming out of the decoder. Files that are not
    images, larger than ``MAX_IMAGE_BYTES`` or declaring more than ``MAX_IMAGE_PIXELS`` raise a
    one-line InputError (the pixel count is checked before decoding)."""
    if isinstance(image, np.ndarray):
        if image.ndim < 2 or image.size == 0:
            raise InputError(f"not an image: an array of shape {image.shape}")
        _check_pixels(image.shape[1], image.shape[0])
        im = Image.fromarray(image.astype(np.uint8))
    elif isinstance(image, Image.Image):
        _check_pixels(*image.size)
        im = image
    else:
        try:
            if isinstance(image, (bytes, bytearray)):
                if len(image) > MAX_IMAGE_BYTES:
                    raise InputError(f"image file too large: more than {MAX_IMAGE_BYTES >> 20} MB")
                im = _open_checked(io.BytesIO(image))
            elif isinstance(image, (str, os.PathLike)):
                if not Path(image).is_file():
                    raise InputError(f"image not found: {printable(image)}")
                size = Path(image).stat().st_size
                if size > MAX_IMAGE_BYTES:
                    raise InputError(
                        f"image file too large: {size >> 20} MB; at most {MAX_IMAGE_BYTES >> 20} MB"
                    )
                im = _open_checked(image)
            else:
                raise InputError(f"unsupported image type: {type(image).__name__}")
            # JPEG can decode at 1/2, 1/4 or 1/8 scale directly: far less memory for big photos
            im.draft("RGB", (short_side, short_side))
            im.load()
        except (UnidentifiedImageError, OSError, ValueError, Image.DecompressionBombError) as e:
            raise InputError(f"not a readable image: {printable(e)}") from e
    im = im.convert("RGB")
    w, h = im.size
    if min(w, h) > short_side:
        scale = short_side / min(w, h)
        im = im.resize((max(1, round(w * scale)), max(1, round(h * scale))), Image.BILINEAR)
    return np.array(im, dtype=np.uint8)  # a writable copy


# A thumbnail is at most this many times as tall as it is wide (a 4×1024 video would otherwise
# make a 400×102,400 JPEG, beyond the format's 65,535-pixel limit): taller ones are narrowed.
MAX_THUMB_ASPECT = 4


def thumb_size(w: int, h: int, width: int) -> tuple[int, int]:
    """Thumbnail size for a w×h frame: ``width`` wide, aspect kept, but never more than
    ``MAX_THUMB_ASPECT × width`` tall (then narrower, aspect still kept, at least 1 px)."""
    th = max(1, round(h * width / w))
    if th <= MAX_THUMB_ASPECT * width:
        return width, th
    th = MAX_THUMB_ASPECT * width
    return max(1, round(w * th / h)), th


def jpeg_bytes(rgb: np.ndarray, width: int = 400, quality: int = 85) -> bytes:
    """A uint8 RGB frame as JPEG bytes, ``width`` wide with its aspect kept (see thumb_size)."""
    im = Image.fromarray(rgb)
    w, h = im.size
    tw, th = thumb_size(w, h, width)
    if (tw, th) != (w, h):
        im = im.resize((tw, th), Image.BICUBIC)
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
