"""Where the embedded store's ingest time goes: ``python -m scenesearch.eval.bench.ingest_profile [--points N]``.

Prints per-point costs on this machine (docs/benchmarks.md, "Ingest is bound by the Python
binding"): the qdrant-edge binding's ``Point`` conversion per payload value type, our vector
conversion, a whole shot payload, the engine's ``update`` alone, and whether applying one chunk
while converting the next in another thread helps (it does not when the engine holds the GIL).
The synthetic shots are the search benchmark's (:func:`eval.bench.search_data.generate`).
"""

from __future__ import annotations

import argparse
import queue
import shutil
import tempfile
import threading
import time
from pathlib import Path

import qdrant_edge as qe


def _per_call_us(fn, n: int) -> float:
    t0 = time.perf_counter()
    for i in range(n):
        fn(i)
    return (time.perf_counter() - t0) / n * 1e6


def value_costs(n: int = 5000) -> dict[str, float]:
    """µs to build a Point whose payload is 10 values of one type (one 1-float vector)."""
    vec = {"clip": [0.0]}
    kinds = {
        "bool": True, "None": None, "int": 1, "float": 1.5, "str": "x",
        "empty list": [], "empty dict": {},
    }  # fmt: skip
    return {
        k: _per_call_us(lambda i, v=v: qe.Point(i, vec, {f"k{j}": v for j in range(10)}), n)
        for k, v in kinds.items()
    }


def main(argv: list[str] | None = None) -> None:
    from scenesearch.eval.bench.search_data import generate
    from scenesearch.indexer.labels import load_taxonomy
    from scenesearch.indexer.store import VECTOR_CLIP, VECTOR_SCENES, CollectionSpec, VectorSpec
    from scenesearch.indexer.store import _translate as tr
    from scenesearch.indexer.store.edge import EdgeStore, engine_points

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--points", type=int, default=30_000)
    args = ap.parse_args(argv)
    labels = load_taxonomy().labels

    print("10 payload values of one type per Point (µs per Point):")
    for k, us in value_costs().items():
        print(f"  {k:12s} {us:6.1f}")

    class Collect:  # generate() writes into a store; this one just keeps the points
        def __init__(self) -> None:
            self.points: list = []

        def upsert(self, pts):
            self.points.extend(pts)

        def flush(self):
            pass

    work = Path(tempfile.mkdtemp(prefix="scenesearch-ingest-profile-"))
    try:
        sink = Collect()
        generate(args.points, work, labels, 0, sink, lambda *_: None)
        pts = sink.points
        n = len(pts)
        chunks = [pts[i : i + 1024] for i in range(0, n, 1024)]

        t0 = time.perf_counter()
        for ch in chunks:
            tr.vectors_as_lists([p.vectors for p in ch])
        t_vec = time.perf_counter() - t0
        t0 = time.perf_counter()
        batches = [engine_points(ch) for ch in chunks]
        t_conv = time.perf_counter() - t0
        payload = pts[0].payload
        t_payload = _per_call_us(lambda i: qe.Point(i, {"clip": [0.0]}, payload), 5000)
        print(f"shot payload alone: {t_payload:.1f} µs per Point")
        print(f"vectors to lists: {t_vec / n * 1e6:.1f} µs/point; "
              f"vectors + Point: {t_conv / n * 1e6:.1f} µs/point")  # fmt: skip

        def store(name: str) -> EdgeStore:
            s = EdgeStore(str(work / name))
            s.create(CollectionSpec([VectorSpec(VECTOR_CLIP, 512),
                                     VectorSpec(VECTOR_SCENES, len(labels))]))  # fmt: skip
            return s

        s = store("engine")
        t0 = time.perf_counter()
        for b in batches:
            s._shard.update(qe.UpdateOperation.upsert_points(b))
        s.flush()
        t_eng = time.perf_counter() - t0
        s.close()
        print(f"engine update + flush alone: {t_eng / n * 1e6:.1f} µs/point")

        s = store("sequential")
        t0 = time.perf_counter()
        for ch in chunks:
            s._shard.update(qe.UpdateOperation.upsert_points(engine_points(ch)))
        s.flush()
        t_seq = time.perf_counter() - t0
        s.close()

        s = store("pipelined")
        q: queue.Queue = queue.Queue(4)

        def apply() -> None:
            while (b := q.get()) is not None:
                s._shard.update(qe.UpdateOperation.upsert_points(b))

        t0 = time.perf_counter()
        th = threading.Thread(target=apply)
        th.start()
        for ch in chunks:
            q.put(engine_points(ch))
        q.put(None)
        th.join()
        s.flush()
        t_pipe = time.perf_counter() - t0
        s.close()
        print(
            f"convert + update, one thread: {n / t_seq:,.0f} points/s; "
            f"convert next chunk while a thread applies this one: {n / t_pipe:,.0f} points/s"
        )
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
