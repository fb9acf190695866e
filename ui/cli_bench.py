"""``scenesearch bench index|search|stills``: the speed benchmarks (a thin shell over eval/bench_*.py).

Each writes ``report.json`` + ``report.md`` (with the machine description) into ``--out``; long
runs also append progress lines to ``<out>/progress.log``.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from scenesearch.indexer.config import ModelConfig, RunConfig, SampleConfig
from scenesearch.indexer.errors import ConfigError

RESULTS = Path(__file__).resolve().parents[1] / "eval" / "results"


def _positive(value: str) -> int:
    if not value.isdigit() or int(value) < 1:
        raise argparse.ArgumentTypeError(f"must be a positive integer, not {value!r}")
    return int(value)


def cmd_bench_index(args) -> int:
    from scenesearch.eval.bench_index import IndexBenchConfig, run_index_bench
    from scenesearch.indexer.config import resolve_device
    from scenesearch.indexer.pipeline import validate_frames_per_shot

    validate_frames_per_shot(args.frames_per_shot)
    out = args.out or str(RESULTS / f"bench-index-{Path(args.video).stem}")
    bc = IndexBenchConfig(
        video=args.video,
        out_dir=out,
        model=args.model,
        pretrained=args.pretrained,
        device=resolve_device(args.device),
        precision=args.precision,
        frames_per_shot=str(args.frames_per_shot),
        batch_size=args.batch_size,
        workers=args.workers,
        run_all=not args.skip_all,
        baseline=not args.skip_baseline,
        baseline_max_shots=args.baseline_max_shots,
        limit_seconds=args.limit_seconds,
        copies=args.copies,
        scale_seconds=args.scale_seconds,
        fidelity_frames=args.fidelity_frames,
        detectors=tuple(args.detector),
        work_dir=args.work_dir,
        keep_work=args.keep_work,
        quiet=args.quiet,
    )
    report = run_index_bench(bc)
    for t in report.get("targets", []):
        print(f"{'MET    ' if t['met'] else 'NOT MET'}  {t['target']}: {t['measured']}")
    print(f"report: {out}/report.md")
    return 0


def cmd_bench_search(args) -> int:
    from scenesearch.eval.bench_search import SearchBenchConfig, run_search_bench

    if args.points < 100:
        raise ConfigError("--points must be at least 100")
    if args.frame_vectors:  # best-frame ranking at scale: its own generator and report
        from scenesearch.eval.bench_search_frames import FramesBenchConfig, run_frames_search_bench

        out = args.out or str(RESULTS / f"bench-search-frames-{_points_name(args.points)}")
        fc = FramesBenchConfig(args.points, out, min(args.queries, 100), args.seed,
                               args.work_dir, args.quiet)  # fmt: skip
        report = run_frames_search_bench(fc)
        for t in report["targets"]:
            print(f"{'MET    ' if t['met'] else 'NOT MET'}  {t['target']}: {t['measured']}")
        print(f"report: {out}/report.md")
        return 0
    out = args.out or str(RESULTS / f"bench-search-{_points_name(args.points)}")
    bc = SearchBenchConfig(
        points=args.points,
        out_dir=out,
        queries=args.queries,
        text_model=args.model,
        pretrained=args.pretrained,
        text_queries=args.text_queries,
        concurrency_s=args.concurrency_s,
        clients=args.clients,
        work_dir=args.work_dir,
        keep_index=args.keep_index,
        seed=args.seed,
        tuning=args.tuning,
        quiet=args.quiet,
    )
    report = run_search_bench(bc)
    for t in report.get("targets", []):
        print(f"{'MET    ' if t['met'] else 'NOT MET'}  {t['target']}: {t['measured']}")
    print(f"report: {out}/report.md")
    return 0


def cmd_bench_stills(args) -> int:
    from scenesearch.eval.bench_stills import StillsBenchConfig, run_stills_bench

    if args.brute_stride < 1 or args.repeats < 1:
        raise ConfigError("--brute-stride and --repeats must be ≥ 1")
    out = args.out or str(RESULTS / "bench-stills")
    bc = StillsBenchConfig(
        out_dir=out, videos=args.videos, model=args.model, pretrained=args.pretrained,
        brute_stride=args.brute_stride, repeats=args.repeats, cache_dir=args.cache_dir,
        work_dir=args.work_dir, quiet=args.quiet, reuse=args.reuse,
        long_still_every_s=args.long_still_every, exact_rescore=not args.no_exact_rescore,
    )  # fmt: skip
    report = run_stills_bench(bc)
    for t in report.get("targets", []):
        print(f"{'MET    ' if t['met'] else 'NOT MET'}  {t['target']}: {t['measured']}")
    print(f"report: {out}/report.md")
    return 0


def _points_name(n: int) -> str:
    if n % 1_000_000 == 0:
        return f"{n // 1_000_000}m"
    if n % 1000 == 0:
        return f"{n // 1000}k"
    return str(n)


def register(sub) -> None:
    """Add ``bench index`` and ``bench search`` to the main parser's subcommands."""
    p = sub.add_parser("bench", help="speed benchmarks (indexing vs the paper's pipeline; search)")
    bsub = p.add_subparsers(dest="bench_command", metavar="BENCH", required=True)

    pi = bsub.add_parser(
        "index",
        help="time indexing VIDEO, side by side with the MovieCLIP pipeline (scenedetect "
        "split-video + CLIP on every frame)",
    )
    pi.add_argument("video", metavar="VIDEO")
    pi.add_argument("--out", metavar="DIR", help="report folder (default eval/results/...)")
    pi.add_argument("--model", default=ModelConfig.name, help="open_clip model or config JSON")
    pi.add_argument("--pretrained", default="random",
                    help="weights: 'random' (seeded; same speed) or a tag/file (default random)")  # fmt: skip
    pi.add_argument("--device", default=ModelConfig.device, help="auto | cpu | cuda")
    pi.add_argument("--precision", default=ModelConfig.precision, choices=["auto", "fp32", "fp16", "bf16"],
                    help="our runs' image-tower precision (the baseline always runs fp32)")  # fmt: skip
    pi.add_argument("--frames-per-shot", default=str(SampleConfig.frames_per_shot),
                    metavar="K|all", help="frames per shot of our default run "
                    "(default %(default)s)")  # fmt: skip
    pi.add_argument("--batch-size", type=int, default=ModelConfig.batch_size)
    pi.add_argument("--workers", type=int, default=RunConfig.workers,
                    help="decode workers (0 = automatic)")  # fmt: skip
    pi.add_argument("--detector", action="append", default=[], metavar="LABEL",
                    help="also index with this shot detector (spec [FIELD=VALUE ...]); repeat")  # fmt: skip
    pi.add_argument("--skip-all", action="store_true", help="skip our all-frames run")
    pi.add_argument("--skip-baseline", action="store_true", help="skip the paper's pipeline")
    pi.add_argument("--baseline-max-shots", type=_positive, metavar="N",
                    help="quick run: CLIP on the first N baseline shots, the rest extrapolated")  # fmt: skip
    pi.add_argument("--limit-seconds", type=float, metavar="S",
                    help="quick run: benchmark only the first S seconds of VIDEO")  # fmt: skip
    pi.add_argument("--copies", type=int, default=10,
                    help="scaling test: index N copies of a short clip vs one (0 = skip)")  # fmt: skip
    pi.add_argument("--scale-seconds", type=float, default=20.0,
                    help="length of the scaling-test clip (first S seconds of VIDEO)")  # fmt: skip
    pi.add_argument("--fidelity-frames", type=int, default=32,
                    help="frames for the preprocessing fidelity check (0 = skip)")  # fmt: skip
    pi.add_argument("--work-dir", metavar="DIR", help="scratch folder (default: a temp dir)")
    pi.add_argument("--keep-work", action="store_true", help="keep the scratch folder")
    pi.add_argument("--quiet", action="store_true", help="no progress lines on stderr")
    pi.set_defaults(func=cmd_bench_index)

    ps = bsub.add_parser(
        "search",
        help="latency/recall/ingest of the embedded store on N synthetic shots, vs numpy brute "
        "force; optionally the web app's JSON API under concurrent clients",
    )
    ps.add_argument("--points", type=int, required=True, metavar="N", help="shots in the index")
    ps.add_argument("--out", metavar="DIR", help="report folder (default eval/results/...)")
    ps.add_argument("--queries", type=int, default=200, help="queries per measured case")
    ps.add_argument("--model", default=ModelConfig.name,
                    help="model for the text-query and API cases (512-d; default %(default)s)")  # fmt: skip
    ps.add_argument("--pretrained", default="random")
    ps.add_argument("--text-queries", type=int, default=50,
                    help="end-to-end text queries (0 = skip)")  # fmt: skip
    ps.add_argument("--concurrency-s", type=float, default=0.0, metavar="S",
                    help="also load the web app's JSON API for S seconds (e.g. 60)")  # fmt: skip
    ps.add_argument("--clients", type=int, default=8, help="concurrent API clients")
    ps.add_argument("--tuning", default="default", choices=["default", "bench-small"],
                    help="store tuning (bench-small: low HNSW thresholds for tiny smoke runs)")  # fmt: skip
    ps.add_argument("--frame-vectors", action="store_true",
                    help="shots with per-frame vectors: best-frame ranking latency and recall")  # fmt: skip
    ps.add_argument("--seed", type=int, default=0)
    ps.add_argument("--work-dir", metavar="DIR", help="where the index is built (default: temp)")
    ps.add_argument("--keep-index", action="store_true", help="keep the built index")
    ps.add_argument("--quiet", action="store_true")
    ps.set_defaults(func=cmd_bench_search)

    pt = bsub.add_parser(
        "stills",
        help="image queries with screenshots of the corpus films: mean-of-3 vs best-frame "
        "ranking vs brute force over every frame; indexing cost of both",
    )
    pt.add_argument("videos", nargs="*", metavar="VIDEO", help="films (default: the corpus)")
    pt.add_argument("--out", metavar="DIR", help="report folder (default eval/results/...)")
    pt.add_argument("--model", default=ModelConfig.name, help="open_clip model or config JSON")
    pt.add_argument("--pretrained", default="random")
    pt.add_argument("--brute-stride", type=int, default=1,
                    help="brute force embeds every Nth decoded frame (1 = every frame)")  # fmt: skip
    pt.add_argument("--repeats", type=int, default=2,
                    help="timed indexing runs of the long film per scheme")  # fmt: skip
    pt.add_argument("--cache-dir", metavar="DIR", help="cache of the every-frame embeddings")
    pt.add_argument("--work-dir", metavar="DIR", help="where the indexes are built (default: temp)")
    pt.add_argument("--reuse", action="store_true",
                    help="reuse the indexes and indexing figures an earlier run left in --work-dir")  # fmt: skip
    pt.add_argument("--long-still-every", type=float, metavar="S",
                    help="still spacing in the long film (default: the same 2 s)")  # fmt: skip
    pt.add_argument("--no-exact-rescore", action="store_true",
                    help="skip the exact-MAX_SIM check column (a third fewer queries)")  # fmt: skip
    pt.add_argument("--quiet", action="store_true")
    pt.set_defaults(func=cmd_bench_stills)

    pt = bsub.add_parser(
        "temporal",
        help='"A then B within W s" sequence queries on N synthetic shots: latency and recall of '
        "the top 10 vs a brute force over all shot pairs",
    )
    pt.add_argument("--points", type=int, required=True, metavar="N", help="shots in the index")
    pt.add_argument("--out", metavar="DIR", help="report folder (default eval/results/...)")
    pt.add_argument("--queries", type=int, default=100, help="query pairs per case")
    pt.add_argument("--within", type=float, default=10.0, help="window in seconds (10)")
    pt.add_argument("--tuning", default="default", choices=["default", "bench-small"])
    pt.add_argument("--seed", type=int, default=0)
    pt.add_argument("--work-dir", metavar="DIR", help="where the index is built (default: temp)")
    pt.add_argument("--quiet", action="store_true")
    pt.set_defaults(func=cmd_bench_temporal)


def cmd_bench_temporal(args) -> int:
    from scenesearch.eval.bench_temporal import TemporalBenchConfig, run_temporal_bench

    if args.points < 100:
        raise ConfigError("--points must be at least 100")
    out = args.out or str(RESULTS / f"bench-temporal-{_points_name(args.points)}")
    report = run_temporal_bench(
        TemporalBenchConfig(
            points=args.points,
            out_dir=out,
            queries=args.queries,
            within_s=args.within,
            seed=args.seed,
            work_dir=args.work_dir,
            tuning=args.tuning,
            quiet=args.quiet,
        )  # fmt: skip
    )
    for t in report.get("targets", []):
        print(f"{'MET    ' if t['met'] else 'NOT MET'}  {t['target']}: {t['measured']}")
    print(f"report: {out}/report.md")
    return 0
