"""Where the 1 M frame bench loses recall: run on the index `bench search --points 1000000
--frame-vectors --work-dir W` left in W (argument 1). Regenerates nothing: reads W/frames.npy and
replays only the generator's first draws (centres, shot lengths → frame counts) to know which
rows belong to which shot. Prints (1) recall@10 of the exact best-frame top 10 when the prefetch
is the EXACT mean-vector top P (numpy), (2) the store's HNSW recall of the exact mean-vector top
256 at several ef (and of its top 10), (3) the engine path (prefetch 256, MAX_SIM, match times)
at several prefetch ef. Queries: 60 near random cluster centres (seed 7) after 40 warm-up ones."""

import sys
import time

import numpy as np

from scenesearch.eval.bench.search_data import near_centres
from scenesearch.eval.bench.search_frames import FPS, best_frame_scores
from scenesearch.indexer.config import SampleConfig, StoreConfig
from scenesearch.indexer.records import point_id
from scenesearch.indexer.sampling import sample_targets
from scenesearch.indexer.store.base import SearchParams
from scenesearch.search import SearchEngine

W, n, DIM = sys.argv[1], 1_000_000, 512
rng = np.random.default_rng(0)  # the bench's seed: its first draws are the centres and lengths
C = rng.standard_normal((max(8, n // 200), DIM)).astype(np.float32)
C /= np.linalg.norm(C, axis=1, keepdims=True)
dur = np.clip(rng.lognormal(np.log(3.3), 0.8, n), 0.6, 60.0)
sc = SampleConfig()
counts = np.array([len(sample_targets(0, max(1, round(d * FPS)), float(d), 3, sc)) for d in dur])
frames = np.load(f"{W}/frames.npy", mmap_mode="r")
assert counts.sum() == len(frames)
qr = np.random.default_rng(7)
qs = near_centres(C, qr.integers(0, len(C), 60), qr)
wq = near_centres(C, qr.integers(0, len(C), 40), qr)
best = best_frame_scores(frames, counts, qs)
ends = np.cumsum(counts)
starts = ends - counts
M = np.empty((n, DIM), np.float32)
for a in range(0, n, 100_000):
    b = min(n, a + 100_000)
    M[a:b] = np.add.reduceat(
        np.asarray(frames[starts[a] : ends[b - 1]]), starts[a:b] - starts[a], 0
    )
M /= np.linalg.norm(M, axis=1, keepdims=True)
ms = M @ qs.T
exact10 = [np.argsort(-best[:, j])[:10] for j in range(len(qs))]
for P in (64, 128, 256, 1024):
    rec = []
    for j in range(len(qs)):
        cand = np.argpartition(-ms[:, j], P)[:P]
        got = cand[np.argsort(-best[cand, j])[:10]]
        rec.append(len(set(exact10[j]) & set(got)) / 10)
    print(f"(1) exact mean top {P} rescored: recall@10 {np.mean(rec):.3f}", flush=True)

ids = np.array([point_id(f"m{i // 1000:05d}:{i % 1000:04d}") for i in range(n)])
pos = {x: i for i, x in enumerate(ids)}
eng = SearchEngine.open(StoreConfig(index_dir=f"{W}/index"), load_model=False)
for ef in (256, 1024, 4096):
    p, rec, rec10 = SearchParams(hnsw_ef=ef), [], []
    for j, q in enumerate(qs[:30]):
        got = [pos[h.id] for h in eng.nearest(q, None, 256, params=p, frames=False)[:256]]
        ex = np.argsort(-ms[:, j])[:256]
        rec.append(len(set(ex) & set(got)) / 256)
        rec10.append(len(set(ex[:10]) & set(got[:10])) / 10)
    print(
        f"(2) HNSW ef {ef}: recall of the exact mean top 256 {np.mean(rec):.3f}, "
        f"of its top 10 {np.mean(rec10):.3f}",
        flush=True,
    )
eng.frame_candidates = 256
for ef in (None, 512, 1024):
    p = SearchParams(hnsw_ef=ef)
    for q in wq:
        eng.match_times(q, eng.nearest(q, None, 10, params=p)[:10])
    lat, rec = [], []
    for j, q in enumerate(qs):
        t0 = time.perf_counter()
        hits = eng.nearest(q, None, 10, params=p)[:10]
        eng.match_times(q, hits)
        lat.append((time.perf_counter() - t0) * 1000)
        rec.append(len({pos[h.id] for h in hits} & set(exact10[j])) / 10)
    print(
        f"(3) engine, prefetch 256, ef {ef or 'product default'}: recall@10 "
        f"{np.mean(rec):.3f}, p50 {np.percentile(lat, 50):.1f} ms, p95 "
        f"{np.percentile(lat, 95):.1f} ms",
        flush=True,
    )
