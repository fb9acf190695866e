"""Parquet shot tables: one file per movie holding every store point of its shots.

A table has one row per shot: ``point_id`` (the deterministic store id), one column per payload
field (the fields of :class:`indexer.stored.ShotRecord`, typed as below; fields a later version
adds are typed by inference) and one ``vector_<name>`` column per named vector —
``fixed_size_list<float32>[D]`` for a dense vector, ``list<fixed_size_list<float32>[D]>`` for a
multivector (several vectors per point). The file's key-value metadata holds the index metadata
(``scenesearch.meta``, the same record the store keeps), the movie's state record
(``scenesearch.movie``) and the table's own description (``scenesearch.table``: format, version,
vectors, row count), so a table alone can be loaded into any store.

Tables are written under a temporary name and renamed, so a table that exists is complete: at a
staging location its existence is the movie's "done" mark. Locations are local paths or fsspec
URLs (``s3://``, ``gs://``, ``memory://`` ...). The layout of a staging folder or an export::

    ROOT/shots/<movie_id>.parquet
    ROOT/thumbs/<movie_id>/<shot index:04d>.jpg
"""

from __future__ import annotations

import contextlib
import json
import posixpath
import uuid
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from scenesearch.indexer.errors import InputError
from scenesearch.indexer.store.base import StorePoint
from scenesearch.indexer.stored import MovieRecord, ShotRecord

FORMAT = "scenesearch-shots"
TABLE_VERSION = 1
KEY_TABLE = b"scenesearch.table"
KEY_META = b"scenesearch.meta"
KEY_MOVIE = b"scenesearch.movie"
ID_COLUMN = "point_id"
VECTOR_PREFIX = "vector_"
TABLES_DIR = "shots"
THUMBS_DIR = "thumbs"

_TOP = pa.struct([("label", pa.string()), ("score", pa.float64()), ("rank", pa.int32())])
# Types of the documented payload fields; other fields are typed by pyarrow's inference.
PAYLOAD_TYPES: dict[str, pa.DataType] = {
    "shot_id": pa.string(),
    "movie_id": pa.string(),
    "path": pa.string(),
    "title": pa.string(),
    "year": pa.int32(),
    "genres": pa.list_(pa.string()),
    "shot_index": pa.int32(),
    "start_s": pa.float64(),
    "end_s": pa.float64(),
    "duration_s": pa.float64(),
    "start_frame": pa.int64(),
    "end_frame": pa.int64(),
    "fps": pa.float64(),
    "labels": pa.list_(pa.string()),
    "top_labels": pa.list_(pa.string()),
    "top": pa.list_(_TOP),
    "thumb": pa.string(),
    "model": pa.string(),
    "n_frames_used": pa.int32(),
    "frame_s": pa.list_(pa.float64()),
}


@dataclass
class ShotTable:
    """A table read back: where it came from, its metadata and its points."""

    url: str
    meta: dict[str, Any]
    movie: dict[str, Any]
    vectors: dict[str, dict[str, Any]]  # name → {"dim": D, "multi": bool}
    points: list[StorePoint]

    @property
    def movie_id(self) -> str:
        return self.movie["movie_id"]

    @property
    def shots(self) -> list[ShotRecord]:
        """The table's rows as shot records (payload and vectors)."""
        return [ShotRecord.from_point(p) for p in self.points]


# ------------------------------------------------------------------------------ locations
def url_to_fs(url: str):
    """(fsspec filesystem, path inside it) for a local path or an fsspec URL."""
    import fsspec

    return fsspec.core.url_to_fs(str(url))


def join(root: str, *parts: str) -> str:
    """``root``/parts for a local path or a URL (always '/' separated)."""
    return posixpath.join(str(root).rstrip("/"), *parts)


def table_url(root: str, movie_id: str) -> str:
    return join(root, TABLES_DIR, f"{movie_id}.parquet")


def thumbs_url(root: str, movie_id: str) -> str:
    return join(root, THUMBS_DIR, movie_id)


def root_of(table: str) -> str:
    """The staging/export root a table belongs to (its folder's parent when that is ``shots``)."""
    d = posixpath.dirname(str(table).rstrip("/"))
    return posixpath.dirname(d) if posixpath.basename(d) == TABLES_DIR else d


def exists(url: str) -> bool:
    fs, path = url_to_fs(url)
    return bool(fs.exists(path))


def write_bytes_atomic(url: str, data: bytes) -> None:
    """Write ``data`` to ``url`` under a temporary name in the same folder, then rename."""
    fs, path = url_to_fs(url)
    parent = posixpath.dirname(path)
    fs.makedirs(parent, exist_ok=True)
    tmp = posixpath.join(parent, f".{posixpath.basename(path)}.{uuid.uuid4().hex[:12]}.tmp")
    try:
        with fs.open(tmp, "wb") as f:
            f.write(data)
        fs.mv(tmp, path)
    except BaseException:
        with contextlib.suppress(Exception):  # best effort: the original error is what matters
            if fs.exists(tmp):
                fs.rm(tmp)
        raise


# ------------------------------------------------------------------------------ building
def points_table(
    points: list[StorePoint],
    meta: dict[str, Any] | None,
    movie: dict[str, Any] | None,
    with_vectors: bool = True,
) -> pa.Table:
    """The Arrow table of ``points`` (one movie's, usually) with its metadata."""
    keys: dict[str, None] = {}
    for p in points:
        keys.update(dict.fromkeys(p.payload))
    for k in keys:
        if k == ID_COLUMN or k.startswith(VECTOR_PREFIX):
            raise ValueError(f"payload field {k!r} collides with a shot table column")
    cols: dict[str, pa.Array] = {ID_COLUMN: pa.array([str(p.id) for p in points], pa.string())}
    for k in keys:
        cols[k] = _column([p.payload.get(k) for p in points], PAYLOAD_TYPES.get(k))
    vectors: dict[str, dict[str, Any]] = {}
    if with_vectors and points:
        for name in points[0].vectors:
            arrs = [np.asarray(p.vectors[name], dtype=np.float32) for p in points]
            multi = arrs[0].ndim == 2
            dim = int(arrs[0].shape[-1])
            if any(a.ndim != arrs[0].ndim or a.shape[-1] != dim for a in arrs):
                raise ValueError(f"vector {name!r} has different shapes across points")
            cols[VECTOR_PREFIX + name] = _vector_column(arrs, dim, multi)
            vectors[name] = {"dim": dim, "multi": multi}
    table = pa.table(cols)
    info = {"format": FORMAT, "version": TABLE_VERSION, "vectors": vectors, "points": len(points)}
    md = {KEY_TABLE: json.dumps(info).encode()}
    if meta is not None:
        md[KEY_META] = json.dumps(meta, sort_keys=True).encode()
    if movie is not None:
        md[KEY_MOVIE] = json.dumps(movie, sort_keys=True).encode()
    return table.replace_schema_metadata(md)


def shots_table(shots: Sequence[ShotRecord], meta: dict[str, Any] | None,
                movie: MovieRecord | None, with_vectors: bool = True) -> pa.Table:  # fmt: skip
    """The Arrow table of one movie's shot records (a row per shot) with its metadata."""
    points = [s.to_point() for s in shots]
    return points_table(points, meta, None if movie is None else movie.to_dict(), with_vectors)


def _column(values: list[Any], type_: pa.DataType | None) -> pa.Array:
    if type_ is not None:
        try:
            return pa.array(values, type_)
        except (pa.ArrowInvalid, pa.ArrowTypeError, OverflowError):
            pass  # a later payload version changed the field: keep its values, inferred
    return pa.array(values)


def _vector_column(arrs: list[np.ndarray], dim: int, multi: bool) -> pa.Array:
    flat = pa.array(np.concatenate([a.reshape(-1) for a in arrs]) if arrs else [], pa.float32())
    inner = pa.FixedSizeListArray.from_arrays(flat, dim)
    if not multi:
        return inner
    offsets = np.concatenate([[0], np.cumsum([len(a) for a in arrs])]).astype(np.int32)
    return pa.ListArray.from_arrays(pa.array(offsets, pa.int32()), inner)


def table_bytes(table: pa.Table) -> bytes:
    sink = pa.BufferOutputStream()
    pq.write_table(table, sink, compression="zstd")
    return sink.getvalue().to_pybytes()


def write_table(table: pa.Table, url: str) -> str:
    """Write ``table`` atomically to ``url`` (local path or fsspec URL); returns the URL."""
    write_bytes_atomic(url, table_bytes(table))
    return url


# ------------------------------------------------------------------------------ reading
def read_info(url: str) -> tuple[dict, dict, dict]:
    """(table info, index meta, movie record) from a table's footer; InputError (one line) for
    a missing, truncated, foreign or damaged file."""
    with _parquet(url) as pf:
        return _parse_md(url, pf.schema_arrow.metadata or {})


@contextlib.contextmanager
def _parquet(url: str) -> Iterator[pq.ParquetFile]:
    """The open Parquet file at ``url``; what cannot be read becomes one InputError line."""
    fs, path = url_to_fs(url)
    try:
        with fs.open(path, "rb") as f:
            yield pq.ParquetFile(f)
    except InputError:
        raise
    except FileNotFoundError:
        raise InputError(f"{url}: no such shot table") from None
    except (pa.ArrowException, OSError, ValueError) as e:
        raise InputError(
            f"{url}: not a readable Parquet file (truncated or damaged?): {_one_line(e)}"
        ) from e


def _parse_md(url: str, md: dict) -> tuple[dict, dict, dict]:
    if KEY_TABLE not in md:
        raise InputError(f"{url}: not a scenesearch shot table (no scenesearch metadata)")
    try:
        info = json.loads(md[KEY_TABLE])
        meta = json.loads(md[KEY_META])
        movie = json.loads(md[KEY_MOVIE])
    except (KeyError, ValueError) as e:
        raise InputError(f"{url}: damaged scenesearch metadata ({_one_line(e)})") from e
    if info.get("format") != FORMAT or not isinstance(info.get("version"), int):
        raise InputError(f"{url}: not a scenesearch shot table (format {info.get('format')!r})")
    if info["version"] > TABLE_VERSION:
        raise InputError(
            f"{url}: shot table version {info['version']} is newer than this scenesearch reads "
            f"({TABLE_VERSION}); upgrade scenesearch"
        )
    if not isinstance(movie, dict) or not movie.get("movie_id"):
        raise InputError(f"{url}: shot table without a movie record")
    return info, meta, movie


def read_table(url: str) -> ShotTable:
    """A whole table with its points; InputError (one line) for anything unusable."""
    with _parquet(url) as pf:
        info, meta, movie = _parse_md(url, pf.schema_arrow.metadata or {})
        table = pf.read()
    n = table.num_rows
    if n != info.get("points"):
        raise InputError(f"{url}: {n} rows, but its metadata says {info.get('points')} (damaged)")
    names = table.column_names
    if ID_COLUMN not in names:
        raise InputError(f"{url}: no {ID_COLUMN} column")
    vec_names = dict(info.get("vectors") or {})
    vecs: dict[str, list[np.ndarray]] = {}
    for name, spec in vec_names.items():
        col = VECTOR_PREFIX + name
        if col not in names:
            raise InputError(f"{url}: vector column {col} is missing")
        vecs[name] = _read_vectors(table.column(col).combine_chunks(), n, int(spec["dim"]),
                                   bool(spec.get("multi")))  # fmt: skip
    ids = table.column(ID_COLUMN).to_pylist()
    payload_cols = [c for c in names if c != ID_COLUMN and not c.startswith(VECTOR_PREFIX)]
    values = {c: table.column(c).to_pylist() for c in payload_cols}
    points = [
        StorePoint(
            ids[i],
            {name: vecs[name][i] for name in vec_names},
            {c: values[c][i] for c in payload_cols},
        )
        for i in range(n)
    ]
    return ShotTable(url, meta, movie, vec_names, points)


def _read_vectors(arr: pa.Array, n: int, dim: int, multi: bool) -> list[np.ndarray]:
    if multi:
        offsets = arr.offsets.to_numpy()
        inner = arr.flatten()  # the fixed-size lists of all rows (respects the array's offset)
        flat = inner.flatten().to_numpy(zero_copy_only=False).astype(np.float32, copy=False)
        mat = flat.reshape(-1, dim)
        start = offsets[0]
        return [mat[a - start : b - start] for a, b in zip(offsets[:-1], offsets[1:])]
    flat = arr.flatten().to_numpy(zero_copy_only=False).astype(np.float32, copy=False)
    return list(flat.reshape(n, dim))


def _one_line(e: BaseException) -> str:
    text = " ".join(str(e).split())
    return text[:300] if text else type(e).__name__
