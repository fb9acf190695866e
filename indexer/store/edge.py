"""The embedded store: a qdrant-edge shard (the Qdrant engine in-process) in a local index folder.

The folder holds ``shard/`` (the qdrant-edge ``EdgeShard``: segments, HNSW graphs, payload
indexes, WAL), ``index.json`` (the index metadata, replaced atomically), ``movies.sqlite`` (one
row of indexing state per movie) and ``.lock``. An exclusive ``flock`` on ``.lock`` is held for
the lifetime of an :class:`EdgeStore`, so a second opener — another process, or a second
instance in this one — fails at once with :class:`IndexBusyError` instead of with the engine's
own obscure WAL error.
"""

from __future__ import annotations

import contextlib
import json
import os
import sqlite3
import tempfile
import threading
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, replace
from typing import Any

import numpy as np
import qdrant_edge as qe

from scenesearch.indexer.errors import (
    IndexBusyError,
    IndexMismatchError,
    ScenesearchError,
    StoreError,
)
from scenesearch.indexer.store import _translate as tr
from scenesearch.indexer.store.base import (
    VECTOR_CLIP,
    VECTOR_SCENES,
    CollectionSpec,
    Filter,
    Rescore,
    SearchParams,
    ShotStore,
    StoredRecord,
    StorePoint,
    short_under_filter,
)

try:  # POSIX only; without it (Windows) the engine's own WAL lock is the only guard
    import fcntl
except ImportError:  # pragma: no cover
    fcntl = None  # type: ignore[assignment]

# Durability, as measured with qdrant-edge-py 0.9.0 (tests/test_store.py): points are durable once
# flush() returns — they survive kill -9 and reopen. Points upserted but not flushed also survived
# kill -9 in our runs: every update() is appended to the shard's WAL before it returns and the WAL
# is replayed on load. The WAL is not fsynced until flush(), so an OS crash or power loss may still
# lose them. The indexer relies only on "flushed ⇒ durable" and on deterministic point ids
# (re-upserting an id replaces the point), never on unflushed writes.

SHARD_DIR = "shard"
META_FILE = "index.json"
MOVIES_DB = "movies.sqlite"
LOCK_FILE = ".lock"

_EXACT_QUANT = qe.QuantizationSearchParams(ignore=True)
_RESCORE_PARAMS = qe.SearchParams(quantization=_EXACT_QUANT)
_UPSERT_CHUNK = 1024  # points per engine update: bounds the Python-side copy of one call
# EdgeTuning.payload_index_memory → the engine's placement (None: its default, in RAM)
_INDEX_MEMORY = {"ram": None, "cached": qe.Memory.Cached, "cold": qe.Memory.Cold}


@dataclass(frozen=True)
class EdgeTuning:
    """Engine knobs fixed when the shard is created (a reopened shard keeps its own).

    The defaults are the production settings; tests lower the thresholds so that a few thousand
    points already get an HNSW graph and filtered searches go through HNSW + ACORN.
    """

    m: int = 16  # HNSW edges per node
    ef_construct: int = 100  # HNSW build-time candidate list
    # Below this many KB of vectors passing a filter, a filtered search scans them exactly via
    # the payload index instead of walking HNSW. The engine default (10 MB) left narrow filters
    # with short result lists at 300 k points (DESIGN.md §3). At 1 M shots (2 cores) an exact
    # scan costs ≈ 2.7 ms per 10 k matches, and HNSW + ACORN under a filter lost recall just above
    # 100 MB (0.93 at 53 k matches, ≥ 0.99 from 75 k up): 150 MB = 75 k 512-d vectors.
    full_scan_threshold_kb: int = 150_000
    # Links of the extra HNSW subgraph Qdrant builds for every value (or numeric range) of an
    # indexed payload field that holds more vectors than full_scan_threshold_kb. 0 builds none:
    # filters that broad walk the main graph (with ACORN), narrower ones are scanned exactly.
    # With the engine default (= m) the 1 M-shot build ran > 76 min on 2 cores, because every
    # genre, frequent label, year and duration range got its own subgraph (docs/benchmarks.md).
    payload_m: int = 0
    # Where payload indexes of optimized segments live: "ram" (the engine default: rebuilt into
    # in-memory B-trees and maps every time the shard is opened — 18 s to reopen 1 M shots, most
    # of it the numeric indexes over the 5 top labels' ranks and scores), "cached" (memory-mapped
    # files, read into the page cache on open) or "cold" (memory-mapped, paged in on demand).
    payload_index_memory: str = "cached"
    # A segment gets an HNSW graph once its vectors exceed this many KB (None: engine default).
    indexing_threshold_kb: int | None = None
    # Named vectors that are stored to be read back (eval reads every shot's label scores) but
    # never searched in the product: kept on disk (mmap, paged in on demand) and given no HNSW
    # graph (m=0), so they cost neither resident memory nor build time. Searching one still
    # works, by exact scan. At 100 k shots the 179-d "scenes" vectors are 68 MiB of float32.
    cold_vectors: tuple[str, ...] = (VECTOR_SCENES,)
    # Multivectors (per-frame vectors, MAX_SIM) are never walked by HNSW (m=0: they rescore a
    # prefetch, or are scanned under a narrow filter), and their float32 rows stay on disk
    # (mmap, paged in on demand: 2 KiB per frame at 512-d), so they cost no resident memory
    # beyond the page cache. Rescoring reads the original rows (exact scores). multivector_int8
    # adds an int8 scalar copy (4× smaller, in the page cache) that the engine may use when it
    # scans — our queries ignore it for exact scores, so it is off by default.
    multivector_int8: bool = False

    def __post_init__(self) -> None:
        if self.payload_index_memory not in _INDEX_MEMORY:
            raise StoreError(
                f"payload_index_memory must be one of {', '.join(_INDEX_MEMORY)}, "
                f"not {self.payload_index_memory!r}"
            )


class EdgeStore(ShotStore):
    """A :class:`ShotStore` in the local folder ``root_dir`` (see the module docstring).

    Opening takes the folder's lock (raising :class:`IndexBusyError` if another store holds it)
    and loads the shard if there is one; a folder that does not exist yet is only created by
    :meth:`create`, :meth:`set_meta` or :meth:`put_movie`.
    """

    backend = "edge"

    def __init__(self, root_dir: str, *, tuning: EdgeTuning | None = None):
        self.root = os.path.abspath(os.fspath(root_dir))
        self.tuning = tuning or EdgeTuning()
        self._shard: qe.EdgeShard | None = None
        self._db: sqlite3.Connection | None = None
        self._lock_fd: int | None = None
        self._closed = False
        self._mutex = threading.RLock()  # sqlite connection and lifecycle changes
        if os.path.isdir(self.root):
            self._acquire_lock()
            try:
                if self._shard_present():
                    self._shard = self._load_shard()
            except BaseException:
                self._release_lock()
                raise

    # -- folder, lock ----------------------------------------------------------------
    @property
    def shard_path(self) -> str:
        return os.path.join(self.root, SHARD_DIR)

    def _shard_present(self) -> bool:
        return os.path.isfile(os.path.join(self.shard_path, "edge_config.json"))

    def _acquire_lock(self) -> None:
        if self._lock_fd is not None or fcntl is None:
            return
        path = os.path.join(self.root, LOCK_FILE)
        try:
            fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
        except OSError as e:
            raise StoreError(f"cannot open the lock file {path}: {tr.one_line(e)}") from e
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError as e:
            holder = os.pread(fd, 32, 0).decode(errors="replace").strip() or "?"
            os.close(fd)
            raise IndexBusyError(
                f"index {self.root} is in use by another process (pid {holder}); "
                "wait for it to finish or close it"
            ) from e
        except OSError as e:
            os.close(fd)
            raise StoreError(f"cannot lock {path}: {tr.one_line(e)}") from e
        # The pid is only for the message above; the flock itself is what excludes.
        os.ftruncate(fd, 0)
        os.pwrite(fd, f"{os.getpid()}\n".encode(), 0)
        self._lock_fd = fd

    def _release_lock(self) -> None:
        if self._lock_fd is not None:
            os.close(self._lock_fd)  # closing the descriptor drops the flock
            self._lock_fd = None

    def _ensure_root(self) -> None:
        self._check_open()
        try:
            os.makedirs(self.root, exist_ok=True)
        except OSError as e:
            raise StoreError(f"cannot create the index folder {self.root}: {tr.one_line(e)}") from e
        self._acquire_lock()

    def _check_open(self) -> None:
        if self._closed:
            raise StoreError(f"index {self.root} is closed")

    @contextlib.contextmanager
    def _engine(self, what: str) -> Iterator[None]:
        """Turn engine failures (qdrant-edge raises bare Exceptions) into one-line StoreErrors."""
        try:
            yield
        except ScenesearchError:
            raise
        except Exception as e:
            raise StoreError(f"index {self.root}: {what} failed: {tr.one_line(e)}") from e
        except BaseException as e:
            # A Rust panic in the engine reaches Python as pyo3's PanicException, a
            # BaseException: uncaught it would kill a web server's worker thread (its request
            # never answered). Inputs are validated before they get here (search/validate.py).
            if type(e).__name__ != "PanicException":
                raise
            raise StoreError(f"index {self.root}: {what} failed (engine panic): "
                             f"{tr.one_line(e)}") from e  # fmt: skip

    def _need_shard(self) -> qe.EdgeShard:
        self._check_open()
        if self._shard is None:
            raise StoreError(f"no index at {self.root} (it has not been created)")
        return self._shard

    def _load_shard(self) -> qe.EdgeShard:
        # No config: the shard keeps the vectors, HNSW and optimizer settings it was created with.
        with self._engine("opening the shard"):
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
                t = self.tuning
                config = qe.EdgeConfig(
                    vectors={
                        v.name: self._vector_params(v.name, v.dim, v.multivector)
                        for v in spec.vectors
                    },
                    hnsw_config=qe.HnswIndexConfig(
                        m=t.m,
                        ef_construct=t.ef_construct,
                        full_scan_threshold=t.full_scan_threshold_kb,
                        payload_m=t.payload_m,
                    ),
                    optimizers=(
                        qe.EdgeOptimizersConfig(indexing_threshold=t.indexing_threshold_kb)
                        if t.indexing_threshold_kb is not None
                        else None
                    ),
                )
                with self._engine("creating the shard"):
                    self._shard = qe.EdgeShard.create(self.shard_path, config)
            self._ensure_payload_indexes()
            with self._engine("flush"):
                self._shard.flush()

    def _vector_params(self, name: str, dim: int, multivector: bool = False) -> qe.EdgeVectorParams:
        t = self.tuning
        if multivector:
            quant = (
                qe.ScalarQuantizationConfig(
                    qe.ScalarType.Int8, quantile=0.99, memory=qe.Memory.Cached
                )
                if t.multivector_int8
                else None
            )
            return qe.EdgeVectorParams(
                size=int(dim),
                distance=qe.Distance.Cosine,
                multivector_config=qe.MultiVectorConfig(qe.MultiVectorComparator.MaxSim),
                memory=qe.Memory.Cold,
                quantization_config=quant,
                hnsw_config=qe.HnswIndexConfig(
                    m=0, ef_construct=t.ef_construct, full_scan_threshold=t.full_scan_threshold_kb
                ),
            )
        if name not in self.tuning.cold_vectors:
            return qe.EdgeVectorParams(size=int(dim), distance=qe.Distance.Cosine)
        return qe.EdgeVectorParams(
            size=int(dim),
            distance=qe.Distance.Cosine,
            memory=qe.Memory.Cold,
            hnsw_config=qe.HnswIndexConfig(
                m=0, ef_construct=t.ef_construct, full_scan_threshold=t.full_scan_threshold_kb
            ),
        )

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

    def _ensure_payload_indexes(self) -> None:
        shard = self._need_shard()
        with self._engine("reading the payload schema"):
            present = set(shard.info().payload_schema)
        for field, kind, nested in tr.payload_index_fields():
            if field in present:
                continue
            # qdrant-edge 0.9.0 spells an index over the objects of an array "top[].label" with
            # nested="top": each element is indexed as its own entry, which is what the nested
            # condition of a TopLabel filter looks up. Without nested= the same path is indexed
            # flattened (still correct, less selective), so that is the fallback.
            plain = {
                "keyword": qe.PayloadSchemaType.Keyword,
                "integer": qe.PayloadSchemaType.Integer,
                "float": qe.PayloadSchemaType.Float,
            }[kind]
            schemas: list[Any] = [_index_params(kind, nested, self.tuning.payload_index_memory)]
            if nested:  # without nested= the same path is indexed flattened (see above)
                schemas.append(_index_params(kind, None, self.tuning.payload_index_memory))
            schemas.append(plain)
            for i, schema in enumerate(schemas):
                try:
                    shard.update(qe.UpdateOperation.create_field_index(field, schema))
                    break
                except Exception as e:
                    if i == len(schemas) - 1:
                        if nested:
                            # Filters stay correct without it: nested conditions read payloads.
                            break
                        raise StoreError(
                            f"index {self.root}: cannot index payload field {field!r}: "
                            f"{tr.one_line(e)}"
                        ) from e

    def get_meta(self) -> dict[str, Any] | None:
        path = os.path.join(self.root, META_FILE)
        try:
            with open(path, encoding="utf-8") as f:
                return json.load(f)
        except FileNotFoundError:
            return None
        except (OSError, ValueError) as e:
            raise StoreError(f"cannot read index metadata {path}: {tr.one_line(e)}") from e

    def set_meta(self, meta: dict[str, Any]) -> None:
        with self._mutex:
            self._ensure_root()
            path = os.path.join(self.root, META_FILE)
            try:
                _atomic_write(path, json.dumps(tr.to_jsonable(meta), indent=2, sort_keys=True))
            except OSError as e:
                raise StoreError(f"cannot write index metadata {path}: {tr.one_line(e)}") from e

    def flush(self) -> None:
        if self._shard is not None and not self._closed:
            with self._engine("flush"):
                self._shard.flush()

    def optimize(self) -> None:
        shard = self._need_shard()
        with self._engine("optimize"):
            shard.optimize()
            shard.flush()

    def close(self) -> None:
        with self._mutex:
            if self._closed:
                return
            self._closed = True
            try:
                if self._shard is not None:
                    with self._engine("closing the shard"):
                        self._shard.flush()
                        self._shard.close()
            finally:
                self._shard = None
                if self._db is not None:
                    self._db.close()
                    self._db = None
                self._release_lock()

    # -- points ----------------------------------------------------------------------
    def upsert(self, points: Sequence[StorePoint]) -> None:
        shard = self._need_shard()
        for i in range(0, len(points), _UPSERT_CHUNK):
            batch = engine_points(points[i : i + _UPSERT_CHUNK])
            with self._engine("upsert"):
                shard.update(qe.UpdateOperation.upsert_points(batch))

    def delete(self, flt: Filter) -> None:
        shard = self._need_shard()
        with self._engine("delete"):
            shard.update(qe.UpdateOperation.delete_points_by_filter(_filter(flt) or qe.Filter()))

    def set_payload(self, payload: dict[str, Any], flt: Filter) -> None:
        shard = self._need_shard()
        op = qe.UpdateOperation.set_payload_by_filter(
            _filter(flt) or qe.Filter(), tr.to_jsonable(payload)
        )
        with self._engine("set_payload"):
            shard.update(op)

    def _query(
        self,
        vector: np.ndarray,
        using: str,
        flt: Filter | None,
        limit: int,
        offset: int,
        with_vectors: bool | Sequence[str],
        params: SearchParams | None,
        with_payload: bool | Sequence[str] = True,
        rescore: Rescore | None = None,
    ) -> qe.QueryRequest:
        p = params or SearchParams()
        qf = _filter(flt)
        sp = qe.SearchParams(
            hnsw_ef=p.ef(filtered=qf is not None),
            exact=bool(p.exact),
            acorn=qe.AcornSearchParams(
                enable=bool(p.acorn), max_selectivity=float(p.acorn_max_selectivity)
            ),
        )
        query = qe.Query.Nearest(tr.as_list(vector), using=using)
        prefetches = None
        if rescore is not None:
            # one query row against every frame row: MAX_SIM = the best frame's cosine
            query = qe.Query.Nearest([tr.as_list(vector)], using=rescore.using)
            if rescore.candidates > 0:
                n = max(int(rescore.candidates), int(limit) + int(offset))
                prefetches = [qe.Prefetch(limit=n, query=qe.Query.Nearest(tr.as_list(vector),
                                          using=using), filter=qf, params=sp)]  # fmt: skip
            else:  # no graph on a multivector: scan what passes, with the original rows
                sp = qe.SearchParams(exact=True, quantization=_EXACT_QUANT)
        return qe.QueryRequest(
            limit=int(limit),
            offset=int(offset) or None,
            query=query,
            prefetches=prefetches,
            filter=qf,
            with_payload=with_payload
            if isinstance(with_payload, bool)
            else qe.PayloadSelector.Include(list(with_payload)),
            with_vector=tr.with_vectors_arg(with_vectors),
            # the multivector may have an int8 copy: score with the original rows
            params=sp if prefetches is None else _RESCORE_PARAMS,
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
        shard = self._need_shard()
        p = params or SearchParams()
        req = self._query(vector, using, flt, limit, offset, with_vectors, p, with_payload, rescore)
        with self._engine("search"):
            hits = shard.query(req)
            if short_under_filter(len(hits), limit, flt, p):
                exact = replace(p, exact=True)
                hits = shard.query(
                    self._query(
                        vector,
                        using,
                        flt,
                        limit,
                        offset,
                        with_vectors,
                        exact,
                        with_payload,
                        rescore,
                    )
                )
        return [_record(h, with_vectors, score=True) for h in hits]

    def search_batch(
        self,
        vectors: np.ndarray,
        using: str = VECTOR_CLIP,
        flt: Filter | None = None,
        limit: int = 10,
        params: SearchParams | None = None,
    ) -> list[list[StoredRecord]]:
        shard = self._need_shard()
        p = params or SearchParams()
        reqs = [self._query(v, using, flt, limit, 0, False, p) for v in vectors]
        if not reqs:
            return []
        with self._engine("search_batch"):
            batches = list(shard.query_batch(qe.QueryBatchRequest(reqs)))
            exact = replace(p, exact=True)
            for i, hits in enumerate(batches):
                if short_under_filter(len(hits), limit, flt, p):  # see short_under_filter
                    batches[i] = shard.query(self._query(vectors[i], using, flt, limit, 0,
                                                         False, exact))  # fmt: skip
        return [[_record(h, False, score=True) for h in hits] for hits in batches]

    def retrieve(
        self, ids: Sequence[str], with_vectors: bool | Sequence[str] = False
    ) -> list[StoredRecord]:
        shard = self._need_shard()
        if not ids:
            return []
        wanted = list(dict.fromkeys(tr.norm_id(i) for i in ids))
        with self._engine("retrieve"):
            recs = shard.retrieve(
                wanted, with_payload=True, with_vector=tr.with_vectors_arg(with_vectors)
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
        shard = self._need_shard()
        wv = tr.with_vectors_arg(with_vectors)
        if order_by is not None:

            def fetch(start: float | None, n: int) -> list[tuple[StoredRecord, float]]:
                req = qe.ScrollRequest(
                    limit=n,
                    filter=_filter(flt),
                    with_payload=True,
                    with_vector=wv,
                    order_by=qe.OrderBy(order_by, direction=qe.Direction.Asc, start_from=start),
                )
                with self._engine("scroll"):
                    recs, _ = shard.scroll(req)
                return [(_record(r, with_vectors), r.order_value) for r in recs]

            return tr.ordered_page(fetch, int(limit), offset)

        req = qe.ScrollRequest(
            offset=None if offset is None else tr.norm_id(offset),
            limit=int(limit),
            filter=_filter(flt),
            with_payload=True,
            with_vector=wv,
        )
        with self._engine("scroll"):
            recs, nxt = shard.scroll(req)
        return [_record(r, with_vectors) for r in recs], None if nxt is None else str(nxt)

    def count(self, flt: Filter | None = None) -> int:
        shard = self._need_shard()
        with self._engine("count"):
            return int(shard.count(qe.CountRequest(exact=True, filter=_filter(flt))))

    def facet(self, key: str, flt: Filter | None = None, limit: int = 1000) -> dict[Any, int]:
        shard = self._need_shard()
        req = qe.FacetRequest(key, limit=int(limit), exact=True, filter=_filter(flt))
        with self._engine("facet"):
            resp = shard.facet(req)
        return {h.value: int(h.count) for h in resp.hits}

    # -- per-movie state -------------------------------------------------------------
    def _movies_db(self, create: bool) -> sqlite3.Connection | None:
        if self._db is None:
            path = os.path.join(self.root, MOVIES_DB)
            if not create and not os.path.exists(path):
                return None
            self._ensure_root()
            try:
                db = sqlite3.connect(path, check_same_thread=False)
                # WAL + synchronous=FULL: each commit is fsynced, so a movie marked done stays
                # done after a crash (the indexer marks it only after flushing its points).
                db.execute("PRAGMA journal_mode=WAL")
                db.execute("PRAGMA synchronous=FULL")
                with db:
                    db.execute(
                        "CREATE TABLE IF NOT EXISTS movies "
                        "(movie_id TEXT PRIMARY KEY, record TEXT NOT NULL)"
                    )
            except sqlite3.Error as e:
                raise StoreError(f"cannot open movie state {path}: {tr.one_line(e)}") from e
            self._db = db
        return self._db

    def get_movies(self) -> dict[str, dict[str, Any]]:
        with self._mutex:
            self._check_open()
            db = self._movies_db(create=False)
            if db is None:
                return {}
            try:
                rows = db.execute(
                    "SELECT movie_id, record FROM movies ORDER BY movie_id"
                ).fetchall()
            except sqlite3.Error as e:
                raise StoreError(f"cannot read movie state: {tr.one_line(e)}") from e
            return {mid: json.loads(rec) for mid, rec in rows}

    def put_movie(self, record: dict[str, Any]) -> None:
        movie_id = record.get("movie_id")
        if not isinstance(movie_id, str) or not movie_id:
            raise StoreError(f"movie state record has no movie_id: {record!r:.120}")
        text = json.dumps(tr.to_jsonable(record))
        with self._mutex:
            db = self._movies_db(create=True)
            assert db is not None
            try:
                with db:  # one transaction, committed (and fsynced) on exit
                    db.execute(
                        "INSERT OR REPLACE INTO movies (movie_id, record) VALUES (?, ?)",
                        (movie_id, text),
                    )
            except sqlite3.Error as e:
                raise StoreError(f"cannot write movie state: {tr.one_line(e)}") from e

    def delete_movie_record(self, movie_id: str) -> None:
        with self._mutex:
            self._check_open()
            db = self._movies_db(create=False)
            if db is None:
                return
            try:
                with db:
                    db.execute("DELETE FROM movies WHERE movie_id = ?", (movie_id,))
            except sqlite3.Error as e:
                raise StoreError(f"cannot write movie state: {tr.one_line(e)}") from e


# ---------------------------------------------------------------------------- helpers
class _EdgeFilters(tr.FilterBuilder[Any]):
    """base.py's filter AST → qdrant_edge filter types."""

    def filter(self, must, should, must_not):
        return qe.Filter(must=must or None, should=should or None, must_not=must_not or None)

    def match_keywords(self, key, values):
        return qe.FieldCondition(key, match=qe.MatchAny(list(values)))

    def match_integers(self, key, values):
        return qe.FieldCondition(key, match=qe.MatchAny(list(values)))

    def match_bool(self, key, value):
        return qe.FieldCondition(key, match=qe.MatchValue(value))

    def range(self, key, gte, lte):
        return qe.FieldCondition(key, range=qe.RangeFloat(gte=gte, lte=lte))

    def nested(self, key, flt):
        return qe.NestedCondition(key, flt)

    def has_id(self, ids):
        return qe.HasIdCondition(set(ids))  # the binding insists on a set


_FILTERS = _EdgeFilters()


def _filter(flt: Filter | None) -> qe.Filter | None:
    out = tr.translate(flt, _FILTERS)
    if out is not None and not isinstance(out, qe.Filter):
        out = qe.Filter(must=[out])
    return out


def engine_points(points: Sequence[StorePoint]) -> list[qe.Point]:
    """Our points as the binding's ``Point`` objects (the costly part of ingest: see
    eval/ingest_profile.py)."""
    vectors = tr.vectors_as_lists([p.vectors for p in points])
    return [
        qe.Point(tr.norm_id(p.id), v, tr.jsonable_payload(p.payload))
        for p, v in zip(points, vectors)
    ]


def _index_params(kind: str, nested: str | None, memory: str) -> Any:
    kw: dict[str, Any] = {"memory": _INDEX_MEMORY[memory]}
    if nested:
        kw["nested"] = nested
    if kind == "keyword":
        return qe.KeywordIndexParams(**kw)
    if kind == "integer":
        return qe.IntegerIndexParams(lookup=True, range=True, **kw)
    return qe.FloatIndexParams(**kw)


def _record(r: Any, with_vectors: bool | Sequence[str], score: bool = False) -> StoredRecord:
    return StoredRecord(
        id=str(r.id),
        payload=dict(r.payload or {}),
        vectors=tr.vectors_out(r.vector) if with_vectors else None,
        score=float(r.score) if score else None,
    )


def _atomic_write(path: str, text: str) -> None:
    """Write ``text`` to ``path`` so that readers see the old or the new file, never a torn one."""
    d = os.path.dirname(path)
    fd, tmp = tempfile.mkstemp(prefix=".tmp-", dir=d)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            f.write(text)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise
    with contextlib.suppress(OSError):  # make the rename itself durable
        dfd = os.open(d, os.O_RDONLY)
        try:
            os.fsync(dfd)
        finally:
            os.close(dfd)
