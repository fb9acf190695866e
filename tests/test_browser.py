"""The web app in headless Chromium (Debian's ``chromium`` through Python playwright; skipped when
it is absent): type a query, pick a scene label with the type-ahead, search, click the first
thumbnail, and check that the HTML5 player really plays that shot from its start; files outside
the allowed folders are refused; and no request leaves 127.0.0.1 (no fonts, CDNs or analytics).
A screenshot of the page is saved to ``artifacts/browser/`` for a human look.
"""

from __future__ import annotations

from urllib.parse import urlparse

import pytest

from scenesearch.indexer.store import Filter, MatchAny
from scenesearch.ui.textfmt import fmt_time
from tests.app_fixtures import browser_fixture, launched, open_engine, require_chromium
from tests.conftest import REPO
from tests.index_fixtures import MOVIES, FixtureMovie, build_test_index
from tests.videos import Segment

# gr.Blocks() leaves asyncio event loops open and the launched server sockets: ignore those
# ResourceWarnings here, not globally (the site fixture collects the garbage before it ends)
pytestmark = [pytest.mark.browser, pytest.mark.filterwarnings("ignore::ResourceWarning")]

ARTIFACTS = REPO / "artifacts" / "browser"
FRAME = 1 / 24  # the fixture videos' frame duration
LOCAL_HOSTS = {"127.0.0.1", "localhost"}


# The fixture index plus a movie whose middle shot fades to near-black after its first quarter
# (its middle frame is near-black: the thumbnail must not be).
FADE_OUT = FixtureMovie(
    "fade-out", "Fade Out", 2001, ("drama",), "movies/b/fade_out.mp4",
    (Segment(30, 60, "noise", 1), Segment(48, 200, "fadeout", 2), Segment(30, 160, "noise", 3)),
)  # fmt: skip


@pytest.fixture(scope="module")
def site(tmp_path_factory, tiny_encoder, tiny_labeler):
    require_chromium()
    _, built = build_test_index(tmp_path_factory.mktemp("browser"), (*MOVIES, FADE_OUT),
                                encoder=tiny_encoder, labeler=tiny_labeler)  # fmt: skip
    with open_engine(built.index_dir, tiny_encoder) as eng:
        facet = eng.store.facet("labels")
        label = max(sorted(facet), key=lambda k: facet[k])  # a label some shots surely carry
        built.label_counts = facet
        # a label among the top 5 of a Night Harbour shot (for the every-control search)
        top = eng.store.facet(
            "top_labels", Filter(must=(MatchAny("movie_id", ("night-harbour",)),))
        )
        built.harbour_top_label = max(sorted(top), key=lambda k: top[k])
        with launched(eng) as (url, _):
            yield url, built, label


browser = browser_fixture()


def test_search_pick_label_click_and_play_from_shot_start(site, browser):
    url, built, label = site
    requests: list[str] = []
    ctx = browser.new_context(viewport={"width": 1280, "height": 1000})
    ctx.on("request", lambda r: requests.append(r.url))
    page = ctx.new_page()
    try:
        query = _query_box(page, url)
        assert "RANDOM WEIGHTS" in page.locator("#ss-index").inner_text()
        query.fill("a dark street at night")

        # type-ahead: typing part of the label leaves it as the active option; Enter picks it
        # the options carry shot counts: "label (n)", n = shots with that confident label
        shown = f"{label} ({built.label_counts[label]})"
        page.locator("#ss-labels input").first.click()
        page.keyboard.type(label[:-1])
        page.locator(f'#ss-labels li[aria-label="{shown}"]').wait_for(timeout=10_000)
        page.keyboard.press("Enter")
        page.keyboard.press("Escape")
        assert page.locator("#ss-labels .token").all_inner_texts() == [shown]

        page.locator("#ss-search").click()
        page.locator("#ss-gallery .thumbnail-item img").first.wait_for(timeout=60_000)
        assert "shots for the query" in page.locator("#ss-message").inner_text()
        captions = page.locator("#ss-gallery .caption-label").all_inner_texts()
        assert captions and all(" · " in c for c in captions)
        # best-frame ranking: every caption names the matching moment
        assert all(" · match " in c for c in captions), captions

        # the first thumbnail is 16:9
        box = page.locator("#ss-gallery .thumbnail-item img").first.bounding_box()
        assert box and abs(box["width"] / box["height"] - 16 / 9) < 0.05

        # the first result; and, should it be a movie's first shot (start 0:00, where a player
        # ignoring the fragment would also start), the first result that starts later
        start = _play_and_check(page, built, label, 0)
        if start < FRAME:
            later = next(i for i, c in enumerate(captions) if "· 0:00.0–" not in c)
            start = _play_and_check(page, built, label, later)
        _jump_to_match(page)

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


def _jump_to_match(page) -> None:
    """The player offers the matching moment (inside the shot, shown in the caption too); the
    button moves playback there."""
    jump = page.locator("#ss-jump")
    jump.wait_for(timeout=10_000)
    v = page.evaluate(
        """() => { const v = document.querySelector('#ss-video'), b = document.querySelector(
            '#ss-jump'); return { start: Number(v.dataset.start), end: Number(v.dataset.end),
            match: Number(b.dataset.match), text: b.innerText }; }"""
    )
    assert v["start"] - 0.01 <= v["match"] <= v["end"], v
    assert "matching moment" in v["text"]
    # park the player at the shot's end farther from the match, so the jump has to move it
    away = v["start"] if v["match"] - v["start"] > v["end"] - v["match"] else v["end"] - 0.05
    assert abs(away - v["match"]) > 0.3, v  # the fixture's shots are ≥ 1 s long
    page.evaluate(
        "(t) => { const x = document.querySelector('#ss-video'); x.pause(); x.currentTime = t; }",
        away,
    )
    page.wait_for_function(
        "(t) => Math.abs(document.querySelector('#ss-video').currentTime - t) < 0.1", arg=away
    )
    jump.click()
    page.wait_for_function(
        "(m) => Math.abs(document.querySelector('#ss-video').currentTime - m) < 0.2",
        arg=v["match"],
        timeout=20_000,
    )
    assert "best match at" in page.locator("#ss-details").inner_text()


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
                     start: Number(v.dataset.start), end: Number(v.dataset.end),
                     muted: v.muted }; }"""
    )
    assert state["shot"] == f"{movie_id}:{idx}"
    assert state["err"] is None and state["ready"] >= 2
    assert state["muted"] is False, state  # with sound (issue 19)
    assert f"media/movie/{movie_id}#t=" in state["src"]  # by id, never by path
    # it started playing at the shot's first frame (within two frames), not at 0:00
    assert abs(state["played"] - start) <= 2 * FRAME, state
    assert abs(state["start"] - start) <= FRAME and abs(state["end"] - end) <= FRAME
    assert start - FRAME <= state["t"] <= end + 2 * FRAME, state
    details = page.locator("#ss-details").inner_text()
    assert movie.title in details and label in details
    return start


def _query_box(page, url: str):
    """Open the app at ``url``; its query box, once the page has loaded."""
    page.goto(url)
    q = page.locator("#ss-query textarea, #ss-query input").first
    q.wait_for(timeout=60_000)
    return q


def _luma(page, selector: str) -> list[dict]:
    """Mean and standard deviation of the luma of every image matching ``selector``."""
    return page.evaluate(
        """(sel) => [...document.querySelectorAll(sel)].map(img => {
             const c = document.createElement('canvas');
             c.width = img.naturalWidth; c.height = img.naturalHeight;
             const g = c.getContext('2d'); g.drawImage(img, 0, 0);
             const d = g.getImageData(0, 0, c.width, c.height).data;
             let s = 0, s2 = 0, n = d.length / 4;
             for (let i = 0; i < d.length; i += 4) {
               const y = 0.299 * d[i] + 0.587 * d[i + 1] + 0.114 * d[i + 2]; s += y; s2 += y * y; }
             const m = s / n; return { mean: m, std: Math.sqrt(Math.max(0, s2 / n - m * m)),
                                       src: img.src }; })""",
        selector,
    )


def _no_error(page) -> None:
    msg = _banner(page)
    assert "Error" not in msg and "error" not in msg.lower(), msg
    toasts = page.locator(".toast-body, [data-testid='toast-body']").all_inner_texts()
    assert not any("Error" in t or "minimum value" in t for t in toasts), toasts


def _pick(page, elem_id: str, shown: str) -> None:
    """Pick the option ``shown`` of a multiselect dropdown by typing part of it."""
    page.locator(f"#{elem_id} input").first.click()
    page.keyboard.type(shown[:4])
    page.locator(f'#{elem_id} li[aria-label="{shown}"]').click()
    page.keyboard.press("Escape")


BANNER = "#ss-message .ss-banner"


def _banner(page) -> str:
    b = page.locator(BANNER)
    return b.first.inner_text() if b.count() else ""


def _search_and_wait(page) -> str:
    """Click Search; wait for a new message banner (the previous one differs in every use)."""
    before = _banner(page)
    page.locator("#ss-search").click()
    page.wait_for_function(
        "(b) => { const m = document.querySelector('#ss-message .ss-banner');"
        " return m && m.innerText.trim() && m.innerText !== b; }",
        arg=before,
        timeout=60_000,
    )
    return _banner(page)


def test_more_filters_every_control_then_search(site, browser):
    """Issue 19 item 1: opening "More filters" must not break searches (its empty number
    fields used to submit 0, below the year minimum of 1800); every control of every panel is
    set and the search still runs; the number of results sits next to Search. Item 3: the
    thumbnails of a shot that fades to black are not black."""
    url, built, label = site
    page = browser.new_page(viewport={"width": 1366, "height": 1000})
    page.on("dialog", lambda d: d.dismiss())
    try:
        q = _query_box(page, url)
        # the results count is on the page without opening anything (More filters is closed)
        page.locator("#ss-k").wait_for(state="visible", timeout=30_000)
        assert page.locator("#ss-year-min").is_hidden()
        page.get_by_text("More filters").first.click()
        year_min = page.locator("#ss-year-min textarea, #ss-year-min input").first
        year_min.wait_for(timeout=10_000)
        for f in ("ss-year-min", "ss-year-max", "ss-dur-min", "ss-dur-max", "ss-min-score"):
            box = page.locator(f"#{f} textarea, #{f} input").first
            assert box.input_value() == "", f  # empty stays empty (it showed 0)

        # the panel is open and untouched: a search with a query works
        q.fill("a dark street at night")
        msg = _search_and_wait(page)
        assert "shots for the query" in msg, msg
        _no_error(page)

        # only a year: browsing 2001 lists the fading movie's shots in time order
        q.fill("")
        year_min.fill("2001")
        page.locator("#ss-year-max textarea, #ss-year-max input").first.fill("2001")
        msg = _search_and_wait(page)
        assert "in time order" in msg, msg
        _no_error(page)
        page.locator("#ss-gallery .thumbnail-item img").nth(2).wait_for(timeout=60_000)
        captions = page.locator("#ss-gallery .caption-label").all_inner_texts()
        assert len(captions) == 3 and all(c.startswith("Fade Out (2001)") for c in captions)
        page.wait_for_function(
            "() => [...document.querySelectorAll('#ss-gallery .thumbnail-item img')]"
            ".every(i => i.complete && i.naturalWidth > 0)",
            timeout=30_000,
        )
        lumas = _luma(page, "#ss-gallery .thumbnail-item img")
        # the middle shot's middle frame is near-black (mean 14); its thumbnail is not
        assert len(lumas) == 3 and all(v["mean"] > 30 and v["std"] > 5 for v in lumas), lumas
        ARTIFACTS.mkdir(parents=True, exist_ok=True)
        page.screenshot(path=str(ARTIFACTS / "fade_out_thumbnails.png"), full_page=True)

        # every control of every panel, then a text search
        harbour = built.harbour_top_label
        page.get_by_text("any of its top 5").click()  # label match: top 5 (counts change)
        page.get_by_text("all of them").click()
        top_counts = None
        page.locator("#ss-labels input").first.click()
        page.keyboard.type(harbour[:-1])
        opt = page.locator(f'#ss-labels li[aria-label^="{harbour} ("]').first
        opt.wait_for(timeout=10_000)
        top_counts = opt.get_attribute("aria-label")
        opt.click()
        page.keyboard.press("Escape")
        assert top_counts and top_counts != f"{harbour} ({built.label_counts.get(harbour, 0)})"
        _pick(page, "ss-genres", "crime")
        _pick(page, "ss-movies", "Night Harbour (1994)")
        year_min.fill("1990")
        page.locator("#ss-year-max textarea, #ss-year-max input").first.fill("2000")
        page.locator("#ss-dur-min textarea, #ss-dur-min input").first.fill("0.5")
        page.locator("#ss-dur-max textarea, #ss-dur-max input").first.fill("10")
        page.locator("#ss-min-score textarea, #ss-min-score input").first.fill("-1")
        k = page.locator("#ss-k input[type=number]").first
        k.fill("2")
        k.press("Enter")
        q.fill("a harbour at night")
        q.press("Enter")  # text + Enter, with every filter set
        page.wait_for_function(
            "() => (document.querySelector('#ss-message .ss-banner') || {}).innerText"
            "?.includes('for the query')",
            timeout=60_000,
        )
        _no_error(page)
        msg = _banner(page)
        captions = page.locator("#ss-gallery .caption-label").all_inner_texts()
        assert 1 <= len(captions) <= 2 and all(
            c.startswith("Night Harbour (1994)") for c in captions
        )
        assert msg.startswith(f"{len(captions)} shots"), msg
        page.screenshot(path=str(ARTIFACTS / "every_filter.png"), full_page=True)

        # a malformed number is a clear message, not a silent 0
        year_min.fill("19x0")
        msg = _search_and_wait(page)
        assert "Year from" in msg and "19x0" in msg, msg

        # Clear filters empties them all; searching works again
        page.get_by_text("Clear filters").click()
        page.wait_for_function(
            "() => { const e = document.querySelector('#ss-year-min textarea, #ss-year-min input');"
            " return e && e.value === ''; }",
            timeout=10_000,
        )
        msg = _search_and_wait(page)
        assert "shots for the query" in msg, msg
        _no_error(page)
    finally:
        page.close()


def test_more_like_this_updates_query_and_selection(site, browser):
    """Issue 19 item 2: after "More like this" the query box is empty, and the gallery marks
    the shot the player shows (the first result: the shot itself)."""
    url, built, _ = site
    page = browser.new_page(viewport={"width": 1366, "height": 1000})
    try:
        q = _query_box(page, url)
        q.fill("a bright meadow")
        _search_and_wait(page)
        items = page.locator("#ss-gallery .thumbnail-item")
        items.nth(3).wait_for(timeout=60_000)
        items.nth(3).click()
        shot_box = page.locator("#ss-shot-id textarea, #ss-shot-id input").first
        page.wait_for_function(
            "() => { const v = document.querySelector('#ss-video'); return v && v.dataset.shot; }",
            timeout=60_000,
        )
        shot = shot_box.input_value()
        assert "selected" in (items.nth(3).get_attribute("class") or "")
        page.locator("#ss-like").click()
        page.wait_for_function(
            "() => (document.querySelector('#ss-message .ss-banner') || {}).innerText"
            "?.includes('like shot')",
            timeout=60_000,
        )
        assert q.input_value() == ""
        classes = [items.nth(i).get_attribute("class") or "" for i in range(items.count())]
        selected = [i for i, c in enumerate(classes) if "selected" in c]
        assert selected == [0], classes
        movie_id, idx = shot.rsplit(":", 1)
        m = built.by_id[movie_id]
        start, end = m.shot_bounds(int(idx))
        first = page.locator("#ss-gallery .caption-label").first.inner_text()
        assert first.startswith(m.title) and fmt_time(start) in first, (first, shot)
        assert page.locator("#ss-video").get_attribute("data-shot") == shot
        page.screenshot(path=str(ARTIFACTS / "more_like_this.png"), full_page=True)
    finally:
        page.close()


def test_player_has_sound_and_a_shot_long_bar(site, browser):
    """Issue 19 item 4: the player is not muted; its bar spans the shot (not the film):
    dragging it seeks inside the shot, and playback stops at the shot's end."""
    url, built, _ = site
    page = browser.new_page(viewport={"width": 1366, "height": 1000})
    try:
        _query_box(page, url)
        page.get_by_text("More filters").first.click()
        _pick(page, "ss-movies", "Deep Orbit (2019)")
        msg = _search_and_wait(page)
        assert "in time order" in msg, msg
        page.locator("#ss-gallery .thumbnail-item").nth(2).click()  # shot 2: starts mid-film
        page.wait_for_function(
            "() => { const v = document.querySelector('#ss-video');"
            " return v && v.readyState >= 2 && v.played.length > 0; }",
            timeout=60_000,
        )
        m = built.by_id["deep-orbit"]
        start, end = m.shot_bounds(2)
        bar = page.evaluate(
            """() => { const b = document.querySelector('#ss-scrub'),
                             v = document.querySelector('#ss-video');
                return { min: Number(b.min), max: Number(b.max), muted: v.muted,
                         duration: v.duration }; }"""
        )
        assert bar["muted"] is False
        assert abs(bar["min"] - start) <= FRAME and abs(bar["max"] - end) <= FRAME, bar
        assert bar["duration"] > end - start + 1  # the film is longer than the bar
        # playback stops at the shot's end
        page.wait_for_function(
            "() => { const v = document.querySelector('#ss-video');"
            " return v.paused && v.currentTime >= Number(v.dataset.end) - 0.1; }",
            timeout=30_000,
        )
        t_end = page.evaluate("() => document.querySelector('#ss-video').currentTime")
        assert t_end <= end + 2 * FRAME, (t_end, end)
        # dragging the bar to its middle seeks to the middle of the shot
        mid = (start + end) / 2
        page.evaluate(
            """(t) => { const b = document.querySelector('#ss-scrub'); b.value = t;
                b.dispatchEvent(new Event('input', { bubbles: true })); }""",
            mid,
        )
        page.wait_for_function(
            "(t) => Math.abs(document.querySelector('#ss-video').currentTime - t) < 0.1",
            arg=mid,
            timeout=10_000,
        )
        # a seek outside the shot (keyboard, media keys) is pulled back into it
        page.evaluate("() => { document.querySelector('#ss-video').currentTime = 0.2; }")
        page.wait_for_function(
            "(a) => { const v = document.querySelector('#ss-video');"
            " return !v.seeking && Math.abs(v.currentTime - a) < 0.1; }",
            arg=start,
            timeout=10_000,
        )
        ARTIFACTS.mkdir(parents=True, exist_ok=True)
        page.screenshot(path=str(ARTIFACTS / "player.png"), full_page=True)
    finally:
        page.close()
