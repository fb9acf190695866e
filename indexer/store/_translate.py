"""Helpers shared by the store backends: the one walk over the filter AST, ids, vectors, payloads.

Both backends speak Qdrant, but through two different sets of Python types (qdrant-edge's
bindings and qdrant-client's models); what must not drift between them — how a
:class:`~indexer.store.base.MatchAny` with mixed value types is split, how a ``TopLabel`` becomes a
nested condition, how ``scroll(order_by=...)`` pages through ties — lives here once, and each
backend only supplies a small :class:`FilterBuilder` of constructors for its own types.
"""

from __future__ import annotations

import math
import re
import uuid
from collections.abc import Callable, Sequence
from typing import Any, Generic, TypeVar

import numpy as np

from scenesearch.indexer.errors import StoreError
from scenesearch.indexer.store.base import (
    FLOAT_FIELDS,
    INTEGER_FIELDS,
    KEYWORD_FIELDS,
    Condition,
    Filter,
    HasId,
    MatchAny,
    Range,
    StoredRecord,
    TopLabel,
)

TOP_KEY = "top"  # the payload array of {"label", "score", "rank"} objects TopLabel looks into

C = TypeVar("C")  # a backend's condition type


# ---------------------------------------------------------------------------- filters
class FilterBuilder(Generic[C]):
    """Constructors for one backend's filter types; :func:`translate` drives them."""

    filter_type: type = object  # the backend's top-level filter class

    def build(self, flt: Filter | None) -> C | None:
        """The backend's top-level filter for ``flt`` (None for no filter): a lone condition is
        wrapped in a filter of its own, as both Qdrant APIs want."""
        out = translate(flt, self)
        if out is not None and not isinstance(out, self.filter_type):
            out = self.filter([out], [], [])
        return out

    def filter(self, must: list[C], should: list[C], must_not: list[C]) -> C:
        raise NotImplementedError

    def match_keywords(self, key: str, values: list[str]) -> C:
        raise NotImplementedError

    def match_integers(self, key: str, values: list[int]) -> C:
        """Qdrant's "any" match takes integers as it takes keywords (a separate condition)."""
        return self.match_keywords(key, values)  # type: ignore[arg-type]

    def match_bool(self, key: str, value: bool) -> C:
        raise NotImplementedError

    def range(self, key: str, gte: float | None, lte: float | None) -> C:
        raise NotImplementedError

    def nested(self, key: str, flt: C) -> C:
        raise NotImplementedError

    def has_id(self, ids: list[str]) -> C:
        raise NotImplementedError


def translate(cond: Condition | None, b: FilterBuilder[C]) -> C | None:
    """The backend filter for ``cond`` (None for no filter), with :func:`base.matches` semantics.

    Every condition keeps its meaning exactly: a must/should/must_not ``Filter`` maps one to one;
    ``MatchAny`` splits its values by type because Qdrant matches keywords and integers with
    separate conditions (and bools and floats not with ``any`` at all); ``TopLabel`` is a nested
    condition so label, score and rank are tested on the *same* element of ``top``.
    """
    if cond is None or (isinstance(cond, Filter) and cond.is_empty()):
        return None
    return _translate(cond, b)


def _translate(cond: Condition, b: FilterBuilder[C]) -> C:
    if isinstance(cond, Filter):
        return b.filter(
            [_translate(c, b) for c in cond.must],
            [_translate(c, b) for c in cond.should],
            [_translate(c, b) for c in cond.must_not],
        )
    if isinstance(cond, MatchAny):
        return _match_any(cond, b)
    if isinstance(cond, Range):
        return b.range(cond.key, cond.gte, cond.lte)
    if isinstance(cond, TopLabel):
        inner = b.filter(
            [
                b.match_keywords("label", [cond.label]),
                b.range("score", float(cond.min_score), None),
                b.range("rank", None, float(cond.max_rank)),
            ],
            [],
            [],
        )
        return b.nested(TOP_KEY, inner)
    if isinstance(cond, HasId):
        return b.has_id([norm_id(i) for i in cond.ids])
    raise TypeError(f"unknown filter condition {cond!r}")


def _match_any(cond: MatchAny, b: FilterBuilder[C]) -> C:
    strs: list[str] = []
    ints: list[int] = []
    parts: list[C] = []
    for v in cond.values:
        if isinstance(v, (bool, np.bool_)):
            parts.append(b.match_bool(cond.key, bool(v)))
        elif isinstance(v, (int, np.integer)):
            ints.append(int(v))
        elif isinstance(v, (float, np.floating)):
            # Qdrant has no float equality match; a zero-width range is the same test.
            parts.append(b.range(cond.key, float(v), float(v)))
        elif isinstance(v, str):
            strs.append(v)
        elif v is None:
            continue  # base.matches ignores nulls: a None value never matches
        else:
            raise TypeError(f"MatchAny on {cond.key!r}: unsupported value {v!r}")
    if strs:
        parts.insert(0, b.match_keywords(cond.key, strs))
    if ints:
        parts.insert(0, b.match_integers(cond.key, ints))
    if not parts:
        # An empty value list matches nothing (as in base.matches); so does an empty "any".
        return b.match_keywords(cond.key, [])
    if len(parts) == 1:
        return parts[0]
    return b.filter([], parts, [])


# ---------------------------------------------------------------------------- payload indexes
def payload_index_fields() -> list[tuple[str, str, str | None]]:
    """(field path, "keyword" | "integer" | "float", nested array or None) for every indexed
    field of the schema. ``top[].label`` is indexed per element of ``top`` (nested="top")."""
    out = []
    for kind, fields in (
        ("keyword", KEYWORD_FIELDS),
        ("integer", INTEGER_FIELDS),
        ("float", FLOAT_FIELDS),
    ):
        for f in fields:
            nested = f.split("[]", 1)[0] if "[]." in f else None
            out.append((f, kind, nested))
    return out


# ---------------------------------------------------------------------------- ids, vectors, payloads
# a point id already in canonical form (what point_id() makes) is returned as it is: parsing it
# into a UUID and back cost ≈ 6 µs per id, and sequence queries pass thousands of ids per query
_CANONICAL_UUID = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}")


def norm_id(point_id: Any) -> str:
    """The canonical string of a UUID point id (lower case, hyphenated)."""
    if type(point_id) is str and _CANONICAL_UUID.fullmatch(point_id):
        return point_id
    try:
        return str(point_id if isinstance(point_id, uuid.UUID) else uuid.UUID(str(point_id)))
    except ValueError as e:
        raise StoreError(f"invalid point id {point_id!r}: point ids are UUID strings") from e


def as_list(vec: Any) -> list[float] | list[list[float]]:
    """A vector as a flat list of Python floats (what both Qdrant bindings accept); a 2-d array
    (a multivector: one row per frame) as a list of rows."""
    arr = np.asarray(vec, dtype=np.float32)
    if arr.ndim != 2:
        arr = arr.reshape(-1)
    if not np.all(np.isfinite(arr)):
        raise StoreError("vector contains NaN or infinite values")
    return arr.tolist()


def vectors_as_lists(vectors: Sequence[dict[str, Any]]) -> list[dict[str, list[float]]]:
    """Many points' named vectors as lists of Python floats, converted one matrix per name.

    The same result as :func:`as_list` on every vector, at a fraction of the cost: one
    ``float32`` matrix per vector name, one finiteness check, one ``tolist()`` (per-vector
    ``asarray`` + ``isfinite`` + ``tolist`` was ~60 µs of a point's ingest time; numpy arrays
    passed straight to qdrant-edge are slower still, the binding reads them element by element).
    Falls back to :func:`as_list` per vector when the points do not share names and shapes.
    """
    if not vectors:
        return []
    names = list(vectors[0])
    if any(len(v) != len(names) or any(n not in v for n in names) for v in vectors):
        return [{n: as_list(x) for n, x in v.items()} for v in vectors]
    columns: dict[str, list[Any]] = {}
    for n in names:
        first = np.asarray(vectors[0][n])
        if first.ndim == 2:  # multivectors (rows per point vary): one matrix of all rows
            mats = [np.asarray(v[n], dtype=np.float32) for v in vectors]
            if any(m.ndim != 2 for m in mats):
                return [{k: as_list(x) for k, x in v.items()} for v in vectors]
            rows = np.concatenate(mats)
            if not np.isfinite(rows).all():
                raise StoreError("vector contains NaN or infinite values")
            flat, ends = rows.tolist(), np.cumsum([len(m) for m in mats]).tolist()
            columns[n] = [flat[a:b] for a, b in zip([0, *ends[:-1]], ends)]
            continue
        try:
            mat = np.stack([np.asarray(v[n], dtype=np.float32).reshape(-1) for v in vectors])
        except ValueError:  # different lengths under one name: let the engine say which
            return [{k: as_list(x) for k, x in v.items()} for v in vectors]
        if not np.isfinite(mat).all():
            raise StoreError("vector contains NaN or infinite values")
        columns[n] = mat.tolist()
    return [{n: columns[n][j] for n in names} for j in range(len(vectors))]


_PLAIN = (str, int, bool, type(None))


def jsonable_payload(payload: dict[str, Any]) -> dict[str, Any]:
    """:func:`to_jsonable` for one point payload, with a fast path for the common case.

    Shot payloads are flat dicts of str/int/float values and short lists (of plain values or of
    small dicts); those are checked in place and returned as they are, without the recursive
    copy. Anything else (numpy values, tuples, non-str keys, non-finite floats...) goes through
    :func:`to_jsonable`, which converts it or raises.
    """
    for k, v in payload.items():
        if type(k) is not str or not _plain(v):
            return to_jsonable(payload)
    return payload


def _plain(v: Any) -> bool:
    t = type(v)
    if t in _PLAIN:
        return True
    if t is float:
        return math.isfinite(v)
    if t is list:
        return all(_plain(x) for x in v)
    if t is dict:
        return all(type(k) is str and _plain(x) for k, x in v.items())
    return False


def vectors_out(raw: Any) -> dict[str, np.ndarray] | None:
    """Named vectors from a backend record as float32 arrays."""
    if raw is None:
        return None
    if isinstance(raw, dict):
        return {k: np.asarray(v, dtype=np.float32) for k, v in raw.items()}
    return {"": np.asarray(raw, dtype=np.float32)}


def with_vectors_arg(with_vectors: bool | Sequence[str]) -> bool | list[str]:
    if isinstance(with_vectors, (bool, np.bool_)):
        return bool(with_vectors)
    return [str(v) for v in with_vectors]


def to_jsonable(obj: Any) -> Any:
    """``obj`` with numpy scalars and arrays replaced by Python values (payloads are JSON)."""
    if isinstance(obj, dict):
        return {str(k): to_jsonable(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [to_jsonable(v) for v in obj]
    if isinstance(obj, np.ndarray):
        return to_jsonable(obj.tolist())
    if isinstance(obj, np.generic):
        return obj.item()
    if isinstance(obj, float) and not math.isfinite(obj):
        raise StoreError(f"payload value {obj!r} is not valid JSON")
    return obj


def in_asked_order(ids: Sequence[str], records: Sequence[StoredRecord]) -> list[StoredRecord]:
    """``records`` in the order of ``ids``; ids with no record are skipped."""
    by_id = {r.id: r for r in records}
    return [by_id[i] for i in (norm_id(x) for x in ids) if i in by_id]


def one_line(e: BaseException) -> str:
    """The first non-empty line of an exception's message (engine errors can be multi-line)."""
    for line in str(e).splitlines():
        if line.strip():
            return line.strip()
    return type(e).__name__


# ---------------------------------------------------------------------------- ordered scroll
def ordered_page(
    fetch: Callable[[float | None, int], list[tuple[StoredRecord, float]]],
    limit: int,
    offset: Any,
) -> tuple[list[StoredRecord], Any]:
    """One page of a scroll ordered by a numeric field, and the token of the next page.

    Qdrant's ordered scroll has no offset (its next-page offset is always None); it only has
    ``start_from`` (≥ value, inclusive). So the token is ``(last value, ids already returned at
    that value)``: the next page starts from the last value and drops the ids seen there, which
    is exact even when many points share a value and the engine orders ties arbitrarily.
    ``fetch(start_from, n)`` returns up to n (record, value) pairs, value ascending.
    """
    if limit <= 0:
        return [], offset
    start, seen = (None, frozenset()) if offset is None else (offset[0], frozenset(offset[1]))
    got = fetch(start, limit + len(seen) + 1)
    fresh = [(r, v) for r, v in got if not (v == start and r.id in seen)]
    page, more = fresh[:limit], len(fresh) > limit
    if not page or not more:
        return [r for r, _ in page], None
    last = page[-1][1]
    at_last = {r.id for r, v in page if v == last}
    if last == start:
        at_last |= seen
    return [r for r, _ in page], (last, tuple(sorted(at_last)))
