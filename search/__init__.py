"""scenesearch search: text / image / "more like this shot" queries with filters inside the
vector search, over an index built by ``indexer``. Entry point: :class:`search.engine.SearchEngine`."""

from scenesearch.search.engine import Hit, SearchEngine, SearchFilters, SearchResult

__all__ = ["Hit", "SearchEngine", "SearchFilters", "SearchResult"]
