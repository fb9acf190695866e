"""The server store: a collection on a Qdrant server through qdrant-client (or ``:memory:``).

Shots live in the collection ``<collection>`` with the same named cosine vectors, payload indexes
and HNSW settings as the embedded shard; index metadata lives in that collection's own metadata
(``create_collection(metadata=...)``, Qdrant ≥ 1.16), and per-movie indexing state in a companion
collection ``<collection>__movies`` (one point per movie, id = uuid5 of the movie id, a 1-d dummy
vector, the state record as payload). ``url=":memory:"`` is qdrant-client's in-process local
mode: exact brute-force search with no payload indexes and no search parameters, which makes it
the reference the congruence tests hold the other backends to — not a product store.
"""

from __future__ import annotations

import contextlib
import logging
import time
import uuid
from collections.abc import Sequence
from contextlib import AbstractContextManager
from typing import Any

from scenesearch.indexer.config import StoreConfig
from scenesearch.indexer.errors import IndexMismatchError, StoreError
from scenesearch.indexer.store import _translate as tr
from scenesearch.indexer.store._qdrant import QdrantStore, movie_id_of, store_errors
from scenesearch.indexer.store.base import (
    CollectionSpec,
    Filter,
    Query,
    SearchParams,
    StorePoint,
    prefetch_ef,
    quantization,
)
from scenesearch.indexer.store.edge_types import EdgeTuning
from scenesearch.indexer.store.server_types import ClientFilters, index_forms, vector_params

log = logging.getLogger(__name__)

META_KEY = "scenesearch"  # our key inside the collection metadata (other keys are left alone)
_MOVIE_NS = uuid.UUID("6f1d3c2a-6b8e-4f43-9a51-3c1f7f0c2e90")  # uuid5 namespace of movie ids
_META_ID = str(uuid.uuid5(_MOVIE_NS, "\x00scenesearch-index-meta"))  # fallback meta point
_UPSERT_CHUNK = 256  # points per request: keeps request bodies well under the server's limit
_OPTIMIZE_WAIT_S = 600.0  # optimize() waits at most this long for the collection to turn green


class ServerStore(QdrantStore):
    """A :class:`ShotStore` on a Qdrant server at ``url`` (``":memory:"``: in-process, exact)."""

    backend = "server"

    def __init__(
        self,
        url: str,
        api_key: str | None = None,
        collection: str = StoreConfig.collection,
        *,
        m: int = EdgeTuning.m,  # HNSW settings as on the embedded store (see EdgeTuning)
        ef_construct: int = EdgeTuning.ef_construct,
        full_scan_threshold_kb: int = EdgeTuning.full_scan_threshold_kb,
        payload_m: int = EdgeTuning.payload_m,
        dense_int8: bool = EdgeTuning.dense_int8,
        timeout: int = 60,
        shard_number: int | None = None,
        replication_factor: int | None = None,
        write_consistency_factor: int | None = None,
    ):
        self.url = url
        self.collection = collection
        self.movies_collection = f"{collection}__movies"
        self.local = url == ":memory:"
        self.approximate = not self.local  # local mode is exact: a short list means few matches
        self.where = f"Qdrant {url}"
        self._hnsw = (m, ef_construct, full_scan_threshold_kb, payload_m)
        self.dense_int8 = dense_int8
        self._have_movies = False
        # Cluster layout, applied when this store creates the collection (see StoreConfig).
        self.cluster = {
            k: v
            for k, v in (
                ("shard_number", shard_number),
                ("replication_factor", replication_factor),
                ("write_consistency_factor", write_consistency_factor),
            )
            if v is not None
        }
        try:
            from qdrant_client import QdrantClient, models

            self._m = models
            if self.local:
                self._client = QdrantClient(":memory:")
            else:
                # check_compatibility would warn (not fail) on an unreachable server; the probe
                # below turns that case into one clear error instead.
                self._client = QdrantClient(
                    url=url, api_key=api_key, timeout=timeout, check_compatibility=False
                )
            self._client.collection_exists(collection)
        except Exception as e:
            raise StoreError(f"cannot reach Qdrant at {url}: {tr.one_line(e)}") from e

    def _guard(self, what: str) -> AbstractContextManager[None]:
        """Client failures as one-line StoreErrors (connection problems say so)."""
        return store_errors(f"Qdrant {self.url} collection {self.collection!r}", what,
                            self._unreachable)  # fmt: skip

    def _unreachable(self, e: Exception) -> str | None:
        from qdrant_client.http.exceptions import ResponseHandlingException

        if isinstance(e, (ResponseHandlingException, ConnectionError, TimeoutError)):
            return f"cannot reach Qdrant at {self.url}: {tr.one_line(e)}"
        return None

    # -- lifecycle -------------------------------------------------------------------
    def exists(self) -> bool:
        with self._guard("exists"):
            return bool(self._client.collection_exists(self.collection))

    def create(self, spec: CollectionSpec) -> None:
        m = self._m
        if self.exists():
            self._check_spec(spec)
        else:
            if not spec.vectors:
                raise StoreError("cannot create a collection without vectors")
            hnsw_m, ef_construct, fst, payload_m = self._hnsw
            with self._guard("create_collection"):
                self._client.create_collection(
                    self.collection,
                    vectors_config={
                        v.name: vector_params(self._m, v, self.dense_int8) for v in spec.vectors
                    },
                    hnsw_config=m.HnswConfigDiff(
                        m=hnsw_m,
                        ef_construct=ef_construct,
                        full_scan_threshold=fst,
                        payload_m=payload_m,  # no per-value subgraphs: see EdgeTuning.payload_m
                    ),
                    **self.cluster,
                )
        self._ensure_payload_indexes()
        self._ensure_movies_collection()

    def _check_spec(self, spec: CollectionSpec) -> None:
        with self._guard("get_collection"):
            params = self._client.get_collection(self.collection).config.params
        vectors = params.vectors
        for key, want in self.cluster.items():
            have = getattr(params, key, None)
            if have is not None and have != want:
                # fixed when the collection was created: say so instead of silently ignoring it
                log.warning(
                    "collection %r keeps %s=%s (set at creation); %s=%s ignored",
                    self.collection, key, have, key, want,
                )  # fmt: skip
        have = (
            {k: int(v.size) for k, v in (vectors or {}).items()}
            if isinstance(vectors, dict)
            else {}
        )
        want = {v.name: int(v.dim) for v in spec.vectors}
        if have != want:
            raise IndexMismatchError(
                f"collection {self.collection!r} at {self.url} has vectors {have}, but {want} "
                "were asked for (built with another model or taxonomy?)"
            )

    def _ensure_payload_indexes(self) -> None:
        if self.local:
            # Local mode ignores payload indexes (and warns about each); nothing to build.
            return
        with self._guard("get_collection"):
            present = set(self._client.get_collection(self.collection).payload_schema or {})
        super()._ensure_payload_indexes(present)

    def _index_forms(self, kind: str, nested: str | None) -> list[Any]:
        return index_forms(self._m, kind, nested)

    def _create_index(self, name: str, form: Any) -> None:
        self._client.create_payload_index(self.collection, name, field_schema=form, wait=True)

    def _ensure_movies_collection(self) -> None:
        if self._have_movies:
            return
        m = self._m
        with self._guard("create movies collection"):
            if not self._client.collection_exists(self.movies_collection):
                self._client.create_collection(
                    self.movies_collection,
                    vectors_config=m.VectorParams(size=1, distance=m.Distance.DOT),
                )
        self._have_movies = True

    def get_meta(self) -> dict[str, Any] | None:
        if not self.exists():
            return None
        with self._guard("get_collection"):
            metadata = self._client.get_collection(self.collection).config.metadata
        if metadata and META_KEY in metadata:
            return metadata[META_KEY]
        rec = self._meta_point()
        return None if rec is None else rec.payload.get("meta")

    def _meta_point(self) -> Any:
        with self._guard("read meta point"):
            if not self._client.collection_exists(self.movies_collection):
                return None
            recs = self._client.retrieve(self.movies_collection, [_META_ID], with_payload=True)
        return recs[0] if recs else None

    def set_meta(self, meta: dict[str, Any]) -> None:
        if not self.exists():
            raise StoreError(f"collection {self.collection!r} at {self.url} has not been created")
        meta = tr.to_jsonable(meta)
        # Metadata is merged key by key on the server, so our whole record sits under one key:
        # setting it replaces the previous record instead of merging into it.
        with self._guard("update_collection"):
            self._client.update_collection(self.collection, metadata={META_KEY: meta})
            stored = self._client.get_collection(self.collection).config.metadata or {}
        if stored.get(META_KEY) != meta:
            # A server without collection metadata (< 1.16) accepts and drops the field: keep
            # the record as a reserved point of the movies collection instead.
            self._ensure_movies_collection()
            with self._guard("upsert meta"):
                self._client.upsert(
                    self.movies_collection,
                    [self._m.PointStruct(id=_META_ID, vector=[1.0], payload={"meta": meta})],
                    wait=True,
                )

    def flush(self) -> None:
        # Every write is sent with wait=True: once it returns the server has applied it to its
        # WAL, which is the server's durability guarantee; there is nothing left to push.
        return None

    def optimize(self) -> None:
        if self.local:
            return
        green = self._m.CollectionStatus.GREEN
        deadline = time.monotonic() + _OPTIMIZE_WAIT_S
        while time.monotonic() < deadline:
            with self._guard("get_collection"):
                if self._client.get_collection(self.collection).status == green:
                    return
            time.sleep(0.5)

    def close(self) -> None:
        with contextlib.suppress(Exception):
            self._client.close()

    # -- points ----------------------------------------------------------------------
    def _upsert(self, points: Sequence[StorePoint]) -> None:
        batch = [
            self._m.PointStruct(
                id=tr.norm_id(p.id),
                vector={name: tr.as_list(v) for name, v in p.vectors.items()},
                payload=tr.to_jsonable(p.payload),
            )
            for p in points
        ]
        with self._guard("upsert"):
            self._client.upsert(self.collection, batch, wait=True)

    def delete(self, flt: Filter) -> None:
        selector = self._m.FilterSelector(filter=self._filter(flt) or self._m.Filter())
        with self._guard("delete"):
            self._client.delete(self.collection, points_selector=selector, wait=True)

    def set_payload(self, payload: dict[str, Any], flt: Filter) -> None:
        with self._guard("set_payload"):
            self._client.set_payload(
                self.collection,
                payload=tr.to_jsonable(payload),
                points=self._m.FilterSelector(filter=self._filter(flt) or self._m.Filter()),
                wait=True,
            )

    @property
    def full_scan_kb(self) -> int:  # type: ignore[override]
        return int(self._hnsw[2])

    def _estimate(self, native_filter: Any) -> int:
        return int(
            self._client.count(self.collection, count_filter=native_filter, exact=False).count
        )

    def _params(self, params: SearchParams | None, filtered: bool, prefetch: int = 0) -> Any:
        """The request's search parameters; ``prefetch`` > 0: those of a prefetch of that many
        candidates (:func:`base.prefetch_ef`)."""
        if self.local:
            return None  # local mode is exact and warns about any search parameters
        p = params or SearchParams()
        return self._m.SearchParams(
            hnsw_ef=prefetch_ef(p, filtered, prefetch) if prefetch else p.ef(filtered),
            exact=bool(p.exact),
            quantization=self._m.QuantizationSearchParams(**quantization(p, prefetch)),
            acorn=self._m.AcornSearchParams(
                enable=bool(p.acorn), max_selectivity=float(p.acorn_max_selectivity)
            ),
        )

    def _query(self, q: Query) -> list[Any]:
        m, qf, n = self._m, q.native_filter, q.prefetch_limit()
        vector = tr.as_list(q.vector)
        kw: dict[str, Any] = {
            "query": vector,
            "using": q.using,
            "search_params": self._params(q.params, qf is not None, n),
        }
        if q.rescore is not None:
            # one query row against every frame row: MAX_SIM = the best frame's cosine
            kw.update(query=[vector], using=q.rescore.using)
            if n:  # the prefetch walks with the search parameters, the rescore reads every row
                kw["prefetch"] = [
                    m.Prefetch(query=vector, using=q.using, filter=qf, limit=n,
                               params=kw.pop("search_params"))
                ]  # fmt: skip
            elif not self.local:
                kw["search_params"] = m.SearchParams(exact=True)
        wp = q.with_payload
        return self._client.query_points(
            self.collection,
            query_filter=qf,
            limit=int(q.limit),
            offset=int(q.offset) or None,
            with_payload=wp if isinstance(wp, bool) else list(wp),
            with_vectors=tr.with_vectors_arg(q.with_vectors),
            **kw,
        ).points

    def _query_batch(self, queries: list[Query]) -> list[list[Any]]:
        m, q0 = self._m, queries[0]  # one filter and one set of params for the whole batch
        qf = q0.native_filter
        sp = self._params(q0.params, filtered=qf is not None)
        reqs = [
            m.QueryRequest(query=tr.as_list(q.vector), using=q.using, filter=qf,
                           limit=int(q.limit), params=sp, with_payload=True)
            for q in queries
        ]  # fmt: skip
        resps = self._client.query_batch_points(self.collection, requests=reqs)
        return [r.points for r in resps]

    def _retrieve(
        self, ids: list[str], with_vectors: bool | Sequence[str], with_payload: bool = True
    ) -> list[Any]:
        wv = tr.with_vectors_arg(with_vectors)
        return self._client.retrieve(
            self.collection, ids, with_payload=with_payload, with_vectors=wv
        )

    def _scroll(self, qf, limit, offset, with_vectors, order) -> tuple[list[Any], Any]:
        m = self._m
        kw: dict[str, Any] = {"offset": offset}
        if order is not None:
            kw = {"order_by": m.OrderBy(key=order[0], direction=m.Direction.ASC,
                                        start_from=order[1])}  # fmt: skip
        return self._client.scroll(
            self.collection,
            scroll_filter=qf,
            limit=int(limit),
            with_payload=True,
            with_vectors=tr.with_vectors_arg(with_vectors),
            **kw,
        )

    def count(self, flt: Filter | None = None) -> int:
        with self._guard("count"):
            return int(
                self._client.count(
                    self.collection, count_filter=self._filter(flt), exact=True
                ).count
            )

    def facet(self, key: str, flt: Filter | None = None, limit: int = 1000) -> dict[Any, int]:
        with self._guard("facet"):
            resp = self._client.facet(
                self.collection, key, facet_filter=self._filter(flt), limit=int(limit), exact=True
            )
        return {h.value: int(h.count) for h in resp.hits}

    # -- per-movie state -------------------------------------------------------------
    def get_movies(self) -> dict[str, dict[str, Any]]:
        with self._guard("read movie state"):
            if not self._client.collection_exists(self.movies_collection):
                return {}
            out: dict[str, dict[str, Any]] = {}
            offset = None
            while True:
                recs, offset = self._client.scroll(
                    self.movies_collection, limit=1024, offset=offset, with_payload=True
                )
                for r in recs:
                    if str(r.id) != _META_ID and "movie_id" in (r.payload or {}):
                        out[r.payload["movie_id"]] = r.payload
                if offset is None:
                    return dict(sorted(out.items()))

    def put_movie(self, record: dict[str, Any]) -> None:
        movie_id = movie_id_of(record)
        self._ensure_movies_collection()
        point = self._m.PointStruct(
            id=_movie_point_id(movie_id), vector=[1.0], payload=tr.to_jsonable(record)
        )
        with self._guard("write movie state"):
            # upsert replaces the whole payload, so a record never keeps keys of an older one
            self._client.upsert(self.movies_collection, [point], wait=True)

    def delete_movie_record(self, movie_id: str) -> None:
        with self._guard("delete movie state"):
            if not self._client.collection_exists(self.movies_collection):
                return
            self._client.delete(
                self.movies_collection,
                points_selector=self._m.PointIdsList(points=[_movie_point_id(movie_id)]),
                wait=True,
            )

    # -- filters ---------------------------------------------------------------------
    def _filter(self, flt: Filter | None) -> Any:
        return ClientFilters(self._m).build(flt)


def _movie_point_id(movie_id: str) -> str:
    return str(uuid.uuid5(_MOVIE_NS, movie_id))
