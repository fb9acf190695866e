"""Facets, sequences, exports and film strips on a real small index (tests/index_fixtures.py:
Night Harbour 4 shots, Sunny Meadow 3, Deep Orbit 5; tiny random model), through the library,
the ``scenesearch`` command line and the web app's handlers.

Facets are checked against a Counter over the payloads of every point passing the filter, on
the embedded store and on the server backend (qdrant-client in-process) holding the same points.
"""

from __future__ import annotations

import gc
import json
from collections import Counter

import pytest
from PIL import Image

from scenesearch.search import SearchEngine, SearchFilters
from scenesearch.search.facets import facet_counts
from scenesearch.search.temporal import Step, find_sequences
from tests.app_fixtures import engine_fixture, index_fixture, launched, run_cli

otio = pytest.importorskip("opentimelineio")
pytestmark = pytest.mark.filterwarnings("ignore::ResourceWarning")


built = index_fixture("work")
engine = engine_fixture()


@pytest.fixture(scope="module")
def server_engine(engine, built, tiny_encoder):
    """The same points, meta and movie records in the server backend (in-process)."""
    from scenesearch.indexer.store import CollectionSpec, StorePoint, VectorSpec
    from scenesearch.indexer.store.server import ServerStore

    recs = list(engine.store.iter_points(with_vectors=True))
    s = ServerStore(":memory:", collection="shots")
    # every named vector, the per-frame multivector ("frames", 2-d rows) included
    s.create(CollectionSpec([VectorSpec(k, v.shape[-1], v.ndim == 2)
                             for k, v in recs[0].vectors.items()]))  # fmt: skip
    s.set_meta(engine.store.get_meta())
    s.upsert([StorePoint(r.id, r.vectors, r.payload) for r in recs])
    for m in engine.store.get_movies().values():
        s.put_movie(m)
    eng = SearchEngine(s, built.index_dir, tiny_encoder)
    yield eng
    eng.close()


FILTERS = [
    None,
    SearchFilters(genres=("comedy",)),
    SearchFilters(year_min=2000),
    SearchFilters(duration_min=1.5),
    SearchFilters(movies=("Deep Orbit", "night-harbour")),
]


def reference(engine, filters):
    flt = engine.build_filter(filters)
    recs = list(engine.store.iter_points(flt))
    key = "top_labels" if filters is not None and filters.label_source == "top" else "labels"
    count = lambda k: Counter(v for r in recs for v in (r.payload[k] if isinstance(  # noqa: E731
        r.payload[k], list) else [r.payload[k]]))  # fmt: skip
    return len(recs), count(key), count("genres"), count("movie_id")


@pytest.mark.parametrize("backend", ["edge", "server"])
@pytest.mark.parametrize("i", range(len(FILTERS) + 2))
def test_facets_count_every_matching_shot(engine, server_engine, backend, i, built):
    eng = engine if backend == "edge" else server_engine
    if i < len(FILTERS):
        filters = FILTERS[i]
    else:  # a label filter on the clean labels, and on the top 5
        lab = facet_counts(eng).labels[0][0]
        filters = SearchFilters(labels_any=(lab,), label_source="clean" if i == 5 else "top")
    f = facet_counts(eng, filters)
    total, labels, genres, movies = reference(eng, filters)
    assert f.total == total and total > 0
    assert dict(f.labels) == labels and dict(f.genres) == genres
    assert {m: c for m, _t, c in f.movies} == movies
    counts = [c for _, c in f.labels]
    assert counts == sorted(counts, reverse=True)
    titles = {m.movie_id: m.title for m in built.movies}
    assert all(t == titles[m] for m, t, _ in f.movies)


def test_sequences_through_the_engine(engine):
    res = find_sequences(engine, Step("a dark street"), Step("a bright meadow"), within_s=2.0,
                         limit=50)  # fmt: skip
    assert res.exact and res.pairs
    for p in res.pairs:
        assert p.first.movie_id == p.then.movie_id
        assert p.then.shot_index > p.first.shot_index and 0 <= p.gap_s <= 2.0
        assert p.score == pytest.approx((p.first.score + p.then.score) / 2)
    # a filter for both steps, then only for the second
    only = find_sequences(engine, Step("street", filters=SearchFilters(genres=("comedy",))),
                          Step("meadow", filters=SearchFilters(genres=("comedy",))), 10.0)  # fmt: skip
    assert only.pairs and {p.first.movie_id for p in only.pairs} == {"sunny-meadow"}
    mixed = find_sequences(engine, Step("street"), Step("meadow", filters=SearchFilters(
        movies=("deep-orbit",))), 10.0, limit=100)  # fmt: skip
    assert mixed.pairs and all(p.then.movie_id == "deep-orbit" for p in mixed.pairs)


def test_sequences_with_an_image_step(engine, built, tmp_path):
    still = tmp_path / "still.png"
    Image.new("RGB", (64, 36), (200, 200, 200)).save(still)
    res = find_sequences(engine, Step(None, str(still)), Step("night"), within_s=5.0)
    assert res.pairs and res.pairs[0].first.score is not None


# ------------------------------------------------------------------------------ CLI
# A second copy of the index for the CLI (the engine fixture holds the first open: the
# embedded store admits one opener).
cli_built = index_fixture("work-cli")


def test_cli_export_facets_then_and_strip(cli_built, capsys, tmp_path):
    idx = cli_built.index_dir
    code, out, err = run_cli(capsys, "search", "--index", idx, "night", "-k", "4", "--export",
                         str(tmp_path / "r.otio"), "--facets")  # fmt: skip
    assert code == 0 and "exported 4 shots" in err
    assert "facets over all 12 matching shots" in out and "Deep Orbit 5" in out
    clips = list(otio.adapters.read_from_file(str(tmp_path / "r.otio")).find_clips())
    assert len(clips) == 4

    code, out, _ = run_cli(capsys, "search", "--index", idx, "night", "--genre", "comedy", "--json",
                       "--facets")  # fmt: skip
    facets = json.loads(out.splitlines()[-1])["facets"]
    assert facets["total"] == 3 and facets["movies"][0]["title"] == "Sunny Meadow"

    code, out, err = run_cli(capsys, "search", "--index", idx, "night", "--then", "day", "--within",
                         "3", "-k", "3", "--json", "--export", str(tmp_path / "p.edl"))  # fmt: skip
    pairs = [json.loads(line) for line in out.splitlines()]
    assert code == 0 and len(pairs) == 3
    assert all(p["first"]["movie_id"] == p["then"]["movie_id"] and p["gap_s"] <= 3 for p in pairs)
    edl = otio.adapters.read_from_file(str(tmp_path / "p.edl"), rate=24)
    assert len(list(edl.find_clips())) == 6  # each pair: A, then B

    code, out, _ = run_cli(capsys, "search", "--index", idx, "night", "--then", "day", "-k", "2")
    assert code == 0 and out.splitlines()[1].split()[:4] == ["#", "score", "movie", "first"]

    png = tmp_path / "strip.png"
    code, out, _ = run_cli(capsys, "strip", "--index", idx, "Deep Orbit", "--out", str(png),
                       "--query", "night", "-k", "2")  # fmt: skip
    assert code == 0 and "5 shots (2 hits of the query outlined)" in out
    with Image.open(png) as im:
        assert im.format == "PNG" and im.width > 900 and im.height > 150


def test_cli_errors_are_one_line_and_nothing_is_written(cli_built, capsys, tmp_path):
    idx = cli_built.index_dir
    for argv, words in [
        (["night", "--export", str(tmp_path / "no" / "x.otio")], "does not exist"),
        (["night", "--export", str(tmp_path / "x.mov")], "export format"),
        (["night", "--min-score", "0.99", "--export", str(tmp_path / "x.otio")], "nothing to"),
        (["night", "--then", "day", "--within", "-1"], "within"),
        (["--like", "deep-orbit:0001", "--then", "day"], "--like"),
    ]:
        code, out, err = run_cli(capsys, "search", "--index", idx, *argv)
        assert code == 1 and words in err and len(err.strip().splitlines()) == 1, err
    assert not (tmp_path / "x.otio").exists()
    code, _, err = run_cli(capsys, "strip", "--index", idx, "No Such Film")
    assert code == 1 and "unknown movie" in err


# ------------------------------------------------------------------------------ web handlers
def test_app_handlers(engine, built):
    from scenesearch.ui.app import build_app
    from scenesearch.ui.app_work import WorkPanel

    demo = build_app(engine)
    try:
        work = WorkPanel(demo.scenesearch)
        f = ([], "any", "clean", ["comedy"], [], None, None, None, None, 24, None)
        html = work.facets(*f)
        assert "Among all <b>3</b>" in html and 'data-value="sunny-meadow"' in html
        assert 'ss-chip ss-on" data-facet="genres" data-value="comedy"' in html
        items, msg = work.sequences("night", None, "day", 10, *f)
        assert items and "sequences" in msg
        assert all(d["first"]["movie_id"] == "sunny-meadow" for d in items)
        assert items[0]["start_s"] == items[0]["first"]["start_s"]
        assert items[0]["end_s"] == items[0]["then"]["end_s"]
        path, note = work.export(items, "fcpxml")
        clips = list(otio.adapters.read_from_file(path).find_clips())
        assert len(clips) == 2 * len(items) and "exported" in note
        assert work.export([], "otio")[0] is None
        strip = work.show_strip("deep-orbit", [{"shot_id": "deep-orbit:0002",
                                                "movie_id": "deep-orbit"}])  # fmt: skip
        assert strip.count('<figure class="ss-tile') == 5 and strip.count("ss-tile ss-hit") == 1
    finally:
        demo.close()
        gc.collect()


def test_sequences_json_api(engine):
    """The launched app's /sequences endpoint through gradio_client (positional, as the README)."""
    from gradio_client import Client

    with launched(engine) as (url, _):
        client = Client(url, verbose=False)
        pairs = client.predict("night", "day", 10, [], ["comedy"], [], 5, api_name="/sequences")
        assert pairs and all(p["first"]["movie_id"] == "sunny-meadow" for p in pairs)
        assert {"score", "gap_s", "first", "then"} <= set(pairs[0])
        assert "movie_path" in pairs[0]["then"] and "path" not in pairs[0]["then"]
