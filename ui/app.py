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

The app's parts, by job: ui/app_page.py (the layout and its wiring), ui/app_handlers.py (the
behaviour: engine holder, search, the shot shown), ui/app_view.py (captions, player, details,
banners, CSS), ui/app_work.py (facet chips, film strip, export, "then" queries), ui/app_api.py
(the JSON API), ui/app_serve.py (launch and serve); ui/media.py serves files by id. This module
gathers their public names.
"""

# The parts, by job (each module says what it owns); the names below are the app's public ones.
from scenesearch.ui.app_api import API_NAMES, add_api, api_sequences
from scenesearch.ui.app_handlers import (
    DEFAULT_K,
    MAX_K,
    EngineSlot,
    MovieLocator,
    SearchApp,
    allowed_folders,
)
from scenesearch.ui.app_page import build_app
from scenesearch.ui.app_serve import MAX_UPLOAD, launch_app, open_slot, serve, theme
from scenesearch.ui.app_view import banner, caption, details_markdown, player_html
from scenesearch.ui.remote import api_hit

__all__ = [
    "API_NAMES", "DEFAULT_K", "MAX_K", "MAX_UPLOAD", "EngineSlot", "MovieLocator", "SearchApp",
    "add_api", "allowed_folders", "api_hit", "api_sequences", "banner", "build_app", "caption",
    "details_markdown", "launch_app", "open_slot", "player_html", "serve", "theme",
]  # fmt: skip
