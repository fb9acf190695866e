"""``scenesearch bench search --points N``: the embedded store (qdrant-edge) on N synthetic shots,
side by side with numpy brute force on the same data and the same queries.

Data: clustered 512-d unit vectors (random ones are a bad HNSW benchmark: in 512 dimensions they
are all about equally far apart, unlike shots, which come in look-alike groups) and realistic
payloads — clean labels drawn from the MovieCLIP taxonomy with a Zipf-like
frequency, top-5 labels with scores, 1–3 genres per movie (Zipf), movie ids, titles, years,
shot times — generated in chunks (bounded memory) and written to a float32 file for brute force.

Measured: ingest points/s (``upsert`` + ``flush``), index build (``optimize``), reopen time and
RSS of a fresh process serving the index (with a few queries), disk size; p50/p95/p99 latency of
vector search unfiltered, with a narrow label filter (~1 % of shots), a broad genre filter (~20 %)
and grouped by movie (one shot per movie), recall@10 of each against exact brute force and the
count of short result lists; text queries end to end (encode + search + hits) through
:class:`search.SearchEngine`; numpy brute force (float32 matmul) on the same queries. Optionally
the web app's JSON API under concurrent clients on loopback.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np

from scenesearch.eval.bench_common import (
    RANDOM_WEIGHTS_NOTE,
    Log,
    ResourceSampler,
    dir_size,
    exclusive_bench,
    machine_info,
    machine_md,
    md_table,
    measure,
    now_iso,
    percentiles,
    target_rows,
    write_report,
)
from scenesearch.indexer.config import ModelConfig

DIM = 512
CHUNK = 20_000  # points generated / upserted per chunk (bounds memory)
SHOTS_PER_MOVIE = 1000  # ~a feature film's shot count
GENRES = (
    "drama", "comedy", "thriller", "action", "romance", "crime", "horror", "adventure",
    "sci-fi", "fantasy", "mystery", "family", "animation", "biography", "history", "war",
    "music", "western", "sport", "documentary",
)  # fmt: skip
TARGET_P95_MS = 30.0
TARGET_RECALL = 0.95
TARGET_INGEST = 10_000
TARGET_REOPEN_S = 5.0
TARGET_RAM_X = 2.0
TARGET_BRUTE_X = 3.0
TEXT_QUERIES = (
    "a rainy street at night", "two people talking in a kitchen", "a car chase on a highway",
    "a crowded bar", "an empty beach at sunset", "a hospital corridor", "a courtroom",
    "a spaceship cockpit", "a forest in the snow", "a office with computers",
)  # fmt: skip


@dataclass
class SearchBenchConfig:
    """Options of one ``bench search`` run."""

    points: int
    out_dir: str
    queries: int = 200  # queries per measured case
    text_model: str = ModelConfig.name  # the index's model (text queries, the web app)
    pretrained: str = "random"
    text_queries: int = 50  # end-to-end text queries (0: skip)
    concurrency_s: float = 0.0  # web app JSON API load test duration (0: skip)
    clients: int = 8
    work_dir: str | None = None
    keep_index: bool = False
    seed: int = 0
    tuning: str = "default"  # default | bench-small (tiny smoke runs: HNSW from a few points)
    quiet: bool = False


# ------------------------------------------------------------------------------ data
@dataclass
class Corpus:
    """What the generator made: where the vectors are and the facts filters need."""

    vectors_path: str  # float32 [N, DIM], row i = point i
    n: int
    centers: np.ndarray  # [C, DIM] cluster centres (queries are drawn near them)
    label_counts: dict[str, int]
    genre_counts: dict[str, int]
    movie_of: np.ndarray  # int32 [N] movie index of each point
    labels_of: list[tuple[int, ...]]  # clean label indices per point
    genres_of_movie: list[tuple[int, ...]]
    top: np.ndarray  # int16 [N, 5] top-5 label indices per point, best first
    top_score: np.ndarray  # float64 [N, 5] their scores (as stored: rounded to 6 decimals)
    year: np.ndarray  # int32 [N] the point's movie year
    duration: np.ndarray  # float32 [N] shot duration in seconds (as stored: 4 decimals)


def _zipf(n: int, s: float = 1.0) -> np.ndarray:
    p = 1.0 / np.arange(1, n + 1) ** s
    return p / p.sum()


def generate(
    n: int, work: Path, labels: tuple[str, ...], seed: int, store, log, dim: int = DIM
) -> tuple[Corpus, float]:
    """Generate N points in chunks and upsert them; returns (corpus, seconds inside the store)."""
    from scenesearch.indexer.records import make_shot_id, point_id
    from scenesearch.indexer.store import VECTOR_CLIP, VECTOR_SCENES, StorePoint

    rng = np.random.default_rng(seed)
    n_clusters = max(8, n // 200)
    centers = rng.standard_normal((n_clusters, dim)).astype(np.float32)
    centers /= np.linalg.norm(centers, axis=1, keepdims=True)
    n_movies = max(1, n // SHOTS_PER_MOVIE)
    L = len(labels)
    label_order = rng.permutation(L)  # which label is frequent is arbitrary
    label_p = np.zeros(L)
    label_p[label_order] = _zipf(L, 1.0)
    genre_p = _zipf(len(GENRES), 1.1)
    genres_of_movie = []
    for _ in range(n_movies):
        k = int(rng.integers(1, 4))
        genres_of_movie.append(tuple(sorted(rng.choice(len(GENRES), k, replace=False, p=genre_p))))
    years = rng.integers(1930, 2025, n_movies)
    vec_path = str(work / "vectors.f32")
    mm = np.lib.format.open_memmap(vec_path, mode="w+", dtype=np.float32, shape=(n, dim))
    movie_of = np.minimum(np.arange(n) // SHOTS_PER_MOVIE, n_movies - 1).astype(np.int32)
    labels_of: list[tuple[int, ...]] = []
    label_counts = np.zeros(L, np.int64)
    top_all = np.zeros((n, 5), np.int16)
    top_score_all = np.zeros((n, 5), np.float64)
    dur_all = np.zeros(n, np.float32)
    store_s = 0.0
    t_log = time.perf_counter()
    for a in range(0, n, CHUNK):
        b = min(n, a + CHUNK)
        m = b - a
        cl = rng.integers(0, n_clusters, m)
        v = centers[cl] + rng.standard_normal((m, dim)).astype(np.float32) * (0.5 / np.sqrt(dim))
        v /= np.linalg.norm(v, axis=1, keepdims=True)
        mm[a:b] = v
        n_lab = rng.choice(4, m, p=[0.15, 0.35, 0.35, 0.15])  # clean labels per shot: 0..3
        # Top-5 labels drawn without replacement with Zipf weights (Gumbel top-k, vectorised).
        gumbel = np.log(label_p)[None, :] - np.log(-np.log(rng.random((m, L))))
        tops = np.argsort(-gumbel, axis=1)[:, :5]
        scores = -np.sort(-rng.dirichlet(np.ones(5) * 0.7, size=m), axis=1) * 0.9
        top_all[a:b] = tops
        top_score_all[a:b] = np.round(scores, 6)
        points = []
        for j in range(m):
            i = a + j
            top, sc = tops[j], scores[j]
            clean = tuple(int(x) for x in top[: n_lab[j]])
            labels_of.append(clean)
            label_counts[list(clean)] += 1
            mi = int(movie_of[i])
            idx = i - mi * SHOTS_PER_MOVIE
            start = idx * 4.0
            dur = float(rng.uniform(0.6, 8.0))
            dur_all[i] = round(dur, 4)
            scenes = np.zeros(L, np.float32)
            scenes[top] = sc
            sid = make_shot_id(f"m{mi:05d}", idx)
            payload = {
                "shot_id": sid,
                "movie_id": f"m{mi:05d}",
                "path": f"/movies/m{mi:05d}.mp4",
                "title": f"Movie {mi:05d}",
                "year": int(years[mi]),
                "genres": [GENRES[g] for g in genres_of_movie[mi]],
                "shot_index": idx,
                "start_s": start,
                "end_s": round(start + dur, 4),
                "duration_s": round(dur, 4),
                "start_frame": int(start * 24),
                "end_frame": int((start + dur) * 24),
                "fps": 24.0,
                "labels": [labels[x] for x in clean],
                "top_labels": [labels[x] for x in top],
                "top": [
                    {"label": labels[x], "score": round(float(s), 6), "rank": r + 1}
                    for r, (x, s) in enumerate(zip(top, sc))
                ],
                "thumb": f"thumbs/m{mi:05d}/{idx:04d}.jpg",
                "model": "synthetic",
                "n_frames_used": 3,
            }
            points.append(StorePoint(point_id(sid), {VECTOR_CLIP: v[j], VECTOR_SCENES: scenes},
                                     payload))  # fmt: skip
        t0 = time.perf_counter()
        store.upsert(points)
        store_s += time.perf_counter() - t0
        if time.perf_counter() - t_log > 15 or b == n:
            log(
                f"[ingest] {b:,}/{n:,} points ({b / max(store_s, 1e-9):,.0f} points/s in the store)"
            )
            t_log = time.perf_counter()
    t0 = time.perf_counter()
    store.flush()
    store_s += time.perf_counter() - t0
    mm.flush()
    del mm
    gc = np.zeros(len(GENRES), np.int64)
    per_movie = np.bincount(movie_of, minlength=n_movies)
    for mi, gs in enumerate(genres_of_movie):
        for g in gs:
            gc[g] += per_movie[mi]
    corpus = Corpus(
        vec_path, n, centers,
        {labels[i]: int(c) for i, c in enumerate(label_counts)},
        {GENRES[i]: int(c) for i, c in enumerate(gc)},
        movie_of, labels_of, genres_of_movie,
        top_all, top_score_all, years[movie_of].astype(np.int32), dur_all,
    )  # fmt: skip
    return corpus, store_s


def make_queries(corpus: Corpus, q: int, seed: int) -> np.ndarray:
    """Query vectors near random cluster centres (a text query lands near some kind of shot)."""
    rng = np.random.default_rng(seed + 1)
    c = corpus.centers[rng.integers(0, len(corpus.centers), q)]
    v = c + rng.standard_normal(c.shape).astype(np.float32) * (0.6 / np.sqrt(c.shape[1]))
    return (v / np.linalg.norm(v, axis=1, keepdims=True)).astype(np.float32)


def label_mask(corpus: Corpus, i: int) -> np.ndarray:
    """Which points have clean label ``i``."""
    return np.fromiter((i in ls for ls in corpus.labels_of), bool, corpus.n)


def genre_mask(corpus: Corpus, g: int) -> np.ndarray:
    """Which points belong to a movie of genre ``g``."""
    return np.array([g in gs for gs in corpus.genres_of_movie])[corpus.movie_of]


def boundary_filter(corpus: Corpus, labels: tuple[str, ...], thr_points: int):
    """(SearchFilters, mask, fraction, description) of the clean label or genre matching the
    fewest shots above ``thr_points`` (the engine's full-scan threshold), or None."""
    from scenesearch.search import SearchFilters

    above = [(c, "label", k) for k, c in corpus.label_counts.items() if c > thr_points]
    above += [(c, "genre", k) for k, c in corpus.genre_counts.items() if c > thr_points]
    if not above:
        return None
    count, kind, name = min(above)
    if kind == "label":
        mask = label_mask(corpus, labels.index(name))
        sf = SearchFilters(labels_any=(name,))
    else:
        mask = genre_mask(corpus, GENRES.index(name))
        sf = SearchFilters(genres=(name,))
    return sf, mask, count / corpus.n, f"{kind} {name}"


def other_filters(corpus: Corpus, labels: tuple[str, ...]) -> dict[str, tuple]:
    """The filter kinds a user sets beside a clean label or a genre, each as (SearchFilters, mask,
    fraction, description): a label among the top 5 (the app's "top" label mode), a label in the
    top 3 with score ≥ 0.2 (a nested condition on ``top[]``), and a decade + duration range."""
    from scenesearch.search import SearchFilters

    n = corpus.n
    out = {}
    counts = np.bincount(corpus.top.ravel(), minlength=len(labels))
    name, frac = closest({lb: int(c) for lb, c in zip(labels, counts)}, n, 0.05)
    i = labels.index(name)
    out["top_label"] = (SearchFilters(labels_any=(name,), label_source="top"),
                        (corpus.top == i).any(axis=1), frac, f"label {name} among the top 5")  # fmt: skip
    good = corpus.top_score[:, :3] >= 0.2
    counts = np.bincount(corpus.top[:, :3][good], minlength=len(labels))
    name, frac = closest({lb: int(c) for lb, c in zip(labels, counts)}, n, 0.05)
    i = labels.index(name)
    out["top_label_scored"] = (
        SearchFilters(labels_any=(name,), label_source="top", label_top_k=3, label_min_score=0.2),
        ((corpus.top[:, :3] == i) & good).any(axis=1),
        frac,
        f"label {name} in the top 3 with score ≥ 0.2",
    )
    lo = int(np.sort(corpus.year)[n // 2]) // 10 * 10  # the decade of the median shot
    mask = (corpus.year >= lo) & (corpus.year <= lo + 9)
    mask &= (corpus.duration >= 2.0) & (corpus.duration <= 4.0)
    out["year_duration"] = (
        SearchFilters(year_min=lo, year_max=lo + 9, duration_min=2.0, duration_max=4.0),
        mask, float(mask.mean()), f"year {lo}–{lo + 9} and duration 2–4 s",
    )  # fmt: skip
    return out


def closest(counts: dict[str, int], n: int, frac: float) -> tuple[str, float]:
    present = [k for k in counts if counts[k] > 0]  # a filter must name something indexed
    name = min(present, key=lambda k: abs(counts[k] / n - frac))
    return name, counts[name] / n


# ------------------------------------------------------------------------------ brute force
class BruteForce:
    """Exact search with numpy: float32 matmul over all vectors (in RAM), then top-k."""

    def __init__(self, path: str):
        self.v = np.load(path)  # [N, D] float32, in RAM

    def scores(self, q: np.ndarray) -> np.ndarray:
        return self.v @ q

    def top(self, q: np.ndarray, k: int, mask: np.ndarray | None = None) -> np.ndarray:
        s = self.scores(q)
        if mask is not None:
            s = np.where(mask, s, -np.inf)
        k = min(k, int(np.isfinite(s).sum()) if mask is not None else len(s))
        idx = np.argpartition(-s, k - 1)[:k] if k else np.empty(0, np.int64)
        return idx[np.argsort(-s[idx])]

    def top_movies(self, q: np.ndarray, k: int, movie_of: np.ndarray) -> list[int]:
        """Best shot per movie, the k best movies (exact group-by)."""
        s = self.scores(q)
        best = np.full(movie_of.max() + 1, -np.inf, np.float32)
        np.maximum.at(best, movie_of, s)
        return [int(x) for x in np.argsort(-best)[:k]]


# ------------------------------------------------------------------------------ probe process
def probe_main(index_dir: str, queries_path: str) -> None:
    """Run in a fresh process: reopen time, RSS after serving queries (printed as JSON)."""
    import psutil

    from scenesearch.indexer.store.edge import EdgeStore

    rss0 = psutil.Process().memory_info().rss
    t0 = time.perf_counter()
    store = EdgeStore(index_dir)
    reopen = time.perf_counter() - t0
    qs = np.load(queries_path)
    t1 = time.perf_counter()
    store.search(qs[0], limit=10)
    first = time.perf_counter() - t1
    for q in qs:
        store.search(q, limit=10)
    rss = psutil.Process().memory_info().rss
    store.close()
    print(json.dumps({"reopen_s": reopen, "first_query_s": first, "rss_bytes": rss,
                      "rss_before_open_bytes": rss0}))  # fmt: skip


# ------------------------------------------------------------------------------ measurement
def timed(fn, n: int) -> tuple[list[float], list[Any]]:
    ms, out = [], []
    for i in range(n):
        t0 = time.perf_counter()
        out.append(fn(i))
        ms.append((time.perf_counter() - t0) * 1000)
    return ms, out


def recall_at(found: list[str], exact: list[str], k: int = 10) -> float:
    if not exact:
        return 1.0
    return len(set(found[:k]) & set(exact[:k])) / min(k, len(exact))


def group_search(engine, vec: np.ndarray, flt, k: int) -> list:
    """One shot per movie, k movies: the engine's own fetch-and-shape loop with a vector."""
    return engine.nearest(vec, flt, k, per_movie=1)[:k]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def concurrency_test(index_dir: str, seconds: float, clients: int, label: str, genre: str,
                     log) -> dict[str, Any]:  # fmt: skip
    """Serve the index with the web app on loopback and hit its JSON API from ``clients``
    threads for ``seconds`` (a mix of plain, label-filtered and genre-filtered text queries)."""
    import urllib.request

    from gradio_client import Client

    port = free_port()
    env = dict(os.environ, GRADIO_ANALYTICS_ENABLED="False", SCENESEARCH_DEVICE="cpu")
    server_log = open(Path(index_dir).parent / "serve.log", "w")  # noqa: SIM115
    proc = subprocess.Popen(
        [sys.executable, "-m", "scenesearch.ui.cli", "serve", "--index", index_dir, "--host", "127.0.0.1",
         "--port", str(port)],
        cwd=str(Path(__file__).resolve().parents[1]), env=env, stdout=server_log,
        stderr=subprocess.STDOUT,
    )  # fmt: skip
    url = f"http://127.0.0.1:{port}/"
    try:
        t0 = time.perf_counter()
        while True:
            try:
                urllib.request.urlopen(url, timeout=2).read(100)
                break
            except OSError:
                if proc.poll() is not None or time.perf_counter() - t0 > 300:
                    raise RuntimeError(
                        f"the web app did not start (see {server_log.name})"
                    ) from None
                time.sleep(1)
        log(f"[concurrency] app up after {time.perf_counter() - t0:.1f} s; {clients} clients "
            f"for {seconds:g} s")  # fmt: skip
        lat: list[float] = []
        errors: list[str] = []
        counts = [0] * clients
        lock = threading.Lock()
        stop_at = time.perf_counter() + seconds

        def worker(w: int) -> None:
            c = Client(url, verbose=False)
            i = 0
            while time.perf_counter() < stop_at:
                q = TEXT_QUERIES[(w + i) % len(TEXT_QUERIES)]
                labs = [label] if i % 3 == 1 else []
                gens = [genre] if i % 3 == 2 else []
                t = time.perf_counter()
                try:
                    hits = c.predict(q, labs, gens, [], "", "", 10, None, "", "clean",
                                     api_name="/search")  # fmt: skip
                    ok = isinstance(hits, list) and len(hits) == 10
                    err = None if ok else f"short result list ({len(hits)})"
                except Exception as e:  # counted, never raised: the test reports errors
                    err = f"{type(e).__name__}: {str(e)[:120]}"
                dt = (time.perf_counter() - t) * 1000
                with lock:
                    if err:
                        errors.append(err)
                    else:
                        lat.append(dt)
                        counts[w] += 1
                i += 1

        threads = [threading.Thread(target=worker, args=(w,)) for w in range(clients)]
        t1 = time.perf_counter()
        for t in threads:
            t.start()
        for t in threads:
            t.join(timeout=seconds + 120)
        wall = time.perf_counter() - t1
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            proc.kill()
        server_log.close()
    return {
        "clients": clients,
        "seconds": round(wall, 1),
        "requests_ok": len(lat),
        "errors": len(errors),
        "error_examples": sorted(set(errors))[:5],
        "throughput_qps": round(len(lat) / wall, 2) if wall else 0.0,
        "latency": percentiles(lat),
        "mix": "text queries via gradio_client /search; 1/3 plain, 1/3 narrow label filter, "
        "1/3 broad genre filter; k=10",
    }


# ------------------------------------------------------------------------------ the run
def run_search_bench(bc: SearchBenchConfig) -> dict[str, Any]:
    """Run every phase (holding the benchmark lock: see bench_common.exclusive_bench) and write
    the report; returns the report dict."""
    with exclusive_bench():
        return _run_search_bench(bc)


def _run_search_bench(bc: SearchBenchConfig) -> dict[str, Any]:
    from scenesearch.indexer.catalog import index_meta
    from scenesearch.indexer.config import ModelConfig
    from scenesearch.indexer.encoder import ClipEncoder
    from scenesearch.indexer.labels import SceneLabeler
    from scenesearch.indexer.store import VECTOR_CLIP, VECTOR_SCENES, CollectionSpec, VectorSpec
    from scenesearch.indexer.store.edge import EdgeStore, EdgeTuning
    from scenesearch.search import SearchEngine, SearchFilters

    log = Log(bc.out_dir, bc.quiet)
    work = Path(bc.work_dir or tempfile.mkdtemp(prefix="scenesearch-bench-search-"))
    work.mkdir(parents=True, exist_ok=True)
    index_dir = work / "index"
    shutil.rmtree(index_dir, ignore_errors=True)
    sampler = ResourceSampler().start()
    n = bc.points
    report: dict[str, Any] = {
        "kind": "bench-search",
        "created": now_iso(),
        "command": "scenesearch bench search " + " ".join(sys.argv[3:]),
        "machine": machine_info(),
        "config": asdict(bc),
        "random_weights": bc.pretrained == "random",
        "note": (RANDOM_WEIGHTS_NOTE + " (only the text-query encoder uses the model here)")
        if bc.pretrained == "random" else None,
    }  # fmt: skip
    try:
        with measure("model", sampler, log) as ph:
            encoder = ClipEncoder(ModelConfig(bc.text_model, bc.pretrained, "cpu"))
            labeler = SceneLabeler(encoder, cache_dir=str(work / "label-cache"))
        dim = encoder.spec.embed_dim  # 512 for ViT-B-32 (the tiny test model: 32)
        tuning = EdgeTuning()
        if bc.tuning == "bench-small":
            # HNSW (and the planner's HNSW + ACORN path for filters) from a few thousand points
            tuning = EdgeTuning(indexing_threshold_kb=64, full_scan_threshold_kb=16)
        report["tuning"] = asdict(tuning)
        store = EdgeStore(str(index_dir), tuning=tuning)
        store.create(CollectionSpec([VectorSpec(VECTOR_CLIP, dim),
                                     VectorSpec(VECTOR_SCENES, len(labeler.labels))]))  # fmt: skip
        store.set_meta(index_meta(encoder, labeler))
        with measure("ingest", sampler, log) as ph:
            corpus, store_s = generate(n, work, labeler.labels, bc.seed, store, log, dim)
        report["ingest"] = {
            "points": n,
            "store_s": round(store_s, 2),
            "points_per_s": round(n / store_s, 1),
            "what": "upsert + flush seconds inside the store (payload/vector generation excluded)",
            **ph.to_dict(),
        }
        with measure("build", sampler, log) as ph:
            store.optimize()
        report["build"] = {"what": "optimize(): HNSW graph + payload indexes", **ph.to_dict()}
        store.close()
        # Write the new segments back to disk before timing anything: otherwise the kernel's
        # writeback of the just-built index (GBs at 1 M) stalls the page faults of the reopen
        # and of the first searches (seen at 1 M: phases with 7× more wall than CPU time).
        os.sync()
        report["disk"] = {
            "index_mib": round(dir_size(index_dir) / 2**20, 1),
            "raw_vectors_mib": round(n * dim * 4 / 2**20, 1),
        }
        queries = make_queries(corpus, bc.queries, bc.seed)
        qpath = work / "queries.npy"
        np.save(qpath, queries)
        with measure("reopen", None, log):
            out = subprocess.run(
                [sys.executable, "-m", "scenesearch.eval.bench_search", "--probe", str(index_dir), str(qpath)],
                cwd=str(Path(__file__).resolve().parents[1]), capture_output=True, text=True,
            )  # fmt: skip
        if out.returncode != 0:
            raise RuntimeError(f"probe process failed: {out.stderr.strip()[-500:]}")
        probe = json.loads(out.stdout.strip().splitlines()[-1])
        raw = n * dim * 4
        report["reopen"] = {
            "reopen_s": round(probe["reopen_s"], 3),
            "first_query_ms": round(probe["first_query_s"] * 1000, 2),
            "rss_mib": round(probe["rss_bytes"] / 2**20, 1),
            "rss_before_open_mib": round(probe["rss_before_open_bytes"] / 2**20, 1),
            "store_ram_mib": round((probe["rss_bytes"] - probe["rss_before_open_bytes"]) / 2**20, 1),
            "ram_x_raw_vectors": round((probe["rss_bytes"] - probe["rss_before_open_bytes"]) / raw, 3),
            "what": "a fresh Python process: open the index, run the queries, read its RSS "
            "(store RAM = RSS after minus RSS before opening)",
        }  # fmt: skip
        log(f"[reopen] {report['reopen']['reopen_s']} s, store RAM "
            f"{report['reopen']['store_ram_mib']} MiB")  # fmt: skip

        # ---- queries through the store and the engine
        narrow_label, narrow_frac = closest(corpus.label_counts, n, 0.01)
        broad_genre, broad_frac = closest(corpus.genre_counts, n, 0.20)
        narrow_mask = label_mask(corpus, labeler.labels.index(narrow_label))
        broad_mask = genre_mask(corpus, GENRES.index(broad_genre))
        # The hardest filters for the engine are those just above its full-scan threshold: the
        # planner walks the HNSW graph (with ACORN) instead of scanning the matches exactly, and
        # the fewer shots pass the filter, the more of the graph's paths it cuts. The least
        # frequent label or genre that is still above the threshold is that case.
        thr_points = tuning.full_scan_threshold_kb * 1024 // (dim * 4)
        edge_case = boundary_filter(corpus, labeler.labels, thr_points)
        engine = SearchEngine.open(_store_cfg(index_dir), device="cpu", encoder=encoder)
        try:
            filters = {
                "unfiltered": (None, None, 1.0),
                "narrow_label": (SearchFilters(labels_any=(narrow_label,)), narrow_mask,
                                 narrow_frac),
                "broad_genre": (SearchFilters(genres=(broad_genre,)), broad_mask, broad_frac),
            }  # fmt: skip
            if edge_case is not None:
                filters["above_full_scan"] = edge_case[:3]
            more = other_filters(corpus, labeler.labels)
            filters.update({k: v[:3] for k, v in more.items()})
            cases: dict[str, Any] = {}
            found: dict[str, list[list[str]]] = {}
            store_counts: dict[str, int] = {}
            for name, (sf, _mask, frac) in filters.items():
                flt = engine.build_filter(sf) if sf else None
                engine.nearest(queries[0], flt, 10)  # warm
                with measure(f"search_{name}", sampler, log):
                    ms, res = timed(lambda i, f=flt: engine.nearest(queries[i], f, 10)[:10],
                                    len(queries))  # fmt: skip
                found[name] = [[r.payload["shot_id"] for r in rs] for rs in res]
                cases[name] = {"selectivity": round(frac, 4), **percentiles(ms)}
                # the store's own count of the filter's matches, checked against numpy's mask
                store_counts[name] = engine.store.count(flt)
            with measure("search_group_by_movie", sampler, log):
                ms, gres = timed(lambda i: group_search(engine, queries[i], None, 10),
                                 len(queries))  # fmt: skip
            cases["group_by_movie"] = {"selectivity": 1.0, **percentiles(ms),
                                       "what": "one shot per movie, 10 movies"}  # fmt: skip
            if bc.text_queries:
                tq = [TEXT_QUERIES[i % len(TEXT_QUERIES)] + ("" if i < len(TEXT_QUERIES)
                      else f" #{i}") for i in range(bc.text_queries)]  # fmt: skip
                engine.search(text=tq[0], limit=10)  # warm
                for name, sf in (("text_unfiltered", None),
                                 ("text_narrow_label", filters["narrow_label"][0])):  # fmt: skip
                    ms, _ = timed(lambda i, f=sf: engine.search(text=tq[i], filters=f, limit=10),
                                  len(tq))  # fmt: skip
                    cases[name] = {"what": "encode text + search + hit assembly (SearchEngine)",
                                   **percentiles(ms)}  # fmt: skip
                    log(f"[{name}] p95 {cases[name]['p95_ms']} ms")
        finally:
            engine.close()

        # ---- brute force on the same data and queries
        with measure("brute_force_load", sampler, log):
            bf = BruteForce(corpus.vectors_path)
        sid = _shot_ids(corpus)
        recall: dict[str, Any] = {}
        for name, (_sf, mask, _frac) in filters.items():
            exact_ms, exact = timed(lambda i, m=mask: bf.top(queries[i], 10, m), len(queries))
            rs = [
                recall_at(found[name][i], [sid(j) for j in exact[i]]) for i in range(len(queries))
            ]
            n_match = n if mask is None else int(mask.sum())
            short = sum(len(f) < min(10, n_match) for f in found[name])
            recall[name] = {
                "recall_at_10": round(float(np.mean(rs)), 4),
                "recall_min": round(float(np.min(rs)), 3),
                "short_lists": short,
                "matching_shots": n_match,
                "store_matching_shots": store_counts[name],
            }
            if store_counts[name] != n_match:  # the brute-force reference would be wrong
                raise RuntimeError(f"{name}: the store counts {store_counts[name]} matching "
                                   f"shots, the bench's mask {n_match}")  # fmt: skip
            cases[name]["brute_force"] = percentiles(exact_ms)
            log(f"[{name}] ours p95 {cases[name]['p95_ms']} ms, numpy p95 "
                f"{cases[name]['brute_force']['p95_ms']} ms, recall@10 "
                f"{recall[name]['recall_at_10']}")  # fmt: skip
        movie_ms, exact_movies = timed(lambda i: bf.top_movies(queries[i], 10, corpus.movie_of),
                                       len(queries))  # fmt: skip
        rs = []
        for i, recs in enumerate(gres):
            got = [r.payload["movie_id"] for r in recs]
            rs.append(recall_at(got, [f"m{m:05d}" for m in exact_movies[i]]))
        n_movies = int(corpus.movie_of.max()) + 1
        recall["group_by_movie"] = {
            "recall_at_10": round(float(np.mean(rs)), 4),
            "recall_min": round(float(np.min(rs)), 3),
            "short_lists": sum(len(g) < min(10, n_movies) for g in gres),
            "matching_shots": n,
            "what": "movies of the 10 best groups vs exact best-shot-per-movie ranking",
        }
        cases["group_by_movie"]["brute_force"] = percentiles(movie_ms)
        bf = None  # free the matrix before the concurrency test
        report["filters"] = {
            "narrow_label": {"label": narrow_label, "fraction": round(narrow_frac, 4)},
            "broad_genre": {"genre": broad_genre, "fraction": round(broad_frac, 4)},
            "above_full_scan": {
                "full_scan_threshold_points": int(thr_points),
                **({"filter": edge_case[3], "fraction": round(edge_case[2], 4)} if edge_case
                   else {"note": "no label or genre matches more shots than the threshold"}),
            },
            **{k: {"filter": v[3], "fraction": round(v[2], 4)} for k, v in more.items()},
        }  # fmt: skip
        report["latency"] = cases
        report["recall"] = recall
        if bc.concurrency_s > 0:
            report["concurrency"] = concurrency_test(
                str(index_dir), bc.concurrency_s, bc.clients, narrow_label, broad_genre, log
            )
            c = report["concurrency"]
            log(f"[concurrency] {c['throughput_qps']} q/s, p95 {c['latency'].get('p95_ms')} ms, "
                f"{c['errors']} errors")  # fmt: skip
        report["targets"] = evaluate_targets(report, n)
    finally:
        sampler.stop()
        if not bc.keep_index:
            shutil.rmtree(work if not bc.work_dir else index_dir, ignore_errors=True)
            for f in ("vectors.f32", "queries.npy"):
                with_suppress_unlink(work / f)
    write_report(bc.out_dir, report, render_markdown(report))
    log(f"report written to {bc.out_dir}")
    return report


def with_suppress_unlink(p: Path) -> None:
    with contextlib.suppress(OSError):
        p.unlink()


def _store_cfg(index_dir: Path):
    from scenesearch.indexer.config import StoreConfig

    return StoreConfig(index_dir=str(index_dir))


def _shot_ids(corpus: Corpus):
    def sid(i: int) -> str:
        from scenesearch.indexer.records import make_shot_id

        mi = int(corpus.movie_of[i])
        return make_shot_id(f"m{mi:05d}", i - mi * SHOTS_PER_MOVIE)

    return sid


def evaluate_targets(r: dict[str, Any], n: int) -> list[dict[str, Any]]:
    lat, rec = r["latency"], r["recall"]
    scale = f" (at {n:,} points; the targets are set for 1,000,000)" if n != 1_000_000 else ""
    t = []
    for name in ("unfiltered", "narrow_label", "broad_genre", "above_full_scan", "top_label",
                 "top_label_scored", "year_duration", "group_by_movie"):  # fmt: skip
        if name not in lat:
            continue
        t.append({
            "target": f"vector search p95 ≤ {TARGET_P95_MS:g} ms, recall@10 ≥ {TARGET_RECALL}, "
                      f"no short lists: {name}{scale}",
            "measured": f"p95 {lat[name]['p95_ms']} ms, recall@10 {rec[name]['recall_at_10']}, "
                        f"{rec[name]['short_lists']} short lists",
            "met": lat[name]["p95_ms"] <= TARGET_P95_MS
            and rec[name]["recall_at_10"] >= TARGET_RECALL and rec[name]["short_lists"] == 0,
        })  # fmt: skip
    ing = r["ingest"]["points_per_s"]
    t.append({"target": f"ingest ≥ {TARGET_INGEST:,} points/s", "measured": f"{ing:,.0f} points/s",
              "met": ing >= TARGET_INGEST})  # fmt: skip
    ro = r["reopen"]
    t.append({"target": f"reopen ≤ {TARGET_REOPEN_S:g} s", "measured": f"{ro['reopen_s']} s",
              "met": ro["reopen_s"] <= TARGET_REOPEN_S})  # fmt: skip
    t.append({"target": f"store RAM ≤ {TARGET_RAM_X:g}× the raw float32 vectors",
              "measured": f"{ro['ram_x_raw_vectors']}× ({ro['store_ram_mib']} MiB)",
              "met": ro["ram_x_raw_vectors"] <= TARGET_RAM_X})  # fmt: skip
    ratios = {k: lat[k]["brute_force"]["p95_ms"] / lat[k]["p95_ms"]
              for k in ("unfiltered", "narrow_label", "broad_genre", "above_full_scan",
                        "top_label", "top_label_scored", "year_duration")
              if k in lat and lat[k]["p95_ms"]}  # fmt: skip
    worst = min(ratios.values())
    t.append({"target": f"p95 ≥ {TARGET_BRUTE_X:g}× better than numpy brute force{scale}",
              "measured": ", ".join(f"{k} {v:.1f}×" for k, v in ratios.items()),
              "met": worst >= TARGET_BRUTE_X})  # fmt: skip
    c = r.get("concurrency")
    if c:
        t.append({"target": f"web app JSON API, {c['clients']} concurrent clients: zero errors",
                  "measured": f"{c['errors']} errors, {c['throughput_qps']} q/s, "
                              f"p95 {c['latency'].get('p95_ms')} ms",
                  "met": c["errors"] == 0 and c["requests_ok"] > 0})  # fmt: skip
    return t


def render_markdown(r: dict[str, Any]) -> str:
    n = r["config"]["points"]
    lines = [
        f"# Search benchmark — {n:,} synthetic shots",
        "",
        f"Created {r['created']} with `{r['command']}`.",
        "",
    ]
    if r.get("note"):
        lines += [f"**{r['note']}**", ""]
    lines += [machine_md(r["machine"]), ""]
    if r.get("targets"):
        lines += ["## Targets", "", md_table(["target", "measured", "", "note"],
                                             target_rows(r["targets"])), ""]  # fmt: skip
    f = r["filters"]
    lines += [
        "## Latency (ms, one query at a time, k = 10)",
        "",
        f"Narrow filter: clean label `{f['narrow_label']['label']}` "
        f"({f['narrow_label']['fraction']:.2%} of shots); broad filter: genre "
        f"`{f['broad_genre']['genre']}` ({f['broad_genre']['fraction']:.1%}).",
        "",
    ]
    fs = f.get("above_full_scan")
    if fs and fs.get("filter"):
        lines += [
            f"Above the full-scan threshold: {fs['filter']} ({fs['fraction']:.1%} of shots), the "
            f"filter matching the fewest shots above the engine's full-scan threshold "
            f"({fs['full_scan_threshold_points']:,} points): the planner's hardest case, "
            "searched through HNSW + ACORN rather than an exact scan of the matches.",
            "",
        ]
    more = [(k, f[k]) for k in ("top_label", "top_label_scored", "year_duration") if k in f]
    if more:
        lines += ["Other filter kinds: " + "; ".join(
            f"`{k}`: {v['filter']} ({v['fraction']:.1%})" for k, v in more) + ".", ""]  # fmt: skip
    rows = []
    for name, c in r["latency"].items():
        bf = c.get("brute_force") or {}
        rec = r["recall"].get(name, {})
        rows.append([name, c.get("p50_ms"), c.get("p95_ms"), c.get("p99_ms"),
                     rec.get("recall_at_10"), rec.get("short_lists"), bf.get("p50_ms"),
                     bf.get("p95_ms"),
                     round(bf["p95_ms"] / c["p95_ms"], 1) if bf and c.get("p95_ms") else None])  # fmt: skip
    lines += [
        md_table(
            [
                "case",
                "p50",
                "p95",
                "p99",
                "recall@10",
                "short lists",
                "numpy p50",
                "numpy p95",
                "numpy p95 / ours",
            ],
            rows,
        ),  # fmt: skip
        "",
        "Vector-search cases are the engine's search for a query vector (`SearchEngine.nearest`: "
        "the store's HNSW with ef 192, or ef 128 + ACORN under a filter; filters matching fewer "
        "shots than the full-scan threshold are scanned exactly), without hit assembly; "
        "group-by-movie is the engine's fetch-and-shape loop (one shot per movie); "
        "text cases are `SearchEngine.search(text=...)` end to end. numpy: float32 matmul over "
        "all vectors + argpartition (filters as a mask), same queries.",
        "",
    ]
    ing, b, ro, d = r["ingest"], r["build"], r["reopen"], r["disk"]
    lines += [
        "## Ingest, build, reopen, memory, disk",
        "",
        md_table(
            ["what", "figure"],
            [
                [
                    "ingest (upsert + flush)",
                    f"{ing['points_per_s']:,.0f} points/s ({ing['store_s']} s in the store)",
                ],
                ["index build (optimize)", f"{b['wall_s']} s"],
                [
                    "reopen (fresh process)",
                    f"{ro['reopen_s']} s; first query {ro['first_query_ms']} ms",
                ],
                [
                    "store RAM (fresh process)",
                    f"{ro['store_ram_mib']} MiB = {ro['ram_x_raw_vectors']}× "
                    f"the raw float32 vectors ({d['raw_vectors_mib']} MiB)",
                ],
                [
                    "peak RSS while building",
                    f"{b['peak_rss_mib']} MiB (includes the bench's own data)",
                ],
                ["disk", f"{d['index_mib']} MiB"],
            ],
        ),  # fmt: skip
        "",
    ]
    c = r.get("concurrency")
    if c:
        lat = c["latency"]
        lines += [
            "## Web app JSON API under concurrent clients (loopback)",
            "",
            md_table(
                ["clients", "seconds", "requests", "errors", "q/s", "p50", "p95", "p99"],
                [
                    [
                        c["clients"],
                        c["seconds"],
                        c["requests_ok"],
                        c["errors"],
                        c["throughput_qps"],
                        lat.get("p50_ms"),
                        lat.get("p95_ms"),
                        lat.get("p99_ms"),
                    ]
                ],
            ),  # fmt: skip
            "",
            c["mix"] + ".",
            "",
        ]
    return "\n".join(lines)


if __name__ == "__main__":
    if len(sys.argv) == 4 and sys.argv[1] == "--probe":
        probe_main(sys.argv[2], sys.argv[3])
    else:
        sys.exit("usage: python -m scenesearch.eval.bench_search --probe INDEX_DIR QUERIES.npy")
