"""The web app's JSON API (see ui/app.py for how to call it): ``/search`` and ``/sequences``
with every filter of the command line (read by :func:`search.filters.filters_from_input`), and
``/search_cli``, the command line's own route to a running server (:mod:`ui.remote`). Errors
answer with one line, in the API's words (:data:`API_NAMES`)."""

from __future__ import annotations

import logging
from typing import Any

import gradio as gr

from scenesearch.indexer.errors import ConfigError, IndexBusyError, ScenesearchError
from scenesearch.search.filters import filters_from_input
from scenesearch.search.temporal import Step, find_sequences
from scenesearch.search.validate import as_int, named
from scenesearch.ui.app_handlers import MAX_K, EngineSlot
from scenesearch.ui.app_view import one_line
from scenesearch.ui.remote import API_NAME as REMOTE_API
from scenesearch.ui.remote import api_hit, handle_request

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


def api_sequences(slot, query: str, then: str, within: float, labels, genres, movies, k: int,
                  **filters: Any) -> list[dict[str, Any]]:  # fmt: skip
    """The JSON API's "sequences" endpoint: pair dicts (``score``, ``gap_s``, ``first``,
    ``then``; each hit with ``movie_path`` instead of ``path``). ``filters``: the other inputs
    of :func:`search.filters.filters_from_input` (years, durations, all_labels, ...)."""
    f = filters_from_input(labels=labels, genres=genres, movies=movies, **filters)
    res = find_sequences(slot.get(), Step((query or "").strip() or None, None, f),
                         Step((then or "").strip() or None, None, f), within_s=float(within),
                         limit=max(1, min(int(k), 200)))  # fmt: skip
    out = []
    for p in res.pairs:
        d = p.to_dict()
        d["first"], d["then"] = api_hit(d["first"]), api_hit(d["then"])
        out.append(d)
    return out


def add_api(slot: EngineSlot) -> None:
    """Register the endpoints on the Blocks being built (called inside ``gr.Blocks()``)."""

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
            raise gr.Error(one_line(named(e, API_NAMES)), print_exception=False) from None
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
            raise gr.Error(one_line(named(e, API_NAMES)), print_exception=False) from None

    gr.api(sequences, api_name="sequences")

    def search_cli(request: dict) -> dict:
        """The command line's route to this server (ui.remote): a JSON search request →
        hits and result flags."""
        try:
            eng = slot.get()
        except IndexBusyError as e:
            return {"error": one_line(e)}
        return handle_request(eng, request)

    gr.api(search_cli, api_name=REMOTE_API)
