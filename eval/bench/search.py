"""``scenesearch bench search --points N``: the embedded store (qdrant-edge) on N synthetic shots,
side by side with numpy brute force on the same data and the same queries.

Data: clustered 512-d unit vectors (random ones are a bad HNSW benchmark: in 512 dimensions they
are all about equally far apart, unlike shots, which come in look-alike groups) and realistic
payloads — clean labels drawn from the MovieCLIP taxonomy with a Zipf-like frequency, top-5 labels with scores, 1–3 genres per movie (Zipf), movie ids, titles, years,
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
import subprocess
import sys
import tempfile
import time
from dataclasses import asdict
from pathlib import Path
from typing import Any

import numpy as np

from scenesearch.eval.bench.common import (
    RANDOM_WEIGHTS_NOTE,
    Log,
    ResourceSampler,
    dir_size,
    exclusive_bench,
    machine_info,
    measure,
    now_iso,
    percentiles,
    write_report,
)
from scenesearch.eval.bench.config import SearchBenchConfig
from scenesearch.eval.bench.search_api import concurrency_test
from scenesearch.eval.bench.search_data import (
    GENRES,
    TEXT_QUERIES,
    BruteForce,
    boundary_filter,
    closest,
    generate,
    genre_mask,
    label_mask,
    make_queries,
    other_filters,
    shot_ids,
)
from scenesearch.eval.bench.search_report import evaluate_targets, render_markdown
from scenesearch.eval.bench.stores import bench_store, edge_tuning, reopen_store


# ------------------------------------------------------------------------------ probe process
def probe_main(index_dir: str, queries_path: str) -> None:
    """Run in a fresh process: reopen time, RSS after serving queries (printed as JSON)."""
    import psutil

    rss0 = psutil.Process().memory_info().rss
    t0 = time.perf_counter()
    store = reopen_store(index_dir)
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


# ------------------------------------------------------------------------------ the run
def run_search_bench(bc: SearchBenchConfig) -> dict[str, Any]:
    """Run every phase (holding the benchmark lock: see bench/common.exclusive_bench) and write
    the report; returns the report dict."""
    with exclusive_bench():
        return _run_search_bench(bc)


def _run_search_bench(bc: SearchBenchConfig) -> dict[str, Any]:
    from scenesearch.indexer.catalog import index_meta
    from scenesearch.indexer.config import ModelConfig
    from scenesearch.indexer.encoder import ClipEncoder
    from scenesearch.indexer.labels import SceneLabeler
    from scenesearch.indexer.store import VECTOR_CLIP, VECTOR_SCENES, VectorSpec
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
        tuning = edge_tuning(bc.tuning)
        report["tuning"] = asdict(tuning)
        store = bench_store(index_dir, [VectorSpec(VECTOR_CLIP, dim),
                                        VectorSpec(VECTOR_SCENES, len(labeler.labels))],
                            tuning, index_meta(encoder, labeler))  # fmt: skip
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
                [sys.executable, "-m", "scenesearch.eval.bench.search", "--probe", str(index_dir), str(qpath)],
                cwd=str(Path(__file__).resolve().parents[2]), capture_output=True, text=True,
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
        sid = shot_ids(corpus)
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


if __name__ == "__main__":
    if len(sys.argv) == 4 and sys.argv[1] == "--probe":
        probe_main(sys.argv[2], sys.argv[3])
    else:
        sys.exit("usage: python -m scenesearch.eval.bench.search --probe INDEX_DIR QUERIES.npy")
