"""Ranking the shots nearest to a query vector: the store's vector search (filters inside),
best-frame rescoring over the per-frame multivector, grouping per movie and near-duplicate
collapse, fetching more candidates until a page is full; and the time of each shot's
best-matching frame."""

from __future__ import annotations

import numpy as np

from scenesearch.indexer.store import (
    VECTOR_CLIP,
    Filter,
    Rescore,
    SearchParams,
    ShotStore,
    StoredRecord,
)

MAX_CANDIDATES = 5000  # most candidates fetched to fill a page after grouping/dedup
FACET_MOVIES = 1000  # movies counted to tell when grouping has seen every matching movie


class ShotRanking:
    """The ranking half of :class:`search.SearchEngine`, which inherits it: it reads the
    engine's ``store``, ``frame_vector`` (the per-frame multivector, or None) and
    ``frame_candidates`` (shots rescored by their best frame; 0: every matching shot) and
    ``walk_candidates`` (as many under a filter that the store walks HNSW for; 0: no cap)."""

    store: ShotStore
    frame_vector: str | None
    frame_candidates: int
    walk_candidates: int

    def nearest(
        self,
        vec: np.ndarray,
        flt: Filter | None,
        need: int,
        per_movie: int | None = None,
        dedup: float | None = None,
        params: SearchParams | None = None,
        frames: bool = True,
    ) -> list[StoredRecord]:
        """The best shots for a query vector under ``flt`` (from
        :func:`search.filters.build_filter`), grouped and deduplicated as in
        :meth:`search.SearchEngine.search`, best first: more than ``need`` when that many
        exist within ``MAX_CANDIDATES`` candidates, so a caller can tell whether a next page
        exists. With ``frames`` and an index that has frame vectors, a shot's score is its
        best frame's cosine (the nearest ``frame_candidates`` shots by mean vector, rescored)."""
        shaping = per_movie is not None or dedup is not None
        fetch = need + 1 if not shaping else max(4 * need, 50)
        most: int | None = None  # shots grouping can keep at all (per_movie without dedup)
        while True:
            rescore = None
            if frames and self.frame_vector:
                cand = max(self.frame_candidates, 2 * fetch) if self.frame_candidates else 0
                walk = max(self.walk_candidates, 2 * fetch) if self.walk_candidates else 0
                rescore = Rescore(self.frame_vector, cand, walk if cand else 0)
            recs = self.store.search(
                vec, VECTOR_CLIP, flt, limit=fetch,
                with_vectors=[VECTOR_CLIP] if dedup is not None else False, params=params, rescore=rescore,
            )  # fmt: skip
            shaped = shape(recs, per_movie, dedup)
            if len(shaped) > need or len(recs) < fetch or fetch >= MAX_CANDIDATES:
                return shaped
            if per_movie is not None and dedup is None:
                # Fewer movies match than the page asks for (a small index, a narrow filter):
                # once every movie has its quota, fetching more candidates finds nothing new.
                if most is None:
                    most = group_capacity(self.store, flt, per_movie)
                if len(shaped) >= most:
                    return shaped
            fetch = min(fetch * 4, MAX_CANDIDATES)

    def match_times(self, vec: np.ndarray, recs: list[StoredRecord]) -> dict[str, float]:
        """Point id → time (s) of its best-matching frame, for shots with frame vectors: one
        retrieve of the page's frame rows (without payloads: the hits carry ``frame_s``) and a
        dot product per row (rows align with the payload's ``frame_s``)."""
        if not self.frame_vector or not recs:
            return {}
        times_of = {r.id: r.payload.get("frame_s") or [] for r in recs}
        got = self.store.retrieve(list(times_of), [self.frame_vector], with_payload=False)
        out: dict[str, float] = {}
        for r in got:
            times = times_of.get(r.id, [])
            rows = np.asarray((r.vectors or {}).get(self.frame_vector, []), dtype=np.float32)
            if rows.ndim == 2 and len(rows) == len(times) and len(times):
                out[r.id] = float(times[int(np.argmax(rows @ vec))])
        return out


def group_capacity(store: ShotStore, flt: Filter | None, per_movie: int) -> int:
    """How many shots grouping with at most ``per_movie`` per movie can keep under ``flt``
    (``MAX_CANDIDATES`` when more movies match than one facet request lists)."""
    counts = store.facet("movie_id", flt, limit=FACET_MOVIES)
    if len(counts) >= FACET_MOVIES:
        return MAX_CANDIDATES
    return sum(min(int(c), per_movie) for c in counts.values())


def shape(recs: list[StoredRecord], per_movie: int | None, dedup: float | None):
    if per_movie is None and dedup is None:
        return recs
    kept: list[StoredRecord] = []
    per: dict[str, int] = {}
    kept_vecs: dict[str, list[np.ndarray]] = {}
    for r in recs:
        mid = r.payload["movie_id"]
        if per_movie is not None and per.get(mid, 0) >= per_movie:
            continue
        if dedup is not None:
            v = np.asarray(r.vectors[VECTOR_CLIP], dtype=np.float32)
            if any(float(v @ u) >= dedup for u in kept_vecs.get(mid, [])):
                continue
            kept_vecs.setdefault(mid, []).append(v)
        per[mid] = per.get(mid, 0) + 1
        kept.append(r)
    return kept
