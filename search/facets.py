"""Facet counts of a search: how many of ALL the shots matching the filters carry each scene label,
genre and movie — counted by the store (Qdrant's facet API, exact, under the same filter as the
vector search), not by a pass over the returned hits.

A text or image query ranks shots but excludes none, so the shots "matching a search" are those
passing its filters; a minimum score is not counted. Scene labels are counted on the field the
label filter uses: MovieCLIP's clean labels, or the top-5 labels when filtering on those.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from scenesearch.search.engine import SearchEngine, SearchFilters

MAX_LABELS = 200  # the taxonomy has 179
MAX_GENRES = 200
MAX_MOVIES = 1000


@dataclass
class Facets:
    """Counts, most frequent first: ``labels``/``genres`` as (name, count), ``movies`` as
    (movie id, title, count); ``total`` = shots matching the filters."""

    total: int = 0
    labels: list[tuple[str, int]] = field(default_factory=list)
    genres: list[tuple[str, int]] = field(default_factory=list)
    movies: list[tuple[str, str, int]] = field(default_factory=list)
    label_field: str = "labels"

    def to_dict(self) -> dict[str, Any]:
        return {
            "total": self.total,
            "label_field": self.label_field,
            "labels": [{"label": n, "count": c} for n, c in self.labels],
            "genres": [{"genre": n, "count": c} for n, c in self.genres],
            "movies": [{"movie_id": m, "title": t, "count": c} for m, t, c in self.movies],
        }


def _ranked(counts: dict[Any, int]) -> list[tuple[Any, int]]:
    return sorted(((k, int(v)) for k, v in counts.items() if v), key=lambda kv: (-kv[1], kv[0]))


def facet_counts(engine: SearchEngine, filters: SearchFilters | None = None) -> Facets:
    """Facets of every shot passing ``filters`` (validated as for a search)."""
    if engine.is_empty:
        return Facets()
    flt = engine.build_filter(filters)
    store = engine.store
    label_field = (
        "top_labels" if filters is not None and filters.label_source == "top" else "labels"
    )
    titles = {m["movie_id"]: str(m.get("title") or m["movie_id"]) for m in engine.movies()}
    movies = _ranked(store.facet("movie_id", flt, limit=MAX_MOVIES))
    return Facets(
        total=store.count(flt),
        labels=_ranked(store.facet(label_field, flt, limit=MAX_LABELS)),
        genres=_ranked(store.facet("genres", flt, limit=MAX_GENRES)),
        movies=[(m, titles.get(m, m), c) for m, c in movies],
        label_field=label_field,
    )
