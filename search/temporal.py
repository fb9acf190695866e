"""Sequence queries ("A then B"): pairs where a shot matching a first query is followed, in the
same movie and within N seconds, by a shot matching a second query ("a car chase, then a car
crash within 10 s").

Definitions (what the brute-force reference in the tests computes over all shot pairs):

- a **pair** (A, B): two shots of the same movie, B later in the movie (``B.shot_index >
  A.shot_index``; a movie's shots never overlap, so B starts at or after A's end), with the
  **gap** ``B.start_s − A.end_s ≤ within_s`` (0 for the very next shot); A passes the first
  step's filters and B the second's;
- its **score**: the mean of the two cosine similarities, ``(score_A + score_B) / 2`` — each step
  counts equally, and a pair ranks high only when both shots match; ties: smaller gap first.

Search (fast at scale, exact when it can prove it): take the best ``depth`` candidates of each step
from the vector index (filters inside the search); score the shots within the window *after* every
A candidate against query B, and the shots within the window *before* every B candidate against
query A (their point ids follow from the shot ids; one exact store search over those ids per
side); rank every pair found. A pair that was not found has neither shot among the candidates, so
its score is at most ``bound = (t_A + t_B) / 2`` (``t`` = the last candidate's score): when the
``limit``-th pair scores ≥ bound the list is the exact top (given exact candidate lists), and
``exact`` is True. Otherwise the depth grows ×4 up to ``max_depth`` and the result says whether it
was proven.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from indexer.errors import ConfigError
from indexer.records import make_shot_id, point_id
from indexer.store import VECTOR_CLIP, Filter, HasId, SearchParams, ShotStore, StoredRecord
from indexer.store.base import matches
from search.engine import Hit, SearchEngine, SearchFilters

DEFAULT_DEPTH = 100  # candidates per step in the first round
MAX_DEPTH = 1600  # deepest round (×4 steps: 100, 400, 1600)
DEFAULT_WITHIN_S = 10.0
EXACT = SearchParams(exact=True)


@dataclass(frozen=True)
class Step:
    """One step of a sequence query: a text and/or an image (a path, bytes, PIL image or array),
    and the filters its shots must pass (None: no filter)."""

    text: str | None = None
    image: Any = None
    filters: SearchFilters | None = None


@dataclass(frozen=True)
class RecordPair:
    """A pair of stored shots (A first, B then) with its score and gap (store level)."""

    first: StoredRecord
    then: StoredRecord
    score: float
    gap_s: float


@dataclass(frozen=True)
class ShotPair:
    """A sequence hit: shot ``first`` then shot ``then`` (their ``score`` is each step's own)."""

    first: Hit
    then: Hit
    score: float  # (first.score + then.score) / 2
    gap_s: float  # then.start_s - first.end_s

    def to_dict(self) -> dict[str, Any]:
        return {
            "score": self.score,
            "gap_s": round(self.gap_s, 4),
            "first": self.first.to_dict(),
            "then": self.then.to_dict(),
        }


@dataclass
class SequenceResult:
    pairs: list = field(default_factory=list)  # ShotPair (engine level) or RecordPair
    exact: bool = True  # proven to be the exact top (see the module docstring)
    depth: int = 0  # candidates per step of the last round
    bound: float | None = None  # best score a pair not found could have (None: all found)


def pair_score(score_a: float, score_b: float) -> float:
    """The ranking score of a pair: ``(score_a + score_b) / 2``."""
    return (score_a + score_b) / 2.0


def find_sequences(
    engine: SearchEngine,
    first: Step,
    then: Step,
    within_s: float = DEFAULT_WITHIN_S,
    limit: int = 10,
    depth: int = DEFAULT_DEPTH,
    max_depth: int = MAX_DEPTH,
    params: SearchParams | None = None,
) -> SequenceResult:
    """The best ``limit`` pairs "first, then within ``within_s`` seconds" (module docstring)."""
    if first.text is None and first.image is None:
        raise ConfigError("a sequence query needs a first query (text or image)")
    if then.text is None and then.image is None:
        raise ConfigError("--then needs a query for the second shot (text or image)")
    va = engine.query_vector(first.text, first.image)
    vb = engine.query_vector(then.text, then.image)
    fa = engine.build_filter(first.filters)
    fb = engine.build_filter(then.filters)
    res = sequences_for_vectors(
        engine.store, va, fa, vb, fb, within_s, limit, depth, max_depth, params
    )
    res.pairs = [
        ShotPair(engine._hit(p.first), engine._hit(p.then), p.score, p.gap_s) for p in res.pairs
    ]
    return res


def sequences_for_vectors(
    store: ShotStore,
    va: np.ndarray,
    fa: Filter | None,
    vb: np.ndarray,
    fb: Filter | None,
    within_s: float = DEFAULT_WITHIN_S,
    limit: int = 10,
    depth: int = DEFAULT_DEPTH,
    max_depth: int = MAX_DEPTH,
    params: SearchParams | None = None,
) -> SequenceResult:
    """:func:`find_sequences` on query vectors and store filters; pairs are :class:`RecordPair`."""
    if not (within_s >= 0 and math.isfinite(within_s)):
        raise ConfigError(f"--within must be a number of seconds ≥ 0, not {within_s}")
    if limit < 1 or depth < 1:
        raise ConfigError("limit and depth must be ≥ 1")
    depth = min(depth, max(max_depth, 1))
    while True:
        ca = store.search(va, VECTOR_CLIP, fa, limit=depth, params=params)
        cb = store.search(vb, VECTOR_CLIP, fb, limit=depth, params=params)
        pairs: dict[tuple[str, str], RecordPair] = {}
        for a, b in _window_pairs(store, ca, vb, fb, within_s, forward=True):
            pairs[(a.id, b.id)] = RecordPair(a, b, pair_score(a.score, b.score), _gap(a, b))
        for b, a in _window_pairs(store, cb, va, fa, within_s, forward=False):
            pairs.setdefault(
                (a.id, b.id), RecordPair(a, b, pair_score(a.score, b.score), _gap(a, b))
            )
        ranked = sorted(
            pairs.values(),
            key=lambda p: (-p.score, p.gap_s, p.first.payload["movie_id"],
                           p.first.payload["shot_index"], p.then.payload["shot_index"]),
        )  # fmt: skip
        if len(ca) < depth or len(cb) < depth:
            # every shot passing one step's filter is a candidate: every pair was found
            return SequenceResult(ranked[:limit], True, depth, None)
        bound = pair_score(float(ca[-1].score), float(cb[-1].score))
        exact = len(ranked) >= limit and ranked[limit - 1].score >= bound
        if exact or depth >= max_depth:
            return SequenceResult(ranked[:limit], exact, depth, bound)
        depth = min(depth * 4, max_depth)


def _gap(a: StoredRecord, b: StoredRecord) -> float:
    return float(b.payload["start_s"]) - float(a.payload["end_s"])


def _window_pairs(
    store: ShotStore,
    cands: list[StoredRecord],
    vec: np.ndarray,
    flt: Filter | None,
    within_s: float,
    forward: bool,
):
    """For each candidate, the shots of its movie within ``within_s`` after it (``forward``) or
    before it, scored against ``vec`` and passing ``flt``: yields (candidate, neighbour).

    Neighbours are fetched by point id (shot ``i±1``, ``i±2``, ...): first a window sized from
    the candidates' median shot length, then twice as wide for every candidate whose window did
    not yet reach past ``within_s`` or the movie's end."""
    if not cands:
        return
    typical = float(np.median([max(float(c.payload["end_s"]) - float(c.payload["start_s"]),
                                   0.1) for c in cands]))  # fmt: skip
    w0 = max(2, min(64, math.ceil(within_s / typical) + 1))
    got: dict[tuple[str, int], StoredRecord] = {}
    width = {c.id: 0 for c in cands}
    pending = list(cands)
    want = {c.id: w0 for c in cands}
    while pending:
        ids = []
        for c in pending:
            m, i = c.payload["movie_id"], int(c.payload["shot_index"])
            for j in range(width[c.id] + 1, want[c.id] + 1):
                k = i + j if forward else i - j
                if k >= 0:
                    ids.append(point_id(make_shot_id(m, k)))
            width[c.id] = want[c.id]
        ids = list(dict.fromkeys(ids))
        if ids:
            for r in store.search(vec, VECTOR_CLIP, Filter(must=(HasId(tuple(ids)),)),
                                  limit=len(ids), params=EXACT):  # fmt: skip
                got[(r.payload["movie_id"], int(r.payload["shot_index"]))] = r
        still = []
        for c in pending:
            m, i, w = c.payload["movie_id"], int(c.payload["shot_index"]), width[c.id]
            k = i + w if forward else i - w
            edge = got.get((m, k)) if k >= 0 else None
            if edge is not None and _gap(*((c, edge) if forward else (edge, c))) <= within_s:
                still.append(c)  # the window may reach further: widen it
                want[c.id] = w * 2
        pending = still
    for c in cands:
        m, i = c.payload["movie_id"], int(c.payload["shot_index"])
        for j in range(1, width[c.id] + 1):
            r = got.get((m, i + j if forward else i - j))
            if r is None:
                continue
            pair = (c, r) if forward else (r, c)
            if _gap(*pair) <= within_s and matches(r.id, r.payload, flt):
                yield c, r
