"""qdrant-edge's own types, built from ours: the shard's config, payload indexes, filters, points
and query requests.

:class:`EdgeTuning` holds the engine knobs fixed when a shard is created; :func:`shard_config`
turns it and a :class:`CollectionSpec` into the engine's ``EdgeConfig``. The rest translates the
store interface's filters, points and queries (``base.py``, ``_qdrant.Query``) to the binding's
classes. :mod:`indexer.store.edge` is the store that uses them.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import qdrant_edge as qe

from scenesearch.indexer.errors import StoreError
from scenesearch.indexer.store import _translate as tr
from scenesearch.indexer.store.base import (
    VECTOR_SCENES,
    CollectionSpec,
    Query,
    StorePoint,
    VectorSpec,
    prefetch_ef,
    quantization,
)

_EXACT_QUANT = qe.QuantizationSearchParams(ignore=True)
_RESCORE_PARAMS = qe.SearchParams(quantization=_EXACT_QUANT)
# EdgeTuning.payload_index_memory → the engine's placement (None: its default, in RAM)
_INDEX_MEMORY = {"ram": None, "cached": qe.Memory.Cached, "cold": qe.Memory.Cold}
PLAIN_INDEX = {  # the last resort of a payload index: the bare type
    "keyword": qe.PayloadSchemaType.Keyword,
    "integer": qe.PayloadSchemaType.Integer,
    "float": qe.PayloadSchemaType.Float,
}


@dataclass(frozen=True)
class EdgeTuning:
    """Engine knobs fixed when the shard is created (a reopened shard keeps its own).

    The defaults are the production settings; tests lower the thresholds so that a few thousand
    points already get an HNSW graph and filtered searches go through HNSW + ACORN.
    """

    # HNSW edges per node and build-time candidate list. At 1 M clustered shots (2 cores) m 16 /
    # ef_construct 100 found 0.82 of the exact best-frame top 10 (the graph missed shots of the
    # query's own cluster); m 24 / 200 found 0.96 (docs/benchmarks.md, issue 14).
    m: int = 24
    ef_construct: int = 200
    # Below this many KB of vectors passing a filter, a filtered search scans them exactly via
    # the payload index instead of walking HNSW. The engine default (10 MB) left narrow filters
    # with short result lists at 300 k points. At 1 M shots (2 cores) an exact
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
    # An int8 scalar copy (in RAM, a quarter of the float32 rows) of every searched dense vector
    # (the mean "clip"): the HNSW build and walk then score with it, and the hits a walk returns
    # are rescored with the original rows. Exact scans (and the fallback after a short filtered
    # list) ignore it. At 1 M shots with m 24 it halved the build (1,637 → 901 s) and the
    # genre-filtered walk (80 → 51 ms p95 at 256 candidates) at the same recall.
    dense_int8: bool = True

    def __post_init__(self) -> None:
        if self.payload_index_memory not in _INDEX_MEMORY:
            raise StoreError(
                f"payload_index_memory must be one of {', '.join(_INDEX_MEMORY)}, "
                f"not {self.payload_index_memory!r}"
            )


def shard_config(spec: CollectionSpec, t: EdgeTuning) -> qe.EdgeConfig:
    """The engine config of a new shard holding ``spec``'s named vectors, tuned by ``t``."""
    return qe.EdgeConfig(
        vectors={v.name: _vector_params(v, t) for v in spec.vectors},
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


def _vector_params(v: VectorSpec, t: EdgeTuning) -> qe.EdgeVectorParams:
    if v.multivector:
        quant = (
            qe.ScalarQuantizationConfig(qe.ScalarType.Int8, quantile=0.99, memory=qe.Memory.Cached)
            if t.multivector_int8
            else None
        )
        return qe.EdgeVectorParams(
            size=int(v.dim),
            distance=qe.Distance.Cosine,
            multivector_config=qe.MultiVectorConfig(qe.MultiVectorComparator.MaxSim),
            memory=qe.Memory.Cold,
            quantization_config=quant,
            hnsw_config=qe.HnswIndexConfig(
                m=0, ef_construct=t.ef_construct, full_scan_threshold=t.full_scan_threshold_kb
            ),
        )
    if v.name not in t.cold_vectors:
        quant = (
            qe.ScalarQuantizationConfig(qe.ScalarType.Int8, quantile=0.99, always_ram=True)
            if t.dense_int8
            else None
        )
        return qe.EdgeVectorParams(
            size=int(v.dim), distance=qe.Distance.Cosine, quantization_config=quant
        )
    return qe.EdgeVectorParams(
        size=int(v.dim),
        distance=qe.Distance.Cosine,
        memory=qe.Memory.Cold,
        hnsw_config=qe.HnswIndexConfig(
            m=0, ef_construct=t.ef_construct, full_scan_threshold=t.full_scan_threshold_kb
        ),
    )


def index_params(kind: str, nested: str | None, memory: str) -> Any:
    """A payload index of ``kind`` placed as ``memory`` says, per element of ``nested``."""
    kw: dict[str, Any] = {"memory": _INDEX_MEMORY[memory]}
    if nested:
        kw["nested"] = nested
    if kind == "keyword":
        return qe.KeywordIndexParams(**kw)
    if kind == "integer":
        return qe.IntegerIndexParams(lookup=True, range=True, **kw)
    return qe.FloatIndexParams(**kw)


class _EdgeFilters(tr.FilterBuilder[Any]):
    """base.py's filter AST → qdrant_edge filter types."""

    filter_type = qe.Filter

    def filter(self, must, should, must_not):
        return qe.Filter(must=must or None, should=should or None, must_not=must_not or None)

    def match_keywords(self, key, values):
        return qe.FieldCondition(key, match=qe.MatchAny(list(values)))

    def match_bool(self, key, value):
        return qe.FieldCondition(key, match=qe.MatchValue(value))

    def range(self, key, gte, lte):
        return qe.FieldCondition(key, range=qe.RangeFloat(gte=gte, lte=lte))

    def nested(self, key, flt):
        return qe.NestedCondition(key, flt)

    def has_id(self, ids):
        return qe.HasIdCondition(set(ids))  # the binding insists on a set


edge_filter = _EdgeFilters().build  # base.py Filter (or None) → qe.Filter (or None)


def engine_points(points: Sequence[StorePoint]) -> list[qe.Point]:
    """Our points as the binding's ``Point`` objects (the costly part of ingest: see
    indexer/store/edge_profile.py)."""
    vectors = tr.vectors_as_lists([p.vectors for p in points])
    return [
        qe.Point(tr.norm_id(p.id), v, tr.jsonable_payload(p.payload))
        for p, v in zip(points, vectors)
    ]


def query_request(q: Query) -> qe.QueryRequest:
    """One search as the engine's request (a rescore: a prefetch plus a MAX_SIM query)."""
    p, qf, n = q.params, q.native_filter, q.prefetch_limit()
    sp = qe.SearchParams(
        hnsw_ef=prefetch_ef(p, qf is not None, n) if n else p.ef(filtered=qf is not None),
        exact=bool(p.exact),
        quantization=qe.QuantizationSearchParams(**quantization(p, n)),
        acorn=qe.AcornSearchParams(
            enable=bool(p.acorn), max_selectivity=float(p.acorn_max_selectivity)
        ),
    )
    vector = tr.as_list(q.vector)
    query = qe.Query.Nearest(vector, using=q.using)
    prefetches = None
    if q.rescore is not None:
        # one query row against every frame row: MAX_SIM = the best frame's cosine
        query = qe.Query.Nearest([vector], using=q.rescore.using)
        if n:  # the prefetch walks with sp; the rescore reads the original rows
            nearest = qe.Query.Nearest(vector, using=q.using)
            prefetches = [qe.Prefetch(limit=n, query=nearest, filter=qf, params=sp)]
        else:  # no graph on a multivector: scan what passes, with the original rows
            sp = qe.SearchParams(exact=True, quantization=_EXACT_QUANT)
    wp = q.with_payload
    return qe.QueryRequest(
        limit=int(q.limit),
        offset=int(q.offset) or None,
        query=query,
        prefetches=prefetches,
        filter=qf,
        with_payload=wp if isinstance(wp, bool) else qe.PayloadSelector.Include(list(wp)),
        with_vector=tr.with_vectors_arg(q.with_vectors),
        # the multivector may have an int8 copy: score with the original rows
        params=sp if prefetches is None else _RESCORE_PARAMS,
    )
