"""Sampling stage and the movie frame source: ONE decode pass feeds the shot detector and the
frame sampler, and ``iter_movie`` turns it into the FrameChunk / ShotEnd / MovieEnd messages of
:mod:`indexer.records`. With ``frames_per_shot = k`` each shot of n frames [a, a+n) is
represented by the frames nearest to ``a + floor((i + 0.5) · n / k)`` for i < k (the centres of k
equal slices; all n frames when n ≤ k). Duration-aware sampling (``frame_interval_s = S``) raises k
per shot to ``clamp(ceil(duration / S), k, max_frames_per_shot)``, so a long take gets a frame
every S seconds instead of three in all (:func:`frames_for_duration`), and adds a frame
``edge_frame_s`` inside each end of the shot when no slice centre is near it (a screenshot taken
just after a cut shows the shot's first moments, which the centres miss; :func:`sample_targets`).
A pick on a near-black
frame is swapped for the nearest held frame that is not (:func:`skip_black`). A shot's end is only known once the detectors report its
cut, possibly late, so the open shot's frames wait in a ``Reservoir``: every s-th frame of the
open shot (s doubles when the buffer is full, so memory is O(capacity) however long the shot),
plus the most recent frames whole, as many as a detector can report late. With
``frames_per_shot = "all"`` every frame is streamed in chunks as decoded and a ShotEnd names them
all. Either way the thumbnail is a buffered frame near the shot's middle that is not faded out
(:mod:`indexer.thumbnails`), and MovieEnd comes
last with the stream facts, shot count and seconds spent per stage (decode, detect, sample).
Seconds are wall time inside each stage, not counting the time the consumer holds a message.
"""

from __future__ import annotations

import math
import time
from collections import deque
from collections.abc import Iterator

import numpy as np

from scenesearch.indexer.config import DecodeConfig, SampleConfig, ShotConfig
from scenesearch.indexer.decode import VideoReader
from scenesearch.indexer.errors import ConfigError
from scenesearch.indexer.records import FrameChunk, Movie, MovieEnd, Shot, ShotEnd
from scenesearch.indexer.shots import ShotSegmenter
from scenesearch.indexer.store.base import VECTOR_FRAMES
from scenesearch.indexer.thumbnails import is_near_black, thumbnail_index

Message = FrameChunk | ShotEnd | MovieEnd

THUMB_FRAMES = 16  # "all" mode: strided frames kept only to pick the thumbnail


def sample_indices(start: int, n: int, k: int) -> list[int]:
    """Ideal frame indices for k frames of a shot [start, start + n): the centre of each of k
    equal slices, ``start + floor((i + 0.5) · n / k)``; every frame when n ≤ k.

    >>> sample_indices(0, 100, 3)
    [16, 50, 83]
    """
    if n <= k:
        return list(range(start, start + n))
    return [start + int((i + 0.5) * n / k) for i in range(k)]


def frames_for_duration(
    duration_s: float, k: int, interval_s: float | None, max_frames: int | None
) -> int:
    """Frames to sample from a shot of ``duration_s`` seconds: one every ``interval_s`` seconds
    (``ceil(duration / interval)``), never fewer than ``k``, at most ``max_frames`` (but never
    below ``k``); just ``k`` when ``interval_s`` is None or 0.

    >>> frames_for_duration(25.0, 3, 2.0, 16), frames_for_duration(1.5, 3, 2.0, 16)
    (13, 3)
    """
    if not interval_s or interval_s <= 0:
        return k
    n = math.ceil(max(0.0, duration_s) / interval_s - 1e-9)
    if max_frames:
        n = min(n, max_frames)
    return max(k, n)


EDGE_GAP = 3.0  # an end frame is added when no slice centre lies within 3 × edge_frame_s of it


def sample_targets(
    start: int, n: int, duration_s: float, k: int, cfg: SampleConfig | None
) -> list[int]:
    """Ideal frame indices of a shot [start, start + n) lasting ``duration_s``: the slice
    centres of :func:`frames_for_duration` frames, plus — with duration-aware sampling and
    ``edge_frame_s`` > 0 — the frames ``edge_frame_s`` inside the shot's first and last frame,
    each only when no centre is within ``EDGE_GAP × edge_frame_s`` of it. Every frame when there
    are no more than the centres' count. The ONE sampling rule: the indexer, the "all" mode's
    frame vectors and the benchmarks' frame counts use it.

    >>> sample_targets(0, 96, 4.0, 3, SampleConfig(edge_frame_s=0.1))  # 4 s at 24 fps
    [2, 16, 48, 80, 93]
    >>> sample_targets(0, 96, 4.0, 3, SampleConfig(edge_frame_s=0))
    [16, 48, 80]
    """
    if cfg is None:
        return sample_indices(start, n, k)
    m = frames_for_duration(duration_s, k, cfg.frame_interval_s, cfg.max_frames_per_shot)
    picks = sample_indices(start, n, m)
    edge = cfg.edge_frame_s or 0.0
    if n <= m or edge <= 0 or not cfg.frame_interval_s or duration_s <= 0:
        return picks
    per = duration_s / n  # seconds per frame
    off, gap = int(round(edge / per)), EDGE_GAP * edge / per
    ends = [start + min(off, n - 1), start + max(0, n - 1 - off)]
    extra = {e for e in ends if min(abs(e - p) for p in picks) > gap}
    return sorted(set(picks) | extra)


def check_sampling(
    frame_interval_s: float | None, max_frames_per_shot: int | None, edge_frame_s: float = 0.0
) -> None:
    """ConfigError for a negative or non-finite interval or edge offset, or a cap below 1."""
    if frame_interval_s is not None and not (
        math.isfinite(frame_interval_s) and frame_interval_s >= 0
    ):
        raise ConfigError(f"frame interval must be ≥ 0 seconds, not {frame_interval_s!r}")
    if max_frames_per_shot is not None and (
        isinstance(max_frames_per_shot, bool) or int(max_frames_per_shot) < 1
    ):
        raise ConfigError(f"max frames per shot must be ≥ 1, not {max_frames_per_shot!r}")
    if edge_frame_s is not None and not (math.isfinite(edge_frame_s) and edge_frame_s >= 0):
        raise ConfigError(f"edge frame offset must be ≥ 0 seconds, not {edge_frame_s!r}")


def vector_frames(shot: Shot, frame_idx: np.ndarray, cfg: SampleConfig) -> np.ndarray:
    """Which of a shot's embedded frames keep their own vector in the index: all of them when
    k frames were sampled; in "all" mode (every frame embedded, for the labels) the
    duration-aware subset — as if sampled with k = 3 — so the index stays small."""
    if parse_frames_per_shot(cfg.frames_per_shot) is not None or len(frame_idx) <= 1:
        return frame_idx
    held = {int(i): None for i in frame_idx.tolist()}
    targets = sample_targets(shot.start_frame, shot.n_frames, shot.duration_s, 3, cfg)
    return np.asarray(_nearest(held, targets), np.int64)


def frame_times(shot: Shot, frame_idx: np.ndarray) -> list[float]:
    """Time in seconds of each frame of a shot (its index mapped linearly onto the shot's
    [start_s, end_s), which is exact for constant frame rate streams)."""
    per = shot.duration_s / max(1, shot.n_frames)
    return [round(shot.start_s + (int(i) - shot.start_frame) * per, 3) for i in frame_idx]


def sampling_meta(cfg: SampleConfig) -> dict:
    """What the index meta records about frame sampling: ``sampling`` (k, interval, cap) and
    ``frame_vectors`` (the multivector's name, or None when shots keep only their mean)."""
    return {
        "sampling": {
            "frames_per_shot": cfg.frames_per_shot,
            "frame_interval_s": cfg.frame_interval_s or None,
            "max_frames_per_shot": cfg.max_frames_per_shot,
            "edge_frame_s": cfg.edge_frame_s or None,
        },
        "frame_vectors": VECTOR_FRAMES if cfg.frame_vectors else None,
    }


def parse_frames_per_shot(value: int | str) -> int | None:
    """k as an int ≥ 1, or None for "all"; anything else is a ConfigError."""
    if isinstance(value, str):
        if value.strip().lower() == "all":
            return None
        if not value.strip().isdigit():
            raise ConfigError(f"frames_per_shot must be a positive integer or 'all', got {value!r}")
        value = int(value)
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ConfigError(f"frames_per_shot must be a positive integer or 'all', got {value!r}")
    return value


class Reservoir:
    """Frames of the open shot in bounded memory: every ``stride``-th frame since ``start``
    (stride doubles whenever more than ``capacity`` are kept) plus the last ``recent`` frames.
    Holds at most ``capacity + recent`` frames, whatever the shot's length."""

    def __init__(self, capacity: int, recent: int) -> None:
        self.capacity = max(2, capacity)
        self.start = 0
        self.stride = 1
        self._kept: dict[int, np.ndarray] = {}
        self._recent: deque[tuple[int, np.ndarray]] = deque(maxlen=max(1, recent))

    def __len__(self) -> int:
        """Frames held (a frame both kept and recent counts once)."""
        return len(self._kept.keys() | {i for i, _ in self._recent})

    def add(self, index: int, rgb: np.ndarray) -> None:
        self._recent.append((index, rgb))
        if (index - self.start) % self.stride == 0:
            self._kept[index] = rgb
            if len(self._kept) > self.capacity:
                self.stride *= 2
                self._kept = {
                    i: x for i, x in self._kept.items() if (i - self.start) % self.stride == 0
                }

    def frames_in(self, a: int, b: int) -> dict[int, np.ndarray]:
        """Held frames with index in [a, b)."""
        got = {i: x for i, x in self._kept.items() if a <= i < b}
        got.update((i, x) for i, x in self._recent if a <= i < b)
        return got

    def shot_frames(self, a: int, b: int) -> dict[int, np.ndarray]:
        """Held frames of the shot [a, b); if none survived (only possible when a detector
        reported the cut later than ``recent`` frames), the single held frame nearest to it."""
        got = self.frames_in(a, b)
        if not got:
            held = self.frames_in(0, 1 << 62)
            nearest = min(held, key=lambda i: (a - i) if i < a else (i - b + 1))
            got = {nearest: held[nearest]}
        return got

    def restart(self, start: int) -> None:
        """The shot before ``start`` closed: forget its frames, keep later ones, stride 1."""
        later = self.frames_in(start, 1 << 62)
        self.start, self.stride = start, 1
        self._kept = {}
        for i in sorted(later):
            if len(self._kept) < self.capacity:
                self._kept[i] = later[i]


def _nearest(held: dict[int, np.ndarray], targets: list[int]) -> list[int]:
    keys = np.fromiter(sorted(held), dtype=np.int64)
    picked = {int(keys[np.argmin(np.abs(keys - t))]) for t in targets}
    return sorted(picked)


def skip_black(held: dict[int, np.ndarray], picks: list[int]) -> list[int]:
    """``picks`` with each near-black frame (a fade's black, a black gap; see
    :func:`indexer.thumbnails.is_near_black`) swapped for the nearest held frame that is not
    near-black and not picked yet; a near-black pick with no such frame left is dropped. A shot
    black throughout keeps its picks. A black frame shows nothing of the shot: as a frame vector it
    matches every dark query equally (a fade made any dark still find that shot), and it adds
    noise to the labels' mean."""
    black = {i for i in picks if is_near_black(held[i])}
    if not black:
        return picks
    free = sorted(i for i in held if i not in picks and not is_near_black(held[i]))
    out = [i for i in picks if i not in black]
    if not out and not free:
        return picks
    for b in sorted(black):
        if free:
            j = min(free, key=lambda i: (abs(i - b), i))
            free.remove(j)
            out.append(j)
    return sorted(out)


class _KSampler:
    """k evenly spaced frames per shot, sent in one FrameChunk just before the shot's ShotEnd."""

    def __init__(
        self, movie_id: str, k: int, capacity: int, recent: int, cfg: SampleConfig | None = None
    ) -> None:
        self.movie_id, self.k = movie_id, k
        # sample_targets decides each shot's frames from it
        self.cfg = cfg = cfg or SampleConfig(frames_per_shot=k, frame_interval_s=None)
        most = max(k, cfg.max_frames_per_shot or k) if cfg.frame_interval_s else k
        # The open region runs up to `recent` frames past the shot's end before the cut is
        # final; the extra capacity keeps shots of up to `capacity` frames exactly sampled.
        self.res = Reservoir(max(capacity, 4 * most) + recent, recent)

    def add(self, index: int, rgb: np.ndarray) -> list[Message]:
        self.res.add(index, rgb)
        return []

    def close(self, shot: Shot) -> list[Message]:
        a, b = shot.start_frame, shot.end_frame
        held = self.res.shot_frames(a, b)
        targets = sample_targets(a, b - a, shot.duration_s, self.k, self.cfg)
        idx = skip_black(held, _nearest(held, targets))
        thumb = held[thumbnail_index(held, a, b)]
        self.res.restart(b)
        frame_idx = np.asarray(idx, dtype=np.int64)
        return [
            FrameChunk(self.movie_id, frame_idx, np.stack([held[i] for i in idx])),
            ShotEnd(shot, frame_idx, thumb),
        ]

    def flush(self) -> list[Message]:
        return []


class _AllSampler:
    """Every frame, streamed in chunks of `chunk` frames as decoded; ShotEnd names them all."""

    def __init__(self, movie_id: str, chunk: int, recent: int) -> None:
        self.movie_id, self.chunk = movie_id, chunk
        self.res = Reservoir(THUMB_FRAMES, recent)  # only for the thumbnail
        self._idx: list[int] = []
        self._frames: list[np.ndarray] = []

    def add(self, index: int, rgb: np.ndarray) -> list[Message]:
        self.res.add(index, rgb)
        self._idx.append(index)
        self._frames.append(rgb)
        return self.flush() if len(self._idx) >= self.chunk else []

    def flush(self) -> list[Message]:
        if not self._idx:
            return []
        msg = FrameChunk(self.movie_id, np.asarray(self._idx, np.int64), np.stack(self._frames))
        self._idx, self._frames = [], []
        return [msg]

    def close(self, shot: Shot) -> list[Message]:
        a, b = shot.start_frame, shot.end_frame
        held = self.res.shot_frames(a, b)
        thumb = held[thumbnail_index(held, a, b)]
        self.res.restart(b)
        # Frames up to the newest decoded one go out first: the ShotEnd may only name sent frames.
        out = self.flush()
        out.append(ShotEnd(shot, np.arange(a, b, dtype=np.int64), thumb))
        return out


def iter_movie(
    movie: Movie,
    decode_cfg: DecodeConfig | None = None,
    shot_cfg: ShotConfig | None = None,
    sample_cfg: SampleConfig | None = None,
) -> Iterator[Message]:
    """The frame source of one movie: FrameChunk* / ShotEnd* interleaved, then one MovieEnd.

    Decodes once (never twice, never re-encodes). Raises InputError for an unusable file or one
    with no decodable frames (before any message when the file cannot be opened).
    """
    shot_cfg = shot_cfg or ShotConfig()
    sample_cfg = sample_cfg or SampleConfig()
    k = parse_frames_per_shot(sample_cfg.frames_per_shot)
    check_sampling(
        sample_cfg.frame_interval_s, sample_cfg.max_frames_per_shot, sample_cfg.edge_frame_s
    )
    reader = VideoReader(movie.path, decode_cfg)
    try:
        seg = ShotSegmenter(shot_cfg, reader.fps, movie.movie_id)
        recent = seg.max_lag + 2  # whole frames for cuts reported late (see ShotSegmenter)
        if k is None:
            chunk = max(1, sample_cfg.chunk_frames)
            sampler: _KSampler | _AllSampler = _AllSampler(movie.movie_id, chunk, recent)
        else:
            sampler = _KSampler(movie.movie_id, k, sample_cfg.buffer_frames, recent, sample_cfg)
        sample_s = 0.0
        n_shots = 0
        end_t: float | None = None
        for f in reader:
            t0 = time.perf_counter()
            out = sampler.add(f.index, f.rgb)
            sample_s += time.perf_counter() - t0
            yield from out
            closed = seg.push(f.index, f.t, f.rgb)
            end_t = f.t + f.duration
            for shot in closed:
                t0 = time.perf_counter()
                out = sampler.close(shot)
                sample_s += time.perf_counter() - t0
                n_shots += 1
                yield from out
        for shot in seg.finish(end_t):
            t0 = time.perf_counter()
            out = sampler.close(shot)
            sample_s += time.perf_counter() - t0
            n_shots += 1
            yield from out
        yield from sampler.flush()
        yield MovieEnd(
            movie.movie_id,
            reader.info,
            n_shots,
            {"decode": reader.decode_s, "detect": seg.seconds, "sample": sample_s},
        )
    finally:
        reader.close()
