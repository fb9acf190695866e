"""Plain mean-vector search on a kept 1 M bench index: p50 / p95 and recall@10 against the
store's own exact search, 100 queries near stored shots (20 untimed first), four filters.

Usage: python plain_recall.py W/index   (W: a `bench search --keep-index` work dir)
"""

import sys
import time

import numpy as np

from scenesearch.indexer.config import StoreConfig
from scenesearch.indexer.store import VECTOR_CLIP, Filter, MatchAny, open_store
from scenesearch.indexer.store.base import SearchParams

st = open_store(StoreConfig(index_dir=sys.argv[1]))
rng = np.random.default_rng(3)
pts = [p for _, p in zip(range(3000), st.iter_points(with_vectors=[VECTOR_CLIP]))]
base = np.stack([p.vectors[VECTOR_CLIP] for p in pts])[rng.choice(len(pts), 100, replace=False)]
qs = base + 0.5 * rng.standard_normal(base.shape).astype(np.float32) / np.sqrt(base.shape[1])
qs /= np.linalg.norm(qs, axis=1, keepdims=True)
cases = {
    "unfiltered": None,
    "genre thriller": Filter(must=(MatchAny("genres", ("thriller",)),)),
    "label studio": Filter(must=(MatchAny("labels", ("studio",)),)),
    "label hotel": Filter(must=(MatchAny("labels", ("hotel",)),)),
}
exact = SearchParams(exact=True)
for name, flt in cases.items():
    ref = [[h.id for h in st.search(q, VECTOR_CLIP, flt, limit=10, params=exact)] for q in qs]
    for q in qs[:20]:
        st.search(q, VECTOR_CLIP, flt, limit=10)
    ms, rec = [], []
    for q, rr in zip(qs, ref):
        t0 = time.perf_counter()
        hits = st.search(q, VECTOR_CLIP, flt, limit=10)
        ms.append((time.perf_counter() - t0) * 1000)
        rec.append(len({h.id for h in hits} & set(rr)) / 10)
    p50, p95 = np.percentile(ms, 50), np.percentile(ms, 95)
    print(f"{name:15s} p50 {p50:6.2f} p95 {p95:6.2f} recall@10 {np.mean(rec):.3f}", flush=True)
