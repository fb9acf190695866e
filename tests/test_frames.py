"""Best-frame ranking on every store backend and through the engine, against numpy references.

Seeded synthetic shots carry 1–10 frame vectors each (the multivector "frames", MAX_SIM); some
shots have one frame from another cluster, so ranking by the best frame differs from ranking by
the shot mean. References: :func:`best_frame_top` (every shot passing ``base.matches`` scored by
its best frame's cosine, float64 numpy) and :func:`two_stage_top` (the nearest ``c`` shots by mean
vector, then by best frame — what a prefetch + rescore must return exactly).
"""

from __future__ import annotations

from collections import Counter
from dataclasses import replace

import numpy as np
import pytest
from store_fixtures import (
    CLIP_DIM,
    ShotData,
    brute_force_top,
    make_queries,
    make_shots,
    passing,
    random_filter,
    spec,
)

from scenesearch.indexer.store.base import (
    VECTOR_CLIP,
    VECTOR_FRAMES,
    VECTOR_SCENES,
    CollectionSpec,
    Filter,
    MatchAny,
    Query,
    Rescore,
    SearchParams,
    StorePoint,
    VectorSpec,
)
from scenesearch.indexer.store.edge import EdgeStore, EdgeTuning
from scenesearch.indexer.store.server import ServerStore
from scenesearch.search import SearchEngine

HNSW_TUNING = EdgeTuning(full_scan_threshold_kb=10, indexing_threshold_kb=10)


def frames_spec() -> CollectionSpec:
    return CollectionSpec([*spec().vectors, VectorSpec(VECTOR_FRAMES, CLIP_DIM, multivector=True)])


def add_frames(data: ShotData, seed: int = 5) -> list[np.ndarray]:
    """Per shot 1–10 unit frame vectors around its clip vector (every 5th shot also gets one
    frame near a random other cluster centre); the shot's clip vector becomes their normalised
    mean, as the indexer stores it; payloads get ``frame_s`` (one time per row)."""
    rng = np.random.default_rng(seed)
    frames = []
    for j in range(len(data.ids)):
        n = int(rng.integers(1, 11))
        f = data.clip[j] + 0.35 * rng.normal(size=(n, CLIP_DIM)) / np.sqrt(CLIP_DIM) * 4
        if j % 5 == 0 and n > 1:
            f[int(rng.integers(0, n))] = data.centers[int(rng.integers(0, len(data.centers)))]
        f = (f / np.linalg.norm(f, axis=1, keepdims=True)).astype(np.float32)
        m = f.mean(0)
        data.clip[j] = m / np.linalg.norm(m)
        p = data.payloads[j]
        p["frame_s"] = [round(p["start_s"] + i * 0.5, 3) for i in range(n)]
        frames.append(f)
    return frames


def points(data: ShotData, frames: list[np.ndarray]) -> list[StorePoint]:
    return [
        StorePoint(i, {VECTOR_CLIP: c, VECTOR_SCENES: s, VECTOR_FRAMES: f}, p)
        for i, c, s, f, p in zip(data.ids, data.clip, data.scenes, frames, data.payloads)
    ]


def best_frame_scores(frames, q) -> np.ndarray:
    q = np.asarray(q, np.float64) / np.linalg.norm(q)
    return np.array([float(np.max(f.astype(np.float64) @ q)) for f in frames])


def best_frame_top(data, frames, q, flt, limit):
    """Reference ids and scores: shots passing ``flt`` ranked by their best frame's cosine."""
    idx = passing(data, flt)
    s = best_frame_scores([frames[int(j)] for j in idx], q)
    order = np.argsort(-s, kind="stable")[:limit]
    return [data.ids[int(idx[o])] for o in order], s[order]


def two_stage_top(data, frames, q, flt, limit, candidates):
    """Reference of prefetch + rescore: the ``candidates`` nearest by mean, by best frame."""
    cand_ids, _ = brute_force_top(data, q, flt, candidates)
    pos = {i: j for j, i in enumerate(data.ids)}
    s = best_frame_scores([frames[pos[i]] for i in cand_ids], q)
    order = np.argsort(-s, kind="stable")[:limit]
    return [cand_ids[int(o)] for o in order], s[order]


def assert_same_top(got, ref_ids, ref_scores, context):
    """Same scores rank by rank (1e-4: int8 copies are rescored with the originals) and the
    same ids, except that points with equal scores may swap."""
    assert len(got) == len(ref_ids), context
    np.testing.assert_allclose([h.score for h in got], ref_scores, atol=1e-4, err_msg=str(context))
    for h, rid, rs in zip(got, ref_ids, ref_scores):
        assert h.id == rid or abs(h.score - rs) < 1e-4, context


@pytest.fixture(scope="module")
def data():
    """1,200 shots of 30 movies in 20 clusters (seed 0) with 1–10 frames each (seed 5)."""
    d = make_shots(n=1200, clusters=20, movies=30, seed=0)
    return d, add_frames(d)


@pytest.fixture(scope="module")
def cases(data):
    """20 queries near cluster centres with random filters of every kind (5 also unfiltered)."""
    d, _ = data
    rng = np.random.default_rng(7)
    return [(q, random_filter(rng, d)) for q in make_queries(d, 20, seed=3)]


@pytest.fixture(scope="module", params=["edge", "edge-hnsw", "server"])
def store(request, data, tmp_path_factory):
    """Each backend holding the shots with frame vectors, optimized."""
    d, frames = data
    root = tmp_path_factory.mktemp(request.param)
    if request.param == "server":
        s = ServerStore(":memory:")
    else:
        tuning = HNSW_TUNING if request.param == "edge-hnsw" else None
        s = EdgeStore(str(root / "index"), tuning=tuning)
    s.create(frames_spec())
    pts = points(d, frames)
    for i in range(0, len(pts), 500):
        s.upsert(pts[i : i + 500])
    s.flush()
    s.optimize()
    yield request.param, s
    s.close()


def test_frames_round_trip_as_rows(store, data):
    """Each point's frame rows come back as stored (row count, order, values)."""
    _, s = store
    d, frames = data
    got = s.retrieve(d.ids[:50], with_vectors=[VECTOR_FRAMES])
    for r, f in zip(got, frames[:50]):
        np.testing.assert_allclose(r.vectors[VECTOR_FRAMES], f, atol=1e-6)


def test_direct_rescore_equals_brute_force_best_frame(store, data, cases):
    """Rescore with candidates=0 (every passing shot scored by MAX_SIM) = the numpy best-frame
    reference, on random filters and unfiltered; and it differs from mean-vector ranking."""
    kind, s = store
    d, frames = data
    differs = 0
    for k, (q, flt) in enumerate(cases):
        for f in (flt, None) if k < 5 else (flt,):
            ref_ids, ref_scores = best_frame_top(d, frames, q, f, 10)
            got = s.search(q, flt=f, limit=10, rescore=Rescore(VECTOR_FRAMES, 0))
            assert_same_top(got, ref_ids, ref_scores, (kind, k, f))
            differs += ref_ids != brute_force_top(d, q, f, 10)[0]
    assert differs >= 5  # the data really separates the two rankings


def test_prefetch_rescore(store, data, cases):
    """Prefetch of c=60 by mean + MAX_SIM rescore: exactly the two-stage reference where the
    first stage is exact (edge with exact=True, :memory:); through HNSW + ACORN (edge-hnsw,
    default parameters) recall@10 ≥ 0.9 against it, and never a short list."""
    kind, s = store
    d, frames = data
    recalls = []
    for k, (q, flt) in enumerate(cases):
        ref_ids, ref_scores = two_stage_top(d, frames, q, flt, 10, 60)
        params = None if kind == "edge-hnsw" else SearchParams(exact=True)
        got = s.search(q, flt=flt, limit=10, params=params, rescore=Rescore(VECTOR_FRAMES, 60))
        assert len(got) == len(ref_ids), (kind, k)
        if kind == "edge-hnsw":
            if ref_ids:
                recalls.append(len({h.id for h in got} & set(ref_ids)) / len(ref_ids))
        else:
            assert_same_top(got, ref_ids, ref_scores, (kind, k, flt))
    if kind == "edge-hnsw":
        assert s._shard.info().indexed_vectors_count > 0
        assert np.mean(recalls) >= 0.9, recalls


def test_prefetch_under_a_walked_filter_keeps_walk_candidates(store, data, monkeypatch):
    """A rescore's prefetch is cut to ``walk_candidates`` only where the store walks HNSW under
    the filter: more points pass it (by the engine's estimate) than the full-scan threshold
    lets it scan (edge-hnsw: 10 KB of 64-d vectors = 40 points). Not for a narrow filter, no
    filter, an exact query, production thresholds (edge) or the exact :memory: server."""
    kind, s = store
    d, _ = data
    limits: list[int] = []
    real = s._query
    monkeypatch.setattr(s, "_query", lambda q: limits.append(q.prefetch_limit()) or real(q))
    size = Counter(p["movie_id"] for p in d.payloads)
    by_size = sorted(size, key=size.get)
    broad = Filter(must=(MatchAny("movie_id", tuple(by_size[-10:])),))  # the 10 largest movies
    narrow = Filter(must=(MatchAny("movie_id", (by_size[0],)),))  # the smallest one
    n_narrow, n_broad = size[by_size[0]], sum(size[m] for m in by_size[-10:])
    q, r = d.clip[0], Rescore(VECTOR_FRAMES, 200, 50)
    for flt, params, n in ((broad, None, n_broad), (narrow, None, n_narrow),
                           (None, None, len(d.ids)), (broad, SearchParams(exact=True), n_broad)):  # fmt: skip
        got = s.search(q, flt=flt, limit=10, params=params, rescore=r)
        assert len(got) == min(10, n)
    walks = kind == "edge-hnsw"
    if walks:
        assert s.full_scan_kb * 1024 // (4 * CLIP_DIM) == 40
    assert n_narrow <= 40 < n_broad  # the narrow filter is scanned, the broad one walked
    assert limits[:4] == [50 if walks else 200, 200, 200, 200], limits
    # the cut never goes below the page a query serves
    cut = s.plan(replace(Query(q, flt=broad, limit=80, rescore=r),
                         native_filter=s._filter(broad)))  # fmt: skip
    assert cut.prefetch_limit() == (80 if walks else 200)


def _engine(s, frame_vectors: str | None) -> SearchEngine:
    s.set_meta({"model_id": "test", "embed_dim": CLIP_DIM, "frame_vectors": frame_vectors,
                "taxonomy": {"labels": [], "sha": "x", "source": "test"}})  # fmt: skip
    return SearchEngine(s, "")


def test_engine_ranks_by_best_frame_and_says_when(store, data, cases):
    """The engine's nearest(): best-frame order — exact with frame_candidates=0; with the default
    prefetch (256 by mean), the two-stage reference (recall@10 ≥ 0.9 through HNSW) — and
    match_times = the time of the best row."""
    kind, s = store
    d, frames = data
    eng = _engine(s, VECTOR_FRAMES)
    assert eng.ranking == "frames" and eng.ranking_note is None
    pos = {i: j for j, i in enumerate(d.ids)}
    recalls = []
    for k, (q, flt) in enumerate(cases[:10]):
        ref_ids, ref_scores = best_frame_top(d, frames, q, flt, 10)
        eng.frame_candidates = 0
        exact = eng.nearest(q, flt, 10)[:10]
        assert_same_top(exact, ref_ids, ref_scores, (kind, k))
        eng.frame_candidates = 256
        two_ids, two_scores = two_stage_top(d, frames, q, flt, 10, 256)
        got = eng.nearest(q, flt, 10)[:10]
        if kind == "edge-hnsw":
            if two_ids:  # a filter matching nothing has no recall to measure
                recalls.append(len({h.id for h in got} & set(two_ids)) / len(two_ids))
        else:
            assert_same_top(got, two_ids, two_scores, (kind, k))
        qn = q / np.linalg.norm(q)
        for rid, t in eng.match_times(qn, exact).items():
            p = d.payloads[pos[rid]]
            assert t == p["frame_s"][int(np.argmax(frames[pos[rid]] @ qn))]
    assert not recalls or np.mean(recalls) >= 0.9, recalls


def test_older_index_ranks_by_mean_and_says_so(tmp_path, data, cases):
    """An index without frame vectors (older meta): mean-vector ranking, a note, no match_s."""
    d, _ = data
    s = EdgeStore(str(tmp_path / "old"))
    s.create(spec())
    s.upsert(d.points())
    eng = _engine(s, None)
    try:
        assert eng.ranking == "mean" and "re-index" in eng.ranking_note
        q, flt = cases[0]
        got = eng.nearest(q, flt, 10)[:10]
        ref_ids, ref_scores = brute_force_top(d, q, flt, 10)
        assert [h.id for h in got] == ref_ids
        assert eng.match_times(q, got) == {}
    finally:
        s.close()
