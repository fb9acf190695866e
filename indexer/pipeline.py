"""The indexing run: movies → decode workers → one embedder → labels → thumbnails → store.

Decode workers (processes) run each movie's frame source (one PyAV pass feeding the shot detector
and the frame sampler) and send its messages through a bounded queue to the main process, which
embeds frames in batches that span shots and movies, labels shots, writes thumbnails and stores
one point per shot. A movie is written as a unit — its old points deleted, new ones upserted and
flushed — and only then marked done, so a run killed at any moment resumes without duplicates.
"""

from __future__ import annotations

import contextlib
import logging
import os
import shutil
import time
from dataclasses import dataclass, field

import numpy as np

from scenesearch.indexer.catalog import (
    index_meta,
    indexing_lock,
    open_index_store,
    store_movie,
)
from scenesearch.indexer.config import IndexConfig, auto_workers
from scenesearch.indexer.diskspace import (
    OPEN_RESERVE,
    WRITE_RESERVE,
    DiskFullError,
    is_disk_full,
    require_free,
)
from scenesearch.indexer.errors import (
    ConfigError,
    ScenesearchError,
    StoreError,
    printable,
)
from scenesearch.indexer.planning import plan_movies
from scenesearch.indexer.points import shot_points
from scenesearch.indexer.records import (
    FrameChunk,
    Movie,
    MovieEnd,
    ShotEnd,
)
from scenesearch.indexer.store import (
    VECTOR_CLIP,
    VECTOR_FRAMES,
    VECTOR_SCENES,
    CollectionSpec,
    ShotStore,
    VectorSpec,
)
from scenesearch.indexer.stored import MovieRecord
from scenesearch.indexer.summary import (
    MovieResult,
    RunSummary,
    add_seconds,
    tick,
    write_run_log,
)
from scenesearch.indexer.thumbnails import thumbs_dir, write_thumbnails
from scenesearch.indexer.workers import MovieFailed, _messages

log = logging.getLogger(__name__)


# ------------------------------------------------------------------------------ the embedder side
@dataclass
class _OpenMovie:
    movie: Movie
    frames: dict[int, np.ndarray] = field(default_factory=dict)  # frame idx → pixels (pending)
    feats: dict[int, np.ndarray] = field(default_factory=dict)  # frame idx → embedding
    shots: list[ShotEnd] = field(default_factory=list)
    end: MovieEnd | None = None
    started: float = field(default_factory=time.perf_counter)


class Indexer:
    """Indexes movies into one index. Build once (loads the model), call :meth:`run` per batch."""

    def __init__(self, cfg: IndexConfig, encoder=None, labeler=None):
        from scenesearch.indexer.labels import SceneLabeler

        self.cfg = cfg
        if encoder is None:
            from scenesearch.indexer.encoder import ClipEncoder

            encoder = ClipEncoder(cfg.model, frame_short_side=cfg.decode.short_side)
        self.encoder = encoder
        self.labeler = labeler or SceneLabeler(encoder, cfg.labels)
        self.meta = index_meta(self.encoder, self.labeler, cfg.sample)
        self.stage_s: dict[str, float] = {}

    # -- helpers -------------------------------------------------------------------------
    def collection_spec(self) -> CollectionSpec:
        """The named vectors of a new index: the shot mean, the label scores and, unless
        disabled, every sampled frame's vector (a multivector)."""
        dims = [
            VectorSpec(VECTOR_CLIP, self.encoder.spec.embed_dim),
            VectorSpec(VECTOR_SCENES, len(self.labeler.labels)),
        ]
        if self.meta.get("frame_vectors"):
            dims.append(VectorSpec(VECTOR_FRAMES, self.encoder.spec.embed_dim, multivector=True))
        return CollectionSpec(dims)

    def open_store(self) -> ShotStore:
        return open_index_store(
            self.cfg.store, self.meta, self.collection_spec().vectors, self.cfg.sample
        )

    # -- the run -----------------------------------------------------------------------
    def run(self, paths: list[str], manifest: str | None = None) -> RunSummary:
        cfg = self.cfg
        t_start = time.perf_counter()
        summary = RunSummary(model_id=self.encoder.spec.model_id,
                             random_weights=self.encoder.spec.is_random)  # fmt: skip
        # before anything is written: a full disk would crash the store (indexer/diskspace.py)
        embedded = not cfg.store.qdrant_url
        require_free(cfg.store.index_dir, OPEN_RESERVE + WRITE_RESERVE if embedded
                     else WRITE_RESERVE // 8, "indexing")  # fmt: skip
        try:
            with indexing_lock(cfg.store.index_dir), self.open_store() as store:
                todo = plan_movies(cfg, paths, manifest, store, summary)
                cfg.write(os.path.join(cfg.store.index_dir, "config.json"))
                workers = cfg.run.workers if cfg.run.workers > 0 else auto_workers()
                if cfg.run.workers < 0:
                    workers = 0
                self._consume(_messages(todo, cfg, workers), todo, store, summary)
                if summary.count("indexed"):
                    t0 = time.perf_counter()
                    store.optimize()
                    tick(self.stage_s, "optimize", t0)
        except ScenesearchError as e:  # the run stopped: the run log says why, then re-raise
            summary.stopped = str(e)
            raise
        finally:
            summary.wall_s = time.perf_counter() - t_start
            summary.stage_s = dict(self.stage_s)
            with contextlib.suppress(OSError):  # e.g. the disk is full: the error says so
                write_run_log(cfg.store.index_dir, summary)
        return summary

    def _consume(self, messages, todo: list[Movie], store: ShotStore, summary: RunSummary):
        from scenesearch.indexer.progress import Progress

        movies = {m.movie_id: m for m in todo}
        open_: dict[str, _OpenMovie] = {}
        pending: list[tuple[str, int]] = []  # (movie_id, frame idx) waiting to be embedded
        bs = self.cfg.model.batch_size
        progress = Progress(len(todo), enabled=self.cfg.run.progress)

        def embed_pending() -> None:
            nonlocal pending
            if not pending:
                return
            t0 = time.perf_counter()
            groups: dict[tuple, list[tuple[str, int]]] = {}
            for mid, idx in pending:
                groups.setdefault(open_[mid].frames[idx].shape, []).append((mid, idx))
            keys = list(groups.values())
            stacks = [np.stack([open_[mid].frames.pop(i) for mid, i in ks]) for ks in keys]
            for ks, feats in zip(keys, self.encoder.encode_frame_groups(stacks)):
                for (mid, i), f in zip(ks, feats):
                    open_[mid].feats[i] = f
            summary.images_embedded += len(pending)
            pending = []
            tick(self.stage_s, "embed", t0)

        def finish_ready() -> None:
            for mid in [m for m, om in open_.items() if om.end is not None and not om.frames]:
                om = open_.pop(mid)
                try:
                    self._write_movie(store, om, summary)
                except Exception as e:  # one movie's failure must not stop the batch
                    self._movie_write_failed(om.movie, e, summary)
                    progress.movie_failed(printable(om.movie.title), printable(e))
                    continue
                progress.movie_done(printable(om.movie.title))

        for msg in messages:
            if isinstance(msg, MovieFailed):
                om = open_.pop(msg.movie_id, None)
                pending = [p for p in pending if p[0] != msg.movie_id]
                m = movies[msg.movie_id]
                summary.movies.append(
                    MovieResult(m.path, "failed", m.movie_id, m.title, reason=msg.reason)
                )
                progress.movie_failed(printable(m.title), printable(msg.reason))
                del om
                continue
            om = open_.get(msg.movie_id if not isinstance(msg, ShotEnd) else msg.shot.movie_id)
            if om is None:
                mid = msg.movie_id if not isinstance(msg, ShotEnd) else msg.shot.movie_id
                om = open_[mid] = _OpenMovie(movies[mid])
                progress.movie_started(printable(om.movie.title))
            if isinstance(msg, FrameChunk):
                for i, fr in zip(msg.frame_idx.tolist(), msg.frames):
                    om.frames[i] = fr
                    pending.append((om.movie.movie_id, i))
                if len(pending) >= bs:
                    embed_pending()
            elif isinstance(msg, ShotEnd):
                om.shots.append(msg)
                progress.shot(msg.shot.end_frame)
            elif isinstance(msg, MovieEnd):
                om.end = msg
                summary.frames_decoded += msg.info.n_frames
                summary.video_s += msg.info.duration_s
                add_seconds(self.stage_s, msg.seconds)
                # finish at once if nothing of it waits; else when its frames are embedded,
                # letting the next movie's frames fill the same batch
                if len(pending) >= bs or len(open_) == 1:
                    embed_pending()
                finish_ready()
        embed_pending()
        finish_ready()
        for om in open_.values():  # a source that ended without MovieEnd: report, don't store
            summary.movies.append(
                MovieResult(om.movie.path, "failed", om.movie.movie_id, om.movie.title,
                            reason="decoding stopped before the end of the movie")
            )  # fmt: skip
        progress.close()

    # -- writing one movie ------------------------------------------------------------------
    def _movie_write_failed(self, movie: Movie, e: Exception, summary: RunSummary) -> None:
        """A movie that could not be written fails alone — unless the store or the disk failed,
        which would fail every later movie too: then the run stops with one line."""
        if is_disk_full(e):
            raise DiskFullError(f"the disk holding {self.cfg.store.index_dir} is full: {e}") from e
        if isinstance(e, StoreError):
            raise e
        log.debug("writing %s failed", movie.path, exc_info=True)
        shutil.rmtree(thumbs_dir(self.cfg.store.index_dir, movie.movie_id), ignore_errors=True)
        why = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
        summary.movies.append(
            MovieResult(movie.path, "failed", movie.movie_id, movie.title,
                        reason=f"cannot write its shots: {why}")
        )  # fmt: skip

    def _write_movie(self, store: ShotStore, om: _OpenMovie, summary: RunSummary) -> None:
        movie, end = om.movie, om.end
        if not self.cfg.store.qdrant_url:  # a full disk would crash the store: stop cleanly
            require_free(self.cfg.store.index_dir, WRITE_RESERVE, "writing the index")
        if not om.shots:
            summary.movies.append(
                MovieResult(movie.path, "failed", movie.movie_id, movie.title,
                            reason="no shots found (no decodable frames?)")
            )  # fmt: skip
            return
        t0 = time.perf_counter()
        frames = self.cfg.sample if self.meta.get("frame_vectors") else None
        shots = shot_points(movie, end, om.shots, om.feats, self.labeler, self.meta["model_id"],
                             frames)  # fmt: skip
        t0 = tick(self.stage_s, "label", t0)
        sample = self.cfg.sample
        write_thumbnails(om.shots, self.cfg.store.index_dir, movie.movie_id, sample.thumb_width,
                         sample.thumb_quality)  # fmt: skip
        t0 = tick(self.stage_s, "thumbnails", t0)
        store_movie(store, MovieRecord.of_movie(movie, end, len(shots)), shots)
        tick(self.stage_s, "store", t0)
        cut = (
            f"truncated: decoded {end.info.duration_s:.1f} s of the {end.info.declared_s:.1f} s "
            "its container declares (the end of the file is missing); indexed what was readable"
            if end.info.truncated
            else None
        )
        summary.movies.append(
            MovieResult(movie.path, "indexed", movie.movie_id, movie.title, len(shots),
                        end.info.n_frames, time.perf_counter() - om.started, cut,
                        end.info.truncated)
        )  # fmt: skip


def validate_frames_per_shot(value: str | int) -> int | str:
    if isinstance(value, int) or str(value).isdigit():
        k = int(value)
        if k < 1:
            raise ConfigError("--frames-per-shot must be ≥ 1 or 'all'")
        return k
    if str(value).lower() == "all":
        return "all"
    raise ConfigError(f"--frames-per-shot must be a number or 'all', not {value!r}")
