"""The web app's facet chips, film strip and export in headless Chromium (Debian's ``chromium``
through playwright; skipped when absent), on the 3-movie test index (tests/index_fixtures.py):

search → the chips count all 12 shots → click a genre chip: the genre filter is set, the search
reruns and the counts change to that genre's shots → play a result, open its movie's film strip
(one tile per shot, in time order, the query's hits outlined) → click another shot on the strip:
the player plays that shot from its start → export the results as OTIO, download the file and
read it back with OpenTimelineIO (one clip per hit, frame ranges of the index).
Screenshots at 1280×800 go to ``artifacts/browser/`` for a human look.
"""

from __future__ import annotations

import pytest

from tests.app_fixtures import (
    browser_fixture,
    launched,
    open_engine,
    require_chromium,
)
from tests.conftest import REPO
from tests.index_fixtures import build_test_index

pytestmark = [pytest.mark.browser, pytest.mark.filterwarnings("ignore::ResourceWarning")]

ARTIFACTS = REPO / "artifacts" / "browser"
FRAME = 1 / 24


@pytest.fixture(scope="module")
def site(tmp_path_factory, tiny_encoder, tiny_labeler):
    require_chromium()  # before building anything
    pytest.importorskip("opentimelineio")
    _, built = build_test_index(tmp_path_factory.mktemp("browser-work"), encoder=tiny_encoder,
                                labeler=tiny_labeler)  # fmt: skip
    with open_engine(built.index_dir, tiny_encoder) as eng, launched(eng) as (url, _):
        yield url, built


browser = browser_fixture()


def _total(page) -> int:
    text = page.locator("#ss-facet-chips").inner_text()
    return int(text.split("Among all", 1)[1].split()[0])


def test_facets_strip_and_export(site, browser, tmp_path):
    import opentimelineio as otio

    url, built = site
    ctx = browser.new_context(viewport={"width": 1280, "height": 800}, accept_downloads=True)
    page = ctx.new_page()
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    try:
        page.goto(url)
        query = page.locator("#ss-query textarea, #ss-query input").first
        query.wait_for(timeout=60_000)
        query.fill("a dark street at night")
        page.locator("#ss-search").click()
        page.locator("#ss-gallery .thumbnail-item img").first.wait_for(timeout=60_000)

        # ---- facet chips: all 12 shots counted; a genre chip filters and changes the counts
        page.locator("#ss-facet-chips").wait_for(timeout=30_000)
        assert _total(page) == built.n_shots
        chip = page.locator('#ss-facet-chips [data-facet="genres"][data-value="comedy"]')
        assert chip.inner_text().split() == ["comedy", "3"]
        page.screenshot(path=str(ARTIFACTS / "facets_1280x800.png"))
        chip.click()
        page.wait_for_function(
            "() => { const c = document.querySelector('#ss-facet-chips');"
            " return c && c.innerText.includes('Among all 3 '); }",
            timeout=60_000,
        )
        on = page.locator("#ss-facet-chips .ss-chip.ss-on").all_inner_texts()
        assert [t.split() for t in on] == [["comedy", "3"]]  # the active filter is marked
        assert page.locator("#ss-facet-chips").get_by_text("crime").count() == 0
        movies = page.locator('#ss-facet-chips [data-facet="movies"]').all_inner_texts()
        assert [m.split()[:2] for m in movies] == [["Sunny", "Meadow"]]
        page.wait_for_function(
            "() => document.querySelectorAll('#ss-gallery .thumbnail-item').length === 3",
            timeout=60_000,
        )
        captions = page.locator("#ss-gallery .caption-label").all_inner_texts()
        assert all(c.startswith("Sunny Meadow") for c in captions)

        # ---- film strip of the movie of the shot playing
        page.locator("#ss-gallery .thumbnail-item").first.click()
        page.locator("#ss-video").wait_for(timeout=60_000)
        page.locator("#ss-strip-here").click()
        tiles = page.locator("#ss-strip .ss-tile")
        page.wait_for_function(
            "() => document.querySelectorAll('#ss-strip .ss-tile').length === 3", timeout=60_000
        )
        movie = built.by_id["sunny-meadow"]
        shots = tiles.evaluate_all("ts => ts.map(t => t.dataset.shot)")
        assert shots == [f"sunny-meadow:{i:04d}" for i in range(movie.n_shots)]
        assert page.locator("#ss-strip .ss-tile.ss-hit").count() == 3  # all 3 are hits
        assert page.locator("#ss-strip .ss-seg").count() == 3
        assert "top label:" in page.locator("#ss-strip .ss-legend").inner_text()
        page.locator("#ss-strip").scroll_into_view_if_needed()
        page.wait_for_function(  # the thumbnails load (served by shot id)
            "() => [...document.querySelectorAll('#ss-strip .ss-tile img')]"
            ".every(i => i.complete && i.naturalWidth > 0)",
            timeout=30_000,
        )
        page.screenshot(path=str(ARTIFACTS / "strip_1280x800.png"))

        # ---- click the last shot on the strip: the player plays it from its start
        tiles.nth(2).click()
        page.wait_for_function(
            "() => { const v = document.querySelector('#ss-video');"
            " return v && v.dataset.shot === 'sunny-meadow:0002' && v.played.length > 0"
            "   && v.currentTime > Number(v.dataset.start); }",
            timeout=60_000,
        )
        start, end = movie.shot_bounds(2)
        state = page.evaluate(
            "() => { const v = document.querySelector('#ss-video');"
            " return {played: v.played.start(0), t: v.currentTime}; }"
        )
        assert abs(state["played"] - start) <= 2 * FRAME, state
        assert start - FRAME <= state["t"] <= end + 2 * FRAME, state

        # ---- export the results as OTIO and read the download back
        page.locator("#ss-export-box button, #ss-export-box .label-wrap").first.click()
        page.locator("#ss-export").click()
        link = page.locator("#ss-export-file a").first
        link.wait_for(timeout=60_000)
        with page.expect_download(timeout=60_000) as dl:
            link.click()
        path = tmp_path / "selects.otio"
        dl.value.save_as(path)
        timeline = otio.adapters.read_from_file(str(path))
        clips = list(timeline.find_clips())
        assert sorted(c.metadata["scenesearch"]["shot_id"] for c in clips) == shots
        for c in clips:
            sid = c.metadata["scenesearch"]["shot_id"]
            i = int(sid.rsplit(":", 1)[1])
            s0, s1 = movie.shot_bounds(i)
            r = c.source_range
            assert r.start_time.rate == pytest.approx(24.0)
            assert round(r.start_time.value) == round(s0 * 24)
            assert round(r.duration.value) == round((s1 - s0) * 24)
            assert c.media_reference.target_url.endswith("sunny_meadow.mp4")
        page.screenshot(path=str(ARTIFACTS / "export_1280x800.png"), full_page=True)
    finally:
        ctx.close()
