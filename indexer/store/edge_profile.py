"""Where the embedded store's ingest time goes (``python -m scenesearch.eval.bench.ingest_profile``):
per-point costs of the qdrant-edge binding's ``Point`` conversion per payload value type, of our
vector conversion, of a whole shot payload, of the engine's ``update`` alone, and whether
applying one chunk while converting the next in another thread helps (it does not when the
engine holds the GIL). It lives with the backend because it times the backend's own steps; the
benchmark only generates the points and prints the figures (docs/benchmarks.md, "Ingest is
bound by the Python binding")."""

from __future__ import annotations

import queue
import threading
import time
from collections.abc import Callable, Sequence
from pathlib import Path

import qdrant_edge as qe

from scenesearch.indexer.store import _translate as tr
from scenesearch.indexer.store.base import CollectionSpec, StorePoint
from scenesearch.indexer.store.edge import EdgeStore, engine_points

CHUNK = 1024  # points per engine update, as EdgeStore.upsert sends them


def _per_call_us(fn: Callable[[int], object], n: int) -> float:
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


def profile_ingest(
    points: Sequence[StorePoint], spec: CollectionSpec, work: Path
) -> dict[str, float]:
    """Time each step of ingesting ``points`` into fresh shards under ``work``: µs per point for
    the vector conversion, vectors + Point, one shot payload alone and the engine's update +
    flush alone; points/s for convert + update in one thread and pipelined over two."""
    n = len(points)
    chunks = [points[i : i + CHUNK] for i in range(0, n, CHUNK)]
    out: dict[str, float] = {}
    t0 = time.perf_counter()
    for ch in chunks:
        tr.vectors_as_lists([p.vectors for p in ch])
    out["vectors_us_per_point"] = (time.perf_counter() - t0) / n * 1e6
    t0 = time.perf_counter()
    batches = [engine_points(ch) for ch in chunks]
    out["convert_us_per_point"] = (time.perf_counter() - t0) / n * 1e6
    payload = points[0].payload
    out["payload_us_per_point"] = _per_call_us(
        lambda i: qe.Point(i, {"clip": [0.0]}, payload), 5000
    )

    def store(name: str) -> EdgeStore:
        s = EdgeStore(str(work / name))
        s.create(spec)
        return s

    def apply(s: EdgeStore, batch) -> None:
        s._shard.update(qe.UpdateOperation.upsert_points(batch))

    s = store("engine")
    t0 = time.perf_counter()
    for b in batches:
        apply(s, b)
    s.flush()
    out["engine_us_per_point"] = (time.perf_counter() - t0) / n * 1e6
    s.close()

    s = store("sequential")
    t0 = time.perf_counter()
    for ch in chunks:
        apply(s, engine_points(ch))
    s.flush()
    out["sequential_points_per_s"] = n / (time.perf_counter() - t0)
    s.close()

    s = store("pipelined")
    q: queue.Queue = queue.Queue(4)

    def applier() -> None:
        while (b := q.get()) is not None:
            apply(s, b)

    t0 = time.perf_counter()
    th = threading.Thread(target=applier)
    th.start()
    for ch in chunks:
        q.put(engine_points(ch))
    q.put(None)
    th.join()
    s.flush()
    out["pipelined_points_per_s"] = n / (time.perf_counter() - t0)
    s.close()
    return out
