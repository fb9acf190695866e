"""Sequence queries ("A then B", search/temporal.py) against a brute-force reference over ALL
shot pairs, on seeded random data in both store backends: clustered vectors, movies of contiguous
shots with random lengths, random filters per step (tests/store_fixtures.random_filter).

The reference: every pair (A, B) of one movie with B.shot_index > A.shot_index, B.start_s −
A.end_s ≤ within, A passing filter A and B filter B, scored (cos(A, qa) + cos(B, qb)) / 2 in
float64. Whenever the search says ``exact`` its list must equal the reference's top (scores
within 1e-5); with a depth large enough to cover every shot it must always be exact.
"""

from __future__ import annotations

import numpy as np
import pytest

from scenesearch.indexer.errors import ConfigError
from scenesearch.indexer.records import point_id
from scenesearch.indexer.store import VECTOR_CLIP
from scenesearch.indexer.store.base import matches
from scenesearch.search.temporal import pair_score, sequences_for_vectors
from tests.store_fixtures import make_queries, make_shots, random_filter, spec

N = 1500
MOVIES = 12


@pytest.fixture(scope="module")
def data():
    """1,500 shots in 12 movies (Zipf sizes), 30 vector clusters; each movie's shots are
    contiguous (shot i+1 starts where shot i ends) with lengths 0.5–9.75 s; point ids are the
    indexer's (uuid5 of the shot id), which the window lookup relies on."""
    d = make_shots(N, clusters=30, movies=MOVIES, seed=3)
    ends: dict[str, float] = {}
    order = sorted(range(N), key=lambda j: (d.payloads[j]["movie_id"],
                                           d.payloads[j]["shot_index"]))  # fmt: skip
    for j in order:
        p = d.payloads[j]
        start = ends.get(p["movie_id"], 0.0)
        p["start_s"], p["end_s"] = round(start, 3), round(start + p["duration_s"], 3)
        ends[p["movie_id"]] = p["end_s"]
        d.ids[j] = point_id(p["shot_id"])
    return d


@pytest.fixture(scope="module", params=["edge", "server"])
def store(request, data, tmp_path_factory):
    if request.param == "edge":
        from scenesearch.indexer.store.edge import EdgeStore

        s = EdgeStore(str(tmp_path_factory.mktemp("temporal") / "index"))
    else:
        from scenesearch.indexer.store.server import ServerStore

        s = ServerStore(":memory:", collection="shots")
    s.create(spec())
    s.upsert(data.points())
    s.flush()
    s.optimize()
    yield s
    s.close()


def brute_force(data, qa, qb, fa, fb, within: float, k: int):
    """Top ``k`` (score, gap, shot id A, shot id B) over every valid pair (module docstring)."""
    sa = data.clip.astype(np.float64) @ (qa / np.linalg.norm(qa))
    sb = data.clip.astype(np.float64) @ (qb / np.linalg.norm(qb))
    pa = [matches(i, p, fa) for i, p in zip(data.ids, data.payloads)]
    pb = [matches(i, p, fb) for i, p in zip(data.ids, data.payloads)]
    by_movie: dict[str, list[int]] = {}
    for j, p in enumerate(data.payloads):
        by_movie.setdefault(p["movie_id"], []).append(j)
    out = []
    for js in by_movie.values():
        js.sort(key=lambda j: data.payloads[j]["shot_index"])
        for x, a in enumerate(js):
            if not pa[a]:
                continue
            for b in js[x + 1 :]:
                gap = data.payloads[b]["start_s"] - data.payloads[a]["end_s"]
                if gap > within:
                    break
                if pb[b]:
                    out.append((pair_score(sa[a], sb[b]), gap, data.payloads[a]["shot_id"],
                                data.payloads[b]["shot_id"]))  # fmt: skip
    out.sort(key=lambda t: (-t[0], t[1]))
    return out[:k]


def check_same(got, ref):
    """Same scores in order (1e-5), and the same pairs except among exact ties."""
    assert len(got) == len(ref)
    gs = [p.score for p in got]
    np.testing.assert_allclose(gs, [r[0] for r in ref], atol=1e-5)
    ids = [(p.first.payload["shot_id"], p.then.payload["shot_id"]) for p in got]
    last = ref[-1][0] if ref else None
    strict = {(r[2], r[3]) for r in ref if last is None or r[0] > last + 1e-5}
    assert strict <= set(ids)


def test_pairs_are_valid_and_scored_right(store, data):
    qs = make_queries(data, 2, seed=11)
    res = sequences_for_vectors(store, qs[0], None, qs[1], None, 10.0, limit=20)
    by_id = {p["shot_id"]: (j, p) for j, p in enumerate(data.payloads)}
    assert len(res.pairs) == 20
    for p in res.pairs:
        ja, a = by_id[p.first.payload["shot_id"]]
        jb, b = by_id[p.then.payload["shot_id"]]
        assert a["movie_id"] == b["movie_id"] and b["shot_index"] > a["shot_index"]
        assert p.gap_s == pytest.approx(b["start_s"] - a["end_s"]) and 0 <= p.gap_s <= 10.0
        cos_a = float(data.clip[ja] @ qs[0]) / float(np.linalg.norm(qs[0]))
        cos_b = float(data.clip[jb] @ qs[1]) / float(np.linalg.norm(qs[1]))
        assert p.score == pytest.approx((cos_a + cos_b) / 2, abs=1e-5)


@pytest.mark.parametrize("within", [0.0, 4.0, 10.0, 30.0])
def test_full_depth_equals_brute_force(store, data, within):
    """With candidates covering every shot, the result is the exact top 10, always."""
    qs = make_queries(data, 8, seed=int(within) + 1)
    for qa, qb in zip(qs[::2], qs[1::2]):
        res = sequences_for_vectors(store, qa, None, qb, None, within, limit=10, depth=N,
                                    max_depth=N)  # fmt: skip
        assert res.exact
        check_same(res.pairs, brute_force(data, qa, qb, None, None, within, 10))


def test_random_filters_per_step_match_brute_force(store, data):
    """Different random filters on each step; default depths: whenever the search says it is
    exact it equals the reference, and the deepest round is exact on this data."""
    rng = np.random.default_rng(5)
    qs = make_queries(data, 24, seed=7)
    proven = 0
    for qa, qb in zip(qs[::2], qs[1::2]):
        fa, fb = random_filter(rng, data), random_filter(rng, data)
        ref = brute_force(data, qa, qb, fa, fb, 10.0, 10)
        res = sequences_for_vectors(store, qa, fa, qb, fb, 10.0, limit=10)
        if res.exact:
            proven += 1
            check_same(res.pairs, ref)
        full = sequences_for_vectors(store, qa, fa, qb, fb, 10.0, limit=10, depth=N, max_depth=N)
        assert full.exact
        check_same(full.pairs, ref)
    assert proven >= 6  # most are proven exact at the default depths


def test_shallow_depth_deepens_until_proven(store, data):
    """Starting from 5 candidates per step the search widens (×4) until the bound proves the
    top 10; the list then equals the reference."""
    qs = make_queries(data, 2, seed=21)
    res = sequences_for_vectors(store, qs[0], None, qs[1], None, 10.0, limit=10, depth=5,
                                max_depth=N)  # fmt: skip
    assert res.exact and res.depth > 5
    check_same(res.pairs, brute_force(data, qs[0], qs[1], None, None, 10.0, 10))
    assert res.bound is None or res.pairs[-1].score >= res.bound


def test_no_pairs_and_bad_window(store, data):
    qs = make_queries(data, 2, seed=4)
    from scenesearch.indexer.store import Filter, MatchAny

    nowhere = Filter(must=(MatchAny("movie_id", ("no-such-movie",)),))
    res = sequences_for_vectors(store, qs[0], nowhere, qs[1], None, 10.0)
    assert res.pairs == [] and res.exact
    with pytest.raises(ConfigError, match="within"):
        sequences_for_vectors(store, qs[0], None, qs[1], None, -1.0)
    assert store.search(qs[0], VECTOR_CLIP, None, limit=1)  # the store still answers


def test_fast_point_ids_equal_the_indexers():
    from scenesearch.search.temporal import _pid

    for movie, i in [("m001", 0), ("3fa9c2d1e0b4", 12), ("night-harbour", 10_000), ("é", 7)]:
        assert _pid(movie, i) == point_id(f"{movie}:{i:04d}")


def test_search_can_read_only_named_payload_fields(store, data):
    """The store option the sequence search relies on, on both backends."""
    q = make_queries(data, 1, seed=2)[0]
    full = store.search(q, VECTOR_CLIP, None, limit=5)
    part = store.search(q, VECTOR_CLIP, None, limit=5, with_payload=["movie_id", "start_s"])
    assert [r.id for r in part] == [r.id for r in full]
    assert all(set(r.payload) == {"movie_id", "start_s"} for r in part)
    assert [r.payload["start_s"] for r in part] == [r.payload["start_s"] for r in full]
    assert all(len(r.payload) > 5 for r in full)
