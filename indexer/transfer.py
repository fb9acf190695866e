"""Moving shot data in and out of an index without Qdrant: ``load`` writes shot tables into any
store, ``export`` writes any index out as shot tables (or clip-retrieval style ``npy`` embeddings
with Parquet metadata). The layout is the staging layout of indexer/shot_table.py."""

from __future__ import annotations

import io
import os
import posixpath
import shutil
import time
from dataclasses import dataclass, field

import numpy as np

from scenesearch.indexer import shot_table as st
from scenesearch.indexer.catalog import check_meta, open_index_store, store_movie
from scenesearch.indexer.errors import IndexMismatchError, InputError, ScenesearchError
from scenesearch.indexer.store import Filter, MatchAny, ShotStore, StorePoint, VectorSpec
from scenesearch.indexer.stored import MovieRecord

NPY_PART = 100_000  # points per img_emb_<k>.npy / metadata_<k>.parquet part (bounds memory)


@dataclass
class TransferSummary:
    """What a load or an export did."""

    movies: int = 0
    points: int = 0
    thumbs: int = 0
    seconds: float = 0.0
    optimize_s: float = 0.0  # of ``seconds``: building the store's indexes after a load
    files: list[str] = field(default_factory=list)

    @property
    def points_per_s(self) -> float:
        return self.points / self.seconds if self.seconds else 0.0


# ------------------------------------------------------------------------------ load
def find_tables(refs: list[str]) -> list[str]:
    """Shot-table URLs from files, folders (their ``*.parquet``, or those of their ``shots/``
    folder) and globs; InputError when a reference names nothing."""
    out: list[str] = []
    for ref in refs:
        fs, path = st.url_to_fs(ref)
        if fs.isdir(path):
            found = sorted(fs.glob(posixpath.join(path, "*.parquet")))
            if not found:
                found = sorted(fs.glob(posixpath.join(path, st.TABLES_DIR, "*.parquet")))
        elif any(c in path for c in "*?["):
            found = sorted(fs.glob(path))
        elif fs.exists(path):
            found = [path]
        else:
            raise InputError(f"{ref}: no such file or folder")
        if not found:
            raise InputError(f"{ref}: no shot tables (*.parquet) there")
        # keep plain local paths plain; anything else goes back to a full URL
        out.extend(fs.unstrip_protocol(p) if "://" in ref else p for p in found)
    return list(dict.fromkeys(out))


def dims_of(vectors: dict[str, dict]) -> list[VectorSpec]:
    """Collection vectors for a table's vector description."""
    return [VectorSpec(name, int(v["dim"]), bool(v.get("multi"))) for name, v in vectors.items()]


def check_fits(url: str, found: dict, wanted: dict, where: str) -> None:
    """A table built with another model, taxonomy or prompt than ``where`` is refused."""
    try:
        check_meta(found, wanted)
    except IndexMismatchError as e:
        raise IndexMismatchError(f"{url} does not fit {where}: {e}") from None


def load_tables(store_cfg, refs: list[str], *, progress=None) -> TransferSummary:
    """Write the shot tables ``refs`` name into the store ``store_cfg`` names (created from the
    first table's metadata when new). Every table is checked before anything is written; each
    movie is written as a unit (old points deleted, new ones upserted, then its state record), so
    loading twice gives the same index. Thumbnails next to a table go to the index folder."""
    t0 = time.perf_counter()
    urls = find_tables(refs)
    infos = [st.read_info(u) for u in urls]  # footers only: refuse bad files before writing
    meta0 = infos[0][1]
    for u, (_, meta, _) in zip(urls[1:], infos[1:]):
        check_fits(u, meta, meta0, urls[0])
    where = store_cfg.qdrant_url or store_cfg.index_dir
    out = TransferSummary()
    try:
        store = open_index_store(store_cfg, meta0, dims_of(infos[0][0]["vectors"]))
    except IndexMismatchError as e:
        raise IndexMismatchError(f"{urls[0]} does not fit the index {where}: {e}") from None
    with store:
        for u in urls:
            table = st.read_table(u)
            store_movie(store, MovieRecord.from_dict(table.movie), table.shots)
            out.thumbs += copy_thumbs_in(u, table.movie_id, store_cfg.index_dir)
            out.movies += 1
            out.points += len(table.points)
            out.files.append(u)
            if progress is not None:
                progress(table)
        if out.points:
            t1 = time.perf_counter()
            store.optimize()
            out.optimize_s = time.perf_counter() - t1
    out.seconds = time.perf_counter() - t0
    return out


def copy_thumbs_in(table: str, movie_id: str, index_dir: str) -> int:
    """Copy a table's thumbnails (ROOT/thumbs/<movie_id>/) into the index folder's thumbs/."""
    src = st.thumbs_url(st.root_of(table), movie_id)
    fs, path = st.url_to_fs(src)
    if not index_dir or not fs.isdir(path):
        return 0
    dst = os.path.join(index_dir, st.THUMBS_DIR, movie_id)
    shutil.rmtree(dst, ignore_errors=True)
    os.makedirs(dst, exist_ok=True)
    n = 0
    for f in fs.ls(path, detail=False):
        name = posixpath.basename(f)
        if name.endswith(".jpg") and not name.startswith("."):
            tmp = os.path.join(dst, f".{name}.tmp")
            with open(tmp, "wb") as out:
                out.write(fs.cat_file(f))
            os.replace(tmp, os.path.join(dst, name))
            n += 1
    return n


# ------------------------------------------------------------------------------ export
def _movie_points(store: ShotStore, movie_id: str) -> list[StorePoint]:
    flt = Filter(must=(MatchAny("movie_id", (movie_id,)),))
    recs = list(store.iter_points(flt, with_vectors=True))
    recs.sort(key=lambda r: (r.payload.get("shot_index", 0), r.id))
    return [StorePoint(r.id, r.vectors or {}, r.payload) for r in recs]


def export_index(
    store: ShotStore, index_dir: str, out: str, fmt: str = "parquet", thumbs: bool = True
) -> TransferSummary:
    """Write every movie the index holds (state ``done``) to ``out``: one shot table per movie
    (``parquet``, loadable with :func:`load_tables`) or clip-retrieval style ``npy`` parts
    (``img_emb/img_emb_<k>.npy`` of the clip vectors, ``scenes_emb/`` of the label scores,
    ``metadata/metadata_<k>.parquet`` with one row per embedding, same order)."""
    if fmt not in ("parquet", "npy"):
        raise ScenesearchError(f"--format must be parquet or npy, not {fmt!r}")
    t0 = time.perf_counter()
    meta = store.get_meta() if store.exists() else None
    if not meta:
        raise ScenesearchError("the index is empty: nothing to export")
    movies = {k: v for k, v in store.get_movies().items() if v.get("status") == "done"}
    res = TransferSummary()
    part: list[StorePoint] = []
    for movie_id in sorted(movies):
        points = _movie_points(store, movie_id)
        if fmt == "parquet":
            url = st.table_url(out, movie_id)
            st.write_table(st.points_table(points, meta, movies[movie_id]), url)
            res.files.append(url)
        else:
            part.extend(points)
            while len(part) >= NPY_PART:
                res.files += _write_npy_part(out, len(res.files) // 3, part[:NPY_PART], meta)
                part = part[NPY_PART:]
        if thumbs and index_dir:
            res.thumbs += _copy_thumbs_out(index_dir, movie_id, out)
        res.movies += 1
        res.points += len(points)
    if part or (fmt == "npy" and not res.files):
        res.files += _write_npy_part(out, len(res.files) // 3, part, meta)
    res.seconds = time.perf_counter() - t0
    return res


def _write_npy_part(out: str, k: int, points: list[StorePoint], meta: dict) -> list[str]:
    """One clip-retrieval style part: embeddings (float32 .npy) + metadata rows, same order."""
    from scenesearch.indexer.store import VECTOR_CLIP, VECTOR_SCENES

    dims = {VECTOR_CLIP: int(meta["embed_dim"]), VECTOR_SCENES: len(meta["taxonomy"]["labels"])}
    files = []
    for name, folder in ((VECTOR_CLIP, "img_emb"), (VECTOR_SCENES, "scenes_emb")):
        mat = np.stack([np.asarray(p.vectors[name], np.float32) for p in points]) if points \
            else np.zeros((0, dims[name]), np.float32)  # fmt: skip
        buf = io.BytesIO()
        np.save(buf, mat)
        url = st.join(out, folder, f"{folder}_{k}.npy")
        st.write_bytes_atomic(url, buf.getvalue())
        files.append(url)
    table = st.points_table(points, meta, None, with_vectors=False)
    # clip-retrieval's metadata names the image in "image_path"; ours is the shot's thumbnail
    table = table.append_column("image_path", table.column("thumb")) if points else table
    url = st.join(out, "metadata", f"metadata_{k}.parquet")
    st.write_bytes_atomic(url, st.table_bytes(table))
    return files + [url]


def _copy_thumbs_out(index_dir: str, movie_id: str, out: str) -> int:
    src = os.path.join(index_dir, st.THUMBS_DIR, movie_id)
    if not os.path.isdir(src):
        return 0
    n = 0
    for name in sorted(os.listdir(src)):
        if name.endswith(".jpg") and not name.startswith("."):
            with open(os.path.join(src, name), "rb") as f:
                st.write_bytes_atomic(st.join(st.thumbs_url(out, movie_id), name), f.read())
            n += 1
    return n
