"""The web app (ui/app.py) on a real small index (tests/index_fixtures.py: 3 synthetic movies,
12 shots, tiny random model): the page's handlers called directly (search, filters, bad input,
player and details, more like this, image query, empty and busy index), then the app launched on
127.0.0.1 — the JSON API through gradio_client, and the file route serving thumbnails and movies
but refusing every other file.
"""

from __future__ import annotations

import subprocess
import sys
import urllib.error
import urllib.request
from types import SimpleNamespace

import pytest

from scenesearch.indexer.catalog import indexing_lock
from scenesearch.indexer.config import StoreConfig
from scenesearch.indexer.errors import IndexBusyError
from scenesearch.search import SearchEngine, SearchFilters
from scenesearch.ui.app import (
    EngineSlot,
    allowed_folders,
    build_app,
    caption,
    launch_app,
    open_slot,
)
from scenesearch.ui.textfmt import fmt_time
from tests.app_fixtures import engine_fixture, free_port, garbage_fixture, index_fixture
from tests.conftest import REPO

FRAME = 1 / 24

# gr.Blocks() opens asyncio event loops it never closes, and a launched server leaves sockets:
# ignore those ResourceWarnings here (not globally), and collect the garbage after every test
# while this filter is active, so it cannot surface in another module's test under -W error.
pytestmark = pytest.mark.filterwarnings("ignore::ResourceWarning")


_collect_garbage = garbage_fixture()
built = index_fixture("app")
engine = engine_fixture()


@pytest.fixture(scope="module")
def demo(engine, built):
    return build_app(engine, movie_dirs=[])


@pytest.fixture(scope="module")
def app(demo):
    return demo.scenesearch


@pytest.fixture(scope="module")
def common_label(engine) -> str:
    """The clean label most shots carry (random weights: which one is arbitrary, but fixed)."""
    facet = engine.store.facet("labels")
    return max(sorted(facet), key=lambda k: facet[k])


def search(app, query=None, image=None, **kw):
    return app.run_search(query, image, **kw)


# ------------------------------------------------------------------------------ handlers
def test_text_search_returns_every_shot_with_readable_captions(app, built):
    hits, msg = search(app, "a dark street at night", k=50)
    assert len(hits) == built.n_shots == 12
    assert "12 shots" in msg and "random weights" in msg
    scores = [h["score"] for h in hits]
    assert scores == sorted(scores, reverse=True)
    items = app.gallery_items(hits)
    assert len(items) == 12
    thumb, cap = items[0]
    h = hits[0]
    assert thumb == h["thumb"] and thumb.endswith(".jpg")
    assert cap.startswith(f"{h['title']} ({h['year']}) · ")
    assert f"{fmt_time(h['start_s'])}–{fmt_time(h['end_s'])}" in cap
    assert h["top"][0]["label"] in cap and cap.endswith(f"{h['score']:.3f}")


def test_k_limits_the_number_of_results(app):
    hits, msg = search(app, "a car", k=5)
    assert len(hits) == 5 and "more exist" in msg


def test_label_filter_any_all_and_top(app, engine, common_label):
    hits, _ = search(app, "a room", labels=[common_label], k=50)
    assert hits and all(common_label in h["labels"] for h in hits)
    n_expected = engine.store.facet("labels")[common_label]
    assert len(hits) == n_expected
    # every shot's top-5 holds 5 labels: with "top", its 2nd label matches the shot itself
    second = hits[0]["top"][1]["label"]
    top_hits, _ = search(app, "a room", labels=[second], label_source="top", k=50)
    assert hits[0]["shot_id"] in {h["shot_id"] for h in top_hits}
    both, msg = search(app, "a room", labels=[common_label, second], label_mode="all", k=50)
    assert all(common_label in h["labels"] and second in h["labels"] for h in both)


def test_genre_movie_year_and_duration_filters(app, built):
    hits, _ = search(app, genres=["comedy"], k=50)  # no query: the movie's shots in time order
    assert {h["movie_id"] for h in hits} == {"sunny-meadow"}
    assert [round(h["start_s"], 3) for h in hits] == [
        round(t, 3) for t in built.by_id["sunny-meadow"].shot_starts
    ]
    hits, _ = search(app, "space", movies=["deep-orbit"], k=50)
    assert len(hits) == 5 and {h["movie_id"] for h in hits} == {"deep-orbit"}
    hits, _ = search(app, "x", year_min=2000, year_max=2010, k=50)
    assert {h["year"] for h in hits} == {2008}
    hits, _ = search(app, "x", duration_min=1.9, k=50)
    assert hits and all(h["end_s"] - h["start_s"] >= 1.9 for h in hits)
    assert len(hits) == 2  # the two 48-frame shots of Night Harbour


def test_unknown_label_is_a_message_not_a_traceback(app):
    with pytest.warns(UserWarning, match="unknown label"):
        hits, msg = search(app, "x", labels=["city halll"])
    assert hits == []
    assert "unknown label" in msg and "did you mean" in msg and "ss-error" in msg
    assert "Traceback" not in msg


def test_malformed_like_id_is_a_message(app):
    with pytest.warns(UserWarning):
        hits, msg = search(app, like="no-colon")
    assert hits == [] and "not a shot id" in msg


def test_nothing_to_search_and_no_good_match(app):
    hits, msg = search(app, "   ")
    assert hits == [] and "Type a query" in msg
    hits, msg = search(app, "a beach", min_score=0.99)
    assert hits == [] and "No good match" in msg and "best score" in msg
    hits, msg = search(app, "x", genres=["comedy"], year_min=1900, year_max=1950)
    assert hits == [] and "No shots match" in msg


def test_clicked_shot_plays_from_its_start_with_details(app, built):
    hits, _ = search(app, "x", movies=["night-harbour"], k=50)
    hit = hits[2]  # third shot: 3.5 s – 5.0 s
    start, end = built.by_id["night-harbour"].shot_bounds(2)
    assert abs(hit["start_s"] - start) < FRAME and abs(hit["end_s"] - end) < FRAME
    player, details, shot_id, stamp = app.show(hit)
    assert '<video id="ss-video"' in player and "autoplay" in player
    assert 'src="media/movie/night-harbour#t=' in player  # by id, never by path
    assert f"#t={hit['start_s']:.3f},{hit['end_s']:.3f}" in player
    assert shot_id == "night-harbour:0002"
    assert fmt_time(hit["start_s"]) in stamp and f"{hit['start_s']:.3f}" in stamp
    assert "Night Harbour" in details and "1994" in details and "crime" in details
    for t in hit["top"]:  # all five label scores
        assert f"{t['score']:.3f}" in details
    assert len(hit["top"]) == 5


def test_missing_movie_file_is_explained(app, built):
    hits, _ = search(app, "x", movies=["deep-orbit"], k=1)
    gone = {**hits[0], "path": "/nowhere/deep_orbit.mp4"}
    player, *_ = app.show(gone)
    assert "not available" in player and "--movies" in player and "<video" not in player


def test_more_like_this_ranks_the_shot_itself_first(app):
    hits, _ = search(app, "x", movies=["deep-orbit"], k=50)
    hits2, msg = search(app, like=hits[3]["shot_id"], k=5)
    assert hits2[0]["shot_id"] == hits[3]["shot_id"] and hits2[0]["score"] > 0.999
    assert "like shot" in msg


def test_image_query_and_text_plus_image(app):
    from PIL import Image

    hits, _ = search(app, "x", movies=["sunny-meadow"], k=50)
    img = Image.open(hits[1]["thumb"]).convert("RGB")
    by_image, msg = search(app, None, img, k=3)
    assert by_image and "for the image" in msg
    assert by_image[0]["shot_id"] == hits[1]["shot_id"]  # its own thumbnail is the nearest
    both, msg = search(app, "a field", img, k=3)
    assert both and "query and image" in msg


def test_empty_index_state(tmp_path, tiny_encoder):
    with SearchEngine.open(StoreConfig(index_dir=str(tmp_path / "empty")),
                           encoder=tiny_encoder) as eng:  # fmt: skip
        app = build_app(eng).scenesearch
        assert "index is empty" in app.status() and "scenesearch index" in app.status()
        hits, msg = app.run_search("anything")
        assert hits == [] and "index is empty" in msg


def test_busy_index_state_and_retry(built, engine, tiny_encoder):
    # The module's engine holds the embedded store: a second opener is refused, as when
    # `scenesearch index` runs in another process.
    def opener():
        return SearchEngine.open(StoreConfig(index_dir=built.index_dir), encoder=tiny_encoder)

    with pytest.raises(IndexBusyError) as busy:
        opener()
    slot = EngineSlot(None, opener, busy_message=str(busy.value), index_dir=built.index_dir)
    app = build_app(slot).scenesearch
    assert "index is busy" in app.status() and "Retry" in app.status()
    hits, msg = app.run_search("x")
    assert hits == [] and "index is busy" in msg
    assert app.retry() is False  # still held
    assert app.choices() == ([], [], [])


def test_open_slot_reports_an_indexing_run_and_retries_after_it(tmp_path, tiny_encoder):
    idx = str(tmp_path / "idx")
    with indexing_lock(idx):  # exactly what a running `scenesearch index` holds
        slot = open_slot(StoreConfig(index_dir=idx))
        assert slot.engine is None and "being indexed" in slot.busy_message
        assert "being indexed" in build_app(slot).scenesearch.status()
        assert slot.retry() is False
    assert slot.retry() is True and slot.engine is not None
    slot.engine.close()


def test_importing_the_app_loads_no_model():
    code = (
        "import sys, ui.app; print(sorted(m for m in ('torch', 'open_clip') if m in sys.modules))"
    )
    out = subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True,
                         timeout=120, check=True)  # fmt: skip
    assert out.stdout.strip() == "[]"


# ------------------------------------------------------------------------------ launched
@pytest.fixture(scope="module")
def server(demo):
    _, url, _ = launch_app(demo, "127.0.0.1", free_port(), prevent_thread_lock=True, quiet=True)
    yield url
    demo.close()


def _get(url: str, headers: dict | None = None) -> tuple[int, bytes]:
    req = urllib.request.Request(url, headers=headers or {})
    try:
        with urllib.request.urlopen(req, timeout=30) as r:
            return r.status, r.read()
    except urllib.error.HTTPError as e:
        return e.code, b""


def test_json_api_with_gradio_client(server, common_label):
    from gradio_client import Client
    from gradio_client.exceptions import AppError

    client = Client(server, verbose=False)
    hits = client.predict("a dark street", [common_label], [], [], "1990-2010", "", 4, None,
                          api_name="/search")  # fmt: skip
    assert 1 <= len(hits) <= 4
    h = hits[0]
    assert set(h) >= {"shot_id", "movie_id", "title", "year", "genres", "start_s", "end_s",
                      "labels", "top", "thumb", "movie_path", "score", "match_s"}  # fmt: skip
    assert all(common_label in x["labels"] and 1990 <= x["year"] <= 2010 for x in hits)
    assert all(x["start_s"] - 1e-3 <= x["match_s"] < x["end_s"] for x in hits)  # the moment
    assert h["movie_path"].endswith(".mp4") and "path" not in h
    # keyword call and "more like this"
    like = client.predict(like=h["shot_id"], k=2, api_name="/search")
    assert like[0]["shot_id"] == h["shot_id"]
    with pytest.raises(AppError, match="unknown label 'city halll'; did you mean"):
        client.predict("x", ["city halll"], api_name="/search")
    with pytest.raises(AppError, match="bad year range"):
        client.predict("x", years="nineties", api_name="/search")


def test_json_api_takes_every_filter_of_the_cli(server, engine, common_label):
    """For the same filters, the JSON API's hits equal the engine's with the CLI's filters
    (parsed by the real argument parser) and with SearchFilters written out by hand: the three
    reach the store through one translation (search.filters.filters_from_input)."""
    from gradio_client import Client

    from scenesearch.ui.cli import build_parser
    from scenesearch.ui.cli_search import filters_from_args

    shots = engine.search("x", limit=50).hits
    second = shots[0].top[1].label  # among the top labels of at least one shot
    cases = [  # (API keywords, CLI options, the SearchFilters both must mean)
        ({"all_labels": [common_label], "movies": ["deep-orbit", "Sunny"]},
         ["--all-labels", common_label, "--movie", "deep-orbit", "--movie", "Sunny"],
         SearchFilters(labels_all=(common_label,), movies=("deep-orbit", "Sunny"))),
        ({"labels": [second], "top_labels": 2},
         ["--label", second, "--top-labels", "2"],
         SearchFilters(labels_any=(second,), label_source="top", label_top_k=2)),
        ({"all_labels": [second], "min_label_score": 0.01, "years": "2000-2010"},
         ["--all-labels", second, "--min-label-score", "0.01", "--year", "2000-2010"],
         SearchFilters(labels_all=(second,), label_source="top", label_min_score=0.01,
                       year_min=2000, year_max=2010)),
        ({"labels": [second], "label_source": "top", "genres": ["comedy", "sci-fi"],
          "duration": "1-"},
         ["--label", second, "--top-labels", "5", "--genre", "comedy", "--genre", "sci-fi",
          "--duration", "1-"],
         SearchFilters(labels_any=(second,), label_source="top", genres=("comedy", "sci-fi"),
                       duration_min=1.0)),
    ]  # fmt: skip
    client = Client(server, verbose=False)
    seen = set()
    for api_kw, argv, by_hand in cases:
        args = build_parser().parse_args(["search", "x", *argv])
        assert filters_from_args(args) == by_hand, argv
        want = [h.shot_id for h in engine.search("x", filters=by_hand, limit=50).hits]
        got = client.predict("x", k=50, api_name="/search", **api_kw)
        assert [h["shot_id"] for h in got] == want, api_kw
        pairs = client.predict("x", "y", 1000, k=50, api_name="/sequences", **api_kw)
        assert {p["first"]["shot_id"] for p in pairs} <= set(want)
        seen.add(len(want))
    assert len(seen) == len(cases) and min(seen) > 0  # each narrowed the results its own way
    with pytest.raises(Exception, match="top labels"):  # a top-label option with clean labels
        client.predict("x", label_source="clean", top_labels=2, api_name="/search")


def test_file_route_serves_thumbs_and_movies_only(server, built, app):
    """Movies and thumbnails by id; Gradio's file route no longer serves them (or anything
    else outside its own cache) by path. Security headers: tests/test_app_hardening.py."""
    hits, _ = app.run_search("x", movies=["deep-orbit"], k=1)
    status, body = _get(server + "media/thumb/" + hits[0]["shot_id"])
    assert status == 200 and body[:2] == b"\xff\xd8"  # a JPEG
    status, body = _get(server + "media/movie/deep-orbit", {"Range": "bytes=0-99"})
    assert status == 206 and len(body) == 100
    base = server + "gradio_api/file="
    for path in [
        hits[0]["thumb"],  # the index's files are reached by id only
        built.by_id["deep-orbit"].path,
        *built.outside_files,  # a movie and a text file outside the allowed folders
        built.index_dir + "/config.json",
        built.movie_dirs[0] + "/../../private/secret.txt",
        "/etc/passwd",
    ]:
        assert _get(base + path)[0] in (403, 404), path
    for bad in ["media/movie/nope", "media/thumb/deep-orbit:0099", "media/thumb/..:0001",
                "media/thumb/not-a-shot-id", "media/movie/..%2F..%2Fetc%2Fpasswd"]:  # fmt: skip
        assert _get(server + bad)[0] == 404, bad


def test_caption_without_score_or_year():
    h = {"title": "T", "year": None, "start_s": 61.0, "end_s": 62.5, "top": [], "score": None}
    assert caption(h) == "T · 1:01.0–1:02.5"


def test_allowed_folders_are_minimal(tmp_path):
    """Gradio may read only the index's thumbnails (to copy the gallery's into its cache);
    movies are served by id through ui/media.py, so no movie folder is ever allowed."""
    eng = SimpleNamespace(meta={"model_id": "m"}, movies=lambda: [{"path": "/w.mp4"}])
    got = allowed_folders(eng, [str(tmp_path / "extra")], str(tmp_path / "idx"))
    assert got == [str(tmp_path / "idx" / "thumbs")]


def test_hits_round_trip_through_their_dicts(engine):
    """A hit → its dict (the JSON API's, the CLI's server route's) → the same hit, every field
    (best-match time included): search.hits.hit_from_dict serves the page's export and the
    CLI's server route alike."""
    from scenesearch.search.hits import hit_from_dict
    from scenesearch.ui.remote import handle_request, hits_from_answer

    res = engine.search("a dark street", limit=5)
    assert res.hits and all(hit_from_dict(h.to_dict()) == h for h in res.hits)
    assert any(h.match_s is not None for h in res.hits)  # the field that used to be dropped
    answer = handle_request(engine, {"text": "a dark street", "limit": 5})
    assert "path" not in answer["hits"][0] and answer["hits"][0]["movie_path"]
    assert hits_from_answer(answer) == res.hits


def test_retry_refreshes_every_movie_list_including_the_film_strip(engine):
    # The page starts on a busy index (no movies known); once Retry opens it, the film strip's
    # movie dropdown must list the movies too, like the filter dropdowns.
    opened = []
    slot = EngineSlot(None, lambda: opened.append(1) or engine, busy_message="busy")
    demo = build_app(slot)
    retry = next(
        f for f in demo.fns.values()
        if any(getattr(demo.blocks.get(t[0]), "elem_id", None) == "ss-retry" for t in f.targets)
    )  # fmt: skip
    outs = dict(zip((o.elem_id for o in retry.outputs), retry.fn("clean")))
    assert opened and "ss-strip-movie" in outs
    movies = demo.scenesearch.choices("clean")[2]
    assert movies and outs["ss-strip-movie"].choices == outs["ss-movies"].choices
