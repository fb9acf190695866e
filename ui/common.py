"""Arguments and helpers shared by every CLI subcommand: which index to open, and how."""

from __future__ import annotations

import argparse

from indexer.config import StoreConfig, env_defaults


def add_index_args(p: argparse.ArgumentParser) -> None:
    """--index DIR / --qdrant-url URL / --collection NAME, defaults from the environment."""
    g = p.add_argument_group("index location")
    g.add_argument(
        "--index",
        metavar="DIR",
        help="index folder (embedded store, thumbnails, state); default $SCENESEARCH_INDEX or "
        "the user data dir",
    )
    g.add_argument(
        "--qdrant-url",
        metavar="URL",
        help="use a Qdrant server instead of the embedded store (default $QDRANT_URL); the index "
        "folder still holds thumbnails",
    )
    g.add_argument("--collection", default="shots", help="collection name on a server")


def store_config_from_args(args: argparse.Namespace) -> StoreConfig:
    env = env_defaults()
    return StoreConfig(
        index_dir=args.index or env["index_dir"],
        qdrant_url=args.qdrant_url or env["qdrant_url"],
        api_key=env["api_key"],
        collection=getattr(args, "collection", "shots"),
        shard_number=getattr(args, "shard_number", None),
        replication_factor=getattr(args, "replication_factor", None),
        write_consistency_factor=getattr(args, "write_consistency_factor", None),
    )
