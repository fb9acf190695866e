"""Seeded synthetic shot data, random filters and the brute-force reference for the store tests.

Everything here is plain functions of a seed (``np.random.default_rng(0)`` by default) so that
the two backends and numpy see exactly the same points, queries and filters. The reference answer
of a search is :func:`brute_force_top`: cosine similarity over the points that pass
``base.matches``, computed in float64 with numpy.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from scenesearch.indexer.store.base import (
    VECTOR_CLIP,
    VECTOR_SCENES,
    CollectionSpec,
    Condition,
    Filter,
    HasId,
    MatchAny,
    Range,
    StorePoint,
    TopLabel,
    VectorSpec,
    matches,
)

LABELS: tuple[str, ...] = tuple(
    line.strip()
    for line in (Path(__file__).resolve().parents[1] / "indexer/data/movieclip_taxonomy.txt")
    .read_text()
    .splitlines()
    if line.strip()
)
GENRES = (
    "action", "adventure", "animation", "comedy", "crime", "documentary", "drama", "family",
    "fantasy", "history", "horror", "music", "mystery", "romance", "sci-fi", "thriller", "war",
    "western",
)  # fmt: skip

CLIP_DIM = 64


def spec(clip_dim: int = CLIP_DIM, scenes_dim: int = len(LABELS)) -> CollectionSpec:
    """The collection spec of the test data: "clip" (64-d) and "scenes" (179-d), both cosine."""
    return CollectionSpec(
        [VectorSpec(VECTOR_CLIP, clip_dim), VectorSpec(VECTOR_SCENES, scenes_dim)]
    )


@dataclass
class ShotData:
    """Arrays and payloads of a synthetic index; ``clip`` rows are L2-normalised float32."""

    ids: list[str]
    clip: np.ndarray  # (n, CLIP_DIM)
    scenes: np.ndarray  # (n, len(LABELS))
    payloads: list[dict[str, Any]]
    centers: np.ndarray  # (clusters, CLIP_DIM), unit rows: where the clip vectors cluster

    def points(self) -> list[StorePoint]:
        return [
            StorePoint(i, {VECTOR_CLIP: c, VECTOR_SCENES: s}, p)
            for i, c, s, p in zip(self.ids, self.clip, self.scenes, self.payloads)
        ]


def _zipf_weights(n: int, a: float = 1.1) -> np.ndarray:
    w = 1.0 / np.arange(1, n + 1) ** a
    return w / w.sum()


def make_shots(
    n: int = 3000, clusters: int = 30, movies: int = 40, seed: int = 0, dim: int = CLIP_DIM
) -> ShotData:
    """``n`` shots of ``movies`` movies, clip vectors in ``clusters`` gaussian clusters.

    Payloads look like the indexer's (schema v1): movie_id "m007", shot_id "m007:0012", title,
    year (None for every 7th movie, to exercise nulls), genres (1–3 of 18), shot_index,
    start_s/end_s/duration_s (durations on a 0.25 s grid, so many ties for order_by), top (5
    {"label","score","rank"} objects, labels drawn Zipf-like from the 179 MovieCLIP labels, scores
    descending), top_labels (their names), labels (MovieCLIP's clean set: top-1 if score ≥ 0.4,
    ranks 2–5 if ≥ 0.1) and a nested "source" object with a null inside. Ids are UUIDs from the
    same seed. Deterministic for a given seed.
    """
    rng = np.random.default_rng(seed)
    centers = rng.normal(size=(clusters, dim))
    centers /= np.linalg.norm(centers, axis=1, keepdims=True)
    member = rng.integers(0, clusters, n)
    clip = centers[member] + 0.25 * rng.normal(size=(n, dim)) / np.sqrt(dim) * 4
    clip = (clip / np.linalg.norm(clip, axis=1, keepdims=True)).astype(np.float32)

    label_w = _zipf_weights(len(LABELS))
    movie_w = _zipf_weights(movies, 0.8)
    movie_genres = [
        sorted(rng.choice(len(GENRES), size=rng.integers(1, 4), replace=False).tolist())
        for _ in range(movies)
    ]
    movie_year = [None if k % 7 == 3 else int(rng.integers(1950, 2026)) for k in range(movies)]
    movie_of = rng.choice(movies, size=n, p=movie_w)
    next_index = [0] * movies

    ids, payloads = [], []
    scenes = np.zeros((n, len(LABELS)), dtype=np.float32)
    for j in range(n):
        ids.append(str(uuid.UUID(bytes=rng.bytes(16), version=4)))
        k = int(movie_of[j])
        idx = next_index[k]
        next_index[k] += 1
        labs = rng.choice(len(LABELS), size=5, replace=False, p=label_w)
        scores = np.sort(rng.dirichlet([4.0, 2.0, 1.0, 1.0, 1.0]) * rng.uniform(0.5, 1.0))[::-1]
        scores = np.round(scores, 4)
        scenes[j] = rng.uniform(0, 0.002, len(LABELS))
        scenes[j, labs] = scores
        top = [
            {"label": LABELS[lab], "score": float(s), "rank": r + 1}
            for r, (lab, s) in enumerate(zip(labs, scores))
        ]
        clean = [t["label"] for t in top if (t["rank"] == 1 and t["score"] >= 0.4)]
        clean += [t["label"] for t in top[1:] if t["score"] >= 0.1]
        start = round(idx * 3.0 + float(rng.uniform(0, 1)), 3)
        dur = float(rng.integers(2, 40)) * 0.25
        payloads.append(
            {
                "movie_id": f"m{k:03d}",
                "shot_id": f"m{k:03d}:{idx:04d}",
                "title": f"Movie number {k}",
                "year": movie_year[k],
                "genres": [GENRES[g] for g in movie_genres[k]],
                "shot_index": idx,
                "start_s": start,
                "end_s": round(start + dur, 3),
                "duration_s": dur,
                "top": top,
                "top_labels": [t["label"] for t in top],
                "labels": clean,
                "source": {"fps": 24.0, "codec": "h264", "note": None, "tags": ["a", "b"]},
            }
        )
    return ShotData(ids, clip, scenes, payloads, centers)


def make_queries(data: ShotData, n: int = 30, seed: int = 1) -> np.ndarray:
    """``n`` query vectors near random cluster centers (not normalised: scale must not matter)."""
    rng = np.random.default_rng(seed)
    c = data.centers[rng.integers(0, len(data.centers), n)]
    q = c + 0.3 * rng.normal(size=c.shape) / np.sqrt(c.shape[1]) * 4
    return (q * rng.uniform(0.5, 3.0, (n, 1))).astype(np.float32)


def random_condition(rng: np.random.Generator, data: ShotData, depth: int = 0) -> Condition:
    """One random condition of any type, on values that occur in ``data`` (so most match some)."""
    p = data.payloads[int(rng.integers(0, len(data.payloads)))]
    kinds = ["movie", "genre", "label", "toplabel", "year", "duration", "hasid", "shot_index"]
    if depth < 2:
        kinds += ["filter", "filter"]
    kind = kinds[int(rng.integers(0, len(kinds)))]
    if kind == "movie":
        others = [data.payloads[int(i)]["movie_id"] for i in rng.integers(0, len(data.ids), 2)]
        return MatchAny("movie_id", tuple({p["movie_id"], *others[: int(rng.integers(0, 3))]}))
    if kind == "genre":
        return MatchAny(
            "genres", tuple(str(g) for g in rng.choice(GENRES, int(rng.integers(1, 3))))
        )
    if kind == "label":
        lab = p["labels"] or p["top_labels"]
        return MatchAny("labels" if p["labels"] else "top_labels", (lab[0],))
    if kind == "toplabel":
        t = p["top"][int(rng.integers(0, 5))]
        return TopLabel(
            t["label"],
            min_score=float(rng.choice([0.0, 0.05, 0.2, 0.4])),
            max_rank=int(rng.choice([1, 2, 3, 5])),
        )
    if kind == "year":  # open on one side; movies with year None never match
        y = int(rng.integers(1960, 2020))
        return Range("year", gte=y) if rng.random() < 0.5 else Range("year", lte=y)
    if kind == "duration":
        d = float(rng.choice([1.0, 2.5, 4.0, 7.5]))
        if rng.random() < 0.3:
            return Range("duration_s", gte=d, lte=d + 1.5)
        return Range("duration_s", gte=d) if rng.random() < 0.5 else Range("duration_s", lte=d)
    if kind == "hasid":
        size = min(int(rng.choice([5, 40, 400])), len(data.ids) // 2)
        return HasId(tuple(str(i) for i in rng.choice(data.ids, size=size, replace=False)))
    if kind == "shot_index":
        return MatchAny("shot_index", tuple(int(x) for x in rng.integers(0, 30, 4)))
    return random_filter(rng, data, depth + 1)


def random_filter(rng: np.random.Generator, data: ShotData, depth: int = 0) -> Filter:
    """A random must/should/must_not Filter, possibly with nested Filters (up to depth 2)."""
    while True:
        f = Filter(
            must=tuple(random_condition(rng, data, depth) for _ in range(int(rng.integers(0, 3)))),
            should=tuple(
                random_condition(rng, data, depth) for _ in range(int(rng.choice([0, 0, 2, 3])))
            ),
            must_not=tuple(
                random_condition(rng, data, depth) for _ in range(int(rng.choice([0, 0, 1])))
            ),
        )
        if not f.is_empty():
            return f


def passing(data: ShotData, flt: Condition | None) -> np.ndarray:
    """Indices of the points that pass ``flt`` according to ``base.matches``."""
    return np.array(
        [j for j, (i, p) in enumerate(zip(data.ids, data.payloads)) if matches(i, p, flt)],
        dtype=np.int64,
    )


def brute_force_top(
    data: ShotData, query: np.ndarray, flt: Condition | None, limit: int, offset: int = 0
) -> tuple[list[str], np.ndarray]:
    """Reference ids and cosine scores of the ``limit`` nearest points passing ``flt``."""
    idx = passing(data, flt)
    q = np.asarray(query, dtype=np.float64)
    q = q / np.linalg.norm(q)
    sims = data.clip[idx].astype(np.float64) @ q
    order = np.argsort(-sims, kind="stable")[offset : offset + limit]
    return [data.ids[int(idx[o])] for o in order], sims[order]
