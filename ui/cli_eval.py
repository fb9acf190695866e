"""``scenesearch eval``: the command-line shell over the ``eval`` library.

Five subcommands — ``genre``, ``scenes``, ``shots``, ``transitions``, ``retrieval`` — each parse options, build
the library's config, run it and write a report folder (``--out``, default
``./reports/eval-<cmd>``): tables as CSV/Parquet/JSON, PNG plots, ``config.json`` and
``summary.md``. The main CLI calls :func:`register` and turns ScenesearchErrors into one line.
"""

from __future__ import annotations

import argparse
import contextlib
from pathlib import Path

from scenesearch.indexer.errors import ConfigError, InputError
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


@contextlib.contextmanager
def _open_index(args):
    from scenesearch.indexer.store import open_store

    cfg = store_config_from_args(args)
    if not cfg.qdrant_url and not Path(cfg.index_dir).exists():
        raise InputError(f"no index at {cfg.index_dir} (--index DIR)")
    store = open_store(cfg)
    try:
        if not store.exists():
            raise InputError(
                f"no index at {cfg.index_dir or cfg.qdrant_url}: index some movies first"
            )
        yield store, cfg
    finally:
        store.close()


def _report(args, title: str):
    from scenesearch.eval.report import Report

    return Report(Path(args.out), title=title, quiet=args.quiet)


def _args_dict(args) -> dict:
    return {k: v for k, v in vars(args).items() if k != "func" and not k.startswith("_")}


# ------------------------------------------------------------------------------ genre
def cmd_genre(args) -> int:
    from scenesearch.eval.features import load_shots
    from scenesearch.eval.genre import (
        ProbeConfig,
        genre_probe,
        per_genre_plot,
        read_genres,
        read_split_file,
    )

    pooling = tuple(x.strip() for x in args.pooling.split(",") if x.strip())
    if not pooling or set(pooling) - {"mean", "max"}:
        raise ConfigError(f"--pooling {args.pooling!r}: use mean, max or mean,max")
    if args.folds < 2 or args.inner_folds < 2:
        raise ConfigError("--folds and --inner-folds must be ≥ 2")
    cfg = ProbeConfig(
        n_splits=args.folds,
        inner_splits=args.inner_folds,
        Cs=tuple(args.Cs),
        seed=args.seed,
        pooling=pooling,
        clip_s=args.clip_seconds,
        baselines=not args.no_baselines,
    )
    rows = read_genres(args.genres) if args.genres else None
    split = read_split_file(args.split) if args.split else None
    with _open_index(args) as (store, _):
        table = load_shots(store)
    res = genre_probe(table, rows, cfg, split)
    rep = _report(args, "Genre linear probe")
    rep.write_json(
        "config",
        {"args": _args_dict(args), "probe": vars(cfg), "index_meta": _meta_brief(table.meta)},
    )
    for n in res.notes:
        rep.note(n)
    rep.note(
        "a genre's AP counts in a fold only when the fold's test samples include both positives "
        "and negatives; mAP_mean/std are over folds, mAP_pooled over all out-of-fold predictions "
        "at once; F1 uses the threshold tuned on inner out-of-fold predictions of the training part"
    )
    rep.table(
        "summary",
        res.summary,
        "mAP and F1 per feature type (mean ± std over folds)",
        in_summary=True,
    )
    rep.table("per_genre", res.per_genre, "AP per genre and feature type")
    rep.table("per_fold", res.per_fold, "metrics per fold", show=False)
    rep.table("folds", res.folds, "test fold of every sample (no film is in two folds)", show=False)
    for w in res.warnings:
        rep.warn(w)
    rep.figure("per_genre_ap", per_genre_plot(res), "AP per genre for each feature type")
    rep.write_summary()
    return 0


# ------------------------------------------------------------------------------ scenes
def cmd_scenes(args) -> int:
    import polars as pl  # lazy: the other commands start faster without it

    from scenesearch.eval.features import load_shots
    from scenesearch.eval.scenes import (
        evaluate_scenes,
        load_label_map_150,
        per_label_plot,
        read_ground_truth,
    )

    l150 = load_label_map_150(args.label_map)
    gt = read_ground_truth(args.labels, l150, args.shot_times)
    with _open_index(args) as (store, _):
        table = load_shots(store)
    evals, matched, warns = evaluate_scenes(gt, table, args.min_coverage, l150)
    rep = _report(args, "Scene recognition")
    rep.write_json("config", {"args": _args_dict(args), "index_meta": _meta_brief(table.meta)})
    rep.note(
        f"{len(matched.gt)} of {len(gt.shots)} ground-truth shots matched to indexed shots "
        f"({'time overlap, overlap-weighted scores' if any(g.start_s is not None for g in matched.gt) else 'by shot id/index'})"
    )
    rep.note(
        "mAP = mean over labels with ≥ 1 positive of sklearn's average_precision_score (MovieCLIP's "
        "metric); top-k accuracy = share of shots whose k best labels include a true one; "
        "clean F1 = the stored clean labels as predictions"
    )
    if table.meta.get("pretrained") == "random":
        rep.warn("the index was built with random weights: its scene scores are meaningless")
    rep.table(
        "summary",
        pl.DataFrame([ev.summary for ev in evals]),
        "scene recognition per label space",
        in_summary=True,
    )
    for ev in evals:
        rep.table(f"per_label_{ev.space}", ev.per_label, f"AP per label ({ev.space})", show=False)
        rep.table(
            f"confusion_{ev.space}",
            ev.confusion,
            f"most frequent wrong top-1 labels ({ev.space})",
            show=ev is evals[-1],
        )
    rep.table(
        "matches",
        pl.DataFrame(
            {
                "gt": [g.source for g in matched.gt],
                "movie": [g.movie for g in matched.gt],
                "labels": [list(g.labels) for g in matched.gt],
                "shots": [list(s) for s in matched.shot_ids],
            },
            schema={
                "gt": pl.String,
                "movie": pl.String,
                "labels": pl.List(pl.String),
                "shots": pl.List(pl.String),
            },
        ),
        "indexed shots used for each ground-truth shot",
        show=False,
    )
    if matched.unmatched:
        rep.table(
            "unmatched",
            pl.DataFrame(
                {
                    "gt": [g.source for g, _ in matched.unmatched],
                    "movie": [g.movie for g, _ in matched.unmatched],
                    "reason": [r for _, r in matched.unmatched],
                }
            ),
            "ground-truth shots without an indexed shot",
            show=False,
        )
    for w in warns:
        rep.warn(w)
    rep.figure("per_label_ap", per_label_plot(evals), "AP per label (labels with positives)")
    rep.write_summary()
    return 0


# ------------------------------------------------------------------------------ shots
def cmd_shots(args) -> int:
    from dataclasses import replace

    import polars as pl  # lazy: the other commands start faster without it

    from scenesearch.eval.shot_eval import (
        evaluate_detectors,
        f1_plot,
        read_cuts,
        shot_config_variants,
    )
    from scenesearch.indexer.config import DecodeConfig, ShotConfig

    video = Path(args.video)
    if not video.is_file():
        raise InputError(f"video not found: {video}")
    if args.tolerance < 0:
        raise ConfigError("--tolerance must be ≥ 0")
    base = ShotConfig()
    over = {
        "content_threshold": args.threshold,
        "adaptive_threshold": args.adaptive_threshold,
        "hash_threshold": args.hash_threshold,
        "histogram_threshold": args.histogram_threshold,
        "fade_threshold": args.fade_threshold,
        "min_shot_s": args.min_shot_s,
    }
    base = replace(base, **{k: v for k, v in over.items() if v is not None})
    configs = shot_config_variants(base, args.detector)
    truth = read_cuts(args.truth)
    tols = sorted({0, args.tolerance, 5})
    table, details, runs = evaluate_detectors(
        video, truth, configs, tols, DecodeConfig(), primary=args.tolerance
    )
    rep = _report(args, f"Shot boundaries: {video.name}")
    rep.write_json("config", {"args": _args_dict(args), "shot_configs": [vars(c) for c in configs]})
    rep.note(
        f"truth: {truth.source} ({len(truth.to_frames(runs[0].fps, runs[0].t0))} cuts); video {runs[0].fps:g} fps, "
        f"{runs[0].n_frames} frames"
    )
    rep.note(
        "cut = first frame of every shot but the first; one-to-one matching within ± tolerance frames "
        "(greedy in time order, which is a maximum matching on a line)"
    )
    rep.table(
        "scores", table, "precision / recall / F1 per detector and tolerance", in_summary=True
    )
    rep.table(
        "cuts",
        pl.concat(details, how="diagonal"),
        f"every cut at ±{args.tolerance} frames: match, missed or false positive",
        show=False,
    )
    rep.figure("f1_vs_tolerance", f1_plot(table), "F1, precision and recall against tolerance")
    rep.write_summary()
    return 0


# ------------------------------------------------------------------------------ transitions
def cmd_transitions(args) -> int:
    import os
    import time

    from scenesearch.eval.transitions import DEFAULT_SPECS, benchmark, shot_config, write

    specs = args.detector or list(DEFAULT_SPECS)
    for s in specs:
        shot_config(s)  # a typo fails now, not after minutes of clip building
    corpus = Path(
        args.corpus
        or os.environ.get("SCENESEARCH_CORPUS")
        or Path(__file__).resolve().parents[1].parent / "shared" / "corpus"
    )
    if not (corpus / "video").is_dir():
        raise InputError(f"corpus not found: {corpus} (give --corpus DIR)")
    out = Path(args.out)
    t0 = time.perf_counter()
    log = (lambda m: None) if args.quiet else (lambda m: print(m, flush=True))

    def partial(done, tallies, note):  # a report after every clip: long runs show progress
        write(out, done, tallies, args.seed, time.perf_counter() - t0, note)

    clips, tallies = benchmark(
        specs, Path(args.clips) if args.clips else out / "clips", corpus, args.seed,
        with_corpus=not args.no_corpus, log=log, progress=partial,
    )  # fmt: skip
    path = write(out, clips, tallies, args.seed, time.perf_counter() - t0)
    print(f"report written to {path}/ (report.md)")
    return 0


# ------------------------------------------------------------------------------ retrieval
def cmd_retrieval(args) -> int:
    from scenesearch.eval.features import load_shots
    from scenesearch.eval.retrieval import (
        evaluate_queries,
        label_queries,
        read_queries,
        summary_plot,
    )
    from scenesearch.eval.scenes import load_label_map_150, read_ground_truth, shot_labels_from_gt
    from scenesearch.indexer.config import env_defaults, resolve_device
    from scenesearch.search.engine import SearchEngine

    if min(args.ks) < 1:
        raise ConfigError("--k values must be ≥ 1")
    relevance = args.relevance
    if relevance == "auto":
        relevance = "human" if args.labels else "weak"
    if relevance == "human" and not args.labels:
        raise ConfigError("--relevance human needs --labels FILE")
    device = resolve_device(args.device or env_defaults()["device"])
    rep = _report(args, "Text retrieval")
    with _open_index(args) as (store, cfg):
        table = load_shots(store, vectors=("scenes",))
        if relevance == "human":
            gt = read_ground_truth(args.labels, load_label_map_150())
            shot_labels = shot_labels_from_gt(gt.shots, table)
            if not shot_labels:
                raise InputError(
                    "no scene label matched an indexed shot (check movie names and times)"
                )
            rep.note(
                f"relevance: human labels from {args.labels} ({len(shot_labels)} labelled shots)"
            )
        else:
            shot_labels = {
                sid: set(ls) for sid, ls in zip(table.shot_ids, table.labels, strict=True) if ls
            }
            rep.warn(
                "relevance from the index's own weak labels: circular (the same CLIP model made them); "
                "a consistency check of text search, not a measure against human judgement"
            )
        queries = (
            read_queries(args.queries, shot_labels)
            if args.queries
            else label_queries(shot_labels, args.template, args.min_relevant)
        )
        if not queries:
            raise InputError("no query to run: no label has a shot")
        engine = SearchEngine(store, cfg.index_dir, device=device)

        def search_fn(text: str, k: int) -> list[str]:
            return [h.shot_id for h in engine.search(text=text, limit=k).hits]

        res = evaluate_queries(queries, search_fn, args.ks)
    rep.write_json(
        "config",
        {"args": _args_dict(args), "device": device, "index_meta": _meta_brief(table.meta)},
    )
    rep.note(
        f"{len(queries)} queries ({'from ' + args.queries if args.queries else 'one per label: ' + repr(args.template)}) "
        f"over {len(table)} shots; text search = the index's CLIP model + vector search (search.engine)"
    )
    rep.note(
        "recall@k = |top k ∩ relevant| / |relevant| (IR recall); hit@k = 1 if any relevant shot is in the "
        "top k (the R@k of text-to-video papers); mAP@k normalised by min(|relevant|, k); binary nDCG@k; "
        "MRR over the top max(k)"
    )
    if table.meta.get("pretrained") == "random":
        rep.warn("the index was built with random weights: retrieval numbers are meaningless")
    if res.skipped:
        rep.warn(f"{len(res.skipped)} queries have no relevant shot and are not averaged")
    rep.table("summary", res.summary, "retrieval metrics (mean over queries)", in_summary=True)
    rep.table("per_query", res.per_query, "metrics per query", show=False)
    rep.figure("retrieval_at_k", summary_plot(res, args.ks), "metrics against k")
    rep.write_summary()
    return 0


def _meta_brief(meta: dict) -> dict:
    """The index metadata without the 179-name label list (kept short in config.json)."""
    out = {k: v for k, v in meta.items() if k != "taxonomy"}
    tax = meta.get("taxonomy") or {}
    out["taxonomy"] = {
        "source": tax.get("source"),
        "sha": tax.get("sha"),
        "n_labels": len(tax.get("labels") or []),
    }
    return out
