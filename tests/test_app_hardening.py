"""The web app against bad input (issue 13, items 9, 12–14): files served by id only with safe
headers, upload and decoded-pixel limits, bad filter values through the JSON API (which must
answer, never hang), a server that notices by itself when an indexing run ends, and a
property-based test throwing random values at the JSON API.

Uses tests/index_fixtures.py's index (3 synthetic movies, tiny random model).
"""

from __future__ import annotations

import math
import os
import shutil
import urllib.error
import urllib.request

import psutil
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from scenesearch.indexer.catalog import indexing_lock
from scenesearch.indexer.config import StoreConfig
from scenesearch.ui.app import MAX_UPLOAD, build_app, launch_app, open_slot
from tests.app_fixtures import free_port, garbage_fixture, launched, open_engine
from tests.index_fixtures import build_test_index
from tests.test_search_validation import NUMBERS, TEXTS, png_header_only

pytestmark = pytest.mark.filterwarnings("ignore::ResourceWarning")
TIMEOUT = 60  # seconds any API call may take before the test calls it a hang
# JSON carries no NaN or infinity (gradio_client refuses to send them): those go as text
JSON_NUMBERS = NUMBERS.map(lambda x: str(x) if isinstance(x, float) and not math.isfinite(x) else x)


_collect_garbage = garbage_fixture()


@pytest.fixture(scope="module")
def built(tmp_path_factory, tiny_encoder, tiny_labeler):
    tmp = tmp_path_factory.mktemp("hard")
    index_dir, info = build_test_index(tmp, encoder=tiny_encoder, labeler=tiny_labeler)
    # planted next to an indexed movie: must never be served
    folder = os.path.dirname(info.by_id["night-harbour"].path)
    os.makedirs(os.path.join(folder, "sub"), exist_ok=True)
    for name, text in [("secret.txt", "secret"), ("sub/notes.txt", "notes"),
                       ("page.html", "<script>alert(1)</script>"),
                       ("pic.svg", "<svg xmlns='http://www.w3.org/2000/svg'><script>1</script></svg>")]:  # fmt: skip
        with open(os.path.join(folder, name), "w") as f:
            f.write(text)
    return info


@pytest.fixture(scope="module")
def server(built, tiny_encoder):
    with open_engine(built.index_dir, tiny_encoder) as eng, launched(eng) as (url, demo):
        yield url, demo


def _get(url: str, headers: dict | None = None):
    req = urllib.request.Request(url, headers=headers or {})
    try:
        with urllib.request.urlopen(req, timeout=30) as r:
            return r.status, r.headers, r.read()
    except urllib.error.HTTPError as e:
        return e.code, e.headers, b""


# ------------------------------------------------------------------------------ 12. files
def test_only_movie_files_and_thumbnails_are_served_with_safe_headers(server, built):
    url, demo = server
    folder = os.path.dirname(built.by_id["night-harbour"].path)
    for name in ("secret.txt", "sub/notes.txt", "page.html", "pic.svg", "night_harbour.mp4"):
        status, _, body = _get(url + "gradio_api/file=" + os.path.join(folder, name))
        assert status in (403, 404) and b"alert" not in body, name
    status, headers, body = _get(url + "media/movie/night-harbour", {"Range": "bytes=0-9"})
    assert status == 206 and len(body) == 10
    assert headers["Content-Type"] == "video/mp4"
    assert headers["X-Content-Type-Options"] == "nosniff"
    assert "sandbox" in headers["Content-Security-Policy"]
    assert headers["Content-Disposition"].startswith("inline")
    hits, _ = demo.scenesearch.run_search("x", k=1)
    status, headers, body = _get(url + "media/thumb/" + hits[0]["shot_id"])
    assert status == 200 and body[:2] == b"\xff\xd8" and headers["Content-Type"] == "image/jpeg"
    assert headers["X-Content-Type-Options"] == "nosniff" and "Content-Security-Policy" in headers


def test_gradio_cache_files_get_safe_headers_and_html_downloads(server):
    """What Gradio's file route still serves (its own upload/cache folder) carries the same
    headers, and a non-media file there is an attachment, never a page in the app's origin."""
    from gradio import utils

    url, _ = server
    cache = utils.get_upload_folder()
    os.makedirs(cache, exist_ok=True)
    page = os.path.join(cache, "i13-planted.html")
    with open(page, "w") as f:
        f.write("<script>alert(1)</script>")
    try:
        status, headers, _ = _get(url + "gradio_api/file=" + page)
        assert status == 200
        assert headers["Content-Type"] == "application/octet-stream"
        assert headers["Content-Disposition"].startswith("attachment")
        assert headers["X-Content-Type-Options"] == "nosniff"
    finally:
        os.unlink(page)


# ------------------------------------------------------------------------------ 13. uploads
def test_upload_larger_than_the_limit_is_refused_with_a_message(server, tmp_path):
    url, _ = server
    limit = int(MAX_UPLOAD.removesuffix("mb")) << 20
    boundary = "i13boundary"
    head = (f"--{boundary}\r\nContent-Disposition: form-data; name=\"files\"; "
            f"filename=\"big.png\"\r\nContent-Type: image/png\r\n\r\n").encode()  # fmt: skip
    body = head + b"\0" * (limit + (1 << 20)) + f"\r\n--{boundary}--\r\n".encode()
    req = urllib.request.Request(url + "gradio_api/upload", data=body, method="POST",
                                 headers={"Content-Type": f"multipart/form-data; boundary={boundary}"})  # fmt: skip
    try:
        with urllib.request.urlopen(req, timeout=60) as r:
            status, text = r.status, r.read().decode()
    except urllib.error.HTTPError as e:
        status, text = e.code, e.read().decode()
    assert status == 413 and "size" in text.lower(), (status, text[:200])


def test_bad_images_get_a_message_and_memory_stays_flat(server, tmp_path):
    _, demo = server
    app = demo.scenesearch
    image = next(b for b in demo.blocks.values() if getattr(b, "elem_id", None) == "ss-image")
    bomb = tmp_path / "bomb.png"  # 12,000 × 12,000 = 144 MP declared (≈ 432 MB as RGB)
    png_header_only(bomb, 12_000, 12_000)
    text = tmp_path / "notes.png"
    text.write_text("not an image at all")
    from gradio.data_classes import ImageData

    # the component hands the file over undecoded (Gradio's own preprocessing opened it)
    assert image.preprocess(ImageData(path=str(bomb), orig_name="bomb.png")) == str(bomb)
    proc = psutil.Process()
    rss0 = proc.memory_info().rss
    for _ in range(5):
        hits, msg = app.run_search(None, image.preprocess(ImageData(path=str(bomb))))
        assert hits == [] and "144 megapixels" in msg and "at most 40" in msg
        hits, msg = app.run_search(None, str(text))
        assert hits == [] and "not a readable image" in msg
    assert proc.memory_info().rss - rss0 < 50 << 20


# ------------------------------------------------------------------------------ 9. API input
@pytest.mark.parametrize(
    "kw, message",
    [
        ({"duration": "nan-inf"}, "bad duration range"),
        ({"duration": "nan-"}, "bad duration range"),
        ({"duration": "2-nan"}, "bad duration range"),
        ({"years": "2000-1990"}, "start is after the end"),
        ({"k": 10**30}, "between 1 and 200"),
        ({"k": 0}, "between 1 and 200"),
        ({"min_score": "nan"}, "finite"),  # JSON has no NaN: a client can send it as text
        ({"label_source": "sideways"}, "label_source"),
    ],
)
def test_api_bad_values_answer_with_one_line(server, kw, message):
    from gradio_client import Client
    from gradio_client.exceptions import AppError

    url, _ = server
    job = Client(url, verbose=False).submit(**{"query": "night", **kw}, api_name="/search")
    with pytest.raises(AppError, match=message):
        job.result(timeout=TIMEOUT)


@settings(
    max_examples=30,
    deadline=None,  # each call is bounded by TIMEOUT instead
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(
    query=st.one_of(st.none(), TEXTS),
    labels=st.lists(TEXTS, max_size=2),
    years=st.one_of(st.none(), TEXTS),
    duration=st.one_of(st.none(), TEXTS),
    k=st.one_of(JSON_NUMBERS, TEXTS),
    min_score=st.one_of(st.none(), JSON_NUMBERS, TEXTS),
    like=st.one_of(st.none(), TEXTS),
    source=st.one_of(st.sampled_from(["clean", "top"]), TEXTS),
)
def test_api_random_values_answer_with_a_result_or_an_error(
    server, query, labels, years, duration, k, min_score, like, source
):
    from gradio_client import Client
    from gradio_client.exceptions import AppError

    url, _ = server
    client = Client(url, verbose=False)
    job = client.submit(query, labels, [], [], years, duration, k, min_score, like, source,
                        api_name="/search")  # fmt: skip
    try:
        hits = job.result(timeout=TIMEOUT)  # a hang fails here
    except AppError as e:
        msg = str(e)
        assert msg and "Traceback" not in msg and "internal error" not in msg, msg
        return
    assert isinstance(hits, list) and all("shot_id" in h for h in hits)


# ------------------------------------------------------------------------------ 14. busy → open
def test_server_notices_by_itself_when_the_indexing_run_ends(built, tmp_path):
    """Started while a run holds the index, the app says "being indexed"; once the run ends the
    JSON API answers with results without anyone pressing Retry."""
    from gradio_client import Client
    from gradio_client.exceptions import AppError

    idx = str(tmp_path / "idx")
    shutil.copytree(built.index_dir, idx)
    cfg = StoreConfig(index_dir=idx)
    with indexing_lock(idx):
        slot = open_slot(cfg)
        assert slot.engine is None
        demo = build_app(slot)
        _, url, _ = launch_app(demo, "127.0.0.1", free_port(), prevent_thread_lock=True,
                               quiet=True)  # fmt: skip
        try:
            client = Client(url, verbose=False)
            with pytest.raises(AppError, match="being indexed"):
                client.submit("night", api_name="/search").result(timeout=TIMEOUT)
        except BaseException:
            demo.close()
            raise
    try:
        import time

        deadline, hits = time.time() + 20, None
        while time.time() < deadline and hits is None:
            try:
                hits = client.submit("night", k=2, api_name="/search").result(timeout=TIMEOUT)
            except AppError:
                time.sleep(0.5)
        assert hits and len(hits) == 2
        assert "being indexed" not in demo.scenesearch.status()
    finally:
        demo.close()
        if slot.engine is not None:
            slot.engine.close()
