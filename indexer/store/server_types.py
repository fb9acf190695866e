"""qdrant-client's models, built from ours: named vectors, payload indexes and filters.

``m`` is the ``qdrant_client.models`` module, passed in because :mod:`indexer.store.server`
imports the client only when a store is opened (turning a missing or broken client into a
StoreError). :mod:`indexer.store.edge_types` does the same for the embedded engine.
"""

from __future__ import annotations

from typing import Any

from scenesearch.indexer.store import _translate as tr
from scenesearch.indexer.store.base import VECTOR_CLIP, VectorSpec


def vector_params(m: Any, v: VectorSpec, dense_int8: bool = False) -> Any:
    """A named vector's parameters (cosine; a multivector as on the embedded store; with
    ``dense_int8`` the searched mean vector gets an int8 copy in RAM for the HNSW walk, as
    ``EdgeTuning.dense_int8`` gives it on the embedded store)."""
    if not v.multivector:
        quant = (
            m.ScalarQuantization(
                scalar=m.ScalarQuantizationConfig(
                    type=m.ScalarType.INT8, quantile=0.99, always_ram=True
                )
            )
            if dense_int8 and v.name == VECTOR_CLIP
            else None
        )
        return m.VectorParams(
            size=int(v.dim), distance=m.Distance.COSINE, quantization_config=quant
        )
    # as on the embedded store (EdgeTuning): no HNSW graph, original rows on disk
    return m.VectorParams(
        size=int(v.dim),
        distance=m.Distance.COSINE,
        multivector_config=m.MultiVectorConfig(comparator=m.MultiVectorComparator.MAX_SIM),
        hnsw_config=m.HnswConfigDiff(m=0),
        on_disk=True,
    )


class ClientFilters(tr.FilterBuilder[Any]):
    """base.py's filter AST → qdrant-client models."""

    def __init__(self, models: Any):
        self.m = models
        self.filter_type = models.Filter

    def filter(self, must, should, must_not):
        return self.m.Filter(must=must or None, should=should or None, must_not=must_not or None)

    def match_keywords(self, key, values):
        return self.m.FieldCondition(key=key, match=self.m.MatchAny(any=list(values)))

    def match_bool(self, key, value):
        return self.m.FieldCondition(key=key, match=self.m.MatchValue(value=value))

    def range(self, key, gte, lte):
        return self.m.FieldCondition(key=key, range=self.m.Range(gte=gte, lte=lte))

    def nested(self, key, flt):
        return self.m.NestedCondition(nested=self.m.Nested(key=key, filter=flt))

    def has_id(self, ids):
        return self.m.HasIdCondition(has_id=list(ids))


def index_forms(m: Any, kind: str, nested: str | None) -> list[Any]:
    """The payload index schemas to try for a field of ``kind``, best first: per element of the
    ``nested`` array (servers with nested indexes); older servers get the flattened index of the
    same path, then none (nested filters stay correct without an index)."""
    plain = {
        "keyword": m.PayloadSchemaType.KEYWORD,
        "integer": m.PayloadSchemaType.INTEGER,
        "float": m.PayloadSchemaType.FLOAT,
    }[kind]
    return [_nested_params(m, kind, nested), plain] if nested else [plain]


def _nested_params(m: Any, kind: str, nested: str) -> Any:
    if kind == "keyword":
        return m.KeywordIndexParams(type="keyword", nested=nested)
    if kind == "integer":
        return m.IntegerIndexParams(type="integer", lookup=True, range=True, nested=nested)
    return m.FloatIndexParams(type="float", nested=nested)
