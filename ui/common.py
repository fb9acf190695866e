"""Arguments and helpers shared by every CLI subcommand: which index to open, and how."""

from __future__ import annotations

import argparse
import os

from indexer.config import StoreConfig, env_defaults
from indexer.errors import ConfigError


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
    )


def require_index(cfg: StoreConfig) -> None:
    """A command that reads an index (search, info, remove, serve) on an embedded index folder
    that does not exist or holds no index: a ConfigError naming the folder — a typo in the path
    must not look like an empty index."""
    if cfg.qdrant_url:
        return  # the server says itself whether the collection exists
    d = cfg.index_dir
    if not d or not os.path.isdir(d):
        raise ConfigError(
            f"no index at {d}: the folder does not exist (check --index / $SCENESEARCH_INDEX, or "
            f"create it with: scenesearch index --index {d} MOVIES...)"
        )
    if not (
        os.path.isdir(os.path.join(d, "shard")) or os.path.isfile(os.path.join(d, "index.json"))
    ):
        raise ConfigError(
            f"no index at {d}: the folder holds no scenesearch index (create one with: "
            f"scenesearch index --index {d} MOVIES...)"
        )
