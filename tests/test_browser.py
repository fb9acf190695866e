"""The web app in headless Chromium (Debian's ``chromium`` through Python playwright; skipped when
it is absent): type a query, pick a scene label with the type-ahead, search, click the first
thumbnail, and check that the HTML5 player really plays that shot from its start; files outside
the allowed folders are refused; and no request leaves 127.0.0.1 (no fonts, CDNs or analytics).
A screenshot of the page is saved to ``artifacts/browser/`` for a human look.
"""

from __future__ import annotations

import gc
import shutil
import socket
from urllib.parse import urlparse

import pytest

from indexer.config import StoreConfig
from search import SearchEngine
from tests.conftest import REPO
from tests.index_fixtures import build_test_index
from ui.app import build_app, launch_app

# gr.Blocks() leaves asyncio event loops open and the launched server sockets: ignore those
# ResourceWarnings here, not globally (the site fixture collects the garbage before it ends)
pytestmark = [pytest.mark.browser, pytest.mark.filterwarnings("ignore::ResourceWarning")]

CHROMIUM = shutil.which("chromium")
FLAGS = [
    "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync",
]  # fmt: skip
ARTIFACTS = REPO / "artifacts" / "browser"
FRAME = 1 / 24  # the fixture videos' frame duration
LOCAL_HOSTS = {"127.0.0.1", "localhost"}


@pytest.fixture(scope="module")
def site(tmp_path_factory, tiny_encoder, tiny_labeler):
    if CHROMIUM is None:
        pytest.skip("chromium is not installed")
    pytest.importorskip("playwright.sync_api")
    _, built = build_test_index(tmp_path_factory.mktemp("browser"), encoder=tiny_encoder,
                                labeler=tiny_labeler)  # fmt: skip
    eng = SearchEngine.open(StoreConfig(index_dir=built.index_dir), encoder=tiny_encoder)
    facet = eng.store.facet("labels")
    label = max(sorted(facet), key=lambda k: facet[k])  # a label some shots surely carry
    demo = build_app(eng)
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    _, url, _ = launch_app(demo, "127.0.0.1", port, prevent_thread_lock=True, quiet=True)
    yield url, built, label
    demo.close()
    eng.close()
    del demo
    gc.collect()


@pytest.fixture(scope="module")
def browser():
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        b = p.chromium.launch(executable_path=CHROMIUM, args=FLAGS)
        yield b
        b.close()


def test_search_pick_label_click_and_play_from_shot_start(site, browser):
    url, built, label = site
    requests: list[str] = []
    ctx = browser.new_context(viewport={"width": 1280, "height": 1000})
    ctx.on("request", lambda r: requests.append(r.url))
    page = ctx.new_page()
    try:
        page.goto(url)
        query = page.locator("#ss-query textarea, #ss-query input").first
        query.wait_for(timeout=60_000)
        assert "RANDOM WEIGHTS" in page.locator("#ss-index").inner_text()
        query.fill("a dark street at night")

        # type-ahead: typing part of the label leaves it as the active option; Enter picks it
        page.locator("#ss-labels input").first.click()
        page.keyboard.type(label[:-1])
        page.locator(f'#ss-labels li[aria-label="{label}"]').wait_for(timeout=10_000)
        page.keyboard.press("Enter")
        page.keyboard.press("Escape")
        assert page.locator("#ss-labels .token").all_inner_texts() == [label]

        page.locator("#ss-search").click()
        page.locator("#ss-gallery .thumbnail-item img").first.wait_for(timeout=60_000)
        assert "shots for the query" in page.locator("#ss-message").inner_text()
        captions = page.locator("#ss-gallery .caption-label").all_inner_texts()
        assert captions and all(" · " in c for c in captions)

        # the first thumbnail is 16:9
        box = page.locator("#ss-gallery .thumbnail-item img").first.bounding_box()
        assert box and abs(box["width"] / box["height"] - 16 / 9) < 0.05

        # the first result; and, should it be a movie's first shot (start 0:00, where a player
        # ignoring the fragment would also start), the first result that starts later
        start = _play_and_check(page, built, label, 0)
        if start < FRAME:
            later = next(i for i, c in enumerate(captions) if "· 0:00.0–" not in c)
            _play_and_check(page, built, label, later)

        # movies are served by id; no file is served by its path (ui/media.py)
        statuses = page.evaluate(
            """async (urls) => Promise.all(urls.map(async u => (await fetch(u)).status))""",
            ["media/movie/" + built.movies[0].movie_id]
            + ["gradio_api/file=" + p for p in [built.movies[0].path, *built.outside_files,
                                                 built.index_dir + "/config.json"]],
        )  # fmt: skip
        assert statuses[0] == 200 and all(s in (403, 404) for s in statuses[1:]), statuses

        ARTIFACTS.mkdir(parents=True, exist_ok=True)
        page.screenshot(path=str(ARTIFACTS / "search_and_play.png"), full_page=True)
    finally:
        ctx.close()

    # nothing left the machine: every request went to the app on 127.0.0.1
    outside = [
        u for u in requests
        if urlparse(u).scheme not in ("data", "blob") and urlparse(u).hostname not in LOCAL_HOSTS
    ]  # fmt: skip
    assert requests and not outside, outside


def _play_and_check(page, built, label: str, i: int) -> float:
    """Click result ``i``; check the player plays exactly that shot from its start. Returns the
    shot's expected start."""
    shot_id = page.locator("#ss-shot-id textarea, #ss-shot-id input").first
    before = shot_id.input_value()
    page.locator("#ss-gallery .thumbnail-item").nth(i).click()
    page.wait_for_function(
        "(before) => { const v = document.querySelector('#ss-video');"
        " return v && v.dataset.shot !== before && v.played.length > 0"
        "   && v.currentTime > Number(v.dataset.start); }",
        arg=before,
        timeout=60_000,
    )
    movie_id, idx = shot_id.input_value().rsplit(":", 1)
    movie = built.by_id[movie_id]
    start, end = movie.shot_bounds(int(idx))
    state = page.evaluate(
        """() => { const v = document.querySelector('#ss-video');
            return { src: v.currentSrc, err: v.error && v.error.code, ready: v.readyState,
                     played: v.played.start(0), t: v.currentTime, shot: v.dataset.shot,
                     start: Number(v.dataset.start), end: Number(v.dataset.end) }; }"""
    )
    assert state["shot"] == f"{movie_id}:{idx}"
    assert state["err"] is None and state["ready"] >= 2
    assert f"media/movie/{movie_id}#t=" in state["src"]  # by id, never by path
    # it started playing at the shot's first frame (within two frames), not at 0:00
    assert abs(state["played"] - start) <= 2 * FRAME, state
    assert abs(state["start"] - start) <= FRAME and abs(state["end"] - end) <= FRAME
    assert start - FRAME <= state["t"] <= end + 2 * FRAME, state
    details = page.locator("#ss-details").inner_text()
    assert movie.title in details and label in details
    return start
