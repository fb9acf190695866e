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
from collections.abc import Iterator, Sequence
from dataclasses import replace
from typing import Any

import numpy as np

from scenesearch.indexer.errors import IndexMismatchError, ScenesearchError, StoreError
from scenesearch.indexer.store import _translate as tr
from scenesearch.indexer.store.base import (
    VECTOR_CLIP,
    CollectionSpec,
    Filter,
    Rescore,
    SearchParams,
    ShotStore,
    StoredRecord,
    StorePoint,
    short_under_filter,
)

log = logging.getLogger(__name__)

META_KEY = "scenesearch"  # our key inside the collection metadata (other keys are left alone)
_MOVIE_NS = uuid.UUID("6f1d3c2a-6b8e-4f43-9a51-3c1f7f0c2e90")  # uuid5 namespace of movie ids
_META_ID = str(uuid.uuid5(_MOVIE_NS, "\x00scenesearch-index-meta"))  # fallback meta point
_UPSERT_CHUNK = 256  # points per request: keeps request bodies well under the server's limit
_OPTIMIZE_WAIT_S = 600.0  # optimize() waits at most this long for the collection to turn green


class ServerStore(ShotStore):
    """A :class:`ShotStore` on a Qdrant server at ``url`` (``":memory:"``: in-process, exact)."""

    backend = "server"

    def __init__(
        self,
        url: str,
        api_key: str | None = None,
        collection: str = "shots",
        *,
        m: int = 16,
        ef_construct: int = 100,
        full_scan_threshold_kb: int = 150_000,  # see EdgeTuning
        payload_m: int = 0,
        timeout: int = 60,
        shard_number: int | None = None,
        replication_factor: int | None = None,
        write_consistency_factor: int | None = None,
    ):
        self.url = url
        self.collection = collection
        self.movies_collection = f"{collection}__movies"
        self.local = url == ":memory:"
        self._hnsw = (m, ef_construct, full_scan_threshold_kb, payload_m)
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

    @contextlib.contextmanager
    def _call(self, what: str) -> Iterator[None]:
        """Turn client failures into one-line StoreErrors (connection problems say so)."""
        try:
            yield
        except ScenesearchError:
            raise
        except Exception as e:
            from qdrant_client.http.exceptions import ResponseHandlingException

            if isinstance(e, (ResponseHandlingException, ConnectionError, TimeoutError)):
                raise StoreError(f"cannot reach Qdrant at {self.url}: {tr.one_line(e)}") from e
            raise StoreError(
                f"Qdrant {self.url} collection {self.collection!r}: {what} failed: {tr.one_line(e)}"
            ) from e

    # -- lifecycle -------------------------------------------------------------------
    def exists(self) -> bool:
        with self._call("exists"):
            return bool(self._client.collection_exists(self.collection))

    def create(self, spec: CollectionSpec) -> None:
        m = self._m
        if self.exists():
            self._check_spec(spec)
        else:
            if not spec.vectors:
                raise StoreError("cannot create a collection without vectors")
            hnsw_m, ef_construct, fst, payload_m = self._hnsw
            with self._call("create_collection"):
                self._client.create_collection(
                    self.collection,
                    vectors_config={v.name: self._vector_params(v) for v in spec.vectors},
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

    def _vector_params(self, v) -> Any:
        m = self._m
        if not v.multivector:
            return m.VectorParams(size=int(v.dim), distance=m.Distance.COSINE)
        # as on the embedded store (EdgeTuning): no HNSW graph, original rows on disk
        return m.VectorParams(
            size=int(v.dim),
            distance=m.Distance.COSINE,
            multivector_config=m.MultiVectorConfig(comparator=m.MultiVectorComparator.MAX_SIM),
            hnsw_config=m.HnswConfigDiff(m=0),
            on_disk=True,
        )

    def _check_spec(self, spec: CollectionSpec) -> None:
        with self._call("get_collection"):
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
        m = self._m
        with self._call("get_collection"):
            present = set(self._client.get_collection(self.collection).payload_schema or {})
        plain = {
            "keyword": m.PayloadSchemaType.KEYWORD,
            "integer": m.PayloadSchemaType.INTEGER,
            "float": m.PayloadSchemaType.FLOAT,
        }
        for field, kind, nested in tr.payload_index_fields():
            if field in present:
                continue
            schemas: list[Any] = [plain[kind]]
            if nested:
                # Per-element index of the "top" objects (servers with nested indexes); older
                # servers get the flattened index of the same path, then none (nested filters
                # stay correct without an index).
                schemas.insert(0, _nested_params(m, kind, nested))
            for i, schema in enumerate(schemas):
                try:
                    self._client.create_payload_index(
                        self.collection, field, field_schema=schema, wait=True
                    )
                    break
                except Exception as e:
                    if i < len(schemas) - 1 or nested:
                        continue
                    raise StoreError(
                        f"Qdrant {self.url}: cannot index payload field {field!r}: {tr.one_line(e)}"
                    ) from e

    def _ensure_movies_collection(self) -> None:
        if self._have_movies:
            return
        m = self._m
        with self._call("create movies collection"):
            if not self._client.collection_exists(self.movies_collection):
                self._client.create_collection(
                    self.movies_collection,
                    vectors_config=m.VectorParams(size=1, distance=m.Distance.DOT),
                )
        self._have_movies = True

    def get_meta(self) -> dict[str, Any] | None:
        if not self.exists():
            return None
        with self._call("get_collection"):
            metadata = self._client.get_collection(self.collection).config.metadata
        if metadata and META_KEY in metadata:
            return metadata[META_KEY]
        rec = self._meta_point()
        return None if rec is None else rec.payload.get("meta")

    def _meta_point(self) -> Any:
        with self._call("read meta point"):
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
        with self._call("update_collection"):
            self._client.update_collection(self.collection, metadata={META_KEY: meta})
            stored = self._client.get_collection(self.collection).config.metadata or {}
        if stored.get(META_KEY) != meta:
            # A server without collection metadata (< 1.16) accepts and drops the field: keep
            # the record as a reserved point of the movies collection instead.
            self._ensure_movies_collection()
            with self._call("upsert meta"):
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
            with self._call("get_collection"):
                if self._client.get_collection(self.collection).status == green:
                    return
            time.sleep(0.5)

    def close(self) -> None:
        with contextlib.suppress(Exception):
            self._client.close()

    # -- points ----------------------------------------------------------------------
    def upsert(self, points: Sequence[StorePoint]) -> None:
        m = self._m
        for i in range(0, len(points), _UPSERT_CHUNK):
            batch = [
                m.PointStruct(
                    id=tr.norm_id(p.id),
                    vector={name: tr.as_list(v) for name, v in p.vectors.items()},
                    payload=tr.to_jsonable(p.payload),
                )
                for p in points[i : i + _UPSERT_CHUNK]
            ]
            with self._call("upsert"):
                self._client.upsert(self.collection, batch, wait=True)

    def delete(self, flt: Filter) -> None:
        selector = self._m.FilterSelector(filter=self._filter(flt) or self._m.Filter())
        with self._call("delete"):
            self._client.delete(self.collection, points_selector=selector, wait=True)

    def set_payload(self, payload: dict[str, Any], flt: Filter) -> None:
        with self._call("set_payload"):
            self._client.set_payload(
                self.collection,
                payload=tr.to_jsonable(payload),
                points=self._m.FilterSelector(filter=self._filter(flt) or self._m.Filter()),
                wait=True,
            )

    def _params(self, params: SearchParams | None, filtered: bool) -> Any:
        if self.local:
            return None  # local mode is exact and warns about any search parameters
        p = params or SearchParams()
        return self._m.SearchParams(
            hnsw_ef=p.ef(filtered),
            exact=bool(p.exact),
            acorn=self._m.AcornSearchParams(
                enable=bool(p.acorn), max_selectivity=float(p.acorn_max_selectivity)
            ),
        )

    def search(
        self,
        vector: np.ndarray,
        using: str = VECTOR_CLIP,
        flt: Filter | None = None,
        limit: int = 10,
        offset: int = 0,
        with_vectors: bool | Sequence[str] = False,
        params: SearchParams | None = None,
        with_payload: bool | Sequence[str] = True,
        rescore: Rescore | None = None,
    ) -> list[StoredRecord]:
        p = params or SearchParams()
        qf = self._filter(flt)
        m = self._m
        wp = with_payload if isinstance(with_payload, bool) else list(with_payload)

        def query(sp: SearchParams) -> list:
            kw: dict[str, Any] = {
                "query": tr.as_list(vector),
                "using": using,
                "search_params": self._params(sp, filtered=qf is not None),
            }
            if rescore is not None:
                # one query row against every frame row: MAX_SIM = the best frame's cosine
                kw.update(query=[tr.as_list(vector)], using=rescore.using)
                if rescore.candidates > 0:
                    n = max(int(rescore.candidates), int(limit) + int(offset))
                    kw["prefetch"] = [
                        m.Prefetch(query=tr.as_list(vector), using=using, filter=qf, limit=n,
                                   params=kw.pop("search_params"))
                    ]  # fmt: skip
                elif not self.local:
                    kw["search_params"] = m.SearchParams(exact=True)
            return self._client.query_points(
                self.collection,
                query_filter=qf,
                limit=int(limit),
                offset=int(offset) or None,
                with_payload=wp,
                with_vectors=tr.with_vectors_arg(with_vectors),
                **kw,
            ).points

        with self._call("search"):
            hits = query(p)
            # local mode is exact already; a short list there means few matches
            if not self.local and short_under_filter(len(hits), limit, flt, p):
                hits = query(replace(p, exact=True))
        return [_record(h, with_vectors, score=True) for h in hits]

    def search_batch(
        self,
        vectors: np.ndarray,
        using: str = VECTOR_CLIP,
        flt: Filter | None = None,
        limit: int = 10,
        params: SearchParams | None = None,
    ) -> list[list[StoredRecord]]:
        m = self._m
        qf = self._filter(flt)
        sp = self._params(params, filtered=qf is not None)
        reqs = [
            m.QueryRequest(
                query=tr.as_list(v), using=using, filter=qf, limit=int(limit), params=sp,
                with_payload=True,
            )
            for v in vectors
        ]  # fmt: skip
        if not reqs:
            return []
        with self._call("search_batch"):
            resps = self._client.query_batch_points(self.collection, requests=reqs)
        out = [[_record(p, False, score=True) for p in r.points] for r in resps]
        p = params or SearchParams()
        for i, hits in enumerate(out):
            if not self.local and short_under_filter(len(hits), limit, flt, p):
                out[i] = self.search(vectors[i], using, flt, limit, params=replace(p, exact=True))
        return out

    def retrieve(
        self, ids: Sequence[str], with_vectors: bool | Sequence[str] = False
    ) -> list[StoredRecord]:
        if not ids:
            return []
        wanted = list(dict.fromkeys(tr.norm_id(i) for i in ids))
        with self._call("retrieve"):
            recs = self._client.retrieve(
                self.collection,
                wanted,
                with_payload=True,
                with_vectors=tr.with_vectors_arg(with_vectors),
            )
        return tr.in_asked_order(ids, [_record(r, with_vectors) for r in recs])

    def scroll(
        self,
        flt: Filter | None = None,
        limit: int = 256,
        offset: Any = None,
        with_vectors: bool | Sequence[str] = False,
        order_by: str | None = None,
    ) -> tuple[list[StoredRecord], Any]:
        m, qf, wv = self._m, self._filter(flt), tr.with_vectors_arg(with_vectors)
        if order_by is not None:

            def fetch(start: float | None, n: int) -> list[tuple[StoredRecord, float]]:
                ob = m.OrderBy(key=order_by, direction=m.Direction.ASC, start_from=start)
                with self._call("scroll"):
                    recs, _ = self._client.scroll(
                        self.collection,
                        scroll_filter=qf,
                        limit=n,
                        order_by=ob,
                        with_payload=True,
                        with_vectors=wv,
                    )
                return [(_record(r, with_vectors), r.order_value) for r in recs]

            return tr.ordered_page(fetch, int(limit), offset)

        with self._call("scroll"):
            recs, nxt = self._client.scroll(
                self.collection,
                scroll_filter=qf,
                limit=int(limit),
                offset=None if offset is None else tr.norm_id(offset),
                with_payload=True,
                with_vectors=wv,
            )
        return [_record(r, with_vectors) for r in recs], None if nxt is None else str(nxt)

    def count(self, flt: Filter | None = None) -> int:
        with self._call("count"):
            return int(
                self._client.count(
                    self.collection, count_filter=self._filter(flt), exact=True
                ).count
            )

    def facet(self, key: str, flt: Filter | None = None, limit: int = 1000) -> dict[Any, int]:
        with self._call("facet"):
            resp = self._client.facet(
                self.collection, key, facet_filter=self._filter(flt), limit=int(limit), exact=True
            )
        return {h.value: int(h.count) for h in resp.hits}

    # -- per-movie state -------------------------------------------------------------
    def get_movies(self) -> dict[str, dict[str, Any]]:
        with self._call("read movie state"):
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
        movie_id = record.get("movie_id")
        if not isinstance(movie_id, str) or not movie_id:
            raise StoreError(f"movie state record has no movie_id: {record!r:.120}")
        self._ensure_movies_collection()
        point = self._m.PointStruct(
            id=_movie_point_id(movie_id), vector=[1.0], payload=tr.to_jsonable(record)
        )
        with self._call("write movie state"):
            # upsert replaces the whole payload, so a record never keeps keys of an older one
            self._client.upsert(self.movies_collection, [point], wait=True)

    def delete_movie_record(self, movie_id: str) -> None:
        with self._call("delete movie state"):
            if not self._client.collection_exists(self.movies_collection):
                return
            self._client.delete(
                self.movies_collection,
                points_selector=self._m.PointIdsList(points=[_movie_point_id(movie_id)]),
                wait=True,
            )

    # -- filters ---------------------------------------------------------------------
    def _filter(self, flt: Filter | None) -> Any:
        out = tr.translate(flt, _ClientFilters(self._m))
        if out is not None and not isinstance(out, self._m.Filter):
            out = self._m.Filter(must=[out])
        return out


class _ClientFilters(tr.FilterBuilder[Any]):
    """base.py's filter AST → qdrant-client models."""

    def __init__(self, models: Any):
        self.m = models

    def filter(self, must, should, must_not):
        return self.m.Filter(must=must or None, should=should or None, must_not=must_not or None)

    def match_keywords(self, key, values):
        return self.m.FieldCondition(key=key, match=self.m.MatchAny(any=list(values)))

    def match_integers(self, key, values):
        return self.m.FieldCondition(key=key, match=self.m.MatchAny(any=list(values)))

    def match_bool(self, key, value):
        return self.m.FieldCondition(key=key, match=self.m.MatchValue(value=value))

    def range(self, key, gte, lte):
        return self.m.FieldCondition(key=key, range=self.m.Range(gte=gte, lte=lte))

    def nested(self, key, flt):
        return self.m.NestedCondition(nested=self.m.Nested(key=key, filter=flt))

    def has_id(self, ids):
        return self.m.HasIdCondition(has_id=list(ids))


def _nested_params(m: Any, kind: str, nested: str) -> Any:
    if kind == "keyword":
        return m.KeywordIndexParams(type="keyword", nested=nested)
    if kind == "integer":
        return m.IntegerIndexParams(type="integer", lookup=True, range=True, nested=nested)
    return m.FloatIndexParams(type="float", nested=nested)


def _movie_point_id(movie_id: str) -> str:
    return str(uuid.uuid5(_MOVIE_NS, movie_id))


def _record(r: Any, with_vectors: bool | Sequence[str], score: bool = False) -> StoredRecord:
    return StoredRecord(
        id=str(r.id),
        payload=dict(r.payload or {}),
        vectors=tr.vectors_out(r.vector) if with_vectors else None,
        score=float(r.score) if score else None,
    )
