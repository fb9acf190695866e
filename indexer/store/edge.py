"""The embedded store: a qdrant-edge shard (the Qdrant engine in-process) in a local index folder.

The folder holds ``shard/`` (the qdrant-edge ``EdgeShard``: segments, HNSW graphs, payload
indexes, WAL), ``index.json`` (the index metadata, replaced atomically), ``movies.sqlite`` (one
row of indexing state per movie) and ``.lock``. An exclusive ``flock`` on ``.lock`` is held for
the lifetime of an :class:`EdgeStore`, so a second opener — another process, or a second
instance in this one — fails at once with :class:`IndexBusyError` instead of with the engine's
own obscure WAL error. Those folder files are kept by :mod:`indexer.store.edge_folder`; the
engine's own types are built in :mod:`indexer.store.edge_types`; what this store shares with the
server store (search and its exact retry, scroll, retrieve...) is :mod:`indexer.store._qdrant`.
"""

from __future__ import annotations

import json
import os
from collections.abc import Sequence
from contextlib import AbstractContextManager
from typing import Any

import qdrant_edge as qe

from scenesearch.indexer.errors import IndexMismatchError, StoreError
from scenesearch.indexer.store import _translate as tr
from scenesearch.indexer.store._qdrant import QdrantStore, movie_id_of, store_errors
from scenesearch.indexer.store.base import CollectionSpec, Filter, Query, StorePoint
from scenesearch.indexer.store.edge_folder import IndexFolder
from scenesearch.indexer.store.edge_types import (  # noqa: F401 - EdgeTuning, engine_points re-exported
    PLAIN_INDEX,
    EdgeTuning,
    edge_filter,
    engine_points,
    index_params,
    query_request,
    shard_config,
)

# Durability, as measured with qdrant-edge-py 0.9.0 (tests/test_store.py): points are durable once
# flush() returns — they survive kill -9 and reopen. Points upserted but not flushed also survived
# kill -9 in our runs: every update() is appended to the shard's WAL before it returns and the WAL
# is replayed on load. The WAL is not fsynced until flush(), so an OS crash or power loss may still
# lose them. The indexer relies only on "flushed ⇒ durable" and on deterministic point ids
# (re-upserting an id replaces the point), never on unflushed writes.

SHARD_DIR = "shard"


class EdgeStore(QdrantStore):
    """A :class:`ShotStore` in the local folder ``root_dir`` (see the module docstring).

    Opening takes the folder's lock (raising :class:`IndexBusyError` if another store holds it)
    and loads the shard if there is one; a folder that does not exist yet is only created by
    :meth:`create`, :meth:`set_meta` or :meth:`put_movie`.
    """

    backend = "edge"
    upsert_chunk = 1024  # points per engine update: bounds the Python-side copy of one call

    def __init__(self, root_dir: str, *, tuning: EdgeTuning | None = None):
        self.root = os.path.abspath(os.fspath(root_dir))
        self.where = f"index {self.root}"
        self.tuning = tuning or EdgeTuning()
        self.folder = IndexFolder(self.root)
        self._mutex = self.folder.mutex  # sqlite connection and lifecycle changes
        self._shard: qe.EdgeShard | None = None
        self._closed = False
        self._scan_kb: int | None = None
        if os.path.isdir(self.root):
            self.folder.acquire_lock()
            try:
                if self._shard_present():
                    self._shard = self._load_shard()
            except BaseException:
                self.folder.release_lock()
                raise

    # -- folder, engine ----------------------------------------------------------------
    @property
    def shard_path(self) -> str:
        return os.path.join(self.root, SHARD_DIR)

    def _shard_present(self) -> bool:
        return os.path.isfile(os.path.join(self.shard_path, "edge_config.json"))

    def _ensure_root(self) -> None:
        self._check_open()
        self.folder.ensure()

    def _check_open(self) -> None:
        if self._closed:
            raise StoreError(f"index {self.root} is closed")

    def _guard(self, what: str) -> AbstractContextManager[None]:
        return store_errors(f"index {self.root}", what)

    def _need_shard(self) -> qe.EdgeShard:
        self._check_open()
        if self._shard is None:
            raise StoreError(f"no index at {self.root} (it has not been created)")
        return self._shard

    def _ready(self) -> None:
        self._need_shard()

    @property
    def full_scan_kb(self) -> int:  # type: ignore[override]
        """The shard's own full-scan threshold (a shard keeps the one it was created with)."""
        if self._scan_kb is None:
            try:
                with open(os.path.join(self.shard_path, "edge_config.json")) as f:
                    self._scan_kb = int(json.load(f)["hnsw_config"]["full_scan_threshold"])
            except (OSError, ValueError, KeyError, TypeError):
                self._scan_kb = self.tuning.full_scan_threshold_kb
        return self._scan_kb

    def _estimate(self, native_filter) -> int:
        return int(self._need_shard().count(qe.CountRequest(exact=False, filter=native_filter)))

    def _load_shard(self) -> qe.EdgeShard:
        # No config: the shard keeps the vectors, HNSW and optimizer settings it was created with.
        with self._guard("opening the shard"):
            return qe.EdgeShard.load(self.shard_path)

    # -- lifecycle -------------------------------------------------------------------
    def exists(self) -> bool:
        return self._shard is not None

    def create(self, spec: CollectionSpec) -> None:
        with self._mutex:
            self._ensure_root()
            if self._shard is None and self._shard_present():
                self._shard = self._load_shard()
            if self._shard is not None:
                self._check_spec(spec)
            else:
                if not spec.vectors:
                    raise StoreError("cannot create an index without vectors")
                with self._guard("creating the shard"):
                    self._shard = qe.EdgeShard.create(self.shard_path,
                                                      shard_config(spec, self.tuning))  # fmt: skip
            with self._guard("reading the payload schema"):
                present = set(self._shard.info().payload_schema)
            self._ensure_payload_indexes(present)
            with self._guard("flush"):
                self._shard.flush()

    def _check_spec(self, spec: CollectionSpec) -> None:
        """An existing shard must have the named vectors and dimensions asked for."""
        try:
            with open(os.path.join(self.shard_path, "edge_config.json")) as f:
                have = {k: int(v["size"]) for k, v in json.load(f)["vectors"].items()}
        except (OSError, ValueError, KeyError, TypeError):
            return  # an engine file we can't read: the engine checks vectors on upsert anyway
        want = {v.name: int(v.dim) for v in spec.vectors}
        if have != want:
            raise IndexMismatchError(
                f"index {self.root} has vectors {have}, but {want} were asked for "
                "(built with another model or taxonomy?)"
            )

    def _index_forms(self, kind: str, nested: str | None) -> list[Any]:
        # qdrant-edge 0.9.0 spells an index over the objects of an array "top[].label" with
        # nested="top": each element is indexed as its own entry, which is what the nested
        # condition of a TopLabel filter looks up. Without nested= the same path is indexed
        # flattened (still correct, less selective), so that is the fallback; then the plain type.
        memory = self.tuning.payload_index_memory
        forms: list[Any] = [index_params(kind, nested, memory)]
        if nested:
            forms.append(index_params(kind, None, memory))
        return [*forms, PLAIN_INDEX[kind]]

    def _create_index(self, name: str, form: Any) -> None:
        self._need_shard().update(qe.UpdateOperation.create_field_index(name, form))

    def get_meta(self) -> dict[str, Any] | None:
        return self.folder.read_meta()

    def set_meta(self, meta: dict[str, Any]) -> None:
        with self._mutex:  # the same lock as close(): never written into a closing store
            self._check_open()
            self.folder.write_meta(meta)

    def flush(self) -> None:
        if self._shard is not None and not self._closed:
            with self._guard("flush"):
                self._shard.flush()

    def optimize(self) -> None:
        shard = self._need_shard()
        with self._guard("optimize"):
            shard.optimize()
            shard.flush()

    def close(self) -> None:
        with self._mutex:
            if self._closed:
                return
            self._closed = True
            try:
                if self._shard is not None:
                    with self._guard("closing the shard"):
                        self._shard.flush()
                        self._shard.close()
            finally:
                self._shard = None
                self.folder.close()

    # -- points ----------------------------------------------------------------------
    def _upsert(self, points: Sequence[StorePoint]) -> None:
        batch = engine_points(points)
        with self._guard("upsert"):
            self._need_shard().update(qe.UpdateOperation.upsert_points(batch))

    def delete(self, flt: Filter) -> None:
        shard = self._need_shard()
        with self._guard("delete"):
            shard.update(
                qe.UpdateOperation.delete_points_by_filter(edge_filter(flt) or qe.Filter())
            )

    def set_payload(self, payload: dict[str, Any], flt: Filter) -> None:
        shard = self._need_shard()
        op = qe.UpdateOperation.set_payload_by_filter(
            edge_filter(flt) or qe.Filter(), tr.to_jsonable(payload)
        )
        with self._guard("set_payload"):
            shard.update(op)

    def _filter(self, flt: Filter | None) -> qe.Filter | None:
        return edge_filter(flt)

    def _query(self, q: Query) -> list[Any]:
        return self._need_shard().query(query_request(q))

    def _query_batch(self, queries: list[Query]) -> list[list[Any]]:
        batch = qe.QueryBatchRequest([query_request(q) for q in queries])
        return self._need_shard().query_batch(batch)

    def _retrieve(
        self, ids: list[str], with_vectors: bool | Sequence[str], with_payload: bool = True
    ) -> list[Any]:
        wv = tr.with_vectors_arg(with_vectors)
        return self._need_shard().retrieve(ids, with_payload=with_payload, with_vector=wv)

    def _scroll(self, qf, limit, offset, with_vectors, order) -> tuple[list[Any], Any]:
        req = qe.ScrollRequest(
            offset=offset,
            limit=int(limit),
            filter=qf,
            with_payload=True,
            with_vector=tr.with_vectors_arg(with_vectors),
            order_by=None
            if order is None
            else qe.OrderBy(order[0], direction=qe.Direction.Asc, start_from=order[1]),
        )
        return self._need_shard().scroll(req)

    def count(self, flt: Filter | None = None) -> int:
        shard = self._need_shard()
        with self._guard("count"):
            return int(shard.count(qe.CountRequest(exact=True, filter=edge_filter(flt))))

    def facet(self, key: str, flt: Filter | None = None, limit: int = 1000) -> dict[Any, int]:
        shard = self._need_shard()
        req = qe.FacetRequest(key, limit=int(limit), exact=True, filter=edge_filter(flt))
        with self._guard("facet"):
            resp = shard.facet(req)
        return {h.value: int(h.count) for h in resp.hits}

    # -- per-movie state -------------------------------------------------------------
    def get_movies(self) -> dict[str, dict[str, Any]]:
        with self._mutex:
            self._check_open()
            return self.folder.get_movies()

    def put_movie(self, record: dict[str, Any]) -> None:
        movie_id = movie_id_of(record)
        with self._mutex:
            self._check_open()
            self.folder.put_movie(movie_id, record)

    def delete_movie_record(self, movie_id: str) -> None:
        with self._mutex:
            self._check_open()
            self.folder.delete_movie(movie_id)
