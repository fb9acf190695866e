"""Arguments and helpers shared by every CLI subcommand: which index to open, and how."""

from __future__ import annotations

import argparse
import os
import sys

from scenesearch.indexer.config import StoreConfig, env_defaults
from scenesearch.indexer.errors import ConfigError, ScenesearchError

# What the command line calls the search inputs in messages: the library names them by its own
# words (search/filters.py, search/validate.py, search/temporal.py: InputValueError.field) and
# the CLI, its route through a running server (ui/remote.py) included, says them as options.
CLI_NAMES = {
    "years": "year range",
    "durations": "duration range",
    "top_labels": "--top-labels",
    "label_top_k": "--top-labels",
    "min_label_score": "--min-label-score",
    "label_min_score": "--min-label-score",
    "limit": "the number of results (-k)",
    "offset": "--offset",
    "per_movie": "--per-movie",
    "dedup": "--dedup",
    "min_score": "--min-score",
    "like": "--like",
    "label_source=top": "CLI: --top-labels 5; web app: 'any of its top 5'",
    "then": "--then",
    "within": "--within",
    "sequences": "the number of sequences (-k)",
    "depth": "--depth",
}


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
    g.add_argument(
        "--collection", default=StoreConfig.collection, help="collection name on a server"
    )


def store_config_from_args(args: argparse.Namespace) -> StoreConfig:
    env = env_defaults()
    return StoreConfig(
        index_dir=args.index or env["index_dir"],
        qdrant_url=args.qdrant_url or env["qdrant_url"],
        api_key=env["api_key"],
        collection=getattr(args, "collection", StoreConfig.collection),
        shard_number=getattr(args, "shard_number", None),
        replication_factor=getattr(args, "replication_factor", None),
        write_consistency_factor=getattr(args, "write_consistency_factor", None),
    )


def open_engine(args: argparse.Namespace, load_model: bool):
    """The :class:`search.SearchEngine` over the index the arguments name, on their device."""
    from scenesearch.indexer.config import resolve_device
    from scenesearch.search import SearchEngine

    device = resolve_device(getattr(args, "device", None) or env_defaults()["device"])
    return SearchEngine.open(store_config_from_args(args), device=device, load_model=load_model)


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


def model_for_index(cfg: StoreConfig, model: str | None, pretrained: str | None) -> tuple[str, str]:
    """The (model, weights) an ``index`` run uses: what the user gave; for what they did not
    give, the model and weights the existing index records (so adding to a random-weights or a
    local-weights index needs no repeated flags, and never a hub download), else ViT-B-32 with
    OpenAI's weights. A conflicting choice is left for the index's meta check to refuse."""
    from scenesearch.indexer.config import ModelConfig
    from scenesearch.indexer.model_spec import ModelSpec

    meta = None
    if model is None or pretrained is None:
        meta = existing_meta(cfg)
    if not meta:
        return model or ModelConfig.name, pretrained or ModelConfig.pretrained
    spec = ModelSpec.from_meta(meta)
    rec_model = spec.config_path or spec.name
    rec_weights = spec.weights_path if spec.pretrained.startswith("file:") else spec.pretrained
    if pretrained is None:
        try:
            rec_weights = spec.config("cpu").pretrained  # a recorded file must still be there
        except ScenesearchError as e:
            raise ConfigError(f"{e}; give it with --pretrained PATH") from e
    used = (model or rec_model, pretrained or rec_weights)
    if (model is None or model == rec_model) and (pretrained is None or pretrained == rec_weights):
        print(
            f"note: adding to an existing index: using its model {meta['model_id']} "
            "(as recorded in the index)",
            file=sys.stderr,
        )
    return used


def existing_meta(cfg: StoreConfig) -> dict | None:
    """The metadata of the index ``cfg`` names, or None when there is no index yet."""
    from scenesearch.indexer.store import open_store

    if not cfg.qdrant_url and not (cfg.index_dir and os.path.isdir(cfg.index_dir)):
        return None
    with open_store(cfg) as store:
        return store.get_meta() if store.exists() else None
