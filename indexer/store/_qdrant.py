"""What both Qdrant backends do alike, written once: :class:`QdrantStore`.

The embedded shard (``edge.py``) and the server (``server.py``) differ only in the Python types
they hand to Qdrant and in how a call fails. Everything around those calls is the same and lives
here: a search becomes one :class:`Query`, repeated exactly when a filtered approximate search
comes back short (see :func:`base.short_under_filter`); hits become :class:`StoredRecord`;
retrieve keeps the asked order; an ordered scroll pages through ties; upserts go in chunks; and
payload indexes fall back from the per-element form to simpler ones. A backend implements the
small hooks at the bottom of the class (``_guard``, ``_query``, ``_scroll``, ``_retrieve``,
``_upsert``, ``_create_index``).
"""

from __future__ import annotations

import contextlib
from abc import abstractmethod
from collections.abc import Callable, Iterator, Sequence
from contextlib import AbstractContextManager
from dataclasses import replace
from typing import Any

from scenesearch.indexer.errors import ScenesearchError, StoreError
from scenesearch.indexer.store import _translate as tr
from scenesearch.indexer.store.base import (
    Filter,
    Query,
    ShotStore,
    StoredRecord,
    StorePoint,
    short_under_filter,
)


class QdrantStore(ShotStore):
    """A :class:`ShotStore` speaking Qdrant: the shared half of the edge and server backends."""

    #: False where every search is exact already (qdrant-client's ``:memory:`` mode): a short
    #: list there means few matches, and no exact retry is made.
    approximate: bool = True
    upsert_chunk: int = 256  # points per write call
    #: KB of vectors passing a filter below which Qdrant scans them exactly instead of walking
    #: HNSW (the collection's full_scan_threshold; see EdgeTuning.full_scan_threshold_kb)
    full_scan_kb: int = 10_000
    where: str = "store"  # how error messages name this store ("index /path", "Qdrant url")

    # -- shared operations -------------------------------------------------------------
    def run_query(self, q: Query) -> list[StoredRecord]:
        """See :meth:`ShotStore.search`; a short filtered approximate result is retried exactly."""
        self._ready()
        q = replace(q, native_filter=self._filter(q.flt))
        with self._guard("search"):
            q = self.plan(q)
            hits = self._query(q)
            if self._short(len(hits), q):
                hits = self._query(q.exact())
        return [record(h, q.with_vectors, score=True) for h in hits]

    def run_batch(self, queries: list[Query]) -> list[list[StoredRecord]]:
        """One batched request; each short filtered result is retried exactly on its own."""
        self._ready()
        if not queries:
            return []
        qf = self._filter(queries[0].flt)  # search_batch: one filter for all
        queries = [replace(q, native_filter=qf) for q in queries]
        with self._guard("search_batch"):
            queries = [self.plan(q) for q in queries]
            batches = list(self._query_batch(queries))
            for i, hits in enumerate(batches):
                if self._short(len(hits), queries[i]):
                    batches[i] = self._query(queries[i].exact())
        return [[record(h, False, score=True) for h in hits] for hits in batches]

    def plan(self, q: Query) -> Query:
        """``q`` with its rescore's prefetch cut to ``walk_candidates`` when its filter passes
        more points than the engine scans exactly (``full_scan_kb`` of vectors), so that the
        prefetch walks the HNSW graph (ACORN) — by the filter's cardinality estimate from the
        payload indexes (≈ 0.05 ms at 1 M shots). Exact queries and exact stores keep theirs."""
        r = q.rescore
        if (
            r is None
            or not 0 < r.walk_candidates < q.prefetch_limit()
            or q.native_filter is None
            or q.params.exact
            or not self.approximate
        ):
            return q
        scan_points = self.full_scan_kb * 1024 // (4 * max(1, int(q.vector.size)))
        if self._estimate(q.native_filter) <= scan_points:
            return q
        walk = max(r.walk_candidates, int(q.limit) + int(q.offset))
        return replace(q, rescore=replace(r, candidates=walk))

    def _short(self, n_hits: int, q: Query) -> bool:
        return self.approximate and short_under_filter(n_hits, q.limit, q.flt, q.params)

    def retrieve(
        self,
        ids: Sequence[str],
        with_vectors: bool | Sequence[str] = False,
        with_payload: bool = True,
    ) -> list[StoredRecord]:
        """See :meth:`ShotStore.retrieve`."""
        self._ready()
        if not ids:
            return []
        wanted = list(dict.fromkeys(tr.norm_id(i) for i in ids))
        with self._guard("retrieve"):
            recs = self._retrieve(wanted, with_vectors, with_payload)
        return tr.in_asked_order(ids, [record(r, with_vectors) for r in recs])

    def scroll(
        self,
        flt: Filter | None = None,
        limit: int = 256,
        offset: Any = None,
        with_vectors: bool | Sequence[str] = False,
        order_by: str | None = None,
    ) -> tuple[list[StoredRecord], Any]:
        """See :meth:`ShotStore.scroll`; ordered pages use :func:`_translate.ordered_page`."""
        self._ready()
        qf = self._filter(flt)
        if order_by is not None:

            def fetch(start: float | None, n: int) -> list[tuple[StoredRecord, float]]:
                with self._guard("scroll"):
                    recs, _ = self._scroll(qf, n, None, with_vectors, (order_by, start))
                return [(record(r, with_vectors), r.order_value) for r in recs]

            return tr.ordered_page(fetch, int(limit), offset)

        start = None if offset is None else tr.norm_id(offset)
        with self._guard("scroll"):
            recs, nxt = self._scroll(qf, int(limit), start, with_vectors, None)
        return [record(r, with_vectors) for r in recs], None if nxt is None else str(nxt)

    def upsert(self, points: Sequence[StorePoint]) -> None:
        """See :meth:`ShotStore.upsert`; written ``upsert_chunk`` points per call."""
        self._ready()
        for i in range(0, len(points), self.upsert_chunk):
            self._upsert(points[i : i + self.upsert_chunk])

    def _ensure_payload_indexes(self, present: set[str]) -> None:
        """Index every schema field not in ``present``, trying the backend's forms in turn.

        A nested field (``top[].label``) that no form can index is left without one: nested
        conditions stay correct reading the payloads. Any other field that fails raises.
        """
        for name, kind, nested in tr.payload_index_fields():
            if name in present:
                continue
            forms = self._index_forms(kind, nested)
            for i, form in enumerate(forms):
                try:
                    self._create_index(name, form)
                    break
                except Exception as e:
                    if i < len(forms) - 1 or nested:
                        continue
                    raise StoreError(
                        f"{self.where}: cannot index payload field {name!r}: {tr.one_line(e)}"
                    ) from e

    # -- backend hooks -----------------------------------------------------------------
    def _ready(self) -> None:
        """Raise StoreError if the store cannot serve a call now (e.g. closed, not created)."""

    @abstractmethod
    def _guard(self, what: str) -> AbstractContextManager[None]:
        """A context turning the backend's own failures of ``what`` into one-line StoreErrors."""

    @abstractmethod
    def _filter(self, flt: Filter | None) -> Any:
        """``flt`` as the backend's filter (None for no filter)."""

    @abstractmethod
    def _query(self, q: Query) -> list[Any]:
        """The backend's hits (with ``id``, ``payload``, ``vector``, ``score``) for ``q``."""

    @abstractmethod
    def _estimate(self, native_filter: Any) -> int:
        """The engine's estimate (not an exact count) of the points passing a filter."""

    def _query_batch(self, queries: list[Query]) -> list[list[Any]]:
        """Hits for several queries; backends with a batch call override this."""
        return [self._query(q) for q in queries]

    @abstractmethod
    def _scroll(
        self,
        native_filter: Any,
        limit: int,
        offset: str | None,
        with_vectors: bool | Sequence[str],
        order: tuple[str, float | None] | None,
    ) -> tuple[list[Any], Any]:
        """One page of backend records and the next offset, under a filter from :meth:`_filter`;
        ``order`` = (field, start_from) for a scroll ordered by a payload field."""

    @abstractmethod
    def _retrieve(
        self, ids: list[str], with_vectors: bool | Sequence[str], with_payload: bool = True
    ) -> list[Any]:
        """Backend records of the (normalised, distinct) ``ids`` that exist, in any order."""

    @abstractmethod
    def _upsert(self, points: Sequence[StorePoint]) -> None:
        """Write one chunk of points."""

    @abstractmethod
    def _index_forms(self, kind: str, nested: str | None) -> list[Any]:
        """The payload index schemas to try for a field of ``kind``, best first."""

    @abstractmethod
    def _create_index(self, name: str, form: Any) -> None:
        """Create the payload index ``form`` on field ``name`` (raising on failure)."""


@contextlib.contextmanager
def store_errors(
    context: str, what: str, reword: Callable[[Exception], str | None] | None = None
) -> Iterator[None]:
    """Turn a backend's failures of ``what`` into one-line StoreErrors "``context``: ``what``
    failed: …" (``reword`` may give a message of its own); our own errors pass unchanged."""
    try:
        yield
    except ScenesearchError:
        raise
    except Exception as e:
        msg = reword(e) if reword else None
        raise StoreError(msg or f"{context}: {what} failed: {tr.one_line(e)}") from e
    except BaseException as e:
        # A Rust panic in qdrant-edge reaches Python as pyo3's PanicException, a
        # BaseException: uncaught it would kill a web server's worker thread (its request
        # never answered). Inputs are validated before they get here (search/validate.py).
        if type(e).__name__ != "PanicException":
            raise
        raise StoreError(f"{context}: {what} failed (engine panic): {tr.one_line(e)}") from e


def record(r: Any, with_vectors: bool | Sequence[str], score: bool = False) -> StoredRecord:
    """A backend's point (hit, retrieved or scrolled record) as a :class:`StoredRecord`."""
    return StoredRecord(
        id=str(r.id),
        payload=dict(r.payload or {}),
        vectors=tr.vectors_out(r.vector) if with_vectors else None,
        score=float(r.score) if score else None,
    )


def movie_id_of(record: dict[str, Any]) -> str:
    """The ``movie_id`` of a movie state record; a record without one is refused."""
    movie_id = record.get("movie_id")
    if not isinstance(movie_id, str) or not movie_id:
        raise StoreError(f"movie state record has no movie_id: {record!r:.120}")
    return movie_id
