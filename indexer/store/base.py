"""The store interface every backend implements, the collection schema, and a small filter AST.

Search and eval talk only to :class:`ShotStore`; no other module imports a Qdrant client. Filters
are built from the backend-neutral conditions below; each backend translates them to its own
Qdrant filter types, and :func:`matches` is the reference semantics (brute force over payloads)
that the congruence tests hold every backend to.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field, replace
from typing import Any, Union

import numpy as np

SCHEMA_VERSION = 1

# What a point, a movie state record and the index metadata hold (schema version 1) is defined
# once, as typed records with their conversions: indexer/stored.py (ShotRecord, MovieRecord,
# IndexMeta); tests/test_stored_schema.py checks them against what an indexing run writes.
# Named vectors: "clip" (D-dim shot embedding), "scenes" (L-dim label score vector) and, in
#   indexes whose meta has frame_vectors = "frames", "frames" (one D-dim row per sampled frame:
#   a multivector compared with MAX_SIM, so a shot scores as its best-matching frame).

VECTOR_CLIP = "clip"  # L2-normalised mean of the shot's frame embeddings (cosine)
VECTOR_SCENES = "scenes"  # the shot's full label score vector (mean per-frame softmax)
VECTOR_FRAMES = "frames"  # every sampled frame's embedding (multivector, MAX_SIM, no HNSW)

# Payload fields with an index, by type. "top" is a list of {"label", "score", "rank"} objects
# (the shot's top-k labels), indexed as nested fields for TopLabel conditions. Only fields that
# search filters, facets or ordered scrolls use are indexed: every index is kept up to date on
# each upsert (1–18 µs per point and field in qdrant-edge 0.9.0) and is resident in memory.
# Filters on other payload fields still work (the engine reads the payload); facet() and
# scroll(order_by=...) need the field indexed. Indexes created by older versions (shot_id,
# title, shot_index, start_s, end_s) stay in their indexes and do no harm.
KEYWORD_FIELDS = ("movie_id", "genres", "labels", "top_labels", "top[].label")
INTEGER_FIELDS = ("year", "top[].rank")
FLOAT_FIELDS = ("duration_s", "top[].score")


# ---------------------------------------------------------------------------- filter AST
@dataclass(frozen=True)
class MatchAny:
    """payload[key] (a scalar or a list) equals / contains at least one of ``values``."""

    key: str
    values: tuple[Any, ...]


@dataclass(frozen=True)
class Range:
    """gte ≤ payload[key] ≤ lte (either bound optional); a missing or null value never matches."""

    key: str
    gte: float | None = None
    lte: float | None = None


@dataclass(frozen=True)
class TopLabel:
    """``label`` is among the shot's top labels at rank ≤ max_rank with score ≥ min_score."""

    label: str
    min_score: float = 0.0
    max_rank: int = 5


@dataclass(frozen=True)
class HasId:
    """The point id is one of ``ids``."""

    ids: tuple[str, ...]


@dataclass(frozen=True)
class Filter:
    """All ``must`` hold, at least one ``should`` holds (if any given), no ``must_not`` holds."""

    must: tuple[Condition, ...] = ()
    should: tuple[Condition, ...] = ()
    must_not: tuple[Condition, ...] = ()

    def is_empty(self) -> bool:
        return not (self.must or self.should or self.must_not)


Condition = Union[MatchAny, Range, TopLabel, HasId, Filter]  # noqa: UP007 - runtime alias


def matches(point_id: str, payload: dict[str, Any], cond: Condition | None) -> bool:
    """Reference semantics of a condition on one point (used by brute-force references)."""
    if cond is None:
        return True
    if isinstance(cond, Filter):
        return (
            all(matches(point_id, payload, c) for c in cond.must)
            and (not cond.should or any(matches(point_id, payload, c) for c in cond.should))
            and not any(matches(point_id, payload, c) for c in cond.must_not)
        )
    if isinstance(cond, MatchAny):
        v = payload.get(cond.key)
        vals = v if isinstance(v, list) else [v]
        return any(x in cond.values for x in vals if x is not None)
    if isinstance(cond, Range):
        v = payload.get(cond.key)
        if v is None:
            return False
        return (cond.gte is None or v >= cond.gte) and (cond.lte is None or v <= cond.lte)
    if isinstance(cond, TopLabel):
        return any(
            t["label"] == cond.label and t["score"] >= cond.min_score and t["rank"] <= cond.max_rank
            for t in payload.get("top", [])
        )
    if isinstance(cond, HasId):
        return point_id in cond.ids
    raise TypeError(f"unknown condition {cond!r}")


# ---------------------------------------------------------------------------- records
@dataclass(frozen=True)
class StorePoint:
    """A point to write: id (UUID string), named vectors, payload."""

    id: str
    vectors: dict[str, np.ndarray]
    payload: dict[str, Any]


@dataclass(frozen=True)
class StoredRecord:
    """A point read back; ``score`` is set by searches, ``vectors`` only when asked for."""

    id: str
    payload: dict[str, Any]
    vectors: dict[str, np.ndarray] | None = None
    score: float | None = None


@dataclass(frozen=True)
class SearchParams:
    """Knobs of one vector search. ``exact`` forces brute force inside the engine.

    ``hnsw_ef=None`` picks the measured default (1 M clustered shots, 2 cores, session 3 of
    docs/benchmarks.md): 192 without a filter — at 128 some queries' walk stayed in a wrong
    cluster (recall@10 0.968, 0.993 at 192, both p95 ≈ 1.5 ms) — and 64 with one (128 before the
    sixth session's m 24 and int8 walk, see EF_FILTERED), where ACORN
    already widens the walk (recall ≥ 0.99; 192 cost 25 % more time for no gain). ACORN runs for
    every filtered HNSW search (``acorn_max_selectivity`` 1.0): with the engine's default (0.4)
    a genre on 54 % of shots skipped it and got recall@10 0.93; with it, 0.994 at p95 8 ms.
    """

    hnsw_ef: int | None = None
    exact: bool = False
    acorn: bool = True  # filtered HNSW that stays accurate under narrow filters
    acorn_max_selectivity: float = 1.0

    def ef(self, filtered: bool) -> int:
        if self.hnsw_ef is not None:
            return int(self.hnsw_ef)
        return EF_FILTERED if filtered else EF_UNFILTERED


EF_UNFILTERED = 192
# With m 24 and the int8 walk (1 M shots, sixth session) a filtered walk at ef 64 kept recall@10
# 1.000 under a 20 % genre and 0.999 under an 8.6 % label at p95 19 / 24 ms (ef 128: 37 / 40 ms).
EF_FILTERED = 64
# A plain search over an int8 copy rescores this many times its page with the float rows.
QUANT_OVERSAMPLING = 2.0


def quantization(p: SearchParams, prefetch: int) -> dict[str, Any]:
    """How a search treats an int8 copy of the vector it walks (``EdgeTuning.dense_int8``), as
    keyword arguments of Qdrant's ``QuantizationSearchParams`` (both backends build theirs from
    it): an exact search ignores the copy; a walk rescores its hits with the original rows — a
    prefetch as many as it asks for (a deep list, rescored again by MAX_SIM), a page
    ``QUANT_OVERSAMPLING`` times as many, so that int8's ties near the page's end do not push
    true hits off it (1 M clustered shots, m 24: recall@10 0.925 → 1.000 unfiltered, 0.955 →
    1.000 under a genre)."""
    if p.exact:
        return {"ignore": True}
    return {"rescore": True, "oversampling": None if prefetch else QUANT_OVERSAMPLING}


# An unfiltered prefetch of n candidates (best-frame ranking: n shots by mean vector, rescored
# by MAX_SIM) walks with ef ≥ 2·n: the candidates deep in the list matter there, not only the
# top 10. At 1 M shots (docs/benchmarks.md) 256 candidates at ef 512 held 0.825 of the exact
# best-frame top 10 against 0.793 at the default ef. A filtered prefetch walks with ef = n, its
# own size: under a broad filter (ACORN) the walk's cost grows with ef — at 1 M shots (m 24,
# int8 walk, genre on 22 %) p95 9 / 16 / 25 / 31 ms at ef 32 / 64 / 96 / 128 — and a larger ef
# bought no recall there (0.803 → 0.806 at m 16); a narrow filter is scanned exactly anyway.
PREFETCH_EF_FACTOR = 2


def prefetch_ef(p: SearchParams, filtered: bool, n: int) -> int:
    """hnsw_ef of a prefetch of ``n`` candidates: an explicit ``p.hnsw_ef`` as given; without
    a filter the larger of the default and ``PREFETCH_EF_FACTOR · n``; with one ``n``."""
    if p.hnsw_ef is not None:
        return int(p.hnsw_ef)
    return int(n) if filtered else max(p.ef(filtered), PREFETCH_EF_FACTOR * int(n))


def short_under_filter(n_hits: int, limit: int, flt: Filter | None, params: SearchParams) -> bool:
    """Whether an approximate filtered search came back with fewer hits than asked for.

    HNSW under a filter can lose its way when the filter cuts the graph apart (seen in the
    store tests with a compound filter: 1 hit where brute force found 10), and "never a short
    list when enough shots match" is a promise of ours; backends then repeat the query as an
    exact scan of the matching points — which are few, or scattered, whenever this happens.
    """
    return n_hits < limit and flt is not None and not flt.is_empty() and not params.exact


@dataclass(frozen=True)
class Query:
    """One vector search, as :meth:`ShotStore.search` takes it (the arguments are its own)."""

    vector: np.ndarray
    using: str = VECTOR_CLIP
    flt: Filter | None = None
    limit: int = 10
    offset: int = 0
    with_vectors: bool | Sequence[str] = False
    params: SearchParams = field(default_factory=SearchParams)
    with_payload: bool | Sequence[str] = True
    rescore: Rescore | None = None
    # ``flt`` in a backend's own filter types, translated once before any call (so that a
    # condition the backend cannot express fails as itself, not as a failure of the call)
    native_filter: Any = None

    def exact(self) -> Query:
        """The same query as a brute-force scan of the points passing the filter."""
        return replace(self, params=replace(self.params, exact=True))

    def prefetch_limit(self) -> int:
        """Points the mean-vector prefetch of a rescore fetches (at least the page it serves);
        0 when there is none (a plain search, or a MAX_SIM scan of every matching point)."""
        if self.rescore is None or self.rescore.candidates <= 0:
            return 0
        return max(int(self.rescore.candidates), int(self.limit) + int(self.offset))


@dataclass(frozen=True)
class Rescore:
    """Rank by the multivector ``using`` (MAX_SIM: the best row's cosine with the query).

    ``candidates`` > 0: the Query API's two stages — a prefetch of that many nearest points by
    the search's own vector (HNSW on the shot mean, filter inside), rescored by ``using``.
    ``candidates`` = 0: score every point passing the filter by ``using`` directly (exact).
    ``walk_candidates`` > 0: the prefetch's size instead when a filter passes so many points
    that the engine walks the HNSW graph under it rather than scanning them (see
    :meth:`indexer.store._qdrant.QdrantStore.plan`): such a walk costs about ten times more per
    candidate than an unfiltered one.
    """

    using: str = VECTOR_FRAMES
    candidates: int = 0
    walk_candidates: int = 0


@dataclass
class VectorSpec:
    name: str
    dim: int
    multivector: bool = False  # rows compared with MAX_SIM; stored without an HNSW graph


@dataclass
class CollectionSpec:
    """What a collection holds: named vectors (cosine) and the indexed payload fields."""

    vectors: list[VectorSpec] = field(default_factory=list)


# ---------------------------------------------------------------------------- interface
class ShotStore(ABC):
    """One collection of shot points plus per-movie state and index metadata.

    Point ids are UUID strings. Vectors are float32 numpy arrays. Every method raises
    :class:`indexer.errors.StoreError` for backend failures.
    """

    backend: str = "abstract"

    # -- lifecycle -------------------------------------------------------------------
    @abstractmethod
    def exists(self) -> bool:
        """True if the collection has been created."""

    @abstractmethod
    def create(self, spec: CollectionSpec) -> None:
        """Create the collection with its named vectors and payload indexes (idempotent)."""

    @abstractmethod
    def get_meta(self) -> dict[str, Any] | None:
        """Index metadata (model, taxonomy, schema version...) or None if never written."""

    @abstractmethod
    def set_meta(self, meta: dict[str, Any]) -> None: ...

    @abstractmethod
    def flush(self) -> None:
        """Make every write so far durable."""

    @abstractmethod
    def optimize(self) -> None:
        """Build indexes after bulk loads (HNSW, payload indexes); may take a while."""

    @abstractmethod
    def close(self) -> None: ...

    # -- points ----------------------------------------------------------------------
    @abstractmethod
    def upsert(self, points: Sequence[StorePoint]) -> None: ...

    @abstractmethod
    def delete(self, flt: Filter) -> None:
        """Delete every point matching ``flt``."""

    @abstractmethod
    def set_payload(self, payload: dict[str, Any], flt: Filter) -> None:
        """Overwrite the given payload keys on every point matching ``flt``."""

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
        """Nearest points by cosine similarity (score = cosine), filter applied inside the search.
        ``with_payload`` may name the payload keys to return (reading fewer is faster). With
        ``rescore``, points are ranked by a multivector's MAX_SIM instead (see Rescore)."""
        p = params or SearchParams()
        return self.run_query(
            Query(vector, using, flt, limit, offset, with_vectors, p, with_payload, rescore)
        )

    def search_batch(
        self,
        vectors: np.ndarray,
        using: str = VECTOR_CLIP,
        flt: Filter | None = None,
        limit: int = 10,
        params: SearchParams | None = None,
    ) -> list[list[StoredRecord]]:
        """Several searches with one filter (payloads returned, no vectors)."""
        p = params or SearchParams()
        return self.run_batch([Query(v, using, flt, limit, params=p) for v in vectors])

    @abstractmethod
    def run_query(self, q: Query) -> list[StoredRecord]:
        """The hits of one search (what :meth:`search` asks for, as a :class:`Query`)."""

    def run_batch(self, queries: list[Query]) -> list[list[StoredRecord]]:
        """The hits of several searches; backends may override with a real batch call."""
        return [self.run_query(q) for q in queries]

    @abstractmethod
    def retrieve(
        self,
        ids: Sequence[str],
        with_vectors: bool | Sequence[str] = False,
        with_payload: bool = True,
    ) -> list[StoredRecord]:
        """Points by id (missing ids are skipped), in the order asked; ``with_payload=False``
        leaves each record's payload empty (cheaper when only vectors are wanted)."""

    @abstractmethod
    def scroll(
        self,
        flt: Filter | None = None,
        limit: int = 256,
        offset: Any = None,
        with_vectors: bool | Sequence[str] = False,
        order_by: str | None = None,
    ) -> tuple[list[StoredRecord], Any]:
        """One page of points matching ``flt`` and the offset of the next page (None at the end).
        ``order_by`` names an indexed numeric payload field to sort ascending by."""

    def iter_points(
        self,
        flt: Filter | None = None,
        with_vectors: bool | Sequence[str] = False,
        batch: int = 512,
    ) -> Iterator[StoredRecord]:
        """Every point matching ``flt`` (id order)."""
        offset = None
        while True:
            page, offset = self.scroll(flt, batch, offset, with_vectors)
            yield from page
            if offset is None:
                return

    @abstractmethod
    def count(self, flt: Filter | None = None) -> int: ...

    @abstractmethod
    def facet(self, key: str, flt: Filter | None = None, limit: int = 1000) -> dict[Any, int]:
        """Value → number of points having it, for an indexed keyword field."""

    # -- per-movie state (a movie is marked done only after its points are durable) -----------
    @abstractmethod
    def get_movies(self) -> dict[str, dict[str, Any]]:
        """movie_id → state record (as given to put_movie)."""

    @abstractmethod
    def put_movie(self, record: dict[str, Any]) -> None:
        """Insert or replace the state record of ``record['movie_id']`` (durably)."""

    @abstractmethod
    def delete_movie_record(self, movie_id: str) -> None: ...

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()
