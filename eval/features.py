"""Features read back from the index, and their pooling per movie or per clip.

Evaluation never re-encodes video: it scrolls every point of a :class:`ShotStore` with its
``clip`` (shot embedding) and ``scenes`` (label score) vectors and payload into a
:class:`ShotTable`, sorted by movie and shot index. :func:`pool` then averages (or max-pools) the
shot vectors of each movie — or of each fixed-length clip of a movie — the "fstVid" mean pooling
of MovieCLIP's baselines, and :func:`feature_sets` builds the feature types a probe compares.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path
from typing import Any

import numpy as np

from scenesearch.indexer.errors import InputError
from scenesearch.indexer.store.base import VECTOR_CLIP, VECTOR_SCENES, ShotStore
from scenesearch.indexer.stored import ShotRecord


@dataclass
class ShotTable:
    """Every indexed shot: payload columns and vector matrices, rows sorted by (movie, shot)."""

    shot_ids: list[str]
    movie_ids: list[str]
    titles: list[str]
    paths: list[str]
    shot_index: np.ndarray  # int [N]
    start_s: np.ndarray  # float [N]
    end_s: np.ndarray  # float [N]
    genres: list[tuple[str, ...]]
    labels: list[tuple[str, ...]]  # the index's clean weak labels
    vectors: dict[str, np.ndarray] = field(default_factory=dict)  # name -> [N, dim] float32
    meta: dict[str, Any] = field(default_factory=dict)  # the index metadata

    def __len__(self) -> int:
        return len(self.shot_ids)

    @property
    def label_names(self) -> tuple[str, ...]:
        """Names of the ``scenes`` vector's dimensions (the index's taxonomy)."""
        labels = (self.meta.get("taxonomy") or {}).get("labels")
        if labels:
            return tuple(labels)
        from scenesearch.indexer.labels import load_taxonomy

        return load_taxonomy().labels

    @cached_property
    def _keys(self) -> dict[str, str]:
        return self.movie_keys()

    @cached_property
    def _movie_arr(self) -> np.ndarray:
        return np.array(self.movie_ids)

    def movie_keys(self) -> dict[str, str]:
        """Every name a user may call a movie by (id, title, file stem, file name, path, each
        also lower-cased) → movie_id. Ambiguous names (two movies titled alike) map to ``""``."""
        keys: dict[str, str] = {}

        def add(k: str, mid: str) -> None:
            for key in {k, k.lower()}:
                if key in keys and keys[key] != mid:
                    keys[key] = ""
                else:
                    keys[key] = mid

        for mid, title, path in dict.fromkeys(
            zip(self.movie_ids, self.titles, self.paths, strict=True)
        ):
            add(mid, mid)
            if title:
                add(title, mid)
            if path:
                p = Path(path)
                add(p.stem, mid)
                add(p.name, mid)
                add(str(p), mid)
        return keys

    def resolve_movie(self, name: str) -> str | None:
        """movie_id for a user's movie name (id, title, stem or path); None when unknown."""
        keys = self._keys
        name = str(name).strip()
        for cand in (name, name.lower(), Path(name).stem, Path(name).stem.lower()):
            mid = keys.get(cand)
            if mid:
                return mid
            if mid == "":
                raise InputError(f"movie name {name!r} is ambiguous in the index; use its movie id")
        return None

    def rows_of_movie(self, movie_id: str) -> np.ndarray:
        return np.flatnonzero(self._movie_arr == movie_id)


def load_shots(
    store: ShotStore, vectors: Sequence[str] = (VECTOR_CLIP, VECTOR_SCENES)
) -> ShotTable:
    """Scroll every point of ``store`` with its named vectors (no re-encoding).

    Raises :class:`InputError` when the index is empty. A vector missing from a point (a backend
    that stores none for it) is an error too: it would silently shift rows.
    """
    recs = list(store.iter_points(with_vectors=list(vectors)))
    if not recs:
        raise InputError("the index holds no shots; index some movies first")
    shots = sorted(((ShotRecord.from_point(r), r.id) for r in recs),
                   key=lambda sr: (sr[0].movie_id, int(sr[0].shot_index)))  # fmt: skip
    mats: dict[str, list[np.ndarray]] = {v: [] for v in vectors}
    for s, _ in shots:
        for v in vectors:
            vec = s.vectors.get(v)
            if vec is None:
                raise InputError(f"shot {s.shot_id} has no {v!r} vector in the index")
            mats[v].append(np.asarray(vec, dtype=np.float32))
    return ShotTable(
        shot_ids=[str(s.shot_id or pid) for s, pid in shots],  # the point id if it has none
        movie_ids=[str(s.movie_id) for s, _ in shots],
        titles=[str(s.title or "") for s, _ in shots],
        paths=[str(s.path or "") for s, _ in shots],
        shot_index=np.array([int(s.shot_index) for s, _ in shots]),
        start_s=np.array([float(s.start_s) for s, _ in shots]),
        end_s=np.array([float(s.end_s) for s, _ in shots]),
        genres=[tuple(s.genres or ()) for s, _ in shots],
        labels=[tuple(s.labels or ()) for s, _ in shots],
        vectors={v: np.stack(m) for v, m in mats.items()},
        meta=store.get_meta() or {},
    )


@dataclass
class Pooled:
    """Pooled features: one row per group (a movie, or a clip of a movie)."""

    group_ids: list[str]  # "movie_id" or "movie_id@clipNNN"
    movie_ids: list[str]  # the movie of each group (splits keep a movie's clips together)
    n_shots: np.ndarray  # shots per group
    features: dict[str, np.ndarray]  # "<vector>-<how>" -> [G, dim], e.g. "clip-mean"


def clip_groups(table: ShotTable, clip_s: float | None) -> list[str]:
    """The group id of each shot: its movie, or ``movie@clipNNN`` for fixed windows of
    ``clip_s`` seconds by shot start time (a shot belongs to the window its start falls in)."""
    if not clip_s:
        return list(table.movie_ids)
    if clip_s <= 0:
        raise InputError("clip length must be > 0 seconds")
    return [
        f"{m}@clip{int(math.floor(s / clip_s)):03d}"
        for m, s in zip(table.movie_ids, table.start_s, strict=True)
    ]


def pool(
    table: ShotTable,
    clip_s: float | None = None,
    how: Sequence[str] = ("mean",),
    vectors: Sequence[str] = (VECTOR_CLIP, VECTOR_SCENES),
) -> Pooled:
    """Pool shot vectors per movie (``clip_s`` None) or per clip: mean and/or max over shots.

    The mean is unweighted over shots (fstVid-style: every shot counts once, whatever its
    length), matching mean pooling over MovieCLIP's per-shot features.
    """
    groups = clip_groups(table, clip_s)
    order = list(dict.fromkeys(groups))
    idx = {g: i for i, g in enumerate(order)}
    gi = np.array([idx[g] for g in groups])
    movie_of = {g: m for g, m in zip(groups, table.movie_ids, strict=True)}
    counts = np.bincount(gi, minlength=len(order))
    feats: dict[str, np.ndarray] = {}
    for v in vectors:
        X = table.vectors[v].astype(np.float64)
        for h in how:
            if h == "mean":
                out = np.zeros((len(order), X.shape[1]))
                np.add.at(out, gi, X)
                out /= counts[:, None]
            elif h == "max":
                out = np.full((len(order), X.shape[1]), -np.inf)
                np.maximum.at(out, gi, X)
            else:
                raise InputError(f"unknown pooling {h!r}; available: mean, max")
            feats[f"{v}-{h}"] = out
    return Pooled(order, [movie_of[g] for g in order], counts, feats)


def feature_sets(pooled: Pooled, how: Sequence[str] = ("mean",)) -> dict[str, np.ndarray]:
    """The feature types a probe compares: ``clip``, ``scenes`` and ``clip+scenes`` (the
    concatenation) for mean pooling, with a ``-max`` suffix for max pooling. Each part is
    standardised inside the probe (per training fold), so concatenation needs no weighting."""
    out: dict[str, np.ndarray] = {}
    for h in how:
        sfx = "" if h == "mean" else f"-{h}"
        c, s = (
            pooled.features.get(f"{VECTOR_CLIP}-{h}"),
            pooled.features.get(f"{VECTOR_SCENES}-{h}"),
        )
        if c is not None:
            out[f"clip{sfx}"] = c
        if s is not None:
            out[f"scenes{sfx}"] = s
        if c is not None and s is not None:
            out[f"clip+scenes{sfx}"] = np.hstack([c, s])
    return out
