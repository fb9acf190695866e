import sys, time, numpy as np
from scenesearch.indexer.config import StoreConfig
from scenesearch.indexer.store import open_store, Filter, MatchAny, VECTOR_CLIP
from scenesearch.indexer.store.base import SearchParams
st = open_store(StoreConfig(index_dir=sys.argv[1]))
rng = np.random.default_rng(3)
pts = [p for _, p in zip(range(3000), st.iter_points(with_vectors=[VECTOR_CLIP]))]
base = np.stack([p.vectors[VECTOR_CLIP] for p in pts])[rng.choice(len(pts), 100, replace=False)]
qs = base + 0.5 * rng.standard_normal(base.shape).astype(np.float32) / np.sqrt(base.shape[1])
qs /= np.linalg.norm(qs, axis=1, keepdims=True)
cases = {"unfiltered": None, "genre thriller": Filter(must=(MatchAny("genres", ("thriller",)),)), "label studio": Filter(must=(MatchAny("labels", ("studio",)),)), "label hotel": Filter(must=(MatchAny("labels", ("hotel",)),))}
for c, f in cases.items():
    ref = [[h.id for h in st.search(q, VECTOR_CLIP, f, limit=10, params=SearchParams(exact=True))] for q in qs]
    for q in qs[:20]: st.search(q, VECTOR_CLIP, f, limit=10)
    ms, rec = [], []
    for q, rr in zip(qs, ref):
        t0 = time.perf_counter(); h = st.search(q, VECTOR_CLIP, f, limit=10); ms.append((time.perf_counter() - t0) * 1000)
        rec.append(len({x.id for x in h} & set(rr)) / 10)
    print(f"{c:15s} p50 {np.percentile(ms, 50):6.2f} p95 {np.percentile(ms, 95):6.2f} recall@10 {np.mean(rec):.3f}", flush=True)
