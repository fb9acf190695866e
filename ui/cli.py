"""The ``scenesearch`` command line: a thin shell over the indexer, search and eval libraries.

``main(argv)`` parses arguments, builds config, calls the library and turns known errors into one
line on stderr and exit code 1 (``SCENESEARCH_DEBUG=1`` shows the traceback). Exit codes:
0 success, 1 error (nothing done), 2 partial failure (some movies could not be indexed),
3 no good match (search with --min-score found nothing above it).
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import sys
import traceback

from scenesearch.indexer.config import ModelConfig, RunConfig, SampleConfig, ShotConfig
from scenesearch.indexer.errors import ScenesearchError, printable
from scenesearch.ui.common import (
    add_index_args,
    model_for_index,
    require_index,
    store_config_from_args,
)


# ------------------------------------------------------------------------------ index
def _add_model_args(p: argparse.ArgumentParser) -> None:
    g = p.add_argument_group("model")
    g.add_argument(
        "--model",
        default=None,
        help="open_clip model name or a model-config JSON (default: the existing index's model, "
        "else ViT-B-32, as MovieCLIP)",
    )
    g.add_argument(
        "--pretrained",
        default=None,
        metavar="TAG|PATH|random",
        help="open_clip pretrained tag (downloaded by open_clip), a local weights file, or "
        "'random' (seeded random weights: plumbing demos only) (default: the existing index's "
        "weights, else openai)",
    )
    g.add_argument("--device", default=None, help="auto | cpu | cuda[:N] (default: auto)")
    g.add_argument(
        "--precision", default=ModelConfig.precision, choices=["auto", "fp32", "fp16", "bf16"],
        help="image-tower precision (auto: bf16 autocast on CUDA, bf16 weights on CPUs with "
        "native bf16 such as AVX512-BF16/AMX, else fp32)",
    )  # fmt: skip
    g.add_argument("--batch-size", type=int, default=ModelConfig.batch_size,
                   help="images per forward pass")  # fmt: skip


def _index_config(args):
    from scenesearch.indexer.config import IndexConfig, env_defaults, resolve_device
    from scenesearch.indexer.decode import decoder_for_device
    from scenesearch.indexer.detectors import config_from_label, for_device
    from scenesearch.indexer.pipeline import validate_frames_per_shot
    from scenesearch.indexer.sampling import check_sampling

    cfg = IndexConfig()
    cfg.store = store_config_from_args(args)
    cfg.model.name, cfg.model.pretrained = model_for_index(cfg.store, args.model, args.pretrained)
    cfg.model.device = resolve_device(args.device or env_defaults()["device"])
    cfg.model.precision = args.precision
    cfg.model.batch_size = args.batch_size
    cfg.sample.frames_per_shot = validate_frames_per_shot(args.frames_per_shot)
    cfg.sample.frame_interval_s = parse_frame_interval(args.frame_interval)
    cfg.sample.max_frames_per_shot = args.max_frames_per_shot
    cfg.sample.edge_frame_s = parse_frame_interval(args.edge_frames, "--edge-frames") or 0.0
    cfg.sample.frame_vectors = not args.no_frame_vectors
    check_sampling(
        cfg.sample.frame_interval_s, cfg.sample.max_frames_per_shot, cfg.sample.edge_frame_s
    )
    if args.detector:
        cfg.shots = config_from_label(args.detector, cfg.shots)
    # learned detector where CLIP runs; frames decoded and scored on the GPU too, except with Ray
    # (its decode tasks run on CPU nodes)
    local = not getattr(args, "ray", False)
    cfg.shots = for_device(cfg.shots, cfg.model.device, frames_on_device=local)
    cfg.decode = decoder_for_device(cfg.decode, cfg.model.device, args.decoder if local else "pyav")
    if args.min_shot_s is not None:
        cfg.shots.min_shot_s = args.min_shot_s
    if args.max_shot_s is not None:
        cfg.shots.max_shot_s = args.max_shot_s or None
    if args.taxonomy:
        cfg.labels.taxonomy = args.taxonomy
    if args.prompt:
        cfg.labels.prompt = args.prompt
    cfg.run.workers = args.workers
    cfg.run.force = args.force
    cfg.run.progress = not args.no_progress
    return cfg


def parse_frame_interval(text: str, flag: str = "--frame-interval") -> float | None:
    """``--frame-interval`` / ``--edge-frames``: seconds (``0`` or ``off``: None, i.e. off)."""
    if str(text).strip().lower() in ("0", "off", "none"):
        return None
    try:
        return float(text)
    except ValueError as e:
        raise ScenesearchError(f"{flag} must be seconds or 'off', not {text!r}") from e


def cmd_index(args) -> int:
    from scenesearch.indexer.pipeline import Indexer

    cfg = _index_config(args)
    if not args.paths and not args.manifest:
        raise ScenesearchError("nothing to index: give movie files/folders or --manifest FILE")
    if cfg.model.pretrained == "random":
        print(
            f"note: --pretrained random: {cfg.model.name} with seeded random weights — labels "
            "and search results are meaningless (plumbing demo only)",
            file=sys.stderr,
        )
    if args.ray:
        from scenesearch.indexer.ray_index import run_ray
        from scenesearch.ui.cli_tables import ray_options

        summary = run_ray(cfg, args.paths, args.manifest, ray_options(args))
    else:
        summary = Indexer(cfg).run(args.paths, args.manifest)
    if args.json:
        print(json.dumps(summary.to_dict()))
    else:
        print(f"index: {cfg.store.qdrant_url or cfg.store.index_dir}")
        for line in summary.lines():
            print(line)
    return 2 if summary.failed or summary.truncated else 0  # truncated: part of it is missing


def _add_index_parser(sub) -> None:
    p = sub.add_parser("index", help="index movies (files, folders or a manifest) into shots")
    p.add_argument("paths", nargs="*", metavar="PATH", help="movie files or folders (recursive)")
    add_index_args(p)
    _add_model_args(p)
    p.add_argument("--manifest", metavar="FILE",
                   help="CSV/Parquet with path[,title,year,genres,id] columns")  # fmt: skip
    p.add_argument("--force", action="store_true", help="re-index movies already indexed")
    p.add_argument(
        "--frames-per-shot", default=str(SampleConfig.frames_per_shot), metavar="K|all",
        help="frames embedded per shot at least, evenly spaced (default %(default)s; 'all' = "
        "every frame, the paper's way)",
    )  # fmt: skip
    p.add_argument(
        "--frame-interval", default=f"{SampleConfig.frame_interval_s:g}", metavar="S|off",
        help="one frame every S seconds of a shot, at least --frames-per-shot (default "
        "%(default)s; off = always --frames-per-shot)",
    )  # fmt: skip
    p.add_argument("--max-frames-per-shot", type=int, default=SampleConfig.max_frames_per_shot,
                   metavar="N", help="cap on frames per shot from --frame-interval "
                   "(default %(default)s)")  # fmt: skip
    p.add_argument(
        "--edge-frames", default=f"{SampleConfig.edge_frame_s:g}", metavar="S|off",
        help="with --frame-interval, also a frame S seconds inside each end of a shot when no "
        "sampled frame is near it (default %(default)s; off = none)",
    )  # fmt: skip
    p.add_argument("--no-frame-vectors", action="store_true",
                   help="store only each shot's mean vector (smaller index; no best-frame "
                   "ranking, no match times)")  # fmt: skip
    p.add_argument("--decoder", default="auto", choices=["auto", "pyav", "torchcodec"],
                   help="video decoder (auto: torchcodec/NVDEC with --device cuda when installed, "
                   "else PyAV on the CPU)")  # fmt: skip
    p.add_argument("--detector", help="shot detector(s) and options, e.g. transnet, "
                   "transnet:0.3 (threshold), 'content+threshold merge_fades=0' (FIELD=VALUE of "
                   f"ShotConfig); default {ShotConfig.detector}; see docs/shot_detection.md")  # fmt: skip
    p.add_argument("--min-shot-s", type=float, help="minimum shot length in seconds "
                   f"(default {ShotConfig.min_shot_s:g})")  # fmt: skip
    p.add_argument("--max-shot-s", type=float, help="split shots longer than this (0 = never)")
    p.add_argument("--taxonomy", metavar="FILE", help="label file, one per line (MovieCLIP 179)")
    p.add_argument("--prompt", help="label prompt with {label} (MovieCLIP's by default)")
    p.add_argument("--workers", type=int, default=RunConfig.workers,
                   help="decode processes (0 = auto from cores, -1 = decode in-process)")  # fmt: skip
    p.add_argument("--no-progress", action="store_true", help="no progress bars")
    p.add_argument("--json", action="store_true", help="print the run summary as JSON")
    from scenesearch.ui.cli_tables import add_cluster_args, add_ray_args

    add_ray_args(p)
    add_cluster_args(p)
    p.set_defaults(func=cmd_index)


# ------------------------------------------------------------------------------ info / remove
def cmd_info(args) -> int:
    from scenesearch.indexer.catalog import index_info
    from scenesearch.indexer.store import open_store

    cfg = store_config_from_args(args)
    require_index(cfg)
    with open_store(cfg) as store:
        info = index_info(store)
        top_any = store.facet("top_labels", limit=max(1, args.top)) if info["shots"] else {}
    info["index"] = cfg.qdrant_url or cfg.index_dir
    if args.json:
        print(json.dumps(info))
        return 0
    if not info["shots"]:
        print(f"index {info['index']} is empty — run: scenesearch index --index DIR MOVIES...")
        return 0
    w = "  (RANDOM WEIGHTS: plumbing demo only)" if info["random_weights"] else ""
    print(f"index:    {info['index']}")
    print(f"model:    {info['model_id']}{w}")
    print(f"labels:   {info['n_labels']} ({info['taxonomy']})")
    print(f"movies:   {info['movies']}")
    print(f"shots:    {info['shots']}")
    for m in info["movie_list"]:
        year = f" ({m['year']})" if m.get("year") else ""
        cut = " (TRUNCATED file: only its readable part)" if m.get("truncated") else ""
        print(f"  {m['movie_id']}  {printable(m['title'])}{year}: {m['shots']} shots, "
              f"{(m.get('duration_s') or 0) / 60:.1f} min{cut}")  # fmt: skip
    top = list(info["labels"].items())[: args.top]
    if top:
        print(f"top {len(top)} clean labels (shots):")
        for label, n in top:
            print(f"  {n:6d}  {label}")
    elif args.top > 0:
        why = " (random weights)" if info["random_weights"] else ""
        print(f"no clean labels: no shot's label scores reach MovieCLIP's thresholds{why}; "
              "labels among each shot's top 5 (shots):")  # fmt: skip
        for label, n in sorted(top_any.items(), key=lambda kv: (-kv[1], kv[0]))[: args.top]:
            print(f"  {n:6d}  {label}")
    return 0


def cmd_remove(args) -> int:
    from scenesearch.indexer.catalog import indexing_lock, remove_movie, resolve_movies
    from scenesearch.indexer.store import open_store

    cfg = store_config_from_args(args)
    require_index(cfg)
    with indexing_lock(cfg.index_dir), open_store(cfg) as store:
        found, missing = resolve_movies(store, args.movies)
        for m in found:  # removal needs no model: the catalog does it
            remove_movie(store, cfg.index_dir, m.movie_id)
            print(f"removed {m.movie_id} {printable(m.title)} ({m.shots or 0} shots)")
    for ref in missing:
        print(f"not in the index: {printable(ref)}", file=sys.stderr)
    return 1 if missing else 0


# ------------------------------------------------------------------------------ parser / main
def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="scenesearch",
        description="Shot-level search over movies (PySceneDetect + OpenCLIP + MovieCLIP labels "
        "+ Qdrant).",
    )
    p.add_argument("-v", "--verbose", action="store_true", help="log more")
    sub = p.add_subparsers(dest="command", metavar="COMMAND", required=True)
    _add_index_parser(sub)

    pi = sub.add_parser("info", help="what an index holds (movies, shots, model, labels)")
    add_index_args(pi)
    pi.add_argument("--json", action="store_true", help="print JSON")
    pi.add_argument("--top", type=int, default=20, help="labels to list")
    pi.set_defaults(func=cmd_info)

    pr = sub.add_parser("remove", help="delete movies' shots from an index")
    pr.add_argument("movies", nargs="+", metavar="MOVIE", help="movie id, title, file or path")
    add_index_args(pr)
    pr.set_defaults(func=cmd_remove)

    for name in (
        "scenesearch.ui.cli_search",
        "scenesearch.ui.cli_hits",
        "scenesearch.ui.cli_eval",
        "scenesearch.ui.cli_bench",
        "scenesearch.ui.cli_tables",
    ):
        try:
            mod = __import__(name, fromlist=["register"])
        except ModuleNotFoundError as e:
            if e.name != name:
                raise
            continue
        mod.register(sub)
    return p


def main(argv: list[str] | None = None) -> int:
    """Entry point of the ``scenesearch`` console script; returns the exit code."""
    os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")
    args = build_parser().parse_args(argv)
    logging.basicConfig(
        level=logging.INFO if args.verbose else logging.WARNING,
        format="%(levelname)s %(name)s: %(message)s",
    )
    try:
        code = int(args.func(args) or 0)
        sys.stdout.flush()  # a closed pipe shows here, inside the handler below
        return code
    except BrokenPipeError:
        # the reader went away (`scenesearch search --json | head -1`): stop quietly, as Unix
        # tools do; point stdout at /dev/null so the interpreter's final flush cannot complain
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        return 141  # 128 + SIGPIPE, like a tool killed by the signal
    except ScenesearchError as e:
        if os.environ.get("SCENESEARCH_DEBUG"):
            traceback.print_exc()
        print(f"scenesearch: error: {printable(e)}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("scenesearch: interrupted (a rerun resumes where this stopped)", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
