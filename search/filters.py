"""Search filters: :class:`SearchFilters` (what a query may be narrowed by) and their
translation into the store's filter conditions, with names checked against the index (labels,
genres, movie titles) and close matches suggested."""

from __future__ import annotations

import difflib
import os
from collections.abc import Iterable, Mapping
from dataclasses import asdict, dataclass, fields
from typing import Any

from scenesearch.indexer.errors import ConfigError
from scenesearch.indexer.store import Filter, MatchAny, Range, TopLabel
from scenesearch.search.validate import (
    NAME,
    InputValueError,
    check_filters,
    opt_float,
    opt_int,
    parse_range,
)


@dataclass(frozen=True)
class SearchFilters:
    """Filters applied inside the vector search (all optional; empty means no constraint).

    Labels: ``labels_any`` (at least one) and ``labels_all`` (every one). With
    ``label_source="clean"`` they match MovieCLIP's clean label set; with ``"top"`` they match
    the shot's top ``label_top_k`` labels whose score is ≥ ``label_min_score``.
    """

    labels_any: tuple[str, ...] = ()
    labels_all: tuple[str, ...] = ()
    label_source: str = "clean"  # clean | top
    label_top_k: int = 5
    label_min_score: float = 0.0
    genres: tuple[str, ...] = ()  # any of
    movies: tuple[str, ...] = ()  # movie ids or titles, any of
    year_min: int | None = None
    year_max: int | None = None
    duration_min: float | None = None  # seconds
    duration_max: float | None = None

    def is_empty(self) -> bool:
        return self == SearchFilters()

    def to_dict(self) -> dict[str, Any]:
        """As JSON-ready values (tuples as lists): what :meth:`from_dict` reads back."""
        return {k: list(v) if isinstance(v, tuple) else v for k, v in asdict(self).items()}

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> SearchFilters:
        """From :meth:`to_dict`'s form (lists as tuples; keys it does not know are ignored)."""
        known = {f.name for f in fields(cls)}
        return cls(
            **{k: tuple(v) if isinstance(v, list) else v for k, v in d.items() if k in known}
        )


def filters_from_input(
    labels: Iterable[str] | None = None,
    label_mode: str = "any",
    all_labels: Iterable[str] | None = None,
    label_source: str | None = None,
    top_labels: Any = None,
    min_label_score: Any = None,
    genres: Iterable[str] | None = None,
    movies: Iterable[str] | None = None,
    years: str | None = None,
    durations: str | None = None,
    year_min: Any = None,
    year_max: Any = None,
    duration_min: Any = None,
    duration_max: Any = None,
) -> SearchFilters:
    """The one translation of user input — CLI arguments, the page's fields, the JSON API's
    arguments — into :class:`SearchFilters`. Every shell calls it; bounds are checked later, by
    the engine (:func:`search.validate.check_filters`).

    - ``labels``: any of them, or with ``label_mode="all"`` every one; ``all_labels``: every one.
    - ``label_source``: ``"clean"`` (MovieCLIP's confident labels) or ``"top"`` (the shot's top
      ``top_labels`` labels scoring ≥ ``min_label_score``). None or ``""``: ``"top"`` when
      ``top_labels`` or ``min_label_score`` is given, else ``"clean"``.
    - ``years`` / ``durations``: range texts (``"1990-2000"``, ``"2-"``, ``"-10"``, ``"5"``);
      ``year_min`` ... ``duration_max``: single values (a number or a number as text; empty is
      no limit). A bound given both ways is an error.

    A bad value is an :class:`InputValueError` naming the input by its parameter name here
    (``years``, ``top_labels``...): each shell renames it (:meth:`InputValueError.named`).
    """
    y0, y1 = parse_range(years, int, "years")
    d0, d1 = parse_range(durations, float, "durations")
    single = {"year_min": year_min, "year_max": year_max, "duration_min": duration_min,
              "duration_max": duration_max}  # fmt: skip
    ranged = {"year_min": y0, "year_max": y1, "duration_min": d0, "duration_max": d1}
    bounds = {}
    for key, value in single.items():
        conv = opt_int if key.startswith("year") else opt_float
        value = conv(value, key)
        if value is not None and ranged[key] is not None:
            raise InputValueError(key, f"{NAME} is given twice (as a value and in a range)")
        bounds[key] = ranged[key] if value is None else value
    top_k = opt_int(top_labels, "top_labels")
    min_score = opt_float(min_label_score, "min_label_score")
    if not label_source:
        label_source = "clean" if top_k is None and min_score is None else "top"
    elif label_source == "clean" and (top_k is not None or min_score is not None):
        raise InputValueError(
            "label_source", f"{NAME} 'clean' cannot take top_labels or min_label_score, which "
            "match the top labels: use 'top' (or leave the label source out)"
        )  # fmt: skip
    labels, all_labels = tuple(labels or ()), tuple(all_labels or ())
    return SearchFilters(
        labels_any=labels if label_mode != "all" else (),
        labels_all=(labels if label_mode == "all" else ()) + all_labels,
        label_source=label_source,
        label_top_k=5 if top_k is None else top_k,
        label_min_score=0.0 if min_score is None else min_score,
        genres=tuple(genres or ()),
        movies=tuple(movies or ()),
        **bounds,
    )


# Said when a clean-label filter meets an index where no shot has a clean label (random weights,
# or a weak model: no top-1 score reaches MovieCLIP's 0.4): otherwise such a search is just empty.
# The remedy is named as an input (NAME; the shells say it their way: CLI_NAMES, PAGE_NAMES).
NO_CLEAN_LABELS = (
    "no shot in this index has a confident (clean) label{why}, so a clean-label filter matches "
    "nothing; match each shot's top 5 labels instead (" + NAME + ")"
)
TOP_LABELS_REMEDY = "label_source=top"  # the input that field names; said "label_source 'top'"


def format_suggestion(kind: str, name: str, known: list[str]) -> str:
    """``unknown genre 'x'; did you mean: a, b?`` — or, with nothing close, the known names (all
    of them when there are few)."""
    close = difflib.get_close_matches(name.lower(), [k.lower() for k in known], n=3, cutoff=0.6)
    by_lower = {k.lower(): k for k in known}
    if close:
        hint = f"; did you mean: {', '.join(by_lower[c] for c in close)}?"
    elif not known:
        hint = f"; the index has no {kind}s"
    elif len(known) <= 12:
        hint = f"; known {kind}s: {', '.join(sorted(known, key=str.lower))}"
    else:
        shown = ", ".join(sorted(known, key=str.lower)[:8])
        hint = f"; {len(known)} known {kind}s, e.g. {shown} (scenesearch info lists them)"
    return f"unknown {kind} {name!r}{hint}"


def build_filter(engine, f: SearchFilters | None) -> Filter | None:
    """Validate ``f`` against ``engine``'s index (a :class:`search.SearchEngine`: its labels,
    genres, movies, kept top-k) with suggestions for unknown names, and translate it to the
    store's filter conditions (None: no constraint)."""
    if f is None:
        return None
    stored_k = (engine.meta or {}).get("top_k")  # absent in indexes made before it was kept
    check_filters(f, stored_k)
    if f.is_empty():
        return None
    must: list = []
    known = set(engine.labels())
    for name in (*f.labels_any, *f.labels_all):
        if name not in known:
            raise ConfigError(format_suggestion("label", name, sorted(known)))
    if f.label_source == "clean" and (f.labels_any or f.labels_all) and not engine.label_counts():
        why = " (it was built with random weights)" if engine.random_weights else ""
        raise InputValueError(
            TOP_LABELS_REMEDY, NO_CLEAN_LABELS.format(why=why), "label_source 'top'"
        )

    def label_cond(names: tuple[str, ...]):
        if f.label_source == "clean":
            return MatchAny("labels", names)
        if stored_k is not None and f.label_top_k >= stored_k and f.label_min_score <= 0:
            # Every stored top label passes rank and score (scores are probabilities, ≥ 0),
            # so this is "the label is among top_labels": a keyword-index lookup, where the
            # nested condition checks each candidate's top[] (1 M shots, a label among the
            # top 5 of 5 % of them: p95 81 ms nested, 17 ms this way; docs/benchmarks.md).
            return MatchAny("top_labels", names)
        conds = tuple(TopLabel(n, f.label_min_score, f.label_top_k) for n in names)
        return conds[0] if len(conds) == 1 else Filter(should=conds)

    if f.labels_any:
        must.append(label_cond(tuple(f.labels_any)))
    for name in f.labels_all:
        must.append(label_cond((name,)))
    if f.genres:
        known_g = engine.genres()
        wanted = tuple(g.strip().lower() for g in f.genres)
        for g in wanted:
            if g not in known_g:
                raise ConfigError(format_suggestion("genre", g, known_g))
        must.append(MatchAny("genres", wanted))
    if f.movies:
        must.append(MatchAny("movie_id", tuple(engine.resolve_movie(m) for m in f.movies)))
    if f.year_min is not None or f.year_max is not None:
        must.append(Range("year", f.year_min, f.year_max))
    if f.duration_min is not None or f.duration_max is not None:
        must.append(Range("duration_s", f.duration_min, f.duration_max))
    return Filter(must=tuple(must))


def resolve_movie(engine, ref: str) -> str:
    """A movie id, title or file name → movie id, among ``engine``'s movies. Case-insensitive; an exact title or file
    name wins, then a title that starts with ``ref``, then one that contains it — each only
    when it names one movie (``Sintel`` finds "Sintel (excerpt)"); otherwise a ConfigError
    with suggestions or the candidates."""
    movies = engine.movies()
    for m in movies:
        if ref == m["movie_id"]:
            return ref
    low = ref.strip().lower()
    titles = [str(m.get("title", "")).lower() for m in movies]
    exact = [
        m
        for m, t in zip(movies, titles)
        if t == low or os.path.basename(m.get("path", "")).lower() == low
    ]
    if exact:
        return exact[0]["movie_id"]
    for match in (str.startswith, str.__contains__):
        hits = [m for m, t in zip(movies, titles) if low and match(t, low)]
        if len(hits) == 1:
            return hits[0]["movie_id"]
        if len(hits) > 1:
            names = ", ".join(repr(str(m.get("title"))) for m in hits[:6])
            raise ConfigError(f"movie {ref!r} is ambiguous: {names}; give more of the title")
    raise ConfigError(format_suggestion("movie", ref, [str(m.get("title")) for m in movies]))
