"""SearchEngine on a synthetic index (both store backends): every filter combination equals a
brute-force filter over the payloads (written here independently of the engine's translation),
and grouping, dedup, the score threshold, pagination and browsing behave as documented."""

from __future__ import annotations

import numpy as np
import pytest

from scenesearch.indexer.errors import ConfigError, InputError
from scenesearch.indexer.records import point_id
from scenesearch.indexer.store import SearchParams
from scenesearch.indexer.store.edge import EdgeStore
from scenesearch.indexer.store.server import ServerStore
from scenesearch.search import SearchEngine, SearchFilters
from tests.store_fixtures import GENRES, LABELS, make_shots, spec

N = 1200
EXACT = SearchParams(exact=True)


@pytest.fixture(scope="module")
def data():
    """1,200 synthetic shots of 40 movies (store_fixtures.make_shots, seed 0), with point ids
    re-derived from shot ids exactly as the indexer does, so "more like this" can find them."""
    d = make_shots(N, clusters=20, movies=40, seed=0)
    d.ids = [point_id(p["shot_id"]) for p in d.payloads]
    for p in d.payloads:
        p["thumb"] = f"thumbs/{p['movie_id']}/{p['shot_index']:04d}.jpg"
        p["path"] = f"/movies/{p['movie_id']}.mp4"
    return d


@pytest.fixture(scope="module", params=["edge", "server"])
def engine(request, data, tmp_path_factory):
    root = tmp_path_factory.mktemp(f"idx-{request.param}")
    store = EdgeStore(str(root)) if request.param == "edge" else ServerStore(":memory:")
    store.create(spec())
    store.set_meta(
        {"schema_version": 1, "model": "fake", "pretrained": "random", "model_id": "fake/random",
         "embed_dim": 64, "taxonomy": {"source": "movieclip-179", "sha": "x",
         "labels": list(LABELS)}, "prompt": "{label}", "top_k": 5}
    )  # fmt: skip
    pts = data.points()
    for i in range(0, len(pts), 300):
        store.upsert(pts[i : i + 300])
    for k in range(40):
        store.put_movie({"movie_id": f"m{k:03d}", "title": f"Movie number {k}", "status": "done"})
    store.flush()
    store.optimize()
    eng = SearchEngine(store, str(root))
    yield eng
    eng.close()


def reference_pass(p: dict, f: SearchFilters) -> bool:
    """The documented meaning of SearchFilters, straight from the payload."""

    def has(label: str) -> bool:
        if f.label_source == "clean":
            return label in p["labels"]
        return any(
            t["label"] == label and t["rank"] <= f.label_top_k and t["score"] >= f.label_min_score
            for t in p["top"]
        )

    if f.labels_any and not any(has(x) for x in f.labels_any):
        return False
    if not all(has(x) for x in f.labels_all):
        return False
    if f.genres and not set(f.genres) & set(p["genres"]):
        return False
    if f.movies and p["movie_id"] not in f.movies:
        return False
    if f.year_min is not None or f.year_max is not None:
        y = p["year"]
        if y is None or (f.year_min is not None and y < f.year_min):
            return False
        if f.year_max is not None and y > f.year_max:
            return False
    d = p["duration_s"]
    if f.duration_min is not None and d < f.duration_min:
        return False
    return not (f.duration_max is not None and d > f.duration_max)


def random_filters(rng, data) -> SearchFilters:
    """Random filter combinations over values that occur in the data."""
    common = [lb for lb in LABELS[:25]]
    kw = {}
    if rng.random() < 0.6:
        kw["labels_any"] = tuple(rng.choice(common, size=rng.integers(1, 3), replace=False))
    if rng.random() < 0.25:
        kw["labels_all"] = tuple(rng.choice(common[:6], size=rng.integers(1, 3), replace=False))
    if rng.random() < 0.5:
        kw["label_source"] = "top"
        kw["label_top_k"] = int(rng.integers(1, 6))
        kw["label_min_score"] = float(rng.choice([0.0, 0.05, 0.2]))
    if rng.random() < 0.4:
        kw["genres"] = tuple(rng.choice(GENRES, size=rng.integers(1, 3), replace=False))
    if rng.random() < 0.3:
        kw["movies"] = tuple(f"m{k:03d}" for k in rng.choice(40, size=rng.integers(1, 6)))
    if rng.random() < 0.4:
        lo = int(rng.integers(1950, 2020))
        kw["year_min"], kw["year_max"] = (
            lo,
            (lo + int(rng.integers(0, 30)) if rng.random() < 0.7 else None),
        )
    if rng.random() < 0.4:
        kw["duration_min"] = float(rng.choice([None, 1.0, 3.0]) or 0) or None
        kw["duration_max"] = float(rng.choice([4.0, 8.0]))
    return SearchFilters(**kw)


def test_every_filter_combination_equals_brute_force(engine, data):
    rng = np.random.default_rng(3)
    checked = 0
    for _q in range(60):
        f = random_filters(rng, data)
        like = data.payloads[int(rng.integers(0, N))]["shot_id"]
        qv = data.clip[[p["shot_id"] for p in data.payloads].index(like)]
        ok = np.array([reference_pass(p, f) for p in data.payloads])
        scores = np.where(ok, data.clip.astype(np.float64) @ qv.astype(np.float64), -np.inf)
        order = np.argsort(-scores, kind="stable")[: min(15, int(ok.sum()))]
        res = engine.search(like=like, filters=f, limit=15, params=EXACT)
        got = [h.shot_id for h in res.hits]
        want = [data.payloads[i]["shot_id"] for i in order]
        assert len(got) == len(want), (f, len(got), len(want))
        # equal up to ties: the scores of the hits equal the reference scores
        np.testing.assert_allclose([h.score for h in res.hits], scores[order], atol=1e-5)
        assert set(got) <= {data.payloads[i]["shot_id"] for i in np.flatnonzero(ok)}
        checked += len(want) > 0
    assert checked >= 30  # most random combinations match something


def test_any_of_the_top_k_uses_the_flat_label_list_only_when_it_is_the_same_test(engine, data):
    from scenesearch.indexer.store.base import MatchAny, TopLabel

    labs = (LABELS[3], LABELS[9])
    every = SearchFilters(labels_any=labs, label_source="top")  # top 5, any score
    (cond,) = engine.build_filter(every).must
    assert cond == MatchAny("top_labels", labs)  # the index keeps 5 labels per shot
    for narrower in (
        SearchFilters(labels_any=labs, label_source="top", label_top_k=4),
        SearchFilters(labels_any=labs, label_source="top", label_min_score=0.05),
    ):
        (cond,) = engine.build_filter(narrower).must
        assert all(isinstance(c, TopLabel) for c in cond.should)
    old = SearchEngine(engine.store, engine.index_dir)  # an index from before "top_k" was kept
    old.meta = {k: v for k, v in engine.meta.items() if k != "top_k"}
    (cond,) = old.build_filter(every).must
    assert [c.max_rank for c in cond.should] == [5, 5]
    # both forms select the same shots, and the same as the payloads say
    like = data.payloads[5]["shot_id"]
    want = {p["shot_id"] for p in data.payloads if reference_pass(p, every)}
    assert 50 < len(want) < N
    for eng in (engine, old):
        res = eng.search(like=like, filters=every, limit=N, params=EXACT)
        assert {h.shot_id for h in res.hits} == want


def test_more_like_this_returns_the_shot_first(engine, data):
    for j in (0, 77, 500):
        sid = data.payloads[j]["shot_id"]
        res = engine.search(like=sid, limit=3)
        assert res.hits[0].shot_id == sid and res.hits[0].score == pytest.approx(1.0, abs=1e-4)
    with pytest.raises(InputError, match="no shot m999:0001"):
        engine.search(like="m999:0001")
    with pytest.raises(ValueError, match="not a shot id"):
        engine.search(like="nonsense")


def test_group_by_movie(engine, data):
    sid = data.payloads[5]["shot_id"]
    plain = engine.search(like=sid, limit=200, params=EXACT).hits
    grouped = engine.search(like=sid, limit=20, per_movie=2, params=EXACT).hits
    per = {}
    expect = []
    for h in plain:  # the first 2 of each movie, in ranking order
        if per.get(h.movie_id, 0) < 2:
            per[h.movie_id] = per.get(h.movie_id, 0) + 1
            expect.append(h.shot_id)
    assert [h.shot_id for h in grouped] == expect[:20]
    assert max(np.unique([h.movie_id for h in grouped], return_counts=True)[1]) <= 2


def test_grouping_stops_fetching_once_every_movie_is_in(engine, data, monkeypatch):
    """Asking for more groups than there are movies returns every movie's best shots without
    fetching every shot of the index."""
    sid = data.payloads[9]["shot_id"]
    plain = engine.search(like=sid, limit=N, params=EXACT).hits
    limits: list[int] = []
    store_search = engine.store.search

    def spy(vec, using, flt=None, **kw):
        limits.append(kw["limit"])
        return store_search(vec, using, flt, **kw)

    monkeypatch.setattr(engine.store, "search", spy)
    ten = tuple(f"m{k:03d}" for k in range(10, 20))
    for filters, limit, n_movies in ((None, 45, 40), (SearchFilters(movies=ten), 12, 10)):
        limits.clear()
        res = engine.search(like=sid, limit=limit, per_movie=1, filters=filters, params=EXACT)
        keep = set(ten) if filters else None
        seen: set[str] = set()
        expect = []
        for h in plain:  # each matching movie's best shot, in ranking order
            if (keep is None or h.movie_id in keep) and h.movie_id not in seen:
                seen.add(h.movie_id)
                expect.append(h.shot_id)
        assert [h.shot_id for h in res.hits] == expect and len(expect) == n_movies
        assert res.exhausted
        matching = N if keep is None else 10 * N // 40
        assert max(limits) < matching, limits  # stopped before fetching every matching shot


def test_dedup_zero_keeps_one_shot_per_movie(engine, data):
    """dedup 0 is a valid threshold (it was falsy: no vectors were fetched and the engine
    crashed): every pair of kept shots of one movie has cosine < 0."""
    by_sid = {p["shot_id"]: data.clip[i] for i, p in enumerate(data.payloads)}
    res = engine.search(like=data.payloads[9]["shot_id"], limit=10, dedup=0.0, params=EXACT).hits
    assert res
    for a in range(len(res)):
        for b in range(a):
            if res[a].movie_id == res[b].movie_id:
                assert by_sid[res[a].shot_id] @ by_sid[res[b].shot_id] < 0.0


def test_dedup_collapses_near_duplicates_of_one_movie(engine, data):
    by_sid = {p["shot_id"]: data.clip[i] for i, p in enumerate(data.payloads)}
    sid = data.payloads[9]["shot_id"]
    res = engine.search(like=sid, limit=30, dedup=0.5, params=EXACT).hits
    plain = engine.search(like=sid, limit=400, params=EXACT).hits
    kept = [h.shot_id for h in res]
    for a in range(len(res)):
        for b in range(a):
            if res[a].movie_id == res[b].movie_id:
                assert by_sid[kept[a]] @ by_sid[kept[b]] < 0.5
    # every shot ranked before the last kept one was either kept or has a kept twin (≥ 0.5)
    last = [h.shot_id for h in plain].index(kept[-1])
    for h in plain[:last]:
        if h.shot_id not in kept:
            assert any(
                by_sid[h.shot_id] @ by_sid[k] >= 0.5 - 1e-5
                for k, hk in zip(kept, res)
                if hk.movie_id == h.movie_id
            )
    assert len(kept) < len({h.shot_id for h in plain[: last + 1]})  # something was collapsed


def test_min_score_threshold_and_no_good_match(engine, data):
    sid = data.payloads[3]["shot_id"]
    res = engine.search(like=sid, limit=50, min_score=0.8, params=EXACT)
    assert res.hits and all(h.score >= 0.8 for h in res.hits)
    assert not res.no_good_match
    none = engine.search(
        like=sid, filters=SearchFilters(movies=("m001",)), limit=5, min_score=1.01, params=EXACT
    )
    assert none.hits == [] and none.no_good_match and none.best_score is not None


@pytest.mark.parametrize("shaping", [{}, {"per_movie": 3}, {"dedup": 0.95}])
def test_pagination_equals_one_big_page(engine, data, shaping):
    sid = data.payloads[11]["shot_id"]
    big = [h.shot_id for h in engine.search(like=sid, limit=40, params=EXACT, **shaping).hits]
    pages = []
    for off in range(0, 40, 8):
        res = engine.search(like=sid, limit=8, offset=off, params=EXACT, **shaping)
        pages += [h.shot_id for h in res.hits]
    assert pages == big and len(big) == 40


def test_unknown_names_suggest_close_matches(engine):
    with pytest.raises(ConfigError, match=r"unknown label 'bedrom'; did you mean: bedroom"):
        engine.search(like="m000:0000", filters=SearchFilters(labels_any=("bedrom",)))
    with pytest.raises(ConfigError, match=r"unknown genre 'comdy'; did you mean: comedy"):
        engine.search(like="m000:0000", filters=SearchFilters(genres=("comdy",)))
    with pytest.raises(ConfigError, match=r"unknown movie 'Movie numbr 3'"):
        engine.search(like="m000:0000", filters=SearchFilters(movies=("Movie numbr 3",)))


def test_browse_lists_a_movies_shots_in_time_order(engine, data):
    res = engine.search(filters=SearchFilters(movies=("Movie number 2",)), limit=500)
    want = sorted((p for p in data.payloads if p["movie_id"] == "m002"), key=lambda p: p["start_s"])
    assert res.mode == "browse" and [h.shot_id for h in res.hits] == [p["shot_id"] for p in want]
    assert all(h.score is None for h in res.hits)
    lab = LABELS[0]
    res = engine.search(filters=SearchFilters(labels_any=(lab,)), limit=10_000)
    assert {h.shot_id for h in res.hits} == {
        p["shot_id"] for p in data.payloads if lab in p["labels"]
    }


def test_hit_records_carry_payload_fields(engine, data):
    p = data.payloads[42]
    h = engine.shot(p["shot_id"])
    assert (h.movie_id, h.shot_index, h.start_s, h.end_s) == (
        p["movie_id"], p["shot_index"], p["start_s"], p["end_s"],
    )  # fmt: skip
    assert h.thumb.endswith(p["thumb"]) and h.labels == tuple(p["labels"])
    assert [t.label for t in h.top] == p["top_labels"]
    d = h.to_dict()
    for key in ("shot_id", "movie_id", "title", "start_s", "end_s", "labels", "score"):
        assert key in d


def test_exhausted_says_whether_a_next_page_exists(engine, data):
    mine = [p for p in data.payloads if p["movie_id"] == "m003"]
    f = SearchFilters(movies=("m003",))
    sid = mine[0]["shot_id"]
    n = len(mine)
    assert engine.search(like=sid, filters=f, limit=n, params=EXACT).exhausted
    assert not engine.search(like=sid, filters=f, limit=n - 1, params=EXACT).exhausted
    assert engine.search(like=sid, filters=f, limit=n - 1, offset=1, params=EXACT).exhausted
