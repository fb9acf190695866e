"""Planning an indexing run: which inputs to (re)index now, given what the index holds.

Reads the manifest and the inputs, gives each movie its id, and compares with the movie records:
a movie indexed with the same content is skipped (its payloads updated when it was renamed or got
new manifest metadata), a changed file at a known path replaces the old movie, and bad, repeated
or unreadable inputs fail alone in the run summary. Needs no model (the Ray driver plans too).
"""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

from scenesearch.indexer.catalog import remove_movie
from scenesearch.indexer.config import IndexConfig
from scenesearch.indexer.errors import InputError
from scenesearch.indexer.inputs import ManifestRow, discover, make_movie, read_manifest
from scenesearch.indexer.records import Movie
from scenesearch.indexer.store import Filter, MatchAny, ShotStore
from scenesearch.indexer.stored import MovieRecord, ShotRecord
from scenesearch.indexer.summary import MovieResult, RunSummary


def plan_movies(
    cfg: IndexConfig, paths: list[str], manifest: str | None, store: ShotStore, summary: RunSummary
) -> list[Movie]:
    """Movies to (re)index now; skipped, renamed and unreadable ones go to the summary."""
    rows: dict[str, ManifestRow] = {}
    if manifest:
        for r in read_manifest(manifest):
            key = str(Path(r.path).resolve()) if not r.error else r.path
            if r.error or key in rows:  # a bad or repeated row fails alone
                why = r.error or "the same file is on an earlier manifest row"
                summary.movies.append(MovieResult(r.path, "failed", r.id, reason=why))
                continue
            rows[key] = r
        paths = list(paths) + [r.path for r in rows.values()]
    files, problems = discover(paths)
    for p, why in problems:
        summary.movies.append(MovieResult(p, "failed", reason=why))
    states = {k: MovieRecord.from_dict(v) for k, v in store.get_movies().items()}
    by_path = {s.path: s for s in states.values()}
    todo: list[Movie] = []
    seen: dict[str, str] = {}  # movie id → the input that has it in this run
    for f in files:
        try:
            movie = make_movie(f, rows.get(str(f)))
        except InputError as e:
            summary.movies.append(MovieResult(str(f), "failed", reason=str(e)))
            continue
        if movie.movie_id in seen:
            # Two inputs, one id (identical files, or a manifest id given twice): the second
            # is an input error, never "already done" — it was not indexed.
            what = "id" if rows.get(str(f)) and rows[str(f)].id else "content"
            summary.movies.append(
                MovieResult(str(f), "failed", movie.movie_id, movie.title,
                            reason=f"same {what} as another input of this run "
                            f"({seen[movie.movie_id]}); not indexed")
            )  # fmt: skip
            continue
        seen[movie.movie_id] = str(f)
        old = by_path.get(movie.path)
        if old and old.movie_id != movie.movie_id:
            # the file at this path changed: its old shots would be stale duplicates
            remove_movie(store, cfg.store.index_dir, old.movie_id)
        state = states.get(movie.movie_id)
        if (
            state
            and state.status == "done"
            and state.fingerprint == movie.fingerprint
            and not cfg.run.force
        ):
            changed = refresh_metadata(store, state, movie)
            summary.movies.append(
                MovieResult(movie.path, "updated" if changed else "skipped", movie.movie_id,
                            movie.title, shots=0, reason="already indexed")
            )  # fmt: skip
            continue
        todo.append(movie)
    return todo


def refresh_metadata(store: ShotStore, state: MovieRecord, movie: Movie) -> bool:
    """A done movie that was renamed/moved or got new manifest metadata: update its shots'
    payloads and its record; False when nothing changed."""
    new = {"path": movie.path, "title": movie.title, "year": movie.year,
           "genres": tuple(movie.genres)}  # fmt: skip
    if all(getattr(state, k) == v for k, v in new.items()):
        return False
    shots = ShotRecord(**new).to_payload()  # the same fields, as the payload stores them
    store.set_payload(
        {k: shots[k] for k in new}, Filter(must=(MatchAny("movie_id", (movie.movie_id,)),))
    )
    store.put_movie(replace(state, **new, absent=state.absent - new.keys()).to_dict())
    store.flush()
    return True
