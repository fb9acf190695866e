"""The genre probe's inputs: the movie → genres table (or the genres stored in the index), the
targets it gives each movie, and the folds: grouped by film, balanced over genres, or read from
a user's split file (used by eval/genre.py)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from scenesearch.eval.features import ShotTable
from scenesearch.indexer.errors import InputError
from scenesearch.indexer.inputs import read_table

# ---------------------------------------------------------------------------- genre tables


@dataclass(frozen=True)
class GenreRow:
    name: str  # how the table names the movie (id, title, file stem or path)
    genres: tuple[str, ...]
    group: str | None = None  # films sharing a group stay on one side of every split


# Columns that may name a movie, in the order tried for each row (the first non-empty wins), so
# the indexer's manifest (path, title, year, genres, optional id) works as a genres table.
MOVIE_COLUMNS = ("movie", "movie_id", "id", "path", "title")


def _movie_name(row: dict, keys: Sequence[str]) -> str | None:
    for k in keys:
        v = row.get(k)
        if v is not None and str(v).strip():
            return str(v).strip()
    return None


def read_genres(path: str | Path) -> list[GenreRow]:
    """A CSV/Parquet table of movie → genres. A row's movie is its first non-empty value among
    ``movie``, ``movie_id``, ``id``, ``path``, ``title`` (so the indexer's manifest works);
    ``genres`` is ``"a|b"`` (or ``,``/``;`` separated); an optional ``group`` (or ``film``) column
    names the film when several files hold the same film, so they never straddle a split."""
    from scenesearch.indexer.inputs import split_genres

    p = Path(path)
    df, cols = read_table(p, "genres table")
    keys = [cols[c] for c in MOVIE_COLUMNS if c in cols]
    if not keys or "genres" not in cols:
        raise InputError(
            f"genres table {p} needs a movie column (movie, movie_id, id, path or title) and a "
            f"'genres' column; it has: {', '.join(df.columns)}"
        )
    gcol = cols.get("group") or cols.get("film")
    rows = []
    for r in df.iter_rows(named=True):
        name = _movie_name(r, keys)
        if name is None:
            continue
        group = r[gcol] if gcol else None
        rows.append(
            GenreRow(
                name,
                split_genres(r[cols["genres"]]),
                str(group).strip() if group not in (None, "") else None,
            )
        )
    if not rows:
        raise InputError(f"genres table {p} has no rows")
    return rows


@dataclass
class GenreTargets:
    """Genres of the index's movies (those the table covers)."""

    genres: dict[str, tuple[str, ...]]  # movie_id -> genres
    group: dict[str, str]  # movie_id -> film group (its own id by default)
    warnings: list[str] = field(default_factory=list)


def resolve_genres(table: ShotTable, rows: Sequence[GenreRow] | None) -> GenreTargets:
    """Match a genres table to the indexed movies; without a table use the genres stored in
    the index payloads (the manifest's genres at indexing time)."""
    warn: list[str] = []
    movies = list(dict.fromkeys(table.movie_ids))
    genres: dict[str, tuple[str, ...]] = {}
    group: dict[str, str] = {}
    if rows is None:
        for m, g in zip(table.movie_ids, table.genres, strict=True):
            if g:
                genres[m] = tuple(g)
        if not genres:
            raise InputError("the index stores no genres; pass a genres table (--genres FILE)")
    else:
        unknown = []
        for r in rows:
            mid = table.resolve_movie(r.name)
            if mid is None:
                unknown.append(r.name)
                continue
            if r.genres:
                genres[mid] = r.genres
                if r.group:
                    group[mid] = r.group
        if unknown:
            warn.append(
                f"{len(unknown)} movies of the genres table are not in the index: "
                f"{', '.join(unknown[:8])}{' …' if len(unknown) > 8 else ''}"
            )
    missing = [m for m in movies if m not in genres]
    if missing:
        titles = {m: t for m, t in zip(table.movie_ids, table.titles, strict=True)}
        warn.append(
            f"{len(missing)} indexed movies have no genres and are left out: "
            f"{', '.join(titles.get(m) or m for m in missing[:8])}"
            f"{' …' if len(missing) > 8 else ''}"
        )
    for m in genres:
        group.setdefault(m, m)
    return GenreTargets(genres, group, warn)


# ---------------------------------------------------------------------------- folds


def group_folds(
    groups: Sequence[str], Y: np.ndarray, n_splits: int, seed: int = 0
) -> list[tuple[np.ndarray, np.ndarray]]:
    """``n_splits`` (train_rows, test_rows) pairs where no group is on both sides.

    Groups are assigned to folds greedily, rarest genre first: groups are shuffled (seeded),
    ordered by the rarest genre they carry, and each goes to the fold that holds the fewest
    rows of that genre so far (then the fewest rows) — a grouped variant of iterative
    stratification, so a rare genre is spread over folds instead of landing in one.
    ``n_splits`` must be ≤ the number of groups.
    """
    groups = np.asarray(groups)
    uniq = list(dict.fromkeys(groups.tolist()))
    if n_splits < 2 or n_splits > len(uniq):
        raise ValueError(f"need 2 ≤ n_splits ≤ {len(uniq)} groups, got {n_splits}")
    gi = np.array([uniq.index(g) for g in groups])
    Yg = np.zeros((len(uniq), Y.shape[1]))
    np.add.at(Yg, gi, Y)
    sizes = np.bincount(gi, minlength=len(uniq))
    freq = (Yg > 0).sum(axis=0)
    rng = np.random.default_rng(seed)
    order = rng.permutation(len(uniq))
    rarest = np.array(
        [freq[Yg[g] > 0].min() if (Yg[g] > 0).any() else np.inf for g in range(len(uniq))]
    )
    order = order[np.argsort(rarest[order], kind="stable")]
    fold_y = np.zeros((n_splits, Y.shape[1]))
    fold_n = np.zeros(n_splits)
    assign = np.empty(len(uniq), dtype=int)
    for g in order:
        pos = np.flatnonzero(Yg[g] > 0)
        if len(pos):
            lab = pos[np.argmin(freq[pos])]
            f = min(range(n_splits), key=lambda k, lab=lab: (fold_y[k, lab], fold_n[k], k))
        else:
            f = int(np.argmin(fold_n))
        assign[g] = f
        fold_y[f] += Yg[g]
        fold_n[f] += sizes[g]
    row_fold = assign[gi]
    out = []
    for k in range(n_splits):
        te = np.flatnonzero(row_fold == k)
        if len(te):
            out.append((np.flatnonzero(row_fold != k), te))
    return out


def read_split_file(path: str | Path) -> dict[str, str]:
    """A user split: CSV with a movie column (``movie``/``movie_id``/``id``/``path``/``title``)
    and ``fold`` (any label; each fold is a test set once) or ``split`` (``test`` rows are the
    test set; ``train``/``val`` rows train)."""
    p = Path(path)
    df, cols = read_table(p, "split file")
    keys = [cols[c] for c in MOVIE_COLUMNS if c in cols]
    val = cols.get("fold") or cols.get("split")
    if not keys or val is None:
        raise InputError(f"split file {p} needs a movie column and a 'fold' or 'split' column")
    is_split = "fold" not in cols
    out = {}
    for r in df.iter_rows(named=True):
        name = _movie_name(r, keys)
        v = str(r[val] or "").strip().lower()
        if name is None or not v:
            continue
        out[name] = ("test" if v == "test" else "train") if is_split else v
    return out


def folds_from_split(
    movie_of_row: Sequence[str], assignment: dict[str, str]
) -> list[tuple[np.ndarray, np.ndarray]]:
    """(train, test) row pairs from a movie → fold map; a ``train``/``test`` map is one fold."""
    m = np.array([assignment[x] for x in movie_of_row])
    labels = sorted(set(m.tolist()))
    if set(labels) <= {"train", "test"}:
        if labels != ["test", "train"]:
            raise InputError("the split file needs both train and test movies")
        return [(np.flatnonzero(m == "train"), np.flatnonzero(m == "test"))]
    return [(np.flatnonzero(m != k), np.flatnonzero(m == k)) for k in labels]
