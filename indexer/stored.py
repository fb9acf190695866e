"""Typed records of what an index stores: a ShotRecord per shot point, a MovieRecord per movie and
the IndexMeta of the index — the ONE definition of each stored form.

Each record converts to and from the dict the store keeps (the point payload, the movie state
record, the index metadata) and a ShotRecord also to and from a store point (its payload plus its
named vectors); a Parquet shot-table row is that point (:mod:`indexer.shot_table`: one column per
payload field, typed by ``SHOT_FIELD_TYPES``, plus one column per vector). Reading is tolerant, as
indexes built by earlier versions must still open: a field a stored dict lacks reads as its
default and is left out again when the record is written back, and a field this version does not
know is kept in ``extra`` — so ``from_payload(p).to_payload() == p`` for any stored payload.
tests/test_stored_schema.py fails when a field is added in one place and not the others.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any, ClassVar, TypeVar

import numpy as np

from scenesearch.indexer.records import (
    LabelScore,
    Movie,
    MovieEnd,
    ShotEnd,
    ShotLabels,
    make_shot_id,
    point_id,
)
from scenesearch.indexer.store.base import StoredRecord, StorePoint

R = TypeVar("R", bound="_Stored")


class _Stored:
    """Conversion between a record and its stored dict (see the module docstring)."""

    # fields that are not part of the stored dict
    _NOT_STORED: ClassVar[frozenset[str]] = frozenset({"extra", "absent", "vectors"})

    @classmethod
    def stored_fields(cls) -> tuple[str, ...]:
        """The keys of the stored dict, in the order they are written."""
        return tuple(f.name for f in dataclasses.fields(cls) if f.name not in cls._NOT_STORED)

    @classmethod
    def _from(cls: type[R], d: dict[str, Any], **kw: Any) -> R:
        known = cls.stored_fields()
        values = {k: cls._read(k, d[k]) for k in known if k in d}
        absent = frozenset(k for k in known if k not in d)
        extra = {k: v for k, v in d.items() if k not in known}
        return cls(**values, extra=extra, absent=absent, **kw)  # type: ignore[call-arg]

    def _to(self) -> dict[str, Any]:
        out = {
            k: self._write(k, getattr(self, k))
            for k in self.stored_fields()
            if k not in self.absent  # type: ignore[attr-defined]
        }
        out.update(self.extra)  # type: ignore[attr-defined]
        return out

    @classmethod
    def _read(cls, key: str, value: Any) -> Any:
        return tuple(value) if isinstance(value, list) else value

    @staticmethod
    def _write(key: str, value: Any) -> Any:
        return list(value) if isinstance(value, tuple) else value


# ------------------------------------------------------------------------------ shots
@dataclass(frozen=True)
class ShotRecord(_Stored):
    """One shot point: its payload fields (the filterable, displayable facts of a shot) and its
    named vectors (``clip``: the shot's mean frame embedding; ``scenes``: its label scores;
    ``frames``: its sampled frames' embeddings, only in indexes that keep them)."""

    shot_id: str = ""  # "<movie_id>:<index:04d>"
    movie_id: str = ""
    path: str = ""  # the movie file (absolute)
    title: str = ""
    year: int | None = None
    genres: tuple[str, ...] = ()
    shot_index: int = 0  # 0-based, in time order
    start_s: float = 0.0
    end_s: float = 0.0
    duration_s: float = 0.0
    start_frame: int | None = None  # decoded-frame range [start_frame, end_frame)
    end_frame: int | None = None
    fps: float | None = None  # the stream's average frame rate
    labels: tuple[str, ...] = ()  # clean labels (MovieCLIP thresholds)
    top_labels: tuple[str, ...] = ()  # the top-k label names (keyword index for "any of top k")
    top: tuple[LabelScore, ...] = ()  # the top-k labels with scores, best first (rank = place)
    thumb: str = ""  # thumbnail path relative to the index folder
    model: str = ""  # model id that embedded the shot
    n_frames_used: int | None = None  # frames averaged into the shot vector
    frame_s: tuple[float, ...] | None = None  # times of the "frames" rows (frame vectors only)
    vectors: dict[str, np.ndarray] = field(default_factory=dict, compare=False, repr=False)
    extra: dict[str, Any] = field(default_factory=dict)  # payload fields this version ignores
    absent: frozenset[str] = field(default=frozenset(), repr=False)  # fields a payload lacked

    @classmethod
    def of_shot(cls, movie: Movie, se: ShotEnd, lab: ShotLabels, thumb: str, fps: float,
                model_id: str, frame_s: list[float] | None = None,
                vectors: dict[str, np.ndarray] | None = None) -> ShotRecord:  # fmt: skip
        """The record of a shot just indexed (times rounded to 0.1 ms, scores to 1e-6)."""
        shot = se.shot
        return cls(
            shot_id=make_shot_id(movie.movie_id, shot.index),
            movie_id=movie.movie_id,
            path=movie.path,
            title=movie.title,
            year=movie.year,
            genres=tuple(movie.genres),
            shot_index=shot.index,
            start_s=round(shot.start_s, 4),
            end_s=round(shot.end_s, 4),
            duration_s=round(shot.end_s - shot.start_s, 4),
            start_frame=shot.start_frame,
            end_frame=shot.end_frame,
            fps=fps,
            labels=tuple(lab.clean),
            top_labels=tuple(t.label for t in lab.top),
            top=tuple(LabelScore(t.label, round(t.score, 6)) for t in lab.top),
            thumb=thumb,
            model=model_id,
            n_frames_used=len(se.frame_idx),
            frame_s=None if frame_s is None else tuple(frame_s),
            vectors=dict(vectors or {}),
        )

    @classmethod
    def from_payload(cls, payload: dict[str, Any], vectors: dict | None = None) -> ShotRecord:
        """The record of a stored payload (and the point's vectors, when read)."""
        return cls._from(payload, vectors=dict(vectors or {}))

    @classmethod
    def from_point(cls, point: StorePoint | StoredRecord) -> ShotRecord:
        """The record of a store point (as written or as read back)."""
        return cls.from_payload(point.payload or {}, point.vectors)

    def to_payload(self) -> dict[str, Any]:
        """The store payload (schema version 1), exactly as the indexer writes it: ``frame_s``
        only in indexes that keep frame vectors (a record without frame times leaves it out)."""
        out = self._to()
        if out.get("frame_s", 0) is None:
            del out["frame_s"]
        return out

    def to_point(self) -> StorePoint:
        """The store point: deterministic id from the shot id, named vectors, payload."""
        return StorePoint(point_id(self.shot_id), dict(self.vectors), self.to_payload())

    @classmethod
    def _read(cls, key: str, value: Any) -> Any:
        if key == "top" and value is not None:
            return tuple(LabelScore(t["label"], t["score"]) for t in value)
        return super()._read(key, value)

    @staticmethod
    def _write(key: str, value: Any) -> Any:
        if key == "top" and value is not None:
            return [{"label": t.label, "score": t.score, "rank": r} for r, t in enumerate(value, 1)]
        return _Stored._write(key, value)


# ------------------------------------------------------------------------------ movies
@dataclass(frozen=True)
class MovieRecord(_Stored):
    """A movie's state record, stored once its points are durable (``status`` "done"); a field
    a stored record lacks reads as None."""

    movie_id: str | None = None
    path: str | None = None  # the movie file (absolute)
    title: str | None = None
    year: int | None = None
    genres: tuple[str, ...] | None = None
    fingerprint: str | None = None  # content fingerprint: a changed file is indexed again
    size: int | None = None  # bytes
    status: str | None = None  # "done" once every point of the movie is written
    shots: int | None = None
    duration_s: float | None = None  # decoded duration
    fps: float | None = None
    width: int | None = None
    height: int | None = None
    codec: str | None = None
    corrupt_frames: int | None = None
    truncated: bool | None = None  # decoded much shorter than the container declares
    declared_s: float | None = None  # the duration the container declares (0: none)
    indexed_at: str | None = None  # ISO time, UTC
    extra: dict[str, Any] = field(default_factory=dict)
    absent: frozenset[str] = field(default=frozenset(), repr=False)

    @classmethod
    def of_movie(cls, movie: Movie, end: MovieEnd, n_shots: int) -> MovieRecord:
        """The record of a movie just indexed with ``n_shots`` shots."""
        info = end.info
        return cls(
            movie_id=movie.movie_id,
            path=movie.path,
            title=movie.title,
            year=movie.year,
            genres=tuple(movie.genres),
            fingerprint=movie.fingerprint,
            size=movie.size,
            status="done",
            shots=n_shots,
            duration_s=info.duration_s,
            fps=info.fps,
            width=info.width,
            height=info.height,
            codec=info.codec,
            corrupt_frames=info.corrupt_frames,
            truncated=info.truncated,
            declared_s=info.declared_s,
            indexed_at=datetime.now(timezone.utc).isoformat(timespec="seconds"),
        )

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> MovieRecord:
        """The record of a stored movie state dict."""
        return cls._from(d)

    def to_dict(self) -> dict[str, Any]:
        """The stored movie state dict."""
        return self._to()


# ------------------------------------------------------------------------------ the index
@dataclass(frozen=True)
class IndexMeta(_Stored):
    """How an index was built: checked whenever it is reopened (indexing more, searching)."""

    # (a field a stored meta lacks reads as None)
    sampling: dict[str, Any] | None = None  # frames_per_shot, frame_interval_s, max_frames_per_shot
    frame_vectors: str | None = None  # the frames multivector's name; None: shot means only
    schema_version: int | None = None  # indexer/store SCHEMA_VERSION
    model: str | None = None  # OpenCLIP model name
    pretrained: str | None = None  # weights tag ("random": seeded random weights)
    model_id: str | None = None  # the model identity that must match to add or query
    embed_dim: int | None = None
    model_config_path: str | None = None  # a model config file (tests' tiny model), if any
    weights_path: str | None = None  # a local weights file, if any
    # the rest of the model spec (indexer/model_spec.ModelSpec.to_meta): search restores the
    # encoder from it; older metas lack these fields
    precision: str | None = None  # asked for
    precision_used: str | None = None
    image_size: int | None = None
    image_mean: list[float] | None = None
    image_std: list[float] | None = None
    image_preprocess: str | None = None
    frame_short_side: int | None = None  # the frames' scale (image queries are scaled to it)
    taxonomy: dict[str, Any] | None = None  # source, sha, labels
    prompt: str | None = None  # label prompt template
    logit_scale: float | None = None
    # how many (label, score) pairs each shot keeps: with it, "any of the top k" filters can use
    # the flat top_labels keyword list (see SearchEngine.build_filter)
    top_k: int | None = None
    created: str | None = None  # ISO time, UTC
    scenesearch_version: str | None = None
    extra: dict[str, Any] = field(default_factory=dict)
    absent: frozenset[str] = field(default=frozenset(), repr=False)

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> IndexMeta:
        """The record of a stored index metadata dict."""
        return cls._from(d)

    def to_dict(self) -> dict[str, Any]:
        """The stored index metadata dict."""
        return self._to()

    @classmethod
    def _read(cls, key: str, value: Any) -> Any:
        return value  # nested JSON (taxonomy labels, sampling) is kept as stored

    @staticmethod
    def _write(key: str, value: Any) -> Any:
        return value
