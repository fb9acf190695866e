"""The indexing run: movies → decode workers → one embedder → labels → thumbnails → store.

Decode workers (processes) run each movie's frame source (one PyAV pass feeding the shot detector
and the frame sampler) and send its messages through a bounded queue to the main process, which
embeds frames in batches that span shots and movies, labels shots, writes thumbnails and stores
one point per shot. A movie is written as a unit — its old points deleted, new ones upserted and
flushed — and only then marked done, so a run killed at any moment resumes without duplicates.
"""

from __future__ import annotations

import contextlib
import dataclasses
import fcntl
import json
import logging
import multiprocessing as mp
import os
import queue
import shutil
import time
import traceback
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path

import numpy as np

from scenesearch.indexer import __version__
from scenesearch.indexer.config import IndexConfig, StoreConfig, auto_workers, available_cores
from scenesearch.indexer.diskspace import (
    OPEN_RESERVE,
    WRITE_RESERVE,
    DiskFullError,
    is_disk_full,
    require_free,
)
from scenesearch.indexer.errors import (
    ConfigError,
    IndexBusyError,
    IndexMismatchError,
    InputError,
    ScenesearchError,
    StoreError,
    printable,
)
from scenesearch.indexer.imageio import write_jpeg
from scenesearch.indexer.inputs import ManifestRow, discover, make_movie, read_manifest
from scenesearch.indexer.lifeline import exit_with_parent
from scenesearch.indexer.records import (
    FrameChunk,
    Movie,
    MovieEnd,
    ShotEnd,
    ShotLabels,
    make_shot_id,
    point_id,
)
from scenesearch.indexer.store import (
    SCHEMA_VERSION,
    VECTOR_CLIP,
    VECTOR_FRAMES,
    VECTOR_SCENES,
    CollectionSpec,
    Filter,
    MatchAny,
    ShotStore,
    StorePoint,
    VectorSpec,
    open_store,
)

log = logging.getLogger(__name__)

UPSERT_BATCH = 256


# ------------------------------------------------------------------------------ index metadata
def index_meta(encoder, labeler, sample=None) -> dict:
    """What an index records about how it was built (checked whenever it is reopened); with
    ``sample`` (a SampleConfig) also the frame sampling and whether frame vectors are kept."""
    from scenesearch.indexer.sampling import sampling_meta  # lazy: decoders and detectors

    sampled = sampling_meta(sample) if sample is not None else {}
    spec = encoder.spec
    tax = labeler.taxonomy
    return {
        **sampled,
        "schema_version": SCHEMA_VERSION,
        **spec.to_meta(),  # model, weights, precision, preprocessing, frame scale
        "taxonomy": {"source": tax.source, "sha": tax.sha, "labels": list(tax.labels)},
        "prompt": labeler.cfg.prompt,
        "logit_scale": labeler.cfg.logit_scale,
        # how many (label, score) pairs each shot keeps: with it, "any of the top k" filters can
        # use the flat top_labels keyword list (see SearchEngine.build_filter)
        "top_k": labeler.cfg.top_k,
        "created": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "scenesearch_version": __version__,
    }


def check_meta(found: dict, wanted: dict) -> None:
    """Refuse to add to (or query) an index built with another model, taxonomy or prompt."""
    if found.get("schema_version") != wanted["schema_version"]:
        raise IndexMismatchError(
            f"index schema v{found.get('schema_version')} ≠ this scenesearch's v{SCHEMA_VERSION}; "
            "re-index into a new folder"
        )
    for key, what in (("model_id", "model"), ("embed_dim", "embedding size"), ("prompt", "prompt")):
        if found.get(key) != wanted[key]:
            raise IndexMismatchError(
                f"index was built with {what} {found.get(key)!r}, not {wanted[key]!r}; use the "
                "same options or a new --index folder"
            )
    if "top_k" in found and found["top_k"] != wanted["top_k"]:
        raise IndexMismatchError(
            f"index keeps the top {found['top_k']} labels per shot, not {wanted['top_k']}; use the "
            "same label settings or a new --index folder"
        )
    if found["taxonomy"]["sha"] != wanted["taxonomy"]["sha"]:
        raise IndexMismatchError(
            f"index was built with taxonomy {found['taxonomy']['source']!r} "
            f"({len(found['taxonomy']['labels'])} labels), not {wanted['taxonomy']['source']!r}"
        )


# ------------------------------------------------------------------------------ run records
@dataclass
class MovieResult:
    path: str
    status: str  # indexed | skipped | failed | updated
    movie_id: str | None = None
    title: str | None = None
    shots: int = 0
    frames: int = 0
    seconds: float = 0.0
    reason: str | None = None
    truncated: bool = False  # indexed, but only the part of the file that could be read


@dataclass
class RunSummary:
    movies: list[MovieResult] = field(default_factory=list)
    wall_s: float = 0.0
    frames_decoded: int = 0
    images_embedded: int = 0
    video_s: float = 0.0
    stage_s: dict[str, float] = field(default_factory=dict)
    model_id: str = ""
    random_weights: bool = False
    stopped: str | None = None  # why the run stopped early (an error that ended the batch)

    def count(self, status: str) -> int:
        return sum(m.status == status for m in self.movies)

    @property
    def shots(self) -> int:
        return sum(m.shots for m in self.movies if m.status == "indexed")

    @property
    def failed(self) -> list[MovieResult]:
        return [m for m in self.movies if m.status == "failed"]

    @property
    def truncated(self) -> list[MovieResult]:
        return [m for m in self.movies if m.truncated and m.status == "indexed"]

    def to_dict(self) -> dict:
        d = dataclasses.asdict(self)
        d.update(
            indexed=self.count("indexed"),
            skipped=self.count("skipped") + self.count("updated"),
            failed=len(self.failed),
            truncated=len(self.truncated),
            shots=self.shots,
            frames_per_s=self.frames_decoded / self.wall_s if self.wall_s else 0.0,
            images_per_s=self.images_embedded / self.wall_s if self.wall_s else 0.0,
            shots_per_s=self.shots / self.wall_s if self.wall_s else 0.0,
            realtime_factor=self.video_s / self.wall_s if self.wall_s else 0.0,
        )
        return d

    def lines(self) -> list[str]:
        d = self.to_dict()
        cut = f" ({d['truncated']} truncated)" if d["truncated"] else ""
        out = [
            f"movies: {d['indexed']} indexed{cut}, {d['skipped']} already done, {d['failed']} "
            f"failed; {d['shots']} shots in {self.wall_s:.1f} s",
            f"speed: {d['frames_per_s']:.0f} frames/s decoded, {d['images_per_s']:.1f} images/s "
            f"embedded, {d['shots_per_s']:.1f} shots/s, {d['realtime_factor']:.1f}× realtime",
        ]
        if self.random_weights:
            out.append(
                f"model: {self.model_id} — RANDOM WEIGHTS: labels and search results are "
                "meaningless (plumbing demo only)"
            )
        # names and reasons are the user's file names: escaped, so that a newline or a terminal
        # escape sequence in a name can neither forge a line nor reach the terminal raw
        for m in self.truncated:
            out.append(f"TRUNCATED {printable(m.path)}: {printable(m.reason)}")
        for m in self.failed:
            out.append(f"FAILED {printable(m.path)}: {printable(m.reason)}")
        if self.stopped:
            out.append(f"STOPPED: {printable(self.stopped)}")
        return out


# ------------------------------------------------------------------------------ locking
@contextlib.contextmanager
def indexing_lock(index_dir: str) -> Iterator[None]:
    """Exclusive ``.indexing.lock`` in the index folder while a run writes (the web app reads it
    to say "being indexed elsewhere"); a second indexer fails at once with IndexBusyError."""
    Path(index_dir).mkdir(parents=True, exist_ok=True)
    path = os.path.join(index_dir, ".indexing.lock")
    f = open(path, "a+")  # noqa: SIM115 - held open for the whole run, closed below
    try:
        fcntl.flock(f, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError as e:
        f.close()
        raise IndexBusyError(f"index {index_dir} is being indexed by another process") from e
    try:
        f.seek(0)
        f.truncate()
        f.write(f"{os.getpid()}\n")
        f.flush()
        yield
    finally:
        fcntl.flock(f, fcntl.LOCK_UN)
        f.close()


def is_being_indexed(index_dir: str) -> bool:
    """True while another process holds the indexing lock of ``index_dir``."""
    path = os.path.join(index_dir, ".indexing.lock")
    if not os.path.exists(path):
        return False
    with open(path, "a+") as f:
        try:
            fcntl.flock(f, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            return True
        fcntl.flock(f, fcntl.LOCK_UN)
    return False


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
    def _tick(self, stage: str, t0: float) -> float:
        t = time.perf_counter()
        self.stage_s[stage] = self.stage_s.get(stage, 0.0) + t - t0
        return t

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
        return open_index_store(self.cfg.store, self.meta, self.collection_spec().vectors)

    # -- planning ------------------------------------------------------------------------
    def plan(
        self, paths: list[str], manifest: str | None, store: ShotStore, summary: RunSummary
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
        states = store.get_movies()
        by_path = {s.get("path"): s for s in states.values()}
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
            if old and old["movie_id"] != movie.movie_id:
                # the file at this path changed: its old shots would be stale duplicates
                self.remove_movie(store, old["movie_id"])
            state = states.get(movie.movie_id)
            if (
                state
                and state.get("status") == "done"
                and state.get("fingerprint") == movie.fingerprint
                and not self.cfg.run.force
            ):
                changed = self._refresh_metadata(store, state, movie)
                summary.movies.append(
                    MovieResult(movie.path, "updated" if changed else "skipped", movie.movie_id,
                                movie.title, shots=0, reason="already indexed")
                )  # fmt: skip
                continue
            todo.append(movie)
        return todo

    def _refresh_metadata(self, store: ShotStore, state: dict, movie: Movie) -> bool:
        """A done movie that was renamed/moved or got new manifest metadata: update payloads."""
        new = {
            "path": movie.path,
            "title": movie.title,
            "year": movie.year,
            "genres": list(movie.genres),
        }
        if all(state.get(k) == v for k, v in new.items()):
            return False
        store.set_payload(new, Filter(must=(MatchAny("movie_id", (movie.movie_id,)),)))
        store.put_movie({**state, **new})
        store.flush()
        return True

    def remove_movie(self, store: ShotStore, movie_id: str) -> None:
        """Delete a movie's points, its state record and its thumbnails."""
        store.delete(Filter(must=(MatchAny("movie_id", (movie_id,)),)))
        store.delete_movie_record(movie_id)
        store.flush()
        shutil.rmtree(self.thumb_dir(movie_id), ignore_errors=True)

    def thumb_dir(self, movie_id: str) -> str:
        return os.path.join(self.cfg.store.index_dir, "thumbs", movie_id)

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
                todo = self.plan(paths, manifest, store, summary)
                cfg.write(os.path.join(cfg.store.index_dir, "config.json"))
                workers = cfg.run.workers if cfg.run.workers > 0 else auto_workers()
                if cfg.run.workers < 0:
                    workers = 0
                self._consume(_messages(todo, cfg, workers), todo, store, summary)
                if summary.count("indexed"):
                    t0 = time.perf_counter()
                    store.optimize()
                    self._tick("optimize", t0)
        except ScenesearchError as e:  # the run stopped: the run log says why, then re-raise
            summary.stopped = str(e)
            raise
        finally:
            summary.wall_s = time.perf_counter() - t_start
            summary.stage_s = dict(self.stage_s)
            with contextlib.suppress(OSError):  # e.g. the disk is full: the error says so
                self._write_run_log(summary)
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
            self._tick("embed", t0)

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
                for k, v in msg.seconds.items():
                    self.stage_s[k] = self.stage_s.get(k, 0.0) + v
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
        shutil.rmtree(self.thumb_dir(movie.movie_id), ignore_errors=True)
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
        points = shot_points(movie, end, om.shots, om.feats, self.labeler, self.meta["model_id"],
                             frames)  # fmt: skip
        t0 = self._tick("label", t0)
        thumbs = self.thumb_dir(movie.movie_id)
        shutil.rmtree(thumbs, ignore_errors=True)
        for se, p in zip(om.shots, points):
            write_jpeg(
                se.thumb,
                os.path.join(self.cfg.store.index_dir, p.payload["thumb"]),
                self.cfg.sample.thumb_width,
                self.cfg.sample.thumb_quality,
            )
        t0 = self._tick("thumbnails", t0)
        store_movie(store, movie_record(movie, end, len(points)), points)
        self._tick("store", t0)
        cut = (
            f"truncated: decoded {end.info.duration_s:.1f} s of the {end.info.declared_s:.1f} s "
            "its container declares (the end of the file is missing); indexed what was readable"
            if end.info.truncated
            else None
        )
        summary.movies.append(
            MovieResult(movie.path, "indexed", movie.movie_id, movie.title, len(points),
                        end.info.n_frames, time.perf_counter() - om.started, cut,
                        end.info.truncated)
        )  # fmt: skip

    def _write_run_log(self, summary: RunSummary) -> None:
        runs = Path(self.cfg.store.index_dir) / "runs"
        runs.mkdir(parents=True, exist_ok=True)
        stamp = datetime.now().strftime("%Y%m%d-%H%M%S")
        (runs / f"{stamp}.json").write_text(json.dumps(summary.to_dict(), indent=2))


def shot_payload(movie: Movie, se: ShotEnd, lab: ShotLabels, sid: str, thumb: str, fps: float,
                 model_id: str) -> dict:  # fmt: skip
    """The payload of one shot point (schema documented in indexer/store/base.py)."""
    shot = se.shot
    return {
        "shot_id": sid,
        "movie_id": movie.movie_id,
        "path": movie.path,
        "title": movie.title,
        "year": movie.year,
        "genres": list(movie.genres),
        "shot_index": shot.index,
        "start_s": round(shot.start_s, 4),
        "end_s": round(shot.end_s, 4),
        "duration_s": round(shot.end_s - shot.start_s, 4),
        "start_frame": shot.start_frame,
        "end_frame": shot.end_frame,
        "fps": fps,
        "labels": list(lab.clean),
        "top_labels": [t.label for t in lab.top],
        "top": [
            {"label": t.label, "score": round(t.score, 6), "rank": r}
            for r, t in enumerate(lab.top, start=1)
        ],
        "thumb": thumb,
        "model": model_id,
        "n_frames_used": len(se.frame_idx),
    }


def shot_points(movie: Movie, end: MovieEnd, shots: list[ShotEnd], feats: dict[int, np.ndarray],
                labeler, model_id: str, frames=None) -> list[StorePoint]:  # fmt: skip
    """The store points of one movie's shots from its frames' embeddings (``feats``: frame index
    → L2-normalised vector): the shot vector, its labels and its payload. Every executor (the
    local run, Ray actors) builds points here. With ``frames`` (the SampleConfig), each point
    also keeps its sampled frames' vectors (multivector "frames") and their times (``frame_s``)."""
    from scenesearch.indexer.sampling import frame_times, vector_frames

    points: list[StorePoint] = []
    for se in shots:
        f = np.stack([feats[i] for i in se.frame_idx.tolist()])
        v = f.mean(axis=0)
        v = (v / max(float(np.linalg.norm(v)), 1e-12)).astype(np.float32)
        lab = labeler.label_shot(f)
        sid = make_shot_id(movie.movie_id, se.shot.index)
        thumb_rel = os.path.join("thumbs", movie.movie_id, f"{se.shot.index:04d}.jpg")
        vectors = {VECTOR_CLIP: v, VECTOR_SCENES: lab.scores}
        payload = shot_payload(movie, se, lab, sid, thumb_rel, end.info.fps, model_id)
        if frames is not None:
            rows = vector_frames(se.shot, se.frame_idx, frames)
            vectors[VECTOR_FRAMES] = np.stack([feats[i] for i in rows.tolist()])
            payload["frame_s"] = frame_times(se.shot, rows)
        points.append(StorePoint(point_id(sid), vectors, payload))
    return points


def movie_record(movie: Movie, end: MovieEnd, n_shots: int) -> dict:
    """The per-movie state record stored once a movie's points are durable."""
    return {
        "movie_id": movie.movie_id,
        "path": movie.path,
        "title": movie.title,
        "year": movie.year,
        "genres": list(movie.genres),
        "fingerprint": movie.fingerprint,
        "size": movie.size,
        "status": "done",
        "shots": n_shots,
        "duration_s": end.info.duration_s,
        "fps": end.info.fps,
        "width": end.info.width,
        "height": end.info.height,
        "codec": end.info.codec,
        "corrupt_frames": end.info.corrupt_frames,
        "truncated": end.info.truncated,
        "declared_s": end.info.declared_s,
        "indexed_at": datetime.now(timezone.utc).isoformat(timespec="seconds"),
    }


def store_movie(store: ShotStore, record: dict, points: list[StorePoint]) -> None:
    """Write one movie as a unit: its old points deleted, the new ones upserted and flushed, and
    only then its state record (``status`` done) — a run killed at any moment never leaves
    duplicates, and a movie marked done has all its points."""
    movie_id = record["movie_id"]
    # replace, never duplicate: drop whatever an interrupted or older run left for this movie
    store.delete(Filter(must=(MatchAny("movie_id", (movie_id,)),)))
    for i in range(0, len(points), UPSERT_BATCH):
        store.upsert(points[i : i + UPSERT_BATCH])
    store.flush()
    store.put_movie(record)


def open_index_store(cfg: StoreConfig, meta: dict, dims: list[VectorSpec]) -> ShotStore:
    """Open the store ``cfg`` names for writing: create it (vectors ``dims``, metadata ``meta``)
    when new, else check that it was built with the same model, taxonomy and prompt."""
    store = open_store(cfg)
    try:
        found = store.get_meta() if store.exists() else None
        if found is None:
            store.create(CollectionSpec(dims))
            store.set_meta(meta)
        else:
            check_meta(found, meta)
            if found.get("frame_vectors") != meta.get("frame_vectors"):
                # An index keeps one layout: every shot has frame vectors or none does.
                log.warning("index %s %s per-frame vectors: new shots are stored the same way",
                            cfg.index_dir or cfg.qdrant_url,
                            "has" if found.get("frame_vectors") else "was built without")  # fmt: skip
            meta["frame_vectors"] = found.get("frame_vectors")
    except BaseException:
        store.close()
        raise
    return store


# ------------------------------------------------------------------------------ other commands
def resolve_movies(store: ShotStore, refs: list[str]) -> tuple[list[dict], list[str]]:
    """Match user references (movie id, title, file path or file name) to movie records."""
    states = store.get_movies()
    found, missing = [], []
    for ref in refs:
        rp = str(Path(ref).expanduser().resolve()) if os.path.exists(ref) else None
        hits = [
            s
            for s in states.values()
            if ref in (s["movie_id"], s.get("title"), Path(s.get("path", "")).name)
            or (rp and s.get("path") == rp)
        ]
        if hits:
            found.extend(h for h in hits if h not in found)
        else:
            missing.append(ref)
    return found, missing


def index_info(store: ShotStore) -> dict:
    """What an index holds: counts, model, taxonomy, label histogram (clean labels)."""
    meta = store.get_meta() if store.exists() else None
    if not meta:
        return {"movies": 0, "shots": 0, "model": None, "pretrained": None, "labels": {}}
    movies = store.get_movies()
    labels = store.facet("labels", limit=len(meta["taxonomy"]["labels"]))
    return {
        "movies": sum(1 for m in movies.values() if m.get("status") == "done"),
        "shots": store.count(),
        "model": meta["model"],
        "pretrained": meta["pretrained"],
        "model_id": meta["model_id"],
        "random_weights": meta["pretrained"] == "random",
        "taxonomy": meta["taxonomy"]["source"],
        "n_labels": len(meta["taxonomy"]["labels"]),
        "prompt": meta["prompt"],
        "labels": dict(sorted(labels.items(), key=lambda kv: (-kv[1], kv[0]))),
        "movie_list": [
            {
                k: m.get(k)
                for k in ("movie_id", "title", "year", "shots", "duration_s", "path", "truncated")
            }
            for m in sorted(movies.values(), key=lambda m: str(m.get("title")))
        ],
    }


def validate_frames_per_shot(value: str | int) -> int | str:
    if isinstance(value, int) or str(value).isdigit():
        k = int(value)
        if k < 1:
            raise ConfigError("--frames-per-shot must be ≥ 1 or 'all'")
        return k
    if str(value).lower() == "all":
        return "all"
    raise ConfigError(f"--frames-per-shot must be a number or 'all', not {value!r}")
