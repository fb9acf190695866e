"""Shot stage: PySceneDetect detectors and TransNetV2 (:mod:`indexer.transnet`) driven by our own
decoded frames, one frame at a time. A registry maps names (adaptive, content, hash, histogram,
threshold, transnet) to detector factories; a spec such as ``"content+threshold"`` runs several
and merges their cuts, and ``"transnet:0.3"`` sets a detector's threshold. ``ShotSegmenter`` is the
incremental core: it hands each frame (box-downscaled to ``detect_short_side``, BGR as
PySceneDetect expects) to every detector with an integer-frame ``FrameTimecode``, collects the
cut frames they report (some report late: adaptive by its window, the flash filter by up to the
minimum length, threshold by half a fade, transnet by its 100-frame window and run length), and closes a shot only once no detector can still
report a cut inside it. Two filters act on the reported cuts: the flash filter (a cut whose
picture comes back is dropped) and one cut per fade through black (:mod:`indexer.fades`: every
cut in a dark dip moves to the dip's end). Cuts closer than ``min_shot_s`` to the previous boundary are dropped
(greedy, in time order), and so is a last cut closer than that to the movie's end (a shot comes
out once the next one has lasted ``min_shot_s``); shots reaching ``max_shot_s`` are split as they
stream, so memory stays bounded. Times come from the decoder's timestamps, never frame/fps, so VFR movies
get true ``start_s``/``end_s``. ``detect_shots`` is the standalone path (eval) on the same core.
"""

from __future__ import annotations

import bisect
import math
import os
import time
from array import array
from collections import deque
from fractions import Fraction

import cv2
import numpy as np
from scenedetect import FrameTimecode

from scenesearch.indexer.config import DecodeConfig, ShotConfig
from scenesearch.indexer.decode import VideoReader
from scenesearch.indexer.detectors import apply_spec, detector_entry, parse_detector_spec
from scenesearch.indexer.errors import ConfigError
from scenesearch.indexer.fades import FadeMerger
from scenesearch.indexer.records import Shot, VideoInfo

_EPS = 1e-6  # seconds; float slack when comparing shot lengths with min_shot_s / max_shot_s
# Flash filter (ShotConfig.flash_return_s), on 48x27 grey frames, mean |difference| 0-255: a cut
# is tested only when its jump is at least FLASH_JUMP (fades and dissolves change gently), and is
# a flash when some frame within the window is as close to the picture on the other side of the
# cut as FLASH_RATIO x the jump and FLASH_SAME (the same picture, give or take motion; a flash
# hiding a cut to another shot keeps its cut). On the transitions benchmark's clips a flash's or
# strobe's picture came back within 0.5 s at <= 9 (<= 0.22 x its jump); hard cuts jumped >= 44
# and nothing came back closer than 0.97 x that.
# The small frame: every detection frame area-scaled once to 48x27 (TransNetV2's input size),
# for the flash filter, the fade merger and detectors registered with DetectorEntry.small.
SMALL_SIZE = (48, 27)
FLASH_JUMP = 20.0
FLASH_RATIO = 0.4
FLASH_SAME = 15.0


def min_len_frames(cfg: ShotConfig, fps: float) -> int:
    """The minimum shot length in whole frames at ``fps`` (handed to each detector)."""
    return max(1, math.ceil(cfg.min_shot_s * fps - _EPS))


def detect_factor(width: int, height: int, short_side: int) -> int:
    """Integer box-downscale factor for detection: the short side ends up closest to
    ``short_side`` (never upscaled). An integer factor lets OpenCV's area resize take its fast
    path: 0.03 ms instead of 0.53 ms per 455x256 frame here (it was a third of the decode
    worker's time per frame)."""
    return max(1, round(min(width, height) / short_side))


def detect_size(width: int, height: int, short_side: int) -> tuple[int, int]:
    """Size frames are box-downscaled to before detection (the last ``width % f`` columns and
    ``height % f`` rows are dropped, f = :func:`detect_factor`)."""
    f = detect_factor(width, height, short_side)
    return max(1, width // f), max(1, height // f)


class ShotSegmenter:
    """Incremental shot boundaries for one movie.

    ``push(index, t, rgb)`` for every decoded frame in order, then ``finish(end_t)``; both
    return the shots that became final (in order, tiling the frames with no gap). ``seconds``
    is the time spent detecting (downscale + detectors + bookkeeping).
    """

    def __init__(self, cfg: ShotConfig, fps: float, movie_id: str = "x") -> None:
        names = parse_detector_spec(cfg.detector)
        cfg = apply_spec(cfg)
        if cfg.min_shot_s < 0:
            raise ConfigError(f"min_shot_s must be >= 0, got {cfg.min_shot_s}")
        if cfg.max_shot_s is not None and cfg.max_shot_s <= cfg.min_shot_s:
            raise ConfigError(
                f"max_shot_s ({cfg.max_shot_s}) must be larger than min_shot_s ({cfg.min_shot_s})"
            )
        self.cfg = cfg
        self.movie_id = movie_id
        self.fps = Fraction(fps).limit_denominator(100_000)
        n = min_len_frames(cfg, fps)
        self._entries = [detector_entry(name) for name in names]
        self._detectors = [e.build(cfg, n) for e in self._entries]
        self._times = array("d")  # timestamp of every frame pushed (8 bytes/frame)
        self._pending: set[int] = set()  # reported cut frames not yet final
        self._start = 0  # first frame of the open shot (the last accepted boundary)
        self._ready: deque[int] = deque()  # accepted boundaries whose shot is not yet emitted
        self._emitted = 0  # first frame of the first shot not yet emitted
        self._index = 0  # index of the next Shot
        self._size: tuple[int, int] | None = None
        self._last_tc: FrameTimecode | None = None
        self.horizon = 0  # no cut can be reported before this frame any more
        self.seconds = 0.0
        # Flash filter: frames it looks ahead/back, and small grey frames from _grey_base on.
        self._flash_k = round(cfg.flash_return_s * fps) if cfg.flash_return_s > 0 else 0
        self._grey: deque[np.ndarray] = deque()
        self._grey_base = 0
        # One cut per fade through black (indexer/fades.py): reported cuts wait in _raw until
        # the frames around them are seen, then go to _pending at their dip's end.
        self._fades = FadeMerger(fps) if cfg.merge_fades else None
        self._raw: set[int] = set()
        lags = [e.lag(d) for e, d in zip(self._entries, self._detectors, strict=True)]
        # How far behind the newest frame a shot boundary can be when its shot comes out: the
        # latest a detector reports (an unbounded lag, threshold with fade_bias < 1 in long dark
        # stretches, counts as the minimum length) plus the minimum length the next shot must
        # reach. Frame sources keep this many recent frames whole; beyond it sampling degrades
        # to the nearest frames kept, it never fails.
        self.max_lag = max(n if lag is None else lag for lag in lags) + n + 1 + self._flash_k
        if self._fades:
            self.max_lag += self._fades.ahead + self._fades.back
        # One small frame per frame, for the flash filter, the fade merger and small detectors.
        self._small = bool(self._fades or self._flash_k or any(e.small for e in self._entries))

    # -- frames in ----------------------------------------------------------------------------
    def _prepare(self, rgb: np.ndarray) -> np.ndarray:
        h, w = rgb.shape[:2]
        if self._size is None:
            self._size = detect_size(w, h, self.cfg.detect_short_side)
        if self._size != (w, h):
            sw, sh = self._size
            f = w // sw
            rgb = cv2.resize(rgb[: sh * f, : sw * f], self._size, interpolation=cv2.INTER_AREA)
        # PySceneDetect works on BGR (HSV hue, luma weights and hashes depend on the order).
        return cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR)

    def push(self, index: int, t: float, rgb: np.ndarray) -> list[Shot]:
        t0 = time.perf_counter()
        if index != len(self._times):
            raise ValueError(
                f"frames must be pushed in order: expected {len(self._times)}, got {index}"
            )
        self._times.append(t)
        img = self._prepare(rgb)
        tc = FrameTimecode(index, fps=self.fps)
        self._last_tc = tc
        small = cv2.resize(img, SMALL_SIZE, interpolation=cv2.INTER_AREA) if self._small else None
        for entry, det in zip(self._entries, self._detectors, strict=True):
            for cut in det.process_frame(tc, small if entry.small else img):
                self._report(cut.frame_num)
        horizon = min(
            e.horizon(d, index) for e, d in zip(self._entries, self._detectors, strict=True)
        )
        grey = _grey(small) if (self._fades or self._flash_k) else None
        if self._fades:
            self._fades.add_grey(grey)
            self._settle(final=False)
            # A cut not yet reported or settled is at/after `low`; settled, it moves back at
            # most `back` frames.
            low = min(horizon, *self._raw) if self._raw else horizon
            f = self._fades
            horizon = low - f.back
            f.forget_before(low - f.ahead - f.back - f.max_dark)
        if self._flash_k:
            self._grey.append(grey)
            horizon = min(horizon, index + 1 - self._flash_k)  # a cut needs K frames after it
        self.horizon = max(self.horizon, horizon)
        self._close(self.horizon, len(self._times))
        if self._flash_k:  # later cuts are >= horizon: they look back at most K + 1 frames
            while self._grey_base < self.horizon - self._flash_k - 1:
                self._grey.popleft()
                self._grey_base += 1
        shots = self._emit(t)
        self.seconds += time.perf_counter() - t0
        return shots

    def finish(self, end_t: float | None = None) -> list[Shot]:
        """No more frames: flush detectors and close every remaining shot. ``end_t`` is the
        end time of the last frame (default: last timestamp + 1/fps)."""
        t0 = time.perf_counter()
        n = len(self._times)
        if n == 0:
            return []
        if self._last_tc is not None:
            for det in self._detectors:
                for cut in det.post_process(self._last_tc):
                    self._report(cut.frame_num)
        if self._fades:
            self._settle(final=True)
        if end_t is None:
            end_t = self._times[-1] + 1.0 / float(self.fps)
        self._close(n, n, end_t=end_t)
        if self._ready and end_t - self._times[self._ready[-1]] < self.cfg.min_shot_s - _EPS:
            self._ready.pop()  # the movie ends too soon after the last cut: no tiny last shot
        shots = self._emit(math.inf)
        shots.append(self._shot(self._emitted, n, end_t))
        self._start = self._emitted = n
        self.seconds += time.perf_counter() - t0
        return shots

    # -- bookkeeping ----------------------------------------------------------------------------
    def _report(self, frame: int) -> None:
        if self._fades:
            self._raw.add(frame)
        elif frame > self._start:  # a cut at/before the open shot's start changes nothing
            self._pending.add(frame)

    def _settle(self, final: bool) -> None:
        """Reported cuts whose surroundings are known go to their dip's end (or away)."""
        n = len(self._times)
        for c in sorted(self._raw):
            if not self._fades.ready(c, n, final):
                break
            self._raw.discard(c)
            home = self._fades.home(c, final)
            if home is not None and self._start < home < n:
                self._pending.add(home)

    def _shot(self, a: int, b: int, end_t: float | None = None) -> Shot:
        shot = Shot(
            movie_id=self.movie_id,
            index=self._index,
            start_s=self._times[a],
            end_s=self._times[b] if b < len(self._times) else float(end_t),
            start_frame=a,
            end_frame=b,
        )
        self._index += 1
        return shot

    def _close(self, horizon: int, n: int, end_t: float | None = None) -> None:
        """Accept boundaries that are certain: every reported cut before ``horizon`` (no
        detector can report an earlier one any more) at least min_shot_s after the previous
        boundary, then max-length splits known to be safe."""
        times = self._times
        for c in sorted(c for c in self._pending if c < horizon):
            self._pending.discard(c)
            if self._flash_k and self._is_flash(c):
                continue
            self._split_long(c, times[c])
            if c > self._start and times[c] - times[self._start] >= self.cfg.min_shot_s - _EPS:
                self._accept(c)
        if end_t is not None:
            self._split_long(n, end_t)
        elif horizon > self._start:
            # Any later cut is at frame >= horizon: its time is times[horizon], or at least the
            # newest frame's time when the horizon is the next, not yet decoded frame.
            self._split_long(horizon, times[min(horizon, n - 1)])

    def _is_flash(self, c: int) -> bool:
        """Cut ``c`` jumps by at least FLASH_JUMP and its picture comes back: a frame within
        ``flash_return_s`` after it looks like the frame before it, or one before it like the
        frame after it (a flash, a strobe's bright frames)."""
        g, base, k = self._grey, self._grey_base, self._flash_k

        def d(a: int, b: int) -> float:
            return float(np.abs(g[a - base] - g[b - base]).mean())

        if c - 1 < base:  # cannot happen (cuts come at/after the horizon); keep the cut
            return False
        jump = d(c - 1, c)
        if jump < FLASH_JUMP:
            return False
        last = base + len(g) - 1
        after = (d(c + i, c - 1) for i in range(1, k + 1) if c + i <= last)
        before = (d(c - 1 - i, c) for i in range(1, k + 1) if c - 1 - i >= base)
        near = min(FLASH_RATIO * jump, FLASH_SAME)
        return any(x < near for x in (*after, *before))

    def _accept(self, boundary: int) -> None:
        self._ready.append(boundary)
        self._start = boundary

    def _emit(self, newest_t: float) -> list[Shot]:
        """Shots whose successor already lasts min_shot_s (newest frame that far past its
        start), so the movie's end can no longer make that successor a tiny last shot."""
        out = []
        while self._ready and newest_t - self._times[self._ready[0]] >= self.cfg.min_shot_s - _EPS:
            b = self._ready.popleft()
            out.append(self._shot(self._emitted, b))
            self._emitted = b
        return out

    def _split_long(self, upto: int, next_t: float) -> None:
        """Split the open shot every max_shot_s before frame ``upto``, but only where the piece
        after the split lasts at least min_shot_s until ``next_t`` (the earliest time the next
        boundary can have), so a split never makes a real cut fall to the min-length rule."""
        max_s = self.cfg.max_shot_s
        if max_s is None:
            return
        times = self._times
        while True:
            p = bisect.bisect_left(times, times[self._start] + max_s - _EPS, lo=self._start + 1)
            if p >= upto or next_t - times[p] < self.cfg.min_shot_s - _EPS:
                return
            self._accept(p)


def _grey(small: np.ndarray) -> np.ndarray:
    """The small frame's grey levels, signed (differences of them are taken)."""
    return cv2.cvtColor(small, cv2.COLOR_BGR2GRAY).astype(np.int16)


def detect_shots(
    path: str | os.PathLike,
    shot_cfg: ShotConfig | None = None,
    decode_cfg: DecodeConfig | None = None,
    movie_id: str = "x",
) -> tuple[list[Shot], VideoInfo]:
    """Shots of one movie file (one decode pass, same frames and core as the indexer)."""
    shot_cfg = shot_cfg or ShotConfig()
    reader = VideoReader(path, decode_cfg)
    seg = ShotSegmenter(shot_cfg, reader.fps, movie_id)
    shots: list[Shot] = []
    end_t = None
    for f in reader:
        shots += seg.push(f.index, f.t, f.rgb)
        end_t = f.t + f.duration
    shots += seg.finish(end_t)
    return shots, reader.info
