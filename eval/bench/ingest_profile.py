"""Where the embedded store's ingest time goes: ``python -m scenesearch.eval.bench.ingest_profile [--points N]``.

Prints per-point costs on this machine (docs/benchmarks.md, "Ingest is bound by the Python
binding"), measured by the store's own profile (:mod:`indexer.store.edge_profile`: the binding's
``Point`` conversion per payload value type, our vector conversion, a whole shot payload, the
engine's ``update`` alone, and convert + update in one thread vs pipelined over two) on the
search benchmark's synthetic shots (:func:`eval.bench.search_data.generate`).
"""

from __future__ import annotations

import argparse
import shutil
import tempfile
from pathlib import Path


def main(argv: list[str] | None = None) -> None:
    from scenesearch.eval.bench.search_data import generate
    from scenesearch.indexer.labels import load_taxonomy
    from scenesearch.indexer.store import VECTOR_CLIP, VECTOR_SCENES, CollectionSpec, VectorSpec
    from scenesearch.indexer.store.edge_profile import profile_ingest, value_costs

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
        spec = CollectionSpec(
            [VectorSpec(VECTOR_CLIP, 512), VectorSpec(VECTOR_SCENES, len(labels))]
        )
        r = profile_ingest(sink.points, spec, work)
        print(f"shot payload alone: {r['payload_us_per_point']:.1f} µs per Point")
        print(f"vectors to lists: {r['vectors_us_per_point']:.1f} µs/point; "
              f"vectors + Point: {r['convert_us_per_point']:.1f} µs/point")  # fmt: skip
        print(f"engine update + flush alone: {r['engine_us_per_point']:.1f} µs/point")
        print(
            f"convert + update, one thread: {r['sequential_points_per_s']:,.0f} points/s; "
            "convert next chunk while a thread applies this one: "
            f"{r['pipelined_points_per_s']:,.0f} points/s"
        )
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
