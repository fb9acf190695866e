"""Typed records passed between pipeline stages (frozen dataclasses, no free-form dicts)."""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field

import numpy as np

# Namespace for deterministic point ids: uuid5(SHOT_NAMESPACE, shot_id).
SHOT_NAMESPACE = uuid.UUID("6d1f3c1e-3a57-4b0e-9a53-5c3e1f0b7a11")


def make_shot_id(movie_id: str, index: int) -> str:
    """Human-readable shot id, ``<movie_id>:<index>`` (index zero-padded to 4 digits)."""
    return f"{movie_id}:{index:04d}"


def point_id(shot_id: str) -> str:
    """Deterministic store point id (UUID string) for a shot id; a rerun overwrites, never duplicates."""
    return str(uuid.uuid5(SHOT_NAMESPACE, shot_id))


def parse_shot_id(shot_id: str) -> tuple[str, int]:
    """Split ``movie:index`` into its parts; raises ValueError with a readable message."""
    from scenesearch.indexer.errors import ShotIdError

    movie_id, sep, idx = shot_id.rpartition(":")
    if not sep or not movie_id or not idx.isdigit():
        raise ShotIdError(
            f"not a shot id: {shot_id!r} (expected MOVIE_ID:INDEX, e.g. 3fa9c2d1e0b4:0012)"
        )
    return movie_id, int(idx)


@dataclass(frozen=True)
class Movie:
    """One input movie. ``movie_id`` is stable across renames (content fingerprint unless the
    manifest gives an id); ``fingerprint`` always is the content fingerprint."""

    movie_id: str
    path: str
    title: str
    fingerprint: str
    size: int
    year: int | None = None
    genres: tuple[str, ...] = ()


@dataclass(frozen=True)
class VideoInfo:
    """What the decoder learned about a movie's video stream."""

    width: int  # display width of the decoded frames (after rotation)
    height: int
    fps: float  # average frame rate (may be nominal for VFR)
    duration_s: float
    n_frames: int  # frames actually decoded
    codec: str
    rotation: int = 0
    corrupt_frames: int = 0
    declared_s: float = 0.0  # duration the container states (0: none)
    truncated: bool = False  # decoded much shorter than declared: the file's tail is missing


@dataclass(frozen=True)
class Shot:
    """A shot: frames [start_frame, end_frame) of the decoded stream, times from their timestamps."""

    movie_id: str
    index: int
    start_s: float
    end_s: float
    start_frame: int
    end_frame: int  # exclusive

    @property
    def shot_id(self) -> str:
        return make_shot_id(self.movie_id, self.index)

    @property
    def duration_s(self) -> float:
        return self.end_s - self.start_s

    @property
    def n_frames(self) -> int:
        return self.end_frame - self.start_frame


# ---- messages from a movie's frame source (decode → detect → sample) to the embedder -------------
# A frame source yields, in order: FrameChunk* / ShotEnd* interleaved, then one MovieEnd. Every
# frame index a ShotEnd names was sent in an earlier FrameChunk of the same movie. Frames are
# uint8 RGB at the decoder's working size (same size for the whole movie).


@dataclass
class FrameChunk:
    """Frames picked for embedding: their decoded-frame indices and pixels [n, H, W, 3]."""

    movie_id: str
    frame_idx: np.ndarray  # int64 [n]
    frames: np.ndarray  # uint8 [n, H, W, 3] RGB


@dataclass
class ShotEnd:
    """A finished shot: which already-sent frames represent it, and its thumbnail frame."""

    shot: Shot
    frame_idx: np.ndarray  # int64 [k], subset of earlier FrameChunk indices, ascending
    thumb: np.ndarray  # uint8 [H, W, 3] RGB, the frame closest to the shot's middle


@dataclass
class MovieEnd:
    """The movie decoded to its end: stream facts, shot count and per-stage seconds."""

    movie_id: str
    info: VideoInfo
    n_shots: int
    seconds: dict[str, float] = field(default_factory=dict)  # e.g. decode, detect, sample


@dataclass(frozen=True)
class LabelScore:
    label: str
    score: float


@dataclass(frozen=True)
class ShotLabels:
    """MovieCLIP weak labels of one shot: the full score vector, its top-k and the clean set."""

    scores: np.ndarray  # [L] mean of per-frame softmax
    top: tuple[LabelScore, ...]
    clean: tuple[str, ...]
