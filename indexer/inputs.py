"""Input stage: which movies to index, their metadata, and ids that survive renames.

Inputs are files, folders (searched recursively for common video extensions) or a manifest table
(CSV or Parquet, read with polars) with columns ``path`` (required), ``title``, ``year``,
``genres`` (``"a|b"``, ``"a, b"`` or a list) and ``id`` (optional). Without a manifest a movie's
title is its file stem. A movie's id is the manifest's ``id`` or else a content fingerprint
(size + BLAKE2 of the first and last MiB), cheap to compute and stable across renames and moves.
"""

from __future__ import annotations

import hashlib
import os
import re
from dataclasses import dataclass
from pathlib import Path

from scenesearch.indexer.config import VIDEO_EXTENSIONS
from scenesearch.indexer.errors import InputError
from scenesearch.indexer.records import Movie

_EDGE_BYTES = 1 << 20
# Plausible release years (the first films are from the 1880s); a year outside is a typo.
YEAR_MIN, YEAR_MAX = 1870, 2100


def fingerprint(path: str | os.PathLike) -> str:
    """16-hex-char content fingerprint: BLAKE2b over the size and the first and last MiB."""
    size = os.path.getsize(path)
    h = hashlib.blake2b(digest_size=8)
    h.update(str(size).encode())
    with open(path, "rb") as f:
        h.update(f.read(_EDGE_BYTES))
        if size > 2 * _EDGE_BYTES:
            f.seek(-_EDGE_BYTES, os.SEEK_END)
            h.update(f.read(_EDGE_BYTES))
        elif size > _EDGE_BYTES:
            h.update(f.read())
    return h.hexdigest()


@dataclass(frozen=True)
class ManifestRow:
    path: str
    title: str | None = None
    year: int | None = None
    genres: tuple[str, ...] = ()
    id: str | None = None
    error: str | None = None  # why this row cannot be used (the rest of the manifest can)


def parse_year(value) -> int | None:
    """A manifest year cell → int in [YEAR_MIN, YEAR_MAX] (``"1995"`` or ``"1995.0"``), None
    when empty; anything else raises InputError with the reason."""
    if value is None or not str(value).strip():
        return None
    text = str(value).strip()
    if not re.fullmatch(r"\d{1,4}(\.0*)?", text):
        raise InputError(f"year {text[:20]!r} is not a year")
    year = int(text.split(".")[0])
    if not YEAR_MIN <= year <= YEAR_MAX:
        raise InputError(f"year {year} is outside {YEAR_MIN}-{YEAR_MAX}")
    return year


def split_genres(value) -> tuple[str, ...]:
    """``"Comedy|Romance"``, ``"comedy, romance"`` or a list → ``("comedy", "romance")``."""
    if value is None:
        return ()
    items = value if isinstance(value, (list, tuple)) else re.split(r"[|;,]", str(value))
    out = []
    for g in items:
        g = str(g).strip().lower()
        if g and g not in out:
            out.append(g)
    return tuple(out)


def read_table(path: str | os.PathLike, what: str = "table"):
    """Read a user table with polars: Parquet by extension, else CSV (all columns as strings,
    ``#`` comment lines). Returns ``(df, cols)`` where ``cols`` maps lower-cased, stripped column
    names to the real ones. Missing or malformed files raise a one-line InputError naming
    ``what`` (e.g. "manifest")."""
    import polars as pl

    p = Path(path)
    if not p.is_file():
        raise InputError(f"{what} not found: {p}")
    try:
        if p.suffix.lower() in (".parquet", ".pq"):
            df = pl.read_parquet(p)
        else:
            df = pl.read_csv(p, infer_schema_length=0, comment_prefix="#")
    except Exception as e:  # polars raises several error types for malformed files
        raise InputError(f"cannot read {what} {p}: {str(e).splitlines()[0]}") from e
    return df, {c.lower().strip(): c for c in df.columns}


def read_manifest(path: str | os.PathLike) -> list[ManifestRow]:
    """Read a CSV or Parquet manifest; relative paths are resolved against its folder.

    A row that cannot be used (empty path, a year like ``19x5`` or ``-5``, an id that is empty or
    repeats an earlier row's) comes back with ``error`` set, so one bad row fails only itself.
    A missing or unreadable manifest, or one without a ``path`` column, raises InputError."""
    p = Path(path)
    df, cols = read_table(p, "manifest")
    if "path" not in cols:
        raise InputError(f"manifest {p} has no 'path' column (columns: {', '.join(df.columns)})")
    rows = []
    first_line: dict[str, int] = {}  # id → the line that used it first
    for i, r in enumerate(df.iter_rows(named=True), start=2):
        raw = r[cols["path"]]
        where = f"manifest {p.name} line {i}"
        if raw is None or not str(raw).strip():
            rows.append(ManifestRow(path=where, error=f"{where}: empty path"))
            continue
        mp = Path(str(raw).strip()).expanduser()
        if not mp.is_absolute():
            mp = p.parent / mp
        title = r.get(cols["title"]) if "title" in cols else None
        mid = r.get(cols["id"]) if "id" in cols else None
        try:
            year = parse_year(r.get(cols["year"])) if "year" in cols else None
            mid = _clean_id(mid) if mid not in (None, "") else None
        except InputError as e:
            rows.append(ManifestRow(path=str(mp), error=f"{where}: {e}"))
            continue
        if mid is not None and mid in first_line:
            err = f"{where}: duplicate id {mid!r} (line {first_line[mid]} has it)"
            rows.append(ManifestRow(path=str(mp), id=mid, error=err))
            continue
        if mid is not None:
            first_line[mid] = i
        rows.append(
            ManifestRow(
                path=str(mp),
                title=str(title).strip() if title not in (None, "") else None,
                year=year,
                genres=split_genres(r.get(cols["genres"])) if "genres" in cols else (),
                id=mid,
            )
        )
    return rows


def _clean_id(value) -> str:
    s = re.sub(r"[^A-Za-z0-9_.-]+", "-", str(value).strip()).strip("-")
    if not s:
        raise InputError(f"manifest id {value!r} has no usable characters")
    return s


def discover(paths: list[str]) -> tuple[list[Path], list[tuple[str, str]]]:
    """Expand files and folders into video files (sorted, de-duplicated).

    Returns ``(files, problems)``: a path that does not exist is a problem, not an exception,
    so one typo does not stop a batch. Files named explicitly are kept whatever their extension.
    """
    files: dict[Path, None] = {}
    problems: list[tuple[str, str]] = []
    for raw in paths:
        p = Path(raw).expanduser()
        if p.is_dir():
            found = sorted(
                q
                for q in p.rglob("*")
                if q.is_file()
                and q.suffix.lower() in VIDEO_EXTENSIONS
                and not q.name.startswith(".")
            )
            if not found:
                problems.append((str(p), "folder has no video files"))
            for q in found:
                files.setdefault(q.resolve(), None)
        elif p.is_file():
            files.setdefault(p.resolve(), None)
        else:
            problems.append((str(p), "no such file or folder"))
    return list(files), problems


def make_movie(path: str | os.PathLike, row: ManifestRow | None = None) -> Movie:
    """Build a Movie record (computes the fingerprint; raises InputError if unreadable)."""
    p = Path(path)
    try:
        size = p.stat().st_size
        fp = fingerprint(p)
    except OSError as e:
        raise InputError(f"cannot read {p}: {e.strerror or e}") from e
    row = row or ManifestRow(str(p))
    return Movie(
        movie_id=row.id or fp[:12],
        path=str(p.resolve()),
        title=row.title or p.stem,
        fingerprint=fp,
        size=size,
        year=row.year,
        genres=row.genres,
    )
