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
    movie_id, sep, idx = shot_id.rpartition(":")
    if not sep or not movie_id or not idx.isdigit():
        raise ValueError(f"not a shot id: {shot_id!r} (expected MOVIE_ID:INDEX, e.g. 3fa9c2d1e0b4:0012)")
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


@dataclass
class DecodedMovie:
    """Output of the decode/detect/sample worker for one movie: shots, the sampled frames of each
    shot (uint8 RGB, working size) and one thumbnail frame per shot."""

    movie: Movie
    info: VideoInfo
    shots: list[Shot]
    frames: list[np.ndarray]  # per shot: uint8 [k, H, W, 3] RGB
    thumbs: list[np.ndarray]  # per shot: uint8 [H, W, 3] RGB (middle frame)
    seconds: dict[str, float] = field(default_factory=dict)  # stage timings


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
