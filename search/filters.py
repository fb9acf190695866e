"""Search filters: :class:`SearchFilters` (what a query may be narrowed by) and their
translation into the store's filter conditions, with names checked against the index (labels,
genres, movie titles) and close matches suggested."""

from __future__ import annotations

import difflib
import os
from dataclasses import dataclass

from scenesearch.indexer.errors import ConfigError
from scenesearch.indexer.store import Filter, MatchAny, Range, TopLabel
from scenesearch.search.validate import check_filters


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


# Said when a clean-label filter meets an index where no shot has a clean label (random weights,
# or a weak model: no top-1 score reaches MovieCLIP's 0.4): otherwise such a search is just empty.
NO_CLEAN_LABELS = (
    "no shot in this index has a confident (clean) label{why}, so a clean-label filter matches "
    "nothing; match each shot's top 5 labels instead (CLI: --top-labels 5; web app: "
    "'any of its top 5')"
)


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
    """Validate names (with suggestions) and translate to the store's filter conditions."""
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
        raise ConfigError(NO_CLEAN_LABELS.format(why=why))

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
    """A movie id, title or file name → movie id. Case-insensitive; an exact title or file
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
