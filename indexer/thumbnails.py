"""Which frame of a shot becomes its thumbnail: a representative frame, never a faded-out one.

The middle frame used to be the thumbnail, which is solid black for a shot that fades to black
(the threshold detector puts the cut inside the black, so a fade's shots end or start with many
black frames). Instead, among the frames the sampler holds for the shot (evenly spread over it),
the thumbnail is the one nearest the shot's middle whose luma contrast — the standard deviation of
its luma, a cheap measure of visible detail that is ≈ 0 for black and for flat fades — is at least
half the shot's best. An ordinary shot keeps its middle frame; a fading one gets its clearest
frame near the middle. A shot black throughout keeps its middle frame (nothing better exists).

The thumbnail stage, :func:`write_thumbnails`, writes a movie's chosen frames as JPEGs at
``thumbs/<movie_id>/<shot index:04d>.jpg`` under an index folder or a staging location (the path
each shot's payload names, :func:`thumb_rel`), replacing whatever an earlier run left there.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Sequence

import numpy as np

from scenesearch.indexer.imageio import jpeg_bytes, write_jpeg
from scenesearch.indexer.records import ShotEnd

THUMBS_DIR = "thumbs"  # the thumbnails' folder under an index folder, a staging root or an export

CONTRAST_SHARE = 0.5  # a candidate needs this share of the shot's best luma contrast
MAX_CANDIDATES = 24  # frames measured per shot (evenly spread over the held ones)
STEP = 4  # measure every STEP-th pixel in each direction (the statistics barely change)
BLACK_LUMA = 16.0  # mean luma (0-255) at or below which a frame counts as near-black


def luma_stats(rgb: np.ndarray) -> tuple[float, float]:
    """(mean, standard deviation) of a uint8 RGB frame's luma (BT.601 weights), 0-255."""
    small = rgb[::STEP, ::STEP].astype(np.float32)
    y = small @ np.array([0.299, 0.587, 0.114], np.float32)
    return float(y.mean()), float(y.std())


def near_black(mean, std):
    """The near-black rule on a frame's luma statistics (mean and spread ≤ ``BLACK_LUMA``);
    floats or arrays of them (then elementwise)."""
    return (mean <= BLACK_LUMA) & (std <= BLACK_LUMA)


def is_near_black(rgb: np.ndarray) -> bool:
    """True for a frame that is black or nearly so (mean luma ≤ ``BLACK_LUMA``, little detail)."""
    return near_black(*luma_stats(rgb))


def thumbnail_index(held: dict[int, np.ndarray], start: int, end: int) -> int:
    """The frame index (a key of ``held``, the frames held for shot [start, end)) to use as the
    shot's thumbnail: nearest the middle among the frames with ≥ ``CONTRAST_SHARE`` of the best
    luma contrast; ties in distance go to the earlier frame."""
    keys = sorted(held)
    if len(keys) > MAX_CANDIDATES:
        pick = np.linspace(0, len(keys) - 1, MAX_CANDIDATES).round().astype(int)
        keys = [keys[i] for i in sorted(set(pick.tolist()))]
    middle = start + (end - start) // 2
    contrast = {i: luma_stats(held[i])[1] for i in keys}
    best = max(contrast.values())
    good = [i for i in keys if contrast[i] >= CONTRAST_SHARE * best]
    return min(good, key=lambda i: (abs(i - middle), i))


# ------------------------------------------------------------------------------ the stage
def thumb_rel(movie_id: str, shot_index: int) -> str:
    """A shot's thumbnail path relative to its root (the payload's ``thumb``)."""
    return os.path.join(THUMBS_DIR, movie_id, f"{shot_index:04d}.jpg")


def thumbs_dir(root: str, movie_id: str) -> str:
    """The folder holding one movie's thumbnails under a local ``root`` (an index folder)."""
    return os.path.join(root, THUMBS_DIR, movie_id)


def write_thumbnails(
    shots: Sequence[ShotEnd], root: str, movie_id: str, width: int, quality: int
) -> None:
    """The thumbnail stage: write each shot's thumbnail frame as a JPEG ``width`` wide under
    ``root`` (a local folder, or an fsspec URL such as a Ray staging location), replacing the
    movie's old thumbnails. Each file is written under a temporary name and renamed."""
    if "://" not in str(root):
        shutil.rmtree(thumbs_dir(root, movie_id), ignore_errors=True)
        for se in shots:
            write_jpeg(se.thumb, os.path.join(root, thumb_rel(movie_id, se.shot.index)), width,
                       quality)  # fmt: skip
        return
    # lazy: fsspec and pyarrow are needed only for remote staging, not by every decode worker
    from scenesearch.indexer import shot_table as st

    fs, path = st.url_to_fs(st.thumbs_url(root, movie_id))
    if fs.exists(path):
        fs.rm(path, recursive=True)
    for se in shots:
        rel = thumb_rel(movie_id, se.shot.index).replace(os.sep, "/")
        st.write_bytes_atomic(st.join(root, rel), jpeg_bytes(se.thumb, width, quality))
