"""The web app (``scenesearch serve``): a Gradio page over :class:`search.SearchEngine`.

The page offers a text query and/or an uploaded still, filters applied inside the vector search
(scene labels with type-ahead over the index's whole taxonomy, genres, movies, year and shot-length
ranges, number of results, minimum score), a gallery of 16:9 shot thumbnails captioned
``title · start–end · top labels · score``, and, for the shot clicked, an HTML5 player that starts
at the shot (media fragment ``#t=START,END``: no server-side cutting) with its details — the top-5
label scores, times, movie metadata, a copyable shot id and timestamp, and "More like this".
Empty index, no match, bad input and "being indexed elsewhere" are shown as messages, never as
tracebacks; a busy index can be retried from the page.

Files: the player and thumbnails reach the browser through ``/media/movie/<movie_id>`` and
``/media/thumb/<shot_id>`` — the indexed movie files themselves and the index's thumbnails, by id,
nothing else — and Gradio's file route is narrowed to its own upload/cache folders; every file
carries nosniff, CSP and Content-Disposition headers (ui/media.py). Uploads are limited to
``MAX_UPLOAD`` bytes and query images to ``indexer.imageio.MAX_IMAGE_PIXELS``.

JSON API (also listed under "Use via API" in the page footer)::

    from gradio_client import Client

    client = Client("http://127.0.0.1:7860/")
    hits = client.predict(
        "a rainy street at night",  # query ("" for none: then filters only, in time order)
        ["street"],                 # labels: any of these scene labels
        ["crime"],                  # genres: any of
        [],                         # movies: ids or titles, any of
        "1990-2005",                # years: "A-B", "A-", "-B", "A" or ""
        "2-10",                     # shot duration in seconds, same syntax
        10,                         # k: number of results
        None,                       # min_score: drop hits below it (None: no threshold)
        "",                         # like: a shot id, for "more like this" (instead of a query)
        "",                         # label_source: "clean" labels or "top" (the shot's top
                                    #   labels); "": "top" if top_labels or min_label_score
                                    #   is given, else "clean"
        [],                         # all_labels: scene labels that must all be present
        None,                       # top_labels: K, match among the top K (≤ 5) labels
        None,                       # min_label_score: with top labels, the least label score
        api_name="/search",
    )
    # the filters are the command line's (--label, --all-labels, --top-labels,
    # --min-label-score, --genre, --movie, --year, --duration), read by the same function
    # (search.filters.filters_from_input)
    # → a list of dicts as Hit.to_dict(): shot_id, movie_id, title, year, genres, shot_index,
    #   start_s, end_s, duration_s, labels, top [{label, score}], thumb, score, match_s (time
    #   of the best-matching frame; None for "more like this" and older indexes) — except that
    #   the movie file is under "movie_path", not "path" (see api_hit)

A second endpoint, ``/search_cli``, takes one JSON request with every option of the command line
(:mod:`ui.remote`): ``scenesearch search`` sends its queries there while the app serves the same
index (the app writes ``serve.json`` into the index folder for it to find).

Bad input (an unknown label, a malformed range) raises ``gradio_client.exceptions.AppError`` with a
one-line message. Importing this module loads no model and opens no index: :func:`build_app` takes
an open engine, :func:`serve` (called by the CLI) opens one.
"""

from __future__ import annotations

import html
import logging
import os
import signal
import threading
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any
from urllib.parse import quote

import gradio as gr
from starlette.middleware import Middleware

from scenesearch.indexer.config import StoreConfig
from scenesearch.indexer.errors import ConfigError, IndexBusyError, ScenesearchError
from scenesearch.indexer.imageio import MAX_IMAGE_BYTES
from scenesearch.search import SearchEngine
from scenesearch.search.filters import filters_from_input
from scenesearch.search.validate import as_int, named, opt_float
from scenesearch.ui.app_work import CSS as WORK_CSS
from scenesearch.ui.app_work import (
    PAGE_NAMES,
    WorkPanel,
    api_sequences,
    build_filters,
    gallery_items,
)
from scenesearch.ui.media import MediaGuard, movie_url, thumb_url
from scenesearch.ui.player import PLAYER_JS
from scenesearch.ui.remote import API_NAME as REMOTE_API
from scenesearch.ui.remote import handle_request, remove_endpoint, write_endpoint
from scenesearch.ui.textfmt import fmt_time

log = logging.getLogger(__name__)

# What the JSON API calls the search inputs in messages (InputValueError.field → its arguments).
API_NAMES = {
    "years": "year range",
    "durations": "duration range",
    "label_top_k": "top_labels",
    "label_min_score": "min_label_score",
    "limit": "k",
    "label_source=top": "label_source 'top'",
}

DEFAULT_K = 24
MAX_K = 200
MAX_UPLOAD = "20mb"  # an image query upload (Gradio's parser refuses more, before it is stored)
# Containers Chromium/Firefox play natively (with common codecs); others get a hint.
PLAYABLE_EXT = {".mp4", ".m4v", ".webm", ".mov", ".ogv"}
FONT = ["system-ui", "-apple-system", "Segoe UI", "Roboto", "sans-serif"]
FONT_MONO = ["ui-monospace", "SFMono-Regular", "Menlo", "Consolas", "monospace"]

CSS = """
#ss-gallery .grid-container { gap: 12px; }
/* 16:9 tiles with the caption under the picture, wrapped and fully opaque (Gradio's default is a
   square tile with a half-transparent one-line overlay that cuts our captions off) */
#ss-gallery .thumbnail-item { aspect-ratio: auto; height: auto; display: flex;
  flex-direction: column; }
#ss-gallery .thumbnail-item img { aspect-ratio: 16 / 9; width: 100%; height: auto;
  object-fit: cover; }
#ss-gallery .caption-label { position: static; opacity: 1; max-width: 100%; white-space: normal;
  border: 0; border-radius: 0; font-size: 0.85rem; line-height: 1.3; padding: 4px 6px; }
#ss-side { position: sticky; top: 8px; align-self: flex-start; }
#ss-player video { width: 100%; aspect-ratio: 16 / 9; background: #000; border-radius: 6px; }
/* the native timeline spans the whole film: hidden in favour of the shot's own bar (PLAYER_JS) */
#ss-player video::-webkit-media-controls-timeline,
#ss-player video::-webkit-media-controls-current-time-display,
#ss-player video::-webkit-media-controls-time-remaining-display { display: none; }
.ss-shotbar { display: flex; align-items: center; gap: 8px; margin: 4px 0 8px; }
.ss-shotbar input[type=range] { flex: 1; }
.ss-shotbar output { font-family: ui-monospace, monospace; font-size: 0.85rem;
  white-space: nowrap; }
.ss-banner { padding: 10px 14px; border-radius: 6px; margin: 4px 0; }
.ss-info { background: var(--background-fill-secondary); }
.ss-warn { background: #fff4d6; color: #5c4400; }
.ss-error { background: #fde2e1; color: #6b1510; }
.ss-empty-player { padding: 40px 12px; text-align: center; color: var(--body-text-color-subdued);
  border: 1px dashed var(--border-color-primary); border-radius: 6px; }
"""


# ------------------------------------------------------------------------------ engine holder
class EngineSlot:
    """The app's engine, or why there is none yet (index busy), and how to try again.

    ``opener`` opens a fresh engine; ``retry()`` calls it unless the index is still being
    indexed. Handlers call :meth:`get`, which raises :class:`IndexBusyError` while busy.
    """

    def __init__(
        self,
        engine: SearchEngine | None,
        opener: Callable[[], SearchEngine] | None = None,
        busy_message: str | None = None,
        busy_check: Callable[[], bool] | None = None,
        index_dir: str | None = None,
    ):
        self.engine = engine
        self.index_dir = index_dir or (engine.index_dir if engine is not None else None)
        self.opener = opener
        self.busy_message = busy_message
        self.busy_check = busy_check
        self._lock = threading.Lock()
        self._last_try = float("-inf")

    RECHECK_S = 2.0  # while busy, each request re-checks the index at most this often

    def get(self) -> SearchEngine:
        """The engine; while there is none (the index was busy), every call re-checks — at most
        every ``RECHECK_S`` — so the page and the JSON API notice by themselves when an
        indexing run ends (no Retry needed)."""
        if self.engine is None:
            now = time.monotonic()
            if self.opener is not None and now - self._last_try >= self.RECHECK_S:
                self._last_try = now
                self.retry()
            if self.engine is None:
                raise IndexBusyError(self.busy_message or "the index is not open")
        return self.engine

    def retry(self) -> bool:
        """Try to open the index now; True when an engine is available afterwards."""
        with self._lock:
            if self.engine is not None:
                return True
            if self.opener is None:
                return False
            if self.busy_check is not None and self.busy_check():
                self.busy_message = "the index is still being indexed by another process"
                return False
            try:
                self.engine = self.opener()
            except ScenesearchError as e:  # busy again, or e.g. the model can't be loaded
                self.busy_message = _one_line(e)
                return False
            self.busy_message = None
            return True


# ------------------------------------------------------------------------------ allowed files
def allowed_folders(
    engine: SearchEngine | None, movie_dirs: Sequence[str], index_dir: str | None
) -> list[str]:
    """The folders Gradio may read files from: only the index's thumbnails, which the gallery
    copies into Gradio's cache. Movies and thumbnails reach the browser through the media
    routes by id (ui/media.py), never by path; ``engine`` and ``movie_dirs`` are unused and kept
    for callers."""
    del engine, movie_dirs
    return [os.path.join(os.path.abspath(index_dir), "thumbs")] if index_dir else []


class MovieLocator:
    """Where a movie can be played from: its indexed path, or a file of the same name under
    one of the ``--movies`` folders (an index built on another machine or before a move)."""

    def __init__(self, movie_dirs: Sequence[str]):
        self.movie_dirs = [os.path.abspath(d) for d in movie_dirs]
        self._by_name: dict[str, str] | None = None

    def find(self, path: str) -> str | None:
        if path and os.path.isfile(path):
            return os.path.abspath(path)
        if not self.movie_dirs or not path:
            return None
        if self._by_name is None:  # one walk, on first need
            self._by_name = {}
            for d in self.movie_dirs:
                for root, _dirs, files in os.walk(d):
                    for f in files:
                        self._by_name.setdefault(f, os.path.join(root, f))
        return self._by_name.get(os.path.basename(path))


# ------------------------------------------------------------------------------ formatting
def caption(hit: dict) -> str:
    """Gallery caption: ``Title (year) · 0:12.5–0:17.0 · label, label · 0.312``."""
    title = hit["title"] + (f" ({hit['year']})" if hit.get("year") else "")
    labels = ", ".join(t["label"] for t in hit.get("top", [])[:2])
    parts = [title, f"{fmt_time(hit['start_s'])}–{fmt_time(hit['end_s'])}"]
    if hit.get("match_s") is not None:  # the best-matching frame's moment
        parts.append(f"match {fmt_time(hit['match_s'])}")
    if labels:
        parts.append(labels)
    if hit.get("score") is not None:
        parts.append(f"{hit['score']:.3f}")
    return " · ".join(parts)


def file_url(path: str) -> str:
    """URL of a local file on Gradio's file route, relative to the page (works under a root
    path/proxy prefix too). Only Gradio's own upload/cache files are served there (ui/media.py)."""
    return "gradio_api/file=" + quote(path)


def player_html(hit: dict | None, playable: str | None = None) -> str:
    """An HTML5 video that starts at the shot and stops at its end (media fragment)."""
    if hit is None:
        return '<div class="ss-empty-player">Click a shot to play it from its start.</div>'
    if playable is None:
        thumb = (
            f'<img src="{html.escape(thumb_url(hit["shot_id"]))}" alt="shot thumbnail" '
            'style="width:100%;aspect-ratio:16/9;object-fit:cover">'
            if hit.get("thumb")
            else ""
        )
        return (
            f'<div class="ss-banner ss-warn">The movie file is not available at '
            f"<code>{html.escape(hit.get('path') or '?')}</code>. If it moved, start the app "
            "with <code>--movies FOLDER</code> pointing at its new folder.</div>" + thumb
        )
    start, end = float(hit["start_s"]), float(hit["end_s"])
    src = f"{movie_url(hit['movie_id'])}#t={start:.3f},{end:.3f}"
    hint = ""
    if Path(playable).suffix.lower() not in PLAYABLE_EXT:
        hint = (
            '<div class="ss-banner ss-info">Browsers may not play '
            f"<code>{html.escape(Path(playable).suffix)}</code> files; if the player stays "
            "black, open the file in a desktop player at the timestamp below.</div>"
        )
    jump = ""
    if hit.get("match_s") is not None:  # the shot plays from its start; offer its best moment
        m = float(hit["match_s"])
        jump = (
            f'<button id="ss-jump" class="ss-jump" data-match="{m:.3f}" onclick="const v='
            f"document.getElementById('ss-video'); v.currentTime={m:.3f}; v.play();\">"
            f"Jump to the matching moment ({fmt_time(m)})</button>"
        )
    # with sound; PLAYER_JS starts it (muted only if the browser refuses) and drives the bar
    shot = html.escape(hit["shot_id"])
    return (
        f'<video id="ss-video" src="{html.escape(src)}" controls autoplay playsinline preload="auto" '
        f'data-shot="{shot}" data-start="{start:.3f}" data-end="{end:.3f}"></video>'
        f'<div class="ss-shotbar"><input type="range" id="ss-scrub" aria-label="position in the '
        f'shot" min="{start:.3f}" max="{end:.3f}" step="any" value="{start:.3f}" '
        f'data-shot="{shot}"><output id="ss-scrub-t">0:00.0 / {fmt_time(end - start)}</output>'
        f"</div>{jump}{hint}"
    )


def details_markdown(hit: dict | None) -> str:
    if hit is None:
        return ""
    esc = _md_escape
    title = esc(hit["title"]) + (f" ({hit['year']})" if hit.get("year") else "")
    genres = ", ".join(esc(g) for g in hit.get("genres") or []) or "—"
    dur = hit["end_s"] - hit["start_s"]
    score = f" · score **{hit['score']:.3f}**" if hit.get("score") is not None else ""
    lines = [
        f"### {title}",
        f"Genres: {genres} · file `{os.path.basename(hit.get('path') or '') or '?'}`",
        "",
        f"Shot {hit['shot_index']} · **{fmt_time(hit['start_s'])} – {fmt_time(hit['end_s'])}** "
        f"({dur:.1f} s){score}"
        + (
            f" · best match at **{fmt_time(hit['match_s'])}**"
            if hit.get("match_s") is not None
            else ""
        ),
        "",
        "| scene label (top 5) | score |",
        "|---|---:|",
    ]
    clean = set(hit.get("labels") or [])
    for t in hit.get("top") or []:
        mark = " ✓" if t["label"] in clean else ""
        lines.append(f"| {esc(t['label'])}{mark} | {t['score']:.3f} |")
    if clean:
        lines += ["", "✓ = confident label (MovieCLIP's clean set)"]
    return "\n".join(lines)


def _md_escape(s: str) -> str:
    return "".join("\\" + c if c in "\\`*_{}[]<>()#+-.!|" else c for c in str(s))


def timestamp_text(hit: dict) -> str:
    return (
        f"{fmt_time(hit['start_s'])}–{fmt_time(hit['end_s'])} "
        f"({hit['start_s']:.3f}–{hit['end_s']:.3f} s)"
    )


def banner(text: str, kind: str = "info") -> str:
    """A message box; ``text`` is HTML-escaped except for the ``<code>`` we add ourselves."""
    return f'<div class="ss-banner ss-{kind}">{text}</div>'


# ------------------------------------------------------------------------------ handlers
class SearchApp:
    """The page's behaviour as plain methods (tests call them directly, without a browser)."""

    def __init__(self, slot: EngineSlot, movie_dirs: Sequence[str] = ()):
        self.slot = slot
        self.locator = MovieLocator(movie_dirs)
        self.movie_dirs = list(movie_dirs)

    # -- page state --------------------------------------------------------------------
    def status(self) -> str:
        """The banner describing the index: busy, empty, random weights, or its size."""
        try:
            eng = self.slot.get()
        except IndexBusyError as e:
            return banner(
                f"<b>The index is busy</b>: {html.escape(str(e))}. The embedded index can be "
                "opened by one process at a time (an indexing run, or another app): search "
                "becomes available when that process finishes — press <b>Retry</b> then.",
                "warn",
            )
        if eng.is_empty:
            where = html.escape(eng.index_dir or "")
            return banner(
                f"<b>The index is empty.</b> Add movies with "
                f"<code>scenesearch index --index {where} MOVIES...</code> (stop this app "
                "first: the embedded index admits one process at a time), then start it again.",
                "warn",
            )
        n_movies, n_shots = len(eng.movies()), eng.store.count()
        model = html.escape(str(eng.meta.get("model_id", "")))
        text = f"{n_movies} movies · {n_shots} shots · model <code>{model}</code>"
        if eng.random_weights:
            return banner(
                text + " — <b>built with RANDOM WEIGHTS</b>: scores and labels are meaningless "
                "(plumbing demo only).",
                "warn",
            )
        return banner(text)

    def choices(
        self, label_source: str = "clean"
    ) -> tuple[list[tuple[str, str]], list[str], list[tuple[str, str]]]:
        """Labels (the whole taxonomy, as ("label (shots)", label)), genres present, movies as
        (shown name, id)."""
        try:
            eng = self.slot.get()
        except IndexBusyError:
            return [], [], []
        movies = [
            (f"{m.get('title')} ({m['year']})" if m.get("year") else str(m.get("title")),
             m["movie_id"])
            for m in eng.movies()
        ]  # fmt: skip
        return self.label_choices(label_source), eng.genres(), movies

    def label_choices(self, label_source: str = "clean") -> list[tuple[str, str]]:
        """Every label of the taxonomy with the number of shots it would match in this label
        mode (confident labels, or any of the top 5): ``("street (12)", "street")``."""
        try:
            eng = self.slot.get()
        except IndexBusyError:
            return []
        counts = eng.label_counts("top" if label_source == "top" else "clean")
        return [(f"{lab} ({counts.get(lab, 0)})", lab) for lab in eng.labels()]

    # -- search ------------------------------------------------------------------------
    def run_search(
        self,
        query: str | None = None,
        image: Any = None,
        labels: Sequence[str] | None = None,
        label_mode: str = "any",
        label_source: str = "clean",
        genres: Sequence[str] | None = None,
        movies: Sequence[str] | None = None,
        year_min: float | None = None,
        year_max: float | None = None,
        duration_min: float | None = None,
        duration_max: float | None = None,
        k: int = DEFAULT_K,
        min_score: float | None = None,
        like: str | None = None,
    ) -> tuple[list[dict], str]:
        """Run one search; returns (hit dicts, status HTML). Never raises for user errors: a
        known error becomes a visible message (and a toast, via :func:`gr.Warning`)."""
        try:
            eng = self.slot.get()
        except IndexBusyError:
            return [], self.status()
        if eng.is_empty:
            return [], self.status()
        query = (query or "").strip() or None
        # the number fields are free text (empty = no limit, never 0), checked by
        # search/validate.py like the CLI's and the API's values
        try:
            filters = build_filters(labels, label_mode, label_source, genres, movies, year_min,
                                    year_max, duration_min, duration_max)  # fmt: skip
            min_s = opt_float(min_score, "Minimum score")
            k = as_int(DEFAULT_K if k in (None, "") else k, "Number of results", 1, MAX_K)
        except ScenesearchError as e:
            return [], self._error(e)
        if query is None and image is None and not like and filters.is_empty():
            # browsing a whole index in time order means reading every point: ask for something
            return [], banner(
                "Type a query, upload an image, or pick a filter (label, genre, movie, year, "
                "duration) — with filters only, matching shots are listed in time order."
            )
        try:
            res = eng.search(
                text=query,
                image=image,
                like=like or None,
                filters=filters,
                limit=k,
                min_score=min_s,
            )
        except (ScenesearchError, ValueError) as e:
            return [], self._error(e)
        except Exception:  # a bug: log it for the operator, show the user one calm line
            log.exception("search failed")
            msg = "Search failed because of an internal error (details are in the server log)."
            gr.Warning(msg)
            return [], banner(msg, "error")
        hits = [h.to_dict() for h in res.hits]
        if res.no_good_match:
            best = f" (best score {res.best_score:.3f})" if res.best_score is not None else ""
            return [], banner(
                f"No good match: no shot scored at least {min_s:.3f}{best}. Lower the minimum "
                "score or rephrase the query.",
                "warn",
            )
        if not hits:
            return [], banner("No shots match these filters.", "warn")
        what = {
            "text": "for the query",
            "image": "for the image",
            "text+image": "for the query and image",
            "like": f"like shot <code>{html.escape(like or '')}</code>",
            "browse": "in time order (no query)",
        }.get(res.mode, "")
        more = "" if res.exhausted else " — more exist: raise the number of results"
        note = " (random weights: scores are meaningless)" if eng.random_weights else ""
        return hits, banner(f"{len(hits)} shots {what}{more}.{note}")

    def _error(self, e: BaseException) -> str:
        """A user error, in the page's words, as a toast and a banner (HTML-escaped: the text
        may echo input)."""
        msg = _one_line(named(e, PAGE_NAMES))
        gr.Warning(html.escape(msg))
        return banner(html.escape(msg), "error")

    # -- files served by id (ui/media.py) -------------------------------------------------
    def movie_file(self, movie_id: str) -> str | None:
        """The file of an indexed movie (its path, or its namesake under --movies), or None."""
        eng = self.slot.engine
        if eng is None:
            return None
        rec = next((m for m in eng.movies() if m["movie_id"] == movie_id), None)
        return self.locator.find(rec.get("path") or "") if rec else None

    def thumb_file(self, shot_id: str) -> str | None:
        """The JPEG of an indexed shot, from the index's thumbs folder only, or None."""
        from scenesearch.indexer.records import parse_shot_id

        eng = self.slot.engine
        movie_id, index = parse_shot_id(shot_id)
        if eng is None or not any(m["movie_id"] == movie_id for m in eng.movies()):
            return None
        thumbs = os.path.realpath(os.path.join(eng.index_dir, "thumbs"))
        path = os.path.realpath(os.path.join(thumbs, movie_id, f"{index:04d}.jpg"))
        inside = path.startswith(thumbs + os.sep)
        return path if inside and os.path.isfile(path) else None

    def gallery_items(self, hits: list[dict]) -> list[tuple[str, str]]:
        return [(h["thumb"], caption(h)) for h in hits if h.get("thumb")]

    # -- one shot ------------------------------------------------------------------------
    def show(self, hit: dict | None) -> tuple[str, str, str, str]:
        """(player HTML, details markdown, shot id, timestamp) for a hit dict."""
        if hit is None:
            return player_html(None), "", "", ""
        playable = self.locator.find(hit.get("path") or "")
        return (
            player_html(hit, playable),
            details_markdown(hit),
            hit["shot_id"],
            timestamp_text(hit),
        )

    def retry(self) -> bool:
        return self.slot.retry()


def api_hit(d: dict) -> dict:
    """A hit dict for the JSON API: ``path`` is renamed ``movie_path``, because gradio_client
    takes any dict with a ``path`` key for a file to download (it would fetch the whole movie)."""
    out = {k: v for k, v in d.items() if k != "path"}
    out["movie_path"] = d.get("path", "")
    return out


def _undecoded_upload(payload) -> str | bytes | None:
    """The uploaded still as its file path (or the bytes of a pasted data URL), NOT decoded:
    Gradio's own preprocessing opens it with PIL, so a non-image or a decompression bomb failed
    there with a bare "Error" toast, and a 445 KB PNG of 144 megapixels cost ≈ 1 GB of server
    memory per round. The engine decodes it through indexer.imageio.load_rgb, which checks the
    byte size and the declared pixel count first and says what is wrong."""
    if payload is None:
        return None
    url = getattr(payload, "url", None) or ""
    if url.startswith("data:"):
        import base64
        import binascii

        head, _, data = url.partition(",")
        if len(data) > MAX_IMAGE_BYTES * 4 // 3 + 4:
            raise gr.Error(f"image too large: at most {MAX_IMAGE_BYTES >> 20} MB")
        try:
            return base64.b64decode(data, validate=True) if ";base64" in head else None
        except binascii.Error:
            raise gr.Error("not a readable image (bad data URL)") from None
    return getattr(payload, "path", None)


def _one_line(e: BaseException) -> str:
    return (str(e).strip().splitlines() or [type(e).__name__])[0]


# ------------------------------------------------------------------------------ the page
def _number_box(label: str, placeholder: str, elem_id: str) -> gr.Textbox:
    return gr.Textbox(label=label, placeholder=placeholder, elem_id=elem_id, lines=1, max_lines=1)


def build_app(
    engine: SearchEngine | EngineSlot | None,
    movie_dirs: Sequence[str] = (),
) -> gr.Blocks:
    """The Gradio page over ``engine`` (an open engine, or an :class:`EngineSlot` that may be
    waiting for a busy index). Nothing is launched here; see :func:`serve`."""
    slot = engine if isinstance(engine, EngineSlot) else EngineSlot(engine)
    app = SearchApp(slot, movie_dirs)
    work = WorkPanel(app)  # "then" queries, facet chips, film strip, export (ui/app_work.py)
    labels0, genres0, movies0 = app.choices()

    with gr.Blocks(title="scenesearch", analytics_enabled=False) as demo:
        demo.scenesearch = app  # tests and serve() reach the handlers through the Blocks
        gr.Markdown("## scenesearch — find the shot, see it, play it")
        index_info = gr.HTML(app.status(), elem_id="ss-index")
        with gr.Row(visible=slot.engine is None) as busy_row:
            retry_btn = gr.Button("Retry", variant="secondary", scale=0, elem_id="ss-retry")
        with gr.Row(equal_height=False):
            with gr.Column(scale=3):
                query = gr.Textbox(
                    label="Describe the shot",
                    placeholder="e.g. a rainy street at night, two people talking in a car",
                    elem_id="ss-query",
                    lines=1,
                )
                work.render_then()
                with gr.Row():
                    labels = gr.Dropdown(
                        labels0,
                        value=[],
                        multiselect=True,
                        filterable=True,
                        label="Scene labels (type to filter)",
                        elem_id="ss-labels",
                        scale=3,
                    )
                    label_mode = gr.Radio(
                        [("any of them", "any"), ("all of them", "all")],
                        value="any",
                        label="Shots with",
                        scale=1,
                    )
                    label_source = gr.Radio(
                        [("confident labels", "clean"), ("any of its top 5", "top")],
                        value="clean",
                        label="Label match",
                        scale=1,
                    )
            with gr.Column(scale=1, min_width=220):
                image = gr.Image(
                    label="Search with a still (with text: both)",
                    type="filepath",
                    image_mode=None,
                    sources=["upload", "clipboard"],
                    height=190,
                    elem_id="ss-image",
                )
                image.preprocess = _undecoded_upload  # we decode, with limits (see there)
        with gr.Accordion("More filters: genre, movie, year, shot length, score", open=False):
            with gr.Row():
                genres = gr.Dropdown(
                    genres0, value=[], multiselect=True, label="Genres (any of)", scale=2,
                    elem_id="ss-genres",
                )  # fmt: skip
                movies = gr.Dropdown(
                    movies0, value=[], multiselect=True, label="Movies (any of)", scale=3,
                    elem_id="ss-movies",
                )  # fmt: skip
            # Text boxes, not gr.Number: Gradio's number field shows and submits 0 when empty,
            # which a year minimum then rejects (issue 19); empty here means "no limit".
            with gr.Row():
                year_min = _number_box("Year from", "e.g. 1990", "ss-year-min")
                year_max = _number_box("Year to", "e.g. 2005", "ss-year-max")
                dur_min = _number_box("Shot length from (s)", "e.g. 2", "ss-dur-min")
                dur_max = _number_box("Shot length to (s)", "e.g. 10", "ss-dur-max")
                min_score = _number_box("Minimum score", "none, or e.g. 0.25", "ss-min-score")
        with gr.Row(equal_height=True):
            search_btn = gr.Button("Search", variant="primary", elem_id="ss-search", scale=3)
            # outside "More filters": the results line tells users to raise it
            k = gr.Slider(1, MAX_K, value=DEFAULT_K, step=1, label="Number of results",
                          elem_id="ss-k", scale=2)  # fmt: skip
            clear_btn = gr.Button("Clear filters", variant="secondary", scale=1)
        message = gr.HTML("", elem_id="ss-message")
        work.render_facets()
        hits_state = gr.State([])
        current = gr.State(None)
        with gr.Row(equal_height=False):
            with gr.Column(scale=3):
                gallery = gr.Gallery(
                    label="Shots",
                    columns=3,
                    height="auto",
                    allow_preview=False,
                    object_fit="cover",
                    elem_id="ss-gallery",
                    interactive=False,
                )
            # the player column stays in view while a long gallery scrolls (sticky, in CSS)
            with gr.Column(scale=2, elem_id="ss-side"):
                player = gr.HTML(player_html(None), elem_id="ss-player")
                details = gr.Markdown(elem_id="ss-details")
                with gr.Row():
                    shot_id = gr.Textbox(
                        label="Shot id", buttons=["copy"], interactive=False, elem_id="ss-shot-id"
                    )
                    stamp = gr.Textbox(
                        label="Timestamp", buttons=["copy"], interactive=False, elem_id="ss-stamp"
                    )
                like_btn = gr.Button("More like this", elem_id="ss-like", interactive=False)
        work.render_strip_and_export(movies0)

        filters_in = [
            labels, label_mode, label_source, genres, movies,
            year_min, year_max, dur_min, dur_max, k, min_score,
        ]  # fmt: skip

        def do_search(q, img, then_q, within, *f):
            if (then_q or "").strip():  # "A then B" sequences
                hits, msg = work.sequences(q, img, then_q, within, *f)
            else:
                hits, msg = app.run_search(q, img, *f)
            return gr.Gallery(gallery_items(hits), selected_index=None), hits, msg

        def do_like(hit, *f):
            if not hit:
                return gr.skip(), gr.skip(), gr.skip(), gr.skip(), gr.skip()
            hits, msg = app.run_search(None, None, *f, like=hit["shot_id"])
            # the page now shows "shots like this one": the old query and image go, and the
            # gallery marks the shot the player shows (usually the first), or none
            ids = [h["shot_id"] for h in hits if h.get("thumb")]
            sel = ids.index(hit["shot_id"]) if hit["shot_id"] in ids else None
            return gr.Gallery(app.gallery_items(hits), selected_index=sel), hits, msg, "", None

        def do_select(hits, evt: gr.SelectData):
            i = evt.index if isinstance(evt.index, int) else (evt.index or [0])[0]
            hit = hits[i] if hits and 0 <= i < len(hits) else None
            return (*app.show(hit), hit, gr.Button(interactive=hit is not None))

        def do_retry(source):
            ok = app.retry()
            if ok:
                # the movies' folders were unknown while the index was locked: allow them now
                # (Gradio reads this list on every file request)
                for d in allowed_folders(slot.engine, app.movie_dirs, slot.index_dir):
                    if d not in demo.allowed_paths:
                        demo.allowed_paths.append(d)
            lab, gen, mov = app.choices(source)
            return (
                app.status(),
                gr.Row(visible=not ok),
                gr.Dropdown(choices=lab),
                gr.Dropdown(choices=gen),
                gr.Dropdown(choices=mov),
                gr.Timer(active=not ok),
            )

        search_out = [gallery, hits_state, message]
        common = {"api_visibility": "private", "show_progress": "minimal"}
        search_in = [query, image, work.then, work.within, *filters_in]
        searches = [
            search_btn.click(do_search, search_in, search_out, **common),
            query.submit(do_search, search_in, search_out, **common),
            work.then.submit(do_search, search_in, search_out, **common),
            like_btn.click(do_like, [current, *filters_in], [*search_out, query, image], **common),
        ]
        work.wire(
            filters_in=filters_in, labels=labels, genres=genres, movies=movies,
            hits_state=hits_state, search_events=searches,
            rerun=lambda ev: ev.then(do_search, search_in, search_out, **common),
            shown=[player, details, shot_id, stamp, current, like_btn], current=current,
        )  # fmt: skip
        gallery.select(
            do_select, [hits_state], [player, details, shot_id, stamp, current, like_btn],
            api_visibility="private",
        )  # fmt: skip
        # while the index is busy the page re-checks by itself (the timer stops once it opens);
        # the handlers and the JSON API re-check on each request too (EngineSlot.get)
        recheck = gr.Timer(5, active=slot.engine is None)
        retry_out = [index_info, busy_row, labels, genres, movies, recheck]
        retry_btn.click(do_retry, [label_source], retry_out, api_visibility="private")
        recheck.tick(
            do_retry, [label_source], retry_out, api_visibility="private",
            show_progress="hidden",
        )  # fmt: skip
        label_source.change(
            lambda src: gr.Dropdown(choices=app.label_choices(src)), [label_source], [labels],
            api_visibility="private",
        )  # fmt: skip
        clear_btn.click(
            lambda: ([], "any", "clean", [], [], "", "", "", "", DEFAULT_K, ""),
            None,
            filters_in,
            api_visibility="private",
        )

        def search(
            query: str = "",
            labels: list[str] | None = None,
            genres: list[str] | None = None,
            movies: list[str] | None = None,
            years: str = "",
            duration: str = "",
            k: int = 10,
            min_score: float | None = None,
            like: str = "",
            label_source: str = "",
            all_labels: list[str] | None = None,
            top_labels: int | None = None,
            min_label_score: float | None = None,
        ) -> list[dict]:
            """Search shots; returns hit dicts (see the module docstring of ui.app)."""
            try:  # bounds: search/validate.py (the same checks as the CLI and the page)
                for name, v in (("query", query), ("like", like), ("label_source", label_source)):
                    if v is not None and not isinstance(v, str):
                        raise ConfigError(f"{name} must be text, not {type(v).__name__}")
                filters = filters_from_input(
                    labels=labels, all_labels=all_labels, label_source=label_source,
                    top_labels=top_labels, min_label_score=min_label_score, genres=genres,
                    movies=movies, years=years or None, durations=duration or None,
                )  # fmt: skip
                k = as_int(k, "k (number of results)", 1, MAX_K)
                eng = slot.get()
                if eng.is_empty:
                    return []
                res = eng.search(
                    text=(query or "").strip() or None,
                    like=(like or "").strip() or None,
                    filters=filters,
                    limit=k,
                    min_score=min_score,
                )
            except (ScenesearchError, ValueError, TypeError) as e:
                raise gr.Error(_one_line(named(e, API_NAMES)), print_exception=False) from None
            except Exception:  # a bug: the API still answers, with one line; the log has it
                log.exception("API search failed")
                raise gr.Error("internal error (details are in the server log)",
                               print_exception=False) from None  # fmt: skip
            return [api_hit(h.to_dict()) for h in res.hits]

        gr.api(search, api_name="search")

        def sequences(
            query: str = "",
            then: str = "",
            within: float = 10.0,
            labels: list[str] | None = None,
            genres: list[str] | None = None,
            movies: list[str] | None = None,
            k: int = 10,
            years: str = "",
            duration: str = "",
            label_source: str = "",
            all_labels: list[str] | None = None,
            top_labels: int | None = None,
            min_label_score: float | None = None,
        ) -> list[dict]:
            """Pairs: a shot matching query, then one matching then within N s (search/temporal.py);
            the filters as for /search, applied to both shots."""
            try:
                return api_sequences(
                    slot, query, then, within, labels, genres, movies, k, years=years or None,
                    durations=duration or None, label_source=label_source, all_labels=all_labels,
                    top_labels=top_labels, min_label_score=min_label_score,
                )  # fmt: skip
            except (ScenesearchError, ValueError) as e:
                raise gr.Error(_one_line(named(e, API_NAMES)), print_exception=False) from None

        gr.api(sequences, api_name="sequences")

        def search_cli(request: dict) -> dict:
            """The command line's route to this server (ui.remote): a JSON search request →
            hits and result flags."""
            try:
                eng = slot.get()
            except IndexBusyError as e:
                return {"error": _one_line(e)}
            return handle_request(eng, request)

        gr.api(search_cli, api_name=REMOTE_API)
    return demo


# ------------------------------------------------------------------------------ serve
def theme() -> gr.themes.Base:
    """Gradio's default look with system font stacks: nothing is fetched from font CDNs."""
    return gr.themes.Default(font=FONT, font_mono=FONT_MONO)


def launch_app(
    demo: gr.Blocks,
    host: str = "127.0.0.1",
    port: int | None = None,
    *,
    share: bool = False,
    prevent_thread_lock: bool = False,
    quiet: bool = False,
):
    """Launch a page from :func:`build_app` with the only file access it needs (see
    :func:`allowed_folders`), our theme and CSS, and nothing that calls outside hosts."""
    app: SearchApp = demo.scenesearch
    os.environ["GRADIO_ANALYTICS_ENABLED"] = "False"  # no version check / telemetry calls
    guard = Middleware(MediaGuard, movie_file=app.movie_file, thumb_file=app.thumb_file)
    return demo.launch(
        head=PLAYER_JS,
        app_kwargs={"middleware": [guard]},  # movies and thumbnails by id only: ui/media.py
        max_file_size=MAX_UPLOAD,  # Gradio answers a larger upload with 413 and a message
        server_name=host,
        server_port=port,
        share=share,
        allowed_paths=allowed_folders(app.slot.engine, app.movie_dirs, app.slot.index_dir),
        theme=theme(),
        css=CSS + WORK_CSS,
        show_error=False,  # unexpected exceptions stay in the server log; gr.Error still shows
        footer_links=["api", "settings"],
        ssr_mode=False,  # no Node server: one process, one port
        mcp_server=False,
        pwa=False,
        prevent_thread_lock=prevent_thread_lock,
        quiet=quiet,
    )


def open_slot(store_cfg: StoreConfig, device: str = "cpu") -> EngineSlot:
    """Open the index for the app, or, when another process is indexing it (the embedded store
    admits one process at a time), an empty slot that says so and can retry later."""
    from scenesearch.indexer.pipeline import is_being_indexed

    embedded = not store_cfg.qdrant_url
    index_dir = store_cfg.index_dir

    def opener() -> SearchEngine:
        return SearchEngine.open(store_cfg, device=device)

    def busy() -> bool:
        # a server backend serves readers while indexing runs; only the embedded one is exclusive
        return embedded and bool(index_dir) and is_being_indexed(index_dir)

    slot = EngineSlot(None, opener, busy_check=busy, index_dir=index_dir)
    if busy():
        slot.busy_message = f"{index_dir} is being indexed by a running 'scenesearch index'"
    else:
        try:
            slot.engine = opener()
        except IndexBusyError as e:
            slot.busy_message = str(e)
    return slot


def serve(
    store_cfg: StoreConfig,
    host: str = "127.0.0.1",
    port: int = 7860,
    movie_dirs: Sequence[str] = (),
    device: str | None = None,
    share: bool = False,
) -> int:
    """Open the index, build the page and serve it until interrupted. Returns an exit code.

    An index being indexed elsewhere does not stop the server: the page says so and offers
    Retry.
    """
    from scenesearch.indexer.config import env_defaults, resolve_device

    slot = open_slot(store_cfg, resolve_device(device or env_defaults()["device"] or "auto"))
    if slot.engine is None:
        log.warning("index busy: %s; serving the page with a Retry button", slot.busy_message)
    demo = build_app(slot, movie_dirs)
    try:
        # quiet: Gradio's banner ends with "To create a public link, set share=True", which means
        # nothing to a CLI user; we print the one line that matters
        _, url, _ = launch_app(demo, host, port, share=share, prevent_thread_lock=True, quiet=True)
    except OSError as e:  # port taken, address not available: one line from the CLI
        if slot.engine is not None:
            slot.engine.close()
        raise ConfigError(f"cannot serve on {host}:{port}: {_one_line(e)}") from e
    local = url.replace("://0.0.0.0:", "://127.0.0.1:").replace("://[::]:", "://127.0.0.1:")
    endpoint = write_endpoint(store_cfg, local)  # `scenesearch search` goes through this server
    print(f"scenesearch: web app on {url} (Ctrl-C to stop)", flush=True)
    previous = signal.signal(signal.SIGTERM, _interrupt)  # a kill runs the clean-up below too
    try:
        while demo.is_running:
            time.sleep(0.2)
    except KeyboardInterrupt:
        pass
    finally:
        signal.signal(signal.SIGTERM, previous)
        if endpoint is not None:
            remove_endpoint(store_cfg)
        demo.close()
        if slot.engine is not None:
            slot.engine.close()
    return 0


def _interrupt(signum, frame):
    raise KeyboardInterrupt
