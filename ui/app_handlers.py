"""The web app's behaviour as plain methods, without Gradio components: the engine holder that
waits for a busy index (:class:`EngineSlot`), the files the page may serve, and
:class:`SearchApp` (status, choices, search, the shot shown), which tests call directly."""

from __future__ import annotations

import html
import logging
import os
import threading
import time
from collections.abc import Callable, Sequence
from typing import Any

import gradio as gr

from scenesearch.indexer.errors import IndexBusyError, ScenesearchError
from scenesearch.indexer.records import parse_shot_id
from scenesearch.search import SearchEngine
from scenesearch.search.filters import filters_from_input
from scenesearch.search.validate import as_int, named, opt_float
from scenesearch.ui.app_view import (
    banner,
    caption,
    details_markdown,
    one_line,
    player_html,
    timestamp_text,
)

log = logging.getLogger(__name__)

DEFAULT_K = 24
MAX_K = 200

# What the page calls the search inputs in messages (the library's InputValueError.field → the
# page's field labels).
PAGE_NAMES = {
    "year_min": "Year from",
    "year_max": "Year to",
    "duration_min": "Shot length from",
    "duration_max": "Shot length to",
    "limit": "Number of results",
    "min_score": "Minimum score",
    "like": "More like this",
    "label_source=top": "CLI: --top-labels 5; web app: 'any of its top 5'",
    "within": "within (s)",
}


def build_filters(labels, label_mode, label_source, genres, movies, year_min, year_max, dur_min,
                  dur_max):  # fmt: skip
    """The page's filter inputs (as ``SearchApp.run_search`` reads them) as
    :class:`SearchFilters`, through :func:`search.filters.filters_from_input`."""
    return filters_from_input(
        labels=labels, label_mode=label_mode, label_source=label_source, genres=genres,
        movies=movies, year_min=year_min, year_max=year_max, duration_min=dur_min,
        duration_max=dur_max,
    )  # fmt: skip


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
                self.busy_message = one_line(e)
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
        msg = one_line(named(e, PAGE_NAMES))
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
