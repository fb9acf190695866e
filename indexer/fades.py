"""One cut per fade through black (``ShotConfig.merge_fades``).

A fade out to black, the black frames and the fade back in are one transition, but detectors can
cut it more than once: TransNetV2 sees the fade-out and the fade-in as two transitions, the
threshold detector cuts where the picture comes back, the content detector at a hard cut to
black. Here every cut that falls in a *dip* — a run of dark frames (near-black by the rule of
:func:`indexer.thumbnails.is_near_black`: mean and spread of luma at most ``BLACK_LUMA``, here on
the segmenter's 48x27 grey frame) with the brightness ramps (mean luma) that lead into and out
of it — is moved to the dip's end, the first frame that is not dark:
where the threshold detector with ``fade_bias = +1`` cuts, the frame the next shot's picture
appears. Several cuts of one dip thus become one. A dip that runs to the end of the movie has no
next shot: its cuts are dropped (the last shot keeps its fade-out). A dip at the start moves its
cuts to the end of the opening black, where the minimum shot length drops them unless the black
lasts that long (a black leader then a hard cut stays a cut).

A ramp is a run of frames whose brightness rises strictly away from the dark run (a linear fade
does; a steady picture after a hard cut does not, so a hard cut's dip is just its dark frames).
Ramps and dark runs are bounded (``MAX_RAMP_S``, ``MAX_DARK_S``): a longer dark stretch is a
shot of its own and its cuts are left alone; the bounds also bound how long a cut waits here.
Fades through white are left to the detectors: a bright flat picture is too common in footage.

Measured on the transitions benchmark and the annotated corpus clips: docs/shot_detection.md.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import cv2
import numpy as np

from scenesearch.indexer.thumbnails import BLACK_LUMA, near_black

MAX_RAMP_S = 2.5  # longest fade-out or fade-in looked at (the benchmark's fades: 0.25-1 s each)
MAX_DARK_S = 3.0  # longest dark run treated as part of one transition
TOL_FRAMES = 2  # a cut this many frames outside a dip still belongs to it


class FadeMerger:
    """Per-frame brightness in, the dip end a cut belongs to out.

    ``add(brightness, dark)`` for every frame in order (mean luma 0-255, near-black or not); ``ready(c, n, final)`` says whether cut ``c``
    can be decided from the ``n`` frames seen (``final``: the movie has ended); ``home(c, final)``
    is the frame the cut moves to (``c`` itself when it is in no dip), or None to drop it.
    ``ahead`` and ``back`` bound, in frames, how far after a cut the frames needed reach and how
    far before the cut its new place can be.
    """

    def __init__(self, fps: float) -> None:
        self.ramp = max(1, math.ceil(MAX_RAMP_S * fps))
        self.max_dark = max(1, math.ceil(MAX_DARK_S * fps))
        self.ahead = self.ramp + self.max_dark + TOL_FRAMES + 3
        self.back = self.ramp + TOL_FRAMES + 1
        self.lum: list[float] = []
        self.dark: list[bool] = []
        self._base = 0  # frame index of lum[0] (older frames are forgotten)

    def add(self, brightness: float, dark: bool) -> None:
        self.lum.append(float(brightness))
        self.dark.append(bool(dark))

    def add_grey(self, grey: np.ndarray) -> None:
        """One frame as a small luma image (the segmenter's 48x27 grey, BT.601 like
        :func:`indexer.thumbnails.luma_stats`): its mean, and near-black by the same rule."""
        mean, std = (float(x[0][0]) for x in cv2.meanStdDev(grey))
        self.add(mean, near_black(mean, std))

    def forget_before(self, frame: int) -> None:
        """Frames before ``frame`` will never be looked at again."""
        drop = frame - self._base
        if drop > 0:
            del self.lum[:drop]
            del self.dark[:drop]
            self._base = frame

    def ready(self, c: int, n: int, final: bool) -> bool:
        return final or c + self.ahead <= n

    def _v(self, i: int) -> float:
        return self.lum[i - self._base]

    def _is_dark(self, i: int) -> bool:
        return self.dark[i - self._base]

    def home(self, c: int, final: bool) -> int | None:
        n = self._base + len(self.lum)
        lo = max(self._base, c - self.ramp - self.max_dark - TOL_FRAMES)
        hi = min(n - 1, c + self.ramp + TOL_FRAMES + 1)
        best: tuple[int, int | None] | None = None  # (distance, new place)
        for e0, e1 in _dark_runs(self._is_dark, lo, hi, self._base, n):
            if e1 - e0 + 1 > self.max_dark:
                continue
            start = _ramp(self._v, e0 - 1, -1, self.ramp, self._base, n) if e0 > self._base else e0
            if e1 + 1 >= n:  # the dark run reaches the newest frame
                if not final:
                    continue  # longer than max_dark: ready() waited long enough to know
                end, place = n - 1, None
            else:
                end = _ramp(self._v, e1 + 1, +1, self.ramp, self._base, n)
                place = e1 + 1
            if start - TOL_FRAMES <= c <= end + TOL_FRAMES:
                dist = max(e0 - c, 0, c - e1)
                if best is None or dist < best[0]:
                    best = (dist, place)
        return c if best is None else best[1]


def _dark_runs(is_dark, lo: int, hi: int, base: int, n: int) -> list[tuple[int, int]]:
    """Maximal runs of dark frames that touch [lo, hi], extended past it (within the frames
    kept) so their length is known."""
    runs = []
    i = lo
    while i <= hi:
        if not is_dark(i):
            i += 1
            continue
        a = i
        while a > base and is_dark(a - 1):
            a -= 1
        b = i
        while b + 1 < n and is_dark(b + 1):
            b += 1
        runs.append((a, b))
        i = b + 1
    return runs


def _ramp(v, first: int, step: int, limit: int, base: int, n: int) -> int:
    """The far end of the brightness ramp that starts at ``first`` (the first frame outside a
    dark run) and rises strictly going in direction ``step``; ``first`` when the frame after it
    is no brighter (a steady picture)."""
    i = first
    for _ in range(limit):
        j = i + step
        if j < base or j >= n or v(j) <= v(i):
            break
        i = j
    return i


def merge_cuts(
    cuts: Sequence[int], brightness: Sequence[float], fps: float, dark: Sequence[bool] | None = None
) -> list[int]:
    """Whole-movie form (tests, offline checks): the cuts after moving each to its dip's end.
    ``dark`` defaults to brightness at or below the near-black level (flat frames)."""
    m = FadeMerger(fps)
    flags = dark if dark is not None else [b <= BLACK_LUMA for b in brightness]
    for b, d in zip(brightness, flags, strict=True):
        m.add(b, d)
    out = {m.home(c, final=True) for c in cuts}
    return sorted(c for c in out if c is not None and 0 < c < len(brightness))
