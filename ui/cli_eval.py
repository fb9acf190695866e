"""``scenesearch eval``: the command-line shell over the ``eval`` library.

Five subcommands — ``genre``, ``scenes``, ``shots``, ``transitions``, ``retrieval`` — each parse
options, check them, and call one ``run_*`` function of eval/run.py, which writes a report folder
(``--out``, default ``./reports/eval-<cmd>``): tables as CSV/Parquet/JSON, PNG plots,
``config.json`` and ``summary.md``. The main CLI calls :func:`register` and turns
ScenesearchErrors into one line.
"""

from __future__ import annotations

import argparse

from scenesearch.indexer.errors import ConfigError
from scenesearch.ui.common import add_index_args, store_config_from_args


def register(subparsers) -> None:
    """Add ``eval`` with its four subcommands to the main parser's subparsers."""
    p = subparsers.add_parser(
        "eval",
        help="measure an index: genre probe, scene mAP, shot F1, retrieval",
        description="Measure an index: genre linear probe, scene-recognition mAP, shot-boundary "
        "F1 and text retrieval. Each subcommand writes a report folder (tables as CSV/Parquet/JSON, "
        "PNG plots, summary.md).",
    )
    sub = p.add_subparsers(
        dest="eval_cmd", metavar="{genre,scenes,shots,transitions,retrieval}", required=True
    )

    g = sub.add_parser("genre", help="genre linear probe on pooled index features")
    g.add_argument(
        "--genres",
        metavar="FILE",
        help="movie → genres table (CSV/Parquet: movie|title|path|id, "
        "genres 'a|b', optional group); default: the genres stored in the index",
    )
    g.add_argument(
        "--split", metavar="FILE", help="user split (movie, fold|split) overriding the folds"
    )
    g.add_argument("--folds", type=int, default=5, help="outer cross-validation folds (default 5)")
    g.add_argument("--inner-folds", type=int, default=3, help="inner folds choosing C (default 3)")
    g.add_argument(
        "--C",
        dest="Cs",
        type=float,
        nargs="+",
        default=[0.01, 0.1, 1.0, 10.0, 100.0],
        metavar="C",
        help="regularisation values tried (default 0.01 0.1 1 10 100)",
    )
    g.add_argument(
        "--clip-seconds",
        type=float,
        metavar="S",
        help="one sample per S-second clip of each movie instead of one per movie",
    )
    g.add_argument("--pooling", default="mean", help="mean, max or mean,max (default mean)")
    g.add_argument("--seed", type=int, default=0)
    g.add_argument(
        "--no-baselines", action="store_true", help="skip the prior and random baselines"
    )
    _common(g, "genre")
    g.set_defaults(func=cmd_genre)

    s = sub.add_parser("scenes", help="scene-recognition mAP of the stored label scores")
    s.add_argument(
        "--labels",
        required=True,
        metavar="FILE",
        help="ground truth: CSV/Parquet (movie, start_s, end_s | shot_id | shot_index, "
        "labels 'a|b') or a MovieCLIP split file (<clip>/<clip>-Scene-NNN.mp4 idx ...)",
    )
    s.add_argument("--label-map", metavar="JSON", help="MovieCLIP 150-label map (default: bundled)")
    s.add_argument(
        "--shot-times",
        metavar="JSON",
        help="MovieCLIP movieCLIP_dataset.json: match split-file "
        "shots by time instead of by scene number",
    )
    s.add_argument(
        "--min-coverage",
        type=float,
        default=0.5,
        help="share of a ground-truth range indexed shots must cover (default 0.5)",
    )
    _common(s, "scenes")
    s.set_defaults(func=cmd_scenes)

    t = sub.add_parser("shots", help="shot-boundary precision/recall/F1 against ground-truth cuts")
    t.add_argument("video", help="the video file")
    t.add_argument(
        "--truth",
        required=True,
        metavar="FILE",
        help="ground-truth cuts: CSV (time_s and/or frame), PySceneDetect JSON {cuts: "
        "[frames]} or scene list, or a plain list of times",
    )
    t.add_argument(
        "--detector",
        action="append",
        metavar="SPEC",
        help="detector spec, e.g. content, adaptive, content+threshold; repeat to compare "
        "(default: the indexer's)",
    )
    t.add_argument("--threshold", type=float, help="content detector threshold")
    t.add_argument("--adaptive-threshold", type=float)
    t.add_argument("--hash-threshold", type=float)
    t.add_argument("--histogram-threshold", type=float)
    t.add_argument("--fade-threshold", type=float, help="threshold (fade) detector brightness")
    t.add_argument("--min-shot-s", type=float, help="minimum shot length in seconds")
    t.add_argument(
        "--tolerance",
        type=int,
        default=1,
        help="match tolerance in frames (default 1; 0 and 5 are always reported too)",
    )
    _common(t, "shots", index=False)
    t.set_defaults(func=cmd_shots)

    tr = sub.add_parser(
        "transitions",
        help="shot detectors on real footage joined by known cuts, dissolves and fades, plus traps",
        description="Builds seeded clips from corpus footage joined by hard cuts, dissolves and "
        "fades through black/white, with traps that are not cuts (flash, fast pan, title, "
        "strobe), and scores every detector configuration (P/R/F1 per transition type, false "
        "positives per trap, frames/s), plus the annotated corpus clips.",
    )
    tr.add_argument(
        "--detector", action="append", metavar="SPEC",
        help="configuration to score: a detector spec, e.g. transnet:0.3 or content+threshold, "
        "optionally followed by ShotConfig overrides ('content+threshold+transnet "
        "transnet_gate=12'); repeat (default: a standard set with the default and transnet)",
    )  # fmt: skip
    tr.add_argument("--corpus", metavar="DIR", help="corpus folder (default ../shared/corpus)")
    tr.add_argument(
        "--clips", metavar="DIR", help="where clips are built/reused (default OUT/clips)"
    )
    tr.add_argument("--seed", type=int, default=0, help="seed of the clips (default 0)")
    tr.add_argument("--no-corpus", action="store_true", help="skip the annotated corpus clips")
    tr.add_argument("--quiet", action="store_true", help="no progress lines")
    tr.add_argument("--out", metavar="DIR", default="./reports/eval-transitions",
                    help="report folder (default ./reports/eval-transitions)")  # fmt: skip
    tr.set_defaults(func=cmd_transitions)

    r = sub.add_parser("retrieval", help="text-query retrieval: recall@k, mAP@k, nDCG@k, MRR")
    r.add_argument(
        "--queries",
        metavar="FILE",
        help="query table (query, relevant shot ids 'a|b' and/or labels 'a|b'); default: "
        "one query per label, from the scene labels",
    )
    r.add_argument(
        "--labels",
        metavar="FILE",
        help="scene ground truth (as for 'eval scenes') giving each shot its labels",
    )
    r.add_argument(
        "--relevance",
        choices=("auto", "human", "weak"),
        default="auto",
        help="labels for relevance: human (--labels), weak (the index's own clean labels: "
        "circular, a consistency check) or auto (human if --labels, else weak)",
    )
    r.add_argument("--template", default="a photo of a {label}", help="built-in query template")
    r.add_argument("--k", dest="ks", type=int, nargs="+", default=[1, 5, 10, 50], metavar="K")
    r.add_argument(
        "--min-relevant", type=int, default=1, help="skip labels on fewer shots (built-in set)"
    )
    r.add_argument("--device", help="cpu, cuda or auto (default $SCENESEARCH_DEVICE or auto)")
    _common(r, "retrieval")
    r.set_defaults(func=cmd_retrieval)


def _common(p: argparse.ArgumentParser, cmd: str, index: bool = True) -> None:
    p.add_argument(
        "--out",
        metavar="DIR",
        default=f"./reports/eval-{cmd}",
        help=f"report folder (default ./reports/eval-{cmd})",
    )
    p.add_argument("--quiet", action="store_true", help="do not print the tables")
    if index:
        add_index_args(p)


def _options(args) -> dict:
    """The parsed options, as config.json records them."""
    return {k: v for k, v in vars(args).items() if k != "func" and not k.startswith("_")}


def cmd_genre(args) -> int:
    from scenesearch.eval.genre import ProbeConfig
    from scenesearch.eval.run import open_index, run_genre

    pooling = tuple(x.strip() for x in args.pooling.split(",") if x.strip())
    if not pooling or set(pooling) - {"mean", "max"}:
        raise ConfigError(f"--pooling {args.pooling!r}: use mean, max or mean,max")
    if args.folds < 2 or args.inner_folds < 2:
        raise ConfigError("--folds and --inner-folds must be ≥ 2")
    probe = ProbeConfig(
        n_splits=args.folds,
        inner_splits=args.inner_folds,
        Cs=tuple(args.Cs),
        seed=args.seed,
        pooling=pooling,
        clip_s=args.clip_seconds,
        baselines=not args.no_baselines,
    )
    with open_index(store_config_from_args(args)) as store:
        run_genre(store, probe, args.out, genres_file=args.genres, split_file=args.split,
                  quiet=args.quiet, options=_options(args))  # fmt: skip
    return 0


def cmd_scenes(args) -> int:
    from scenesearch.eval.run import open_index, run_scenes

    with open_index(store_config_from_args(args)) as store:
        run_scenes(store, args.labels, args.out, label_map=args.label_map,
                   shot_times=args.shot_times, min_coverage=args.min_coverage, quiet=args.quiet,
                   options=_options(args))  # fmt: skip
    return 0


def cmd_shots(args) -> int:
    from scenesearch.eval.run import run_shots

    if args.tolerance < 0:
        raise ConfigError("--tolerance must be ≥ 0")
    overrides = {
        "content_threshold": args.threshold,
        "adaptive_threshold": args.adaptive_threshold,
        "hash_threshold": args.hash_threshold,
        "histogram_threshold": args.histogram_threshold,
        "fade_threshold": args.fade_threshold,
        "min_shot_s": args.min_shot_s,
    }
    run_shots(args.video, args.truth, args.out, detectors=args.detector, overrides=overrides,
              tolerance=args.tolerance, quiet=args.quiet, options=_options(args))  # fmt: skip
    return 0


def cmd_transitions(args) -> int:
    from scenesearch.eval.run import run_transitions

    log = (lambda m: None) if args.quiet else (lambda m: print(m, flush=True))
    path = run_transitions(args.detector, args.out, corpus=args.corpus, clips=args.clips,
                           seed=args.seed, with_corpus=not args.no_corpus, log=log)  # fmt: skip
    print(f"report written to {path}/ (report.md)")
    return 0


def cmd_retrieval(args) -> int:
    from scenesearch.eval.run import open_index, run_retrieval
    from scenesearch.indexer.config import env_defaults, resolve_device

    if min(args.ks) < 1:
        raise ConfigError("--k values must be ≥ 1")
    relevance = args.relevance
    if relevance == "auto":
        relevance = "human" if args.labels else "weak"
    if relevance == "human" and not args.labels:
        raise ConfigError("--relevance human needs --labels FILE")
    device = resolve_device(args.device or env_defaults()["device"])
    cfg = store_config_from_args(args)
    with open_index(cfg) as store:
        run_retrieval(store, cfg.index_dir, args.out, relevance=relevance, labels_file=args.labels,
                      queries_file=args.queries, template=args.template, ks=args.ks,
                      min_relevant=args.min_relevant, device=device, quiet=args.quiet,
                      options=_options(args))  # fmt: skip
    return 0
