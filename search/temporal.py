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

import hashlib
import math
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from scenesearch.indexer.errors import ConfigError
from scenesearch.indexer.records import SHOT_NAMESPACE
from scenesearch.indexer.store import (
    VECTOR_CLIP,
    Filter,
    HasId,
    SearchParams,
    ShotStore,
    StoredRecord,
    TopLabel,
)
from scenesearch.indexer.store.base import matches
from scenesearch.search.engine import Hit, SearchEngine, SearchFilters
from scenesearch.search.validate import MAX_LIMIT, NAME, InputValueError, as_int, check_request

# candidates per step in the first round: 400 rather than 100 because with 100 most unfiltered
# queries needed a second round (CPU per query on 30 k clustered shots, 2 cores: p50 63 vs 88 ms,
# p95 109 vs 130; with a 20 % genre filter p95 75 vs 80 ms)
DEFAULT_DEPTH = 400
MAX_DEPTH = 1600  # deepest round (×4)
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
        raise InputValueError("then", f"{NAME} needs a query for the second shot (text or image)")
    for step in (first, then):  # the same bounds as a plain search (search/validate.py)
        check_request(step.text, limit, 0, None, None, None, 0.5)
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
    """:func:`find_sequences` on query vectors and store filters; pairs are :class:`RecordPair`.

    Each round: (1) join the two candidate lists (A and B both candidates); (2) widen the best
    A candidates forward to find pairs whose B is *not* a B candidate — such a pair scores at
    most ``(score_A + t_B) / 2``, so candidates are taken best first and the widening stops
    once that bound falls below the current ``limit``-th pair; (3) the same backwards for B
    candidates with ``(t_A + score_B) / 2``. Neighbours fetched in a round are kept for the
    next, deeper one.
    """
    if not (within_s >= 0 and math.isfinite(within_s)):
        raise InputValueError("within", f"{NAME} must be a number of seconds ≥ 0, not {within_s!r}")
    limit = as_int(limit, "sequences", 1, MAX_LIMIT)
    try:
        depth = as_int(depth, "depth", 1, MAX_LIMIT)
    except InputValueError as e:
        raise e.noted(" (candidates per step)") from None
    max_depth = as_int(max_depth, "the deepest candidate list", 1, MAX_LIMIT)
    depth = min(depth, max_depth)
    fwd = _Window(store, vb, fb, within_s, forward=True)  # neighbours after A, scored for B
    bwd = _Window(store, va, fa, within_s, forward=False)  # neighbours before B, scored for A
    while True:
        # only the fields the join needs: reading whole payloads was most of the time per shot
        ca = store.search(va, VECTOR_CLIP, fa, limit=depth, params=params, with_payload=BASE)
        cb = store.search(vb, VECTOR_CLIP, fb, limit=depth, params=params, with_payload=BASE)
        # a shot that is not a candidate scores at most the last candidate's score; when a list
        # holds every shot passing its filter, no other shot exists (-inf)
        ta = float(ca[-1].score) if len(ca) >= depth else -math.inf
        tb = float(cb[-1].score) if len(cb) >= depth else -math.inf
        top = _Top(limit)
        for a, b in _join(ca, cb, within_s):
            top.add(a, b)
        for side, cands, other_t in ((fwd, ca, tb), (bwd, cb, ta)):
            i, batch = 0, 64
            while i < len(cands) and other_t > -math.inf:
                if pair_score(float(cands[i].score), other_t) < top.kth():
                    break  # no later candidate can reach the top with a non-candidate
                for c, r in side.pairs(cands[i : i + batch]):
                    top.add(*((c, r) if side.forward else (r, c)))
                i, batch = i + batch, batch * 2
        ranked = top.ranked()
        if ta == -math.inf or tb == -math.inf:
            # every pair was reachable
            return SequenceResult(_full(store, ranked), True, depth, None)
        bound = pair_score(ta, tb)
        exact = len(ranked) >= limit and ranked[limit - 1].score >= bound
        if exact or depth >= max_depth:
            return SequenceResult(_full(store, ranked), exact, depth, bound)
        depth = min(depth * 4, max_depth)


BASE = ("movie_id", "shot_index", "start_s", "end_s")  # payload fields the search reads


def _filter_keys(cond) -> set[str]:
    """Payload keys a filter reads (for :func:`matches` on partial payloads)."""
    if cond is None or isinstance(cond, HasId):
        return set()
    if isinstance(cond, Filter):
        return set().union(*(_filter_keys(c) for c in (*cond.must, *cond.should, *cond.must_not)))
    if isinstance(cond, TopLabel):
        return {"top"}
    return {cond.key}


def _full(store: ShotStore, pairs: list[RecordPair]) -> list[RecordPair]:
    """The pairs with their shots' whole payloads (the search read only a few fields)."""
    recs = {r.id: r for r in store.retrieve([x.id for p in pairs for x in (p.first, p.then)])}

    def full(r: StoredRecord) -> StoredRecord:
        return StoredRecord(r.id, recs[r.id].payload if r.id in recs else r.payload, None, r.score)

    return [RecordPair(full(p.first), full(p.then), p.score, p.gap_s) for p in pairs]


class _Top:
    """The best ``limit`` pairs seen (deduplicated), by (score desc, gap asc)."""

    def __init__(self, limit: int):
        self.limit = limit
        self.pairs: dict[tuple[str, str], RecordPair] = {}
        self._kth = -math.inf
        self._dirty = 0

    def add(self, a: StoredRecord, b: StoredRecord) -> None:
        key = (a.id, b.id)
        if key not in self.pairs:
            self.pairs[key] = RecordPair(a, b, pair_score(float(a.score), float(b.score)),
                                         _gap(a, b))  # fmt: skip
            self._dirty += 1

    def ranked(self) -> list[RecordPair]:
        out = sorted(
            self.pairs.values(),
            key=lambda p: (-p.score, p.gap_s, p.first.payload["movie_id"],
                           p.first.payload["shot_index"], p.then.payload["shot_index"]),
        )[: self.limit]  # fmt: skip
        self.pairs = {(p.first.id, p.then.id): p for p in out}
        self._dirty = 0
        self._kth = out[-1].score if len(out) >= self.limit else -math.inf
        return out

    def kth(self) -> float:
        """The ``limit``-th best score so far (-inf while fewer pairs are known)."""
        if self._dirty:
            self.ranked()
        return self._kth


def _gap(a: StoredRecord, b: StoredRecord) -> float:
    return float(b.payload["start_s"]) - float(a.payload["end_s"])


def _join(ca: list[StoredRecord], cb: list[StoredRecord], within_s: float):
    """Pairs with both shots among the candidates (they carry both scores already)."""
    by_movie: dict[str, list[StoredRecord]] = {}
    for b in cb:
        by_movie.setdefault(b.payload["movie_id"], []).append(b)
    for a in ca:
        for b in by_movie.get(a.payload["movie_id"], ()):
            if b.payload["shot_index"] > a.payload["shot_index"] and _gap(a, b) <= within_s:
                yield a, b


_NS = SHOT_NAMESPACE.bytes


def _pid(movie_id: str, index: int) -> str:
    """``point_id(make_shot_id(movie_id, index))`` (uuid5) without building UUID objects: this
    runs for thousands of neighbours per query (tested equal to ``point_id``)."""
    h = bytearray(hashlib.sha1(_NS + f"{movie_id}:{index:04d}".encode()).digest()[:16])
    h[6] = (h[6] & 0x0F) | 0x50
    h[8] = (h[8] & 0x3F) | 0x80
    x = h.hex()
    return f"{x[:8]}-{x[8:12]}-{x[12:16]}-{x[16:20]}-{x[20:]}"


class _Window:
    """The shots of a candidate's movie within ``within_s`` after it (``forward``) or before it,
    scored against ``vec``; fetched by point id (shot ``i±1``, ``i±2``, ...) with one exact store
    search per batch, first in a window sized from the batch's median shot length, then twice as
    wide for every candidate whose window did not yet reach past ``within_s`` or the movie's end.
    Fetched shots are cached (None: no such shot) for later batches and rounds."""

    def __init__(self, store: ShotStore, vec, flt: Filter | None, within_s: float, forward: bool):
        self.store, self.vec, self.flt = store, vec, flt
        self.within_s, self.forward = within_s, forward
        self.got: dict[tuple[str, int], StoredRecord | None] = {}
        # a neighbour's movie and index are known from its id: read only its times (and what the
        # filter reads); fewer payload fields cost less per shot in the store binding
        self.fields = tuple(sorted({"start_s", "end_s"} | _filter_keys(flt)))
        self.width: dict[str, int] = {}  # candidate id -> neighbours examined

    def _key(self, c: StoredRecord, j: int) -> tuple[str, int]:
        i = int(c.payload["shot_index"])
        return c.payload["movie_id"], (i + j if self.forward else i - j)

    def _reaches(self, c: StoredRecord, r: StoredRecord) -> bool:
        return _gap(*((c, r) if self.forward else (r, c))) <= self.within_s

    def pairs(self, cands: list[StoredRecord]):
        """Yield (candidate, neighbour) for neighbours in the window passing the filter."""
        typical = float(np.median([max(float(c.payload["end_s"]) - float(c.payload["start_s"]),
                                       0.1) for c in cands]))  # fmt: skip
        w0 = max(2, min(64, math.ceil(self.within_s / typical) + 1))
        want = {c.id: max(w0, self.width.get(c.id, 0)) for c in cands}
        pending = list(cands)
        while pending:
            need: dict[str, tuple[str, int]] = {}
            for c in pending:
                for j in range(1, want[c.id] + 1):
                    k = self._key(c, j)
                    if k[1] >= 0 and k not in self.got:
                        need[_pid(*k)] = k
                self.width[c.id] = want[c.id]
            if need:
                for k in need.values():
                    self.got[k] = None
                recs = self.store.search(self.vec, VECTOR_CLIP,
                                         Filter(must=(HasId(tuple(need)),)), limit=len(need),
                                         params=EXACT, with_payload=self.fields)  # fmt: skip
                for r in recs:
                    movie, index = need[r.id]
                    r.payload.update(movie_id=movie, shot_index=index)
                    self.got[(movie, index)] = r
            still = []
            for c in pending:
                edge = self.got.get(self._key(c, self.width[c.id]))
                if edge is not None and self._reaches(c, edge):
                    still.append(c)  # the window may reach further: widen it
                    want[c.id] = self.width[c.id] * 2
            pending = still
        for c in cands:
            for j in range(1, self.width[c.id] + 1):
                r = self.got.get(self._key(c, j))
                if r is None:
                    continue
                if not self._reaches(c, r):
                    break
                if matches(r.id, r.payload, self.flt):
                    yield c, r
