"""Indexing on a Ray cluster (``pip install 'scenesearch[ray]'``; ``scenesearch index --ray``).

Each movie is one CPU task that runs the movie's frame source (the same decode → shots → sampling
stage the local run uses), sends its sampled frames in batches to a pool of embedding actors
(each holds the model: one GPU each where the cluster has GPUs, CPU actors otherwise), has an
actor build the shot records (vectors, labels, payloads: :func:`indexer.points.shot_points`),
and writes the thumbnails and then the movie's shot table to the staging location. The driver
loads each table into the store as it arrives, exactly like ``scenesearch load``.

Resume and faults: a movie whose table is already staged (same content fingerprint, same model)
is loaded without being decoded or embedded again; one the store already holds is skipped. Ray
retries a task whose worker dies (``max_retries``) and restarts a dead actor, retrying its calls;
point ids are deterministic and a movie is written as a unit, so nothing is duplicated.
"""

from __future__ import annotations

import contextlib
import dataclasses
import logging
import os
import time
import zlib
from dataclasses import dataclass, field, replace

import numpy as np

from scenesearch.indexer import shot_table as st
from scenesearch.indexer.catalog import (
    check_meta,
    index_meta,
    indexing_lock,
    open_index_store,
    store_movie,
)
from scenesearch.indexer.config import IndexConfig
from scenesearch.indexer.errors import ConfigError, IndexMismatchError, InputError, ScenesearchError
from scenesearch.indexer.planning import plan_movies
from scenesearch.indexer.points import shot_points
from scenesearch.indexer.records import FrameChunk, Movie, MovieEnd, ShotEnd
from scenesearch.indexer.store import (
    VECTOR_CLIP,
    VECTOR_FRAMES,
    VECTOR_SCENES,
    ShotStore,
    VectorSpec,
)
from scenesearch.indexer.stored import MovieRecord, ShotRecord
from scenesearch.indexer.summary import MovieResult, RunSummary, add_seconds, tick, write_run_log
from scenesearch.indexer.thumbnails import write_thumbnails
from scenesearch.indexer.workers import MovieFailed, _safe_source

log = logging.getLogger(__name__)

RAY_HINT = "pip install 'scenesearch[ray]'"


@dataclass
class RayOptions:
    """How ``index --ray`` uses the cluster."""

    address: str = "auto"  # "auto" (RAY_ADDRESS or a local cluster), "local" (start one), HOST:PORT
    staging: str = ""  # folder or fsspec URL every node can write and the driver can read
    actors: int = 0  # embedding actors; 0: one per GPU in the cluster, else 1
    actor_cpus: float = 1.0  # CPUs per embedding actor (torch threads on CPU actors)
    task_cpus: float = 1.0  # CPUs per movie task (decoder threads)
    max_retries: int = 3  # times Ray reruns a movie task whose worker died
    inflight: int = 4  # embedding calls one movie task keeps in flight
    # Test hook: a folder; each movie task then kills its own worker process (os._exit) the first
    # time it runs, leaving a marker file there, so tests see Ray's retry recover the movie.
    crash_once_dir: str = ""


def import_ray():
    """The ``ray`` module, or one clear line saying how to get it."""
    try:
        import ray
    except ImportError:
        raise ConfigError(f"--ray needs Ray, which is not installed: {RAY_HINT}") from None
    return ray


# ------------------------------------------------------------------------------ the actor
class EmbedActor:
    """Holds the model (encoder + labeler): embeds frame batches and builds shot records."""

    def __init__(self, cfg: IndexConfig, device: str):
        from scenesearch.indexer.encoder import ClipEncoder
        from scenesearch.indexer.labels import SceneLabeler

        self.encoder = ClipEncoder(replace(cfg.model, device=device),
                                   frame_short_side=cfg.decode.short_side)  # fmt: skip
        self.labeler = SceneLabeler(self.encoder, cfg.labels)
        self.sample = cfg.sample
        self.meta = index_meta(self.encoder, self.labeler, cfg.sample)

    def describe(self) -> tuple[dict, list[VectorSpec]]:
        dims = [
            VectorSpec(VECTOR_CLIP, self.encoder.spec.embed_dim),
            VectorSpec(VECTOR_SCENES, len(self.labeler.labels)),
        ]
        if self.meta.get("frame_vectors"):  # per-frame vectors, as the local run keeps them
            dims.append(VectorSpec(VECTOR_FRAMES, self.encoder.spec.embed_dim, multivector=True))
        return self.meta, dims

    def embed(self, frames: np.ndarray) -> tuple[np.ndarray, float]:
        t0 = time.perf_counter()
        feats = self.encoder.encode_frame_groups([frames])[0]
        return feats, time.perf_counter() - t0

    def points(self, movie: Movie, end: MovieEnd, shots: list[ShotEnd], feats: dict) -> tuple:
        t0 = time.perf_counter()
        frames = self.sample if self.meta.get("frame_vectors") else None
        pts = shot_points(movie, end, shots, feats, self.labeler, self.meta["model_id"], frames)
        return pts, time.perf_counter() - t0


# ------------------------------------------------------------------------------ the movie task
_NO_THUMB = np.zeros((1, 1, 3), np.uint8)


def movie_task(movie: Movie, cfg: IndexConfig, actors: list, staging: str, meta: dict,
               inflight: int, crash_once_dir: str = "") -> dict:  # fmt: skip
    """Index one movie into a staged shot table (runs as a Ray task); returns what it did."""
    import ray

    from scenesearch.indexer.sampling import iter_movie

    if crash_once_dir:
        _crash_once(crash_once_dir, movie.movie_id)
    t_start = time.perf_counter()
    pending: list[tuple[int, np.ndarray]] = []
    calls: list[tuple[list[int], object]] = []
    feats: dict[int, np.ndarray] = {}
    shots: list[ShotEnd] = []
    end: MovieEnd | None = None
    seconds: dict[str, float] = {"embed": 0.0}
    turn = zlib.crc32(movie.movie_id.encode())  # spread movies over the actors

    def submit() -> None:
        nonlocal turn
        if pending:
            idx = [i for i, _ in pending]
            stack = np.stack([f for _, f in pending])
            calls.append((idx, actors[turn % len(actors)].embed.remote(stack)))
            turn += 1
            pending.clear()

    def drain(keep: int) -> None:
        while len(calls) > keep:
            idx, ref = calls.pop(0)
            f, s = ray.get(ref)
            feats.update(zip(idx, f))
            seconds["embed"] += s

    for msg in _safe_source(movie, cfg, iter_movie):
        if isinstance(msg, MovieFailed):
            return {"status": "failed", "reason": msg.reason}
        if isinstance(msg, FrameChunk):
            pending.extend(zip(msg.frame_idx.tolist(), msg.frames))
            if len(pending) >= cfg.model.batch_size:
                submit()
                drain(inflight)  # backpressure: bounded frames in flight per movie
        elif isinstance(msg, ShotEnd):
            shots.append(msg)
        elif isinstance(msg, MovieEnd):
            end = msg
    submit()
    drain(0)
    if end is None:
        return {"status": "failed", "reason": "decoding stopped before the end of the movie"}
    if not shots:
        return {"status": "failed", "reason": "no shots found (no decodable frames?)"}
    light = [ShotEnd(se.shot, se.frame_idx, _NO_THUMB) for se in shots]  # thumbs stay here
    points, seconds["label"] = ray.get(actors[turn % len(actors)].points.remote(
        movie, end, light, feats))  # fmt: skip
    t0 = time.perf_counter()
    write_thumbnails(shots, staging, movie.movie_id, cfg.sample.thumb_width,
                     cfg.sample.thumb_quality)  # fmt: skip
    t1 = time.perf_counter()
    seconds["thumbnails"] = t1 - t0
    url = st.table_url(staging, movie.movie_id)
    # the table last: its existence says the movie (thumbnails included) is staged
    st.write_table(st.shots_table(points, meta, MovieRecord.of_movie(movie, end, len(points))), url)
    seconds["table"] = time.perf_counter() - t1
    add_seconds(seconds, end.seconds)
    return {
        "status": "indexed",
        "table": url,
        "shots": len(points),
        "frames": end.info.n_frames,
        "video_s": end.info.duration_s,
        "images": len(feats),
        "truncated": end.info.truncated,
        "declared_s": end.info.declared_s,
        "seconds": seconds,
        "wall": time.perf_counter() - t_start,
    }


def _crash_once(folder: str, movie_id: str) -> None:
    marker = os.path.join(folder, movie_id)
    if not os.path.exists(marker):
        with open(marker, "w") as f:
            f.write(f"{os.getpid()}\n")
        os._exit(1)  # a worker death, as if the node had killed it


# ------------------------------------------------------------------------------ the driver
@dataclass
class _Driver:
    """The store side of a Ray run, without a model (the actors hold it): the run's config, the
    index meta and vectors the actors reported, and the seconds spent per stage."""

    cfg: IndexConfig
    meta: dict
    dims: list[VectorSpec]
    stage_s: dict[str, float] = field(default_factory=dict)

    def open_store(self) -> ShotStore:
        return open_index_store(self.cfg.store, self.meta, self.dims, self.cfg.sample)


def run_ray(cfg: IndexConfig, paths: list[str], manifest: str | None,
            opts: RayOptions) -> RunSummary:  # fmt: skip
    """Index ``paths`` / ``manifest`` on the Ray cluster ``opts.address`` (see the module)."""
    ray = import_ray()
    t_start = time.perf_counter()
    staging = opts.staging or os.path.join(cfg.store.index_dir, "staging")
    started = _connect(ray, opts.address)
    actors: list = []
    try:
        actors = _start_actors(ray, cfg, opts)
        meta, dims = ray.get(actors[0].describe.remote())
        driver = _Driver(cfg, meta, dims)
        summary = RunSummary(
            model_id=meta["model_id"], random_weights=meta["pretrained"] == "random"
        )
        with indexing_lock(cfg.store.index_dir), driver.open_store() as store:
            todo = plan_movies(cfg, paths, manifest, store, summary)
            cfg.write(os.path.join(cfg.store.index_dir, "config.json"))
            _run_movies(ray, driver, store, todo, actors, staging, opts, summary)
            if summary.count("indexed"):
                t0 = time.perf_counter()
                store.optimize()
                tick(driver.stage_s, "optimize", t0)
        summary.wall_s = time.perf_counter() - t_start
        summary.stage_s = dict(driver.stage_s)
        write_run_log(cfg.store.index_dir, summary)
        return summary
    finally:
        for a in actors:
            with contextlib.suppress(Exception):  # already gone
                ray.kill(a)
        if started:
            ray.shutdown()


def _connect(ray, address: str) -> bool:
    """Connect to (or start) a cluster; True when this call did, so the run disconnects."""
    if ray.is_initialized():
        return False
    try:
        if address == "local":
            ray.init(include_dashboard=False, log_to_driver=False)
        else:
            ray.init(address=None if address == "auto" else address, log_to_driver=False)
    except (ConnectionError, ValueError, RuntimeError) as e:
        raise ConfigError(
            f"cannot connect to the Ray cluster at {address}: {st._one_line(e)} (start one with "
            "`ray start --head`, or use --ray local)"
        ) from e
    return True


def _start_actors(ray, cfg: IndexConfig, opts: RayOptions) -> list:
    gpus = int(ray.cluster_resources().get("GPU", 0))
    use_gpu = gpus > 0 and cfg.model.device != "cpu"
    n = opts.actors or (gpus if use_gpu else 1)
    if n < 1:
        raise ConfigError("--ray-actors must be ≥ 1")
    cls = ray.remote(
        num_cpus=opts.actor_cpus,
        num_gpus=1 if use_gpu else 0,
        max_restarts=3,
        max_task_retries=3,  # a call to an actor that died is retried on its restarted self
    )(EmbedActor)
    return [cls.remote(cfg, "cuda" if use_gpu else "cpu") for _ in range(n)]


def _run_movies(ray, driver: _Driver, store: ShotStore, todo: list[Movie], actors: list,
                staging: str, opts: RayOptions, summary: RunSummary) -> None:  # fmt: skip
    from scenesearch.indexer.progress import Progress

    cfg = driver.cfg
    progress = Progress(len(todo), enabled=cfg.run.progress)
    task_cfg = cfg
    if cfg.decode.thread_count == 0:  # decoder threads = the task's CPUs (no oversubscription)
        decode = dataclasses.replace(cfg.decode, thread_count=max(1, int(opts.task_cpus)))
        task_cfg = dataclasses.replace(cfg, decode=decode)
    task = ray.remote(num_cpus=opts.task_cpus, max_retries=opts.max_retries)(movie_task)
    refs: dict = {}
    for m in todo:
        url = st.table_url(staging, m.movie_id)
        if not cfg.run.force and _staged(url, m, driver.meta):
            _load_staged(driver, store, m, url, summary)
            progress.movie_done(m.title)
            continue
        ref = task.remote(m, task_cfg, actors, staging, driver.meta, opts.inflight,
                          opts.crash_once_dir)  # fmt: skip
        refs[ref] = (m, url)
    while refs:
        ready, _ = ray.wait(list(refs), num_returns=1)
        m, url = refs.pop(ready[0])
        try:
            res = ray.get(ready[0])
        except Exception as e:  # retries used up (worker deaths) or a bug in the task
            res = {"status": "failed", "reason": f"Ray task failed: {_cause(e)}"}
        if res["status"] == "indexed":
            try:
                _load_result(driver, store, m, url, res, summary)
            except InputError as e:  # e.g. a staging folder only the worker's node can see
                res = {"status": "failed", "reason": f"{e} (can every node write --staging?)"}
        if res["status"] == "failed":
            summary.movies.append(
                MovieResult(m.path, "failed", m.movie_id, m.title, reason=res["reason"])
            )
            progress.movie_failed(m.title, res["reason"])
        else:
            progress.movie_done(m.title)
    progress.close()


def _staged(url: str, movie: Movie, meta: dict) -> bool:
    """A staged table of this very content, built with this model, taxonomy and prompt."""
    try:
        if not st.exists(url):
            return False
        _, found, rec = st.read_info(url)
        check_meta(found, meta)
    except (InputError, IndexMismatchError):
        return False  # damaged, or from another model: index the movie again
    return rec.get("fingerprint") == movie.fingerprint


def _load_staged(driver: _Driver, store: ShotStore, m: Movie, url: str, summary: RunSummary):
    t0 = time.perf_counter()
    n = _store_table(driver, store, m, url)
    tick(driver.stage_s, "store", t0)
    summary.movies.append(
        MovieResult(m.path, "indexed", m.movie_id, m.title, n,
                    seconds=time.perf_counter() - t0, reason="loaded from staging")
    )  # fmt: skip


def _load_result(driver: _Driver, store: ShotStore, m: Movie, url: str, res: dict,
                 summary: RunSummary) -> None:  # fmt: skip
    t0 = time.perf_counter()
    n = _store_table(driver, store, m, url)
    tick(driver.stage_s, "store", t0)
    add_seconds(driver.stage_s, res["seconds"])
    summary.frames_decoded += res["frames"]
    summary.images_embedded += res["images"]
    summary.video_s += res["video_s"]
    cut = None
    if res.get("truncated"):  # the same words as the local run's summary
        cut = (
            f"truncated: decoded {res['video_s']:.1f} s of the {res['declared_s']:.1f} s its "
            "container declares (the end of the file is missing); indexed what was readable"
        )
    summary.movies.append(
        MovieResult(m.path, "indexed", m.movie_id, m.title, n, res["frames"], res["wall"], cut,
                    res["truncated"])
    )  # fmt: skip


def _store_table(driver: _Driver, store: ShotStore, m: Movie, url: str) -> int:
    from scenesearch.indexer.transfer import copy_thumbs_in

    table = st.read_table(url)
    # the movie as planned now (path, title, manifest metadata) over what was staged with it
    new = {"path": m.path, "title": m.title, "year": m.year, "genres": tuple(m.genres)}
    record = dataclasses.replace(MovieRecord.from_dict(table.movie), **new)
    shots: list[ShotRecord] = table.shots
    if any(s.path != m.path or s.title != m.title for s in shots):
        shots = [dataclasses.replace(s, **new) for s in shots]
    store_movie(store, record, shots)
    copy_thumbs_in(url, m.movie_id, driver.cfg.store.index_dir)
    return len(shots)


def _cause(e: BaseException) -> str:
    """One line for a Ray error (its own text holds a whole remote traceback)."""
    cause = getattr(e, "cause", None)
    if isinstance(cause, ScenesearchError):
        return str(cause)
    lines = [ln.strip() for ln in str(e).splitlines() if ln.strip()]
    return f"{type(e).__name__}: {lines[-1] if lines else ''}"[:300]
