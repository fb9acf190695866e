"""The decode worker pool: worker processes run each movie's frame source and send its messages.

Each worker runs :func:`indexer.sampling.iter_movie` for the movies it takes from a task queue and
puts the messages on a bounded result queue; a movie's failure becomes one MovieFailed message, so
one bad file never stops the batch. ``workers = 0`` runs the sources inline.
"""

from __future__ import annotations

import dataclasses
import logging
import multiprocessing as mp
import os
import queue
import traceback
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from scenesearch.indexer.config import IndexConfig, available_cores
from scenesearch.indexer.errors import (
    ScenesearchError,
)
from scenesearch.indexer.lifeline import exit_with_parent
from scenesearch.indexer.records import (
    Movie,
)

log = logging.getLogger(__name__)


# ------------------------------------------------------------------------------ decode workers
@dataclass
class MovieFailed:
    movie_id: str
    reason: str


_DONE = "__worker_done__"


def _worker(tasks, results, cfg: IndexConfig, parent_pid: int | None = None) -> None:
    """Decode worker process: runs frame sources for movies from ``tasks`` into ``results``."""
    if parent_pid is not None:
        exit_with_parent(parent_pid)
    from scenesearch.indexer.sampling import iter_movie

    while True:
        movie = tasks.get()
        if movie is None:
            results.put(_DONE)
            return
        for msg in _safe_source(movie, cfg, iter_movie):
            results.put(msg)


def _safe_source(movie: Movie, cfg: IndexConfig, iter_movie) -> Iterator:
    """A movie's messages; any failure becomes one MovieFailed message (never an exception)."""
    try:
        yield from iter_movie(movie, cfg.decode, cfg.shots, cfg.sample)
    except ScenesearchError as e:
        yield MovieFailed(movie.movie_id, str(e))
    except MemoryError:
        yield MovieFailed(movie.movie_id, "out of memory while decoding")
    except Exception as e:  # a decoder bug must not stop the batch; keep the cause
        log.debug("frame source crashed on %s", movie.path, exc_info=True)
        last = traceback.extract_tb(e.__traceback__)[-1]
        yield MovieFailed(
            movie.movie_id,
            f"unexpected {type(e).__name__}: {e} (at {Path(last.filename).name}:{last.lineno})",
        )


def _messages(movies: list[Movie], cfg: IndexConfig, workers: int) -> Iterator:
    """All movies' messages, from worker processes (workers ≥ 1) or inline (workers = 0)."""
    if workers == 0 or len(movies) == 0:
        from scenesearch.indexer.sampling import iter_movie

        for m in movies:
            yield from _safe_source(m, cfg, iter_movie)
        return
    ctx = mp.get_context("spawn")  # never fork a process that has torch threads running
    tasks = ctx.Queue()
    results = ctx.Queue(maxsize=max(8, cfg.run.queue_size * 16))
    n = min(workers, len(movies))
    if n > 1 and cfg.decode.thread_count == 0:
        # Several decoders at once: share the cores instead of each starting FFmpeg's default
        # (one thread per core) — no oversubscription, no cross-worker thread thrash.
        decode = dataclasses.replace(cfg.decode, thread_count=max(1, available_cores() // n))
        cfg = dataclasses.replace(cfg, decode=decode)
    procs = [
        ctx.Process(target=_worker, args=(tasks, results, cfg, os.getpid()), daemon=True)
        for _ in range(n)
    ]
    for p in procs:
        p.start()
    for m in movies:
        tasks.put(m)
    for _ in procs:
        tasks.put(None)
    done = 0
    try:
        while done < n:
            try:
                msg = results.get(timeout=1.0)
            except queue.Empty:
                dead = [p for p in procs if not p.is_alive() and p.exitcode not in (0, None)]
                if dead:  # a worker killed by the OS (e.g. OOM) — its movie is lost, say so
                    raise ScenesearchError(
                        f"a decode worker died (exit code {dead[0].exitcode}); rerun to resume"
                    ) from None
                continue
            if msg == _DONE:
                done += 1
                continue
            yield msg
    finally:
        for p in procs:
            if p.is_alive():
                p.terminate()
            p.join(timeout=5)
