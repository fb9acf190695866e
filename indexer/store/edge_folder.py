"""The embedded index folder's own files, beside the shard: lock, metadata JSON, movie state.

``.lock`` holds an exclusive ``flock`` for the lifetime of an :class:`~indexer.store.edge.EdgeStore`
(so a second opener fails at once with :class:`IndexBusyError` instead of with the engine's own
obscure WAL error); ``index.json`` is the index metadata, replaced atomically; ``movies.sqlite``
has one row of indexing state per movie, each commit fsynced.
"""

from __future__ import annotations

import contextlib
import json
import os
import sqlite3
import tempfile
import threading
from typing import Any

from scenesearch.indexer.errors import IndexBusyError, StoreError
from scenesearch.indexer.store import _translate as tr

try:  # POSIX only; without it (Windows) the engine's own WAL lock is the only guard
    import fcntl
except ImportError:  # pragma: no cover
    fcntl = None  # type: ignore[assignment]

META_FILE = "index.json"
MOVIES_DB = "movies.sqlite"
LOCK_FILE = ".lock"


class IndexFolder:
    """The folder ``root`` of an embedded index: its lock, metadata file and movie-state table.

    Nothing is created until :meth:`ensure` (or a write that calls it); ``mutex`` serialises the
    SQLite connection and the store's lifecycle changes.
    """

    def __init__(self, root: str):
        self.root = root
        self.mutex = threading.RLock()
        self._lock_fd: int | None = None
        self._db: sqlite3.Connection | None = None

    # -- lock --------------------------------------------------------------------------
    def acquire_lock(self) -> None:
        """Take the folder's exclusive lock (once), or raise IndexBusyError naming the holder."""
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

    def release_lock(self) -> None:
        if self._lock_fd is not None:
            os.close(self._lock_fd)  # closing the descriptor drops the flock
            self._lock_fd = None

    def ensure(self) -> None:
        """Create the folder if needed and take its lock."""
        try:
            os.makedirs(self.root, exist_ok=True)
        except OSError as e:
            raise StoreError(f"cannot create the index folder {self.root}: {tr.one_line(e)}") from e
        self.acquire_lock()

    def close(self) -> None:
        """Close the movie-state table and drop the lock."""
        if self._db is not None:
            self._db.close()
            self._db = None
        self.release_lock()

    # -- metadata ----------------------------------------------------------------------
    def read_meta(self) -> dict[str, Any] | None:
        path = os.path.join(self.root, META_FILE)
        try:
            with open(path, encoding="utf-8") as f:
                return json.load(f)
        except FileNotFoundError:
            return None
        except (OSError, ValueError) as e:
            raise StoreError(f"cannot read index metadata {path}: {tr.one_line(e)}") from e

    def write_meta(self, meta: dict[str, Any]) -> None:
        with self.mutex:
            self.ensure()
            path = os.path.join(self.root, META_FILE)
            try:
                _atomic_write(path, json.dumps(tr.to_jsonable(meta), indent=2, sort_keys=True))
            except OSError as e:
                raise StoreError(f"cannot write index metadata {path}: {tr.one_line(e)}") from e

    # -- per-movie state ---------------------------------------------------------------
    def _movies_db(self, create: bool) -> sqlite3.Connection | None:
        if self._db is None:
            path = os.path.join(self.root, MOVIES_DB)
            if not create and not os.path.exists(path):
                return None
            self.ensure()
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
        with self.mutex:
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

    def put_movie(self, movie_id: str, record: dict[str, Any]) -> None:
        text = json.dumps(tr.to_jsonable(record))
        with self.mutex:
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

    def delete_movie(self, movie_id: str) -> None:
        with self.mutex:
            db = self._movies_db(create=False)
            if db is None:
                return
            try:
                with db:
                    db.execute("DELETE FROM movies WHERE movie_id = ?", (movie_id,))
            except sqlite3.Error as e:
                raise StoreError(f"cannot write movie state: {tr.one_line(e)}") from e


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
