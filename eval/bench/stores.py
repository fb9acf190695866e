"""The benchmarks' stores: synthetic indexes created and reopened through the store interface
(:func:`indexer.store.open_store`), and a fresh process measuring the memory an index adds."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path


def edge_tuning(name: str):
    """The embedded store's index thresholds for a bench's ``--tuning``: ``default`` (the
    product's), ``bench-small`` (HNSW, and the planner's HNSW + ACORN path for filters, from a
    few thousand points: tiny smoke runs exercise the paths a large index takes) or
    ``mM-efE`` (the product's with HNSW ``m`` = M and ``ef_construct`` = E, e.g. ``m24-ef200``:
    denser graphs measured before they become a default), ``mM-efE-int8`` (the same with an
    int8 copy of the mean vectors that the HNSW walk scores with: ``EdgeTuning.dense_int8``)."""
    from scenesearch.indexer.errors import ConfigError
    from scenesearch.indexer.store.edge import EdgeTuning

    if name == "bench-small":
        return EdgeTuning(indexing_threshold_kb=64, full_scan_threshold_kb=16)
    if name == "default":
        return EdgeTuning()
    m = re.fullmatch(r"m(\d+)-ef(\d+)(-int8)?", name)
    if not m or int(m[1]) < 2 or int(m[2]) < 4:
        raise ConfigError(
            f"unknown tuning {name!r}: default, bench-small or mM-efE[-int8] (e.g. m24-ef200)"
        )
    return EdgeTuning(m=int(m[1]), ef_construct=int(m[2]), dense_int8=bool(m[3]))


def bench_store(index_dir: str | os.PathLike, vectors: list, tuning=None, meta=None):
    """A synthetic benchmark's store, through the store interface (:func:`indexer.store.
    open_store`): the embedded shard at ``index_dir`` with ``tuning`` (:func:`edge_tuning`), its
    collection created with ``vectors`` (VectorSpecs) and ``meta`` set when given."""
    from scenesearch.indexer.config import StoreConfig
    from scenesearch.indexer.store import CollectionSpec, open_store

    store = open_store(StoreConfig(index_dir=str(index_dir)), tuning=tuning)
    store.create(CollectionSpec(list(vectors)))
    if meta is not None:
        store.set_meta(meta)
    return store


def reopen_store(index_dir: str | os.PathLike):
    """An existing benchmark index, opened through the store interface."""
    from scenesearch.indexer.config import StoreConfig
    from scenesearch.indexer.store import open_store

    return open_store(StoreConfig(index_dir=str(index_dir)))


_RAM_PROBE = """
import json, sys, time, numpy as np, psutil
from scenesearch.indexer.config import StoreConfig
from scenesearch.indexer.store import Rescore, open_store
p = psutil.Process()
before = p.memory_info().rss
s = open_store(StoreConfig(index_dir=sys.argv[1]))
opened = p.memory_info().rss
rng = np.random.default_rng(0)
meta = s.get_meta()
rescore = Rescore(meta["frame_vectors"], 256) if meta.get("frame_vectors") else None
for _ in range(50):
    s.search(rng.normal(size=meta["embed_dim"]).astype(np.float32), limit=10, rescore=rescore)
after = p.memory_info().rss
s.close()
print(json.dumps({"open_mib": (opened - before) / 2**20, "after_queries_mib": (after - before) / 2**20}))
"""


def index_memory(index_dir: str) -> dict:
    """Resident memory the opened index adds to a fresh process (after 50 queries)."""
    env = dict(os.environ, PYTHONPATH=str(Path(__file__).resolve().parents[2]))
    r = subprocess.run([sys.executable, "-c", _RAM_PROBE, index_dir], capture_output=True,
                       text=True, env=env, timeout=600, check=True)  # fmt: skip
    return {k: round(v, 1) for k, v in json.loads(r.stdout.strip().splitlines()[-1]).items()}
