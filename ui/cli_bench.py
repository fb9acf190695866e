"""``scenesearch bench index|search|stills|temporal``: the speed benchmarks (a thin shell over
eval/bench/).

Each writes ``report.json`` + ``report.md`` (with the machine description) into ``--out``, by
default a folder under the user data dir (never the source tree); long runs also append
progress lines to ``<out>/progress.log``. Every option's ``dest`` is the field of the bench's
options dataclass (eval/bench/config.py) it sets, and options left out keep that dataclass's
default, so no default is written twice.
"""

from __future__ import annotations

import argparse
from dataclasses import fields
from pathlib import Path
from typing import Any

from scenesearch.eval.bench import config as bc
from scenesearch.indexer.config import ModelConfig
from scenesearch.indexer.errors import ConfigError

UNSET = argparse.SUPPRESS  # an option not given is absent: the options dataclass's default holds


def _positive(value: str) -> int:
    if not value.isdigit() or int(value) < 1:
        raise argparse.ArgumentTypeError(f"must be a positive integer, not {value!r}")
    return int(value)


def _options(cls, args: argparse.Namespace, **given: Any):
    """``cls`` (a bench options dataclass) from the options the user gave, plus ``given``."""
    names = {f.name for f in fields(cls)}
    return cls(**{**{k: v for k, v in vars(args).items() if k in names}, **given})


def _done(report: dict[str, Any], out: str) -> int:
    for t in report.get("targets", []):
        print(f"{'MET    ' if t['met'] else 'NOT MET'}  {t['target']}: {t['measured']}")
    print(f"report: {out}/report.md")
    return 0


def _check_points(args) -> None:
    if args.points < 100:
        raise ConfigError("--points must be at least 100")


def cmd_bench_index(args) -> int:
    from scenesearch.eval.bench.index import run_index_bench
    from scenesearch.indexer.config import resolve_device
    from scenesearch.indexer.pipeline import validate_frames_per_shot

    if args.gpu:
        return cmd_bench_index_gpu(args)
    out = args.out or bc.default_out_dir(f"bench-index-{Path(args.video).stem}")
    opts = _options(bc.IndexBenchConfig, args, out_dir=out, device=resolve_device(args.device),
                    detectors=tuple(getattr(args, "detectors", ())))  # fmt: skip
    validate_frames_per_shot(opts.frames_per_shot)
    return _done(run_index_bench(opts), out)


def cmd_bench_index_gpu(args) -> int:
    """``bench index --gpu``: the GPU node benchmark (issue 18)."""
    from scenesearch.eval.bench.gpu_node import GpuBenchConfig, run_gpu_bench
    from scenesearch.indexer.config import resolve_device

    try:
        films = tuple(int(n) for n in str(args.films).split(","))
    except ValueError:
        raise ConfigError(f"--films takes numbers like 1,16, not {args.films!r}") from None
    out = args.out or bc.default_out_dir(f"bench-index-gpu-{Path(args.video).stem}")
    opts = _options(GpuBenchConfig, args, out_dir=out, device=resolve_device(args.device),
                    films=films)  # fmt: skip
    return _done(run_gpu_bench(opts), out)


def cmd_bench_search(args) -> int:
    _check_points(args)
    if getattr(args, "reuse", False) and not (args.frame_vectors and args.work_dir):
        raise ConfigError("--reuse needs --frame-vectors and the --work-dir of an earlier run")
    if args.frame_vectors:  # best-frame ranking at scale: its own generator and report
        from scenesearch.eval.bench.search_frames import run_frames_search_bench

        out = args.out or bc.default_out_dir(f"bench-search-frames-{bc.points_name(args.points)}")
        queries = min(getattr(args, "queries", bc.FramesBenchConfig.queries), 100)
        opts = _options(bc.FramesBenchConfig, args, out_dir=out, queries=queries)
        return _done(run_frames_search_bench(opts), out)
    from scenesearch.eval.bench.search import run_search_bench

    out = args.out or bc.default_out_dir(f"bench-search-{bc.points_name(args.points)}")
    return _done(run_search_bench(_options(bc.SearchBenchConfig, args, out_dir=out)), out)


def cmd_bench_stills(args) -> int:
    from scenesearch.eval.bench.stills import run_stills_bench

    out = args.out or bc.default_out_dir("bench-stills")
    opts = _options(bc.StillsBenchConfig, args, out_dir=out)
    if opts.brute_stride < 1 or opts.repeats < 1 or (opts.long_brute_stride or 1) < 1:
        raise ConfigError("--brute-stride, --long-brute-stride and --repeats must be ≥ 1")
    return _done(run_stills_bench(opts), out)


def cmd_bench_temporal(args) -> int:
    from scenesearch.eval.bench.temporal import run_temporal_bench

    _check_points(args)
    out = args.out or bc.default_out_dir(f"bench-temporal-{bc.points_name(args.points)}")
    return _done(run_temporal_bench(_options(bc.TemporalBenchConfig, args, out_dir=out)), out)


# ------------------------------------------------------------------------------ options
def _add_common(p: argparse.ArgumentParser, work_help: str, quiet_help: str | None = None) -> None:
    """--out, --work-dir and --quiet: every bench has them."""
    p.add_argument("--out", metavar="DIR",
                   help="report folder (default: a folder under the user data dir)")  # fmt: skip
    p.add_argument("--work-dir", metavar="DIR", help=work_help)
    p.add_argument("--quiet", action="store_true", help=quiet_help)


def _add_model(p: argparse.ArgumentParser, dest: str = "model", help: str | None = None) -> None:
    """--model and --pretrained (default: the product's model, seeded random weights)."""
    p.add_argument("--model", dest=dest, default=UNSET,
                   help=help or f"open_clip model or config JSON (default {ModelConfig.name})")  # fmt: skip
    p.add_argument("--pretrained", default=UNSET,
                   help="weights: 'random' (seeded; same speed) or a tag/file "
                   f"(default {bc.BENCH_PRETRAINED})")  # fmt: skip


def _add_synthetic(p: argparse.ArgumentParser, cls, queries_help: str) -> None:
    """--points, --queries, --tuning and --seed: the benches on N synthetic shots."""
    p.add_argument("--points", type=int, required=True, metavar="N", help="shots in the index")
    p.add_argument("--queries", type=int, default=UNSET,
                   help=f"{queries_help} (default {cls.queries})")  # fmt: skip
    p.add_argument("--tuning", default=UNSET, metavar="default|bench-small|mM-efE[-int8]",
                   help="store tuning (bench-small: low HNSW thresholds for tiny smoke runs; "
                   "m24-ef200: the default with HNSW m 24, ef_construct 200)")  # fmt: skip
    p.add_argument("--seed", type=int, default=UNSET)


def _add_index(bsub) -> None:
    d = bc.IndexBenchConfig
    p = bsub.add_parser(
        "index",
        help="time indexing VIDEO, side by side with the MovieCLIP pipeline (scenedetect "
        "split-video + CLIP on every frame)",
    )
    p.add_argument("video", metavar="VIDEO")
    _add_model(p)
    p.add_argument("--device", default=ModelConfig.device, help="auto | cpu | cuda")
    p.add_argument("--precision", default=UNSET, choices=["auto", "fp32", "fp16", "bf16"],
                   help="our runs' image-tower precision (the baseline always runs fp32)")  # fmt: skip
    p.add_argument("--frames-per-shot", default=UNSET, metavar="K|all",
                   help=f"frames per shot of our default run (default {d.frames_per_shot})")  # fmt: skip
    p.add_argument("--batch-size", type=int, default=UNSET,
                   help=f"images per forward pass (default {d.batch_size})")  # fmt: skip
    p.add_argument("--workers", type=int, default=UNSET, help="decode workers (0 = automatic)")
    p.add_argument("--detector", dest="detectors", action="append", default=UNSET,
                   metavar="LABEL",
                   help="also index with this shot detector (spec [FIELD=VALUE ...]); repeat")  # fmt: skip
    p.add_argument("--repeats", type=_positive, metavar="N", default=UNSET,
                   help="run the default and each --detector run N times, interleaved; each "
                   "keeps its fastest (default 1)")  # fmt: skip
    p.add_argument("--skip-all", dest="run_all", action="store_false", default=UNSET,
                   help="skip our all-frames run")  # fmt: skip
    p.add_argument("--skip-baseline", dest="baseline", action="store_false", default=UNSET,
                   help="skip the paper's pipeline")  # fmt: skip
    p.add_argument("--baseline-max-shots", type=_positive, metavar="N", default=UNSET,
                   help="quick run: CLIP on the first N baseline shots, the rest extrapolated")  # fmt: skip
    p.add_argument("--limit-seconds", type=float, metavar="S", default=UNSET,
                   help="quick run: benchmark only the first S seconds of VIDEO")  # fmt: skip
    p.add_argument("--copies", type=int, default=UNSET,
                   help=f"scaling test: index N copies of a short clip vs one (0 = skip; "
                   f"default {d.copies})")  # fmt: skip
    p.add_argument("--scale-seconds", type=float, default=UNSET,
                   help="length of the scaling-test clip (first S seconds of VIDEO; default "
                   f"{d.scale_seconds:g})")  # fmt: skip
    p.add_argument("--fidelity-frames", type=int, default=UNSET,
                   help="frames for the preprocessing fidelity check (0 = skip; default "
                   f"{d.fidelity_frames})")  # fmt: skip
    _add_common(p, "scratch folder (default: a temp dir)", "no progress lines on stderr")
    p.add_argument("--keep-work", action="store_true", help="keep the scratch folder")
    p.add_argument("--gpu", action="store_true",
                   help="GPU node mode (eval/bench/gpu_node.py): stage rates, 1 and N films at "
                   "once, GPU busy share and memory, shots and vectors vs the CPU path")  # fmt: skip
    p.add_argument("--films", default="1,16", metavar="N,M",
                   help="--gpu: films indexed at once, one run per number (default 1,16)")  # fmt: skip
    p.add_argument("--decoder", default=UNSET, choices=["auto", "pyav", "torchcodec"],
                   help="--gpu: video decoder (auto: NVDEC when torchcodec is installed)")  # fmt: skip
    p.add_argument("--no-agreement", dest="agreement", action="store_false", default=UNSET,
                   help="--gpu: skip the comparison with the CPU path")  # fmt: skip
    p.set_defaults(func=cmd_bench_index)


def _add_search(bsub) -> None:
    d = bc.SearchBenchConfig
    p = bsub.add_parser(
        "search",
        help="latency/recall/ingest of the embedded store on N synthetic shots, vs numpy brute "
        "force; optionally the web app's JSON API under concurrent clients",
    )
    _add_synthetic(p, d, "queries per measured case")
    _add_model(p, "text_model", "model for the text-query and API cases (512-d; default "
               f"{d.text_model})")  # fmt: skip
    p.add_argument("--text-queries", type=int, default=UNSET,
                   help=f"end-to-end text queries (0 = skip; default {d.text_queries})")  # fmt: skip
    p.add_argument("--concurrency-s", type=float, default=UNSET, metavar="S",
                   help="also load the web app's JSON API for S seconds (e.g. 60)")  # fmt: skip
    p.add_argument("--clients", type=int, default=UNSET,
                   help=f"concurrent API clients (default {d.clients})")  # fmt: skip
    p.add_argument("--frame-vectors", action="store_true",
                   help="shots with per-frame vectors: best-frame ranking latency and recall")  # fmt: skip
    _add_common(p, "where the index is built (default: temp)")
    p.add_argument("--keep-index", action="store_true", help="keep the built index")
    p.add_argument("--reuse", action="store_true",
                   help="with --frame-vectors: query the index an earlier run left in "
                   "--work-dir (no ingest, no build; the data is regenerated from the seed)")  # fmt: skip
    p.set_defaults(func=cmd_bench_search)


def _add_stills(bsub) -> None:
    d = bc.StillsBenchConfig
    p = bsub.add_parser(
        "stills",
        help="image queries with screenshots of the corpus films: mean-of-3 vs best-frame "
        "ranking vs brute force over every frame; indexing cost of both",
    )
    p.add_argument("videos", nargs="*", metavar="VIDEO", help="films (default: the corpus)")
    _add_model(p)
    p.add_argument("--brute-stride", type=int, default=UNSET,
                   help="brute force embeds every Nth decoded frame (1 = every frame; default "
                   f"{d.brute_stride})")  # fmt: skip
    p.add_argument(
        "--long-brute-stride",
        type=int,
        metavar="N",
        help="brute-force stride in the long film only (default: --brute-stride)",
    )
    p.add_argument("--repeats", type=int, default=UNSET,
                   help=f"timed indexing runs of the long film per scheme (default {d.repeats})")  # fmt: skip
    p.add_argument("--cache-dir", metavar="DIR", help="cache of the every-frame embeddings")
    p.add_argument("--reuse", action="store_true",
                   help="reuse the indexes and indexing figures an earlier run left in --work-dir")  # fmt: skip
    p.add_argument("--long-still-every", dest="long_still_every_s", type=float, metavar="S",
                   help="still spacing in the long film (default: the same "
                   f"{d.still_every_s:g} s)")  # fmt: skip
    p.add_argument("--no-exact-rescore", dest="exact_rescore", action="store_false",
                   help="skip the exact-MAX_SIM check column (a third fewer queries)")  # fmt: skip
    _add_common(p, "where the indexes are built (default: temp)")
    p.set_defaults(func=cmd_bench_stills)


def _add_temporal(bsub) -> None:
    d = bc.TemporalBenchConfig
    p = bsub.add_parser(
        "temporal",
        help='"A then B within W s" sequence queries on N synthetic shots: latency and recall of '
        "the top 10 vs a brute force over all shot pairs",
    )
    _add_synthetic(p, d, "query pairs per case")
    p.add_argument("--within", dest="within_s", type=float, default=UNSET,
                   help=f"window in seconds ({d.within_s:g})")  # fmt: skip
    _add_common(p, "where the index is built (default: temp)")
    p.add_argument("--warmup", type=int, default=UNSET, metavar="N",
                   help=f"other query pairs run untimed before each case ({d.warmup})")  # fmt: skip
    p.add_argument("--keep-index", action="store_true",
                   help="keep the built index and its data in --work-dir")  # fmt: skip
    p.add_argument("--reuse", action="store_true",
                   help="query the index a --keep-index run left in --work-dir (no build)")  # fmt: skip
    p.set_defaults(func=cmd_bench_temporal)


def register(sub) -> None:
    """Add ``bench index|search|stills|temporal`` to the main parser's subcommands."""
    p = sub.add_parser("bench", help="speed benchmarks (indexing vs the paper's pipeline; search)")
    bsub = p.add_subparsers(dest="bench_command", metavar="BENCH", required=True)
    _add_index(bsub)
    _add_search(bsub)
    _add_stills(bsub)
    _add_temporal(bsub)
