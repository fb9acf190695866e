"""``scenesearch load`` / ``export`` (Parquet shot tables in and out of any index), and the
options ``index`` takes for Ray (``--ray``, ``--staging``) and Qdrant clusters."""

from __future__ import annotations

import argparse
import json

from scenesearch.ui.common import add_index_args, store_config_from_args


def add_cluster_args(p: argparse.ArgumentParser) -> None:
    """Collection layout on a Qdrant cluster (used when the collection is created)."""
    g = p.add_argument_group("Qdrant cluster (with --qdrant-url; applied when the collection "
                             "is created)")  # fmt: skip
    g.add_argument("--shard-number", type=int, metavar="N",
                   help="shards of the collection: a multiple of the node count (self-hosted "
                   "Qdrant does not rebalance shards by itself)")  # fmt: skip
    g.add_argument("--replication-factor", type=int, metavar="N",
                   help="copies of each shard (fixed at creation)")  # fmt: skip
    g.add_argument("--write-consistency-factor", type=int, metavar="N",
                   help="replicas that must apply a write before it is acknowledged")  # fmt: skip


def add_ray_args(p: argparse.ArgumentParser) -> None:
    """``index --ray [ADDRESS]`` and how the run uses the cluster."""
    g = p.add_argument_group("Ray cluster (pip install 'scenesearch[ray]')")
    g.add_argument(
        "--ray", nargs="?", const="auto", metavar="ADDRESS|auto|local",
        help="index on a Ray cluster: auto (default: RAY_ADDRESS or the cluster started on this "
        "machine, else a new local one), local (a new local one) or HOST:PORT",
    )  # fmt: skip
    g.add_argument("--staging", metavar="URL",
                   help="folder or fsspec URL (s3://, gs://...) for shot tables and thumbnails, "
                   "writable by every node (default INDEX/staging)")  # fmt: skip
    g.add_argument(
        "--ray-actors",
        type=int,
        default=0,
        metavar="N",
        help="embedding actors (default: one per GPU in the cluster, else 1)",
    )
    g.add_argument("--ray-actor-cpus", type=float, default=1.0, metavar="N",
                   help="CPUs per embedding actor (default 1)")  # fmt: skip
    g.add_argument("--ray-task-cpus", type=float, default=1.0, metavar="N",
                   help="CPUs per movie task (decoder threads; default 1)")  # fmt: skip


def ray_options(args):
    from scenesearch.indexer.ray_index import RayOptions

    return RayOptions(address=args.ray, staging=args.staging or "", actors=args.ray_actors,
                      actor_cpus=args.ray_actor_cpus, task_cpus=args.ray_task_cpus)  # fmt: skip


# ------------------------------------------------------------------------------ load / export
def cmd_load(args) -> int:
    from scenesearch.indexer.transfer import load_tables

    cfg = store_config_from_args(args)

    def said(table) -> None:
        if not args.json:
            print(f"loaded {table.movie_id} {table.movie.get('title')}: {len(table.points)} shots")

    res = load_tables(cfg, args.tables, progress=said)
    return _said(args, res, f"index: {cfg.qdrant_url or cfg.index_dir}: {res.movies} movies, "
                 f"{res.points} shots")  # fmt: skip


def cmd_export(args) -> int:
    from scenesearch.indexer.catalog import indexing_lock
    from scenesearch.indexer.store import open_store
    from scenesearch.indexer.transfer import export_index

    cfg = store_config_from_args(args)
    with indexing_lock(cfg.index_dir), open_store(cfg) as store:
        res = export_index(store, cfg.index_dir, args.out, args.format, thumbs=not args.no_thumbs)
    return _said(args, res, f"exported {res.movies} movies, {res.points} shots ({args.format}) "
                 f"to {args.out}", out=args.out)  # fmt: skip


def _said(args, res, what: str, **extra) -> int:
    """Print a load or export result: one JSON object (``--json``) or ``what`` with its speed."""
    if args.json:
        print(json.dumps({"movies": res.movies, "points": res.points, "thumbs": res.thumbs,
                          **extra, "seconds": round(res.seconds, 3),
                          "points_per_s": round(res.points_per_s, 1)}))  # fmt: skip
    else:
        print(f"{what} in {res.seconds:.1f} s ({res.points_per_s:.0f} points/s)")
    return 0


def register(sub) -> None:
    """Add ``load`` and ``export`` to the ``scenesearch`` parser."""
    pl = sub.add_parser("load", help="write Parquet shot tables into an index (idempotent)")
    pl.add_argument(
        "tables",
        nargs="+",
        metavar="TABLE",
        help="shot tables: files, folders or globs; local paths or fsspec URLs",
    )
    add_index_args(pl)
    add_cluster_args(pl)
    pl.add_argument("--json", action="store_true", help="print a JSON summary")
    pl.set_defaults(func=cmd_load)

    pe = sub.add_parser("export", help="write an index out as shot tables (or npy embeddings)")
    pe.add_argument("--out", required=True, metavar="DIR|URL", help="folder or fsspec URL")
    pe.add_argument("--format", choices=["parquet", "npy"], default="parquet",
                    help="parquet: one shot table per movie (loadable); npy: clip-retrieval "
                    "style img_emb/*.npy + metadata/*.parquet")  # fmt: skip
    pe.add_argument("--no-thumbs", action="store_true", help="leave the thumbnails out")
    add_index_args(pe)
    pe.add_argument("--json", action="store_true", help="print a JSON summary")
    pe.set_defaults(func=cmd_export)
