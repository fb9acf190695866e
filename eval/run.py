"""The five evaluations end to end: read the inputs, run the measurement, write the report folder
(tables as CSV/Parquet/JSON, PNG plots, ``config.json`` and ``summary.md``; see eval/report.py).

``scenesearch eval genre|scenes|shots|transitions|retrieval`` (ui/cli_eval.py) parses its options
and calls one ``run_*`` function here; the functions take typed inputs, so a notebook or a test
can run an evaluation without the CLI. ``options`` is what ``config.json`` records as the run's
arguments (the CLI passes its parsed options).
"""

from __future__ import annotations

import contextlib
import os
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import replace
from pathlib import Path
from typing import Any

from scenesearch.eval.genre import ProbeConfig
from scenesearch.eval.report import Report
from scenesearch.eval.retrieval import DEFAULT_KS, DEFAULT_TEMPLATE
from scenesearch.indexer.config import StoreConfig
from scenesearch.indexer.errors import InputError
from scenesearch.indexer.store import ShotStore

DEFAULT_MIN_COVERAGE = 0.5  # share of a ground-truth range the indexed shots must cover
DEFAULT_TOLERANCE = 1  # shot-boundary match tolerance in frames (0 and 5 are always reported)


@contextlib.contextmanager
def open_index(cfg: StoreConfig) -> Iterator[ShotStore]:
    """Open an existing index for reading; :class:`InputError` when there is none."""
    from scenesearch.indexer.store import open_store

    if not cfg.qdrant_url and not Path(cfg.index_dir).exists():
        raise InputError(f"no index at {cfg.index_dir} (--index DIR)")
    store = open_store(cfg)
    try:
        if not store.exists():
            raise InputError(
                f"no index at {cfg.index_dir or cfg.qdrant_url}: index some movies first"
            )
        yield store
    finally:
        store.close()


def meta_brief(meta: dict) -> dict:
    """The index metadata without the 179-name label list (kept short in config.json)."""
    out = {k: v for k, v in meta.items() if k != "taxonomy"}
    tax = meta.get("taxonomy") or {}
    out["taxonomy"] = {
        "source": tax.get("source"),
        "sha": tax.get("sha"),
        "n_labels": len(tax.get("labels") or []),
    }
    return out


# ------------------------------------------------------------------------------ genre
def run_genre(
    store: ShotStore,
    probe: ProbeConfig,
    out: str | Path,
    *,
    genres_file: str | None = None,
    split_file: str | None = None,
    quiet: bool = False,
    options: dict[str, Any] | None = None,
) -> Path:
    """Genre linear probe on the index's pooled features; returns the summary path."""
    from scenesearch.eval.features import load_shots
    from scenesearch.eval.genre import genre_probe, per_genre_plot
    from scenesearch.eval.genre_data import read_genres, read_split_file

    rows = read_genres(genres_file) if genres_file else None
    split = read_split_file(split_file) if split_file else None
    table = load_shots(store)
    res = genre_probe(table, rows, probe, split)
    rep = Report(Path(out), title="Genre linear probe", quiet=quiet)
    rep.write_json(
        "config",
        {"args": options or {}, "probe": vars(probe), "index_meta": meta_brief(table.meta)},
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
    return rep.write_summary()


# ------------------------------------------------------------------------------ scenes
def run_scenes(
    store: ShotStore,
    labels_file: str,
    out: str | Path,
    *,
    label_map: str | None = None,
    shot_times: str | None = None,
    min_coverage: float = DEFAULT_MIN_COVERAGE,
    quiet: bool = False,
    options: dict[str, Any] | None = None,
) -> Path:
    """Scene-recognition mAP of the stored label scores against ``labels_file``."""
    import polars as pl  # lazy: the other evaluations start faster without it

    from scenesearch.eval.features import load_shots
    from scenesearch.eval.scene_truth import load_label_map_150, read_ground_truth
    from scenesearch.eval.scenes import evaluate_scenes, per_label_plot

    l150 = load_label_map_150(label_map)
    gt = read_ground_truth(labels_file, l150, shot_times)
    table = load_shots(store)
    evals, matched, warns = evaluate_scenes(gt, table, min_coverage, l150)
    rep = Report(Path(out), title="Scene recognition", quiet=quiet)
    rep.write_json("config", {"args": options or {}, "index_meta": meta_brief(table.meta)})
    by_time = any(g.start_s is not None for g in matched.gt)
    rep.note(
        f"{len(matched.gt)} of {len(gt.shots)} ground-truth shots matched to indexed shots "
        f"({'time overlap, overlap-weighted scores' if by_time else 'by shot id/index'})"
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
    return rep.write_summary()


# ------------------------------------------------------------------------------ shots
def run_shots(
    video: str | Path,
    truth_file: str,
    out: str | Path,
    *,
    detectors: Sequence[str] | None = None,
    overrides: dict[str, Any] | None = None,
    tolerance: int = DEFAULT_TOLERANCE,
    quiet: bool = False,
    options: dict[str, Any] | None = None,
) -> Path:
    """Shot-boundary precision/recall/F1 of each detector spec (the indexer's by default, with
    ``overrides`` of its ShotConfig fields) against the cuts in ``truth_file``."""
    import polars as pl  # lazy: the other evaluations start faster without it

    from scenesearch.eval.shot_eval import (
        evaluate_detectors,
        f1_plot,
        read_cuts,
        shot_config_variants,
    )
    from scenesearch.indexer.config import DecodeConfig, ShotConfig

    video = Path(video)
    if not video.is_file():
        raise InputError(f"video not found: {video}")
    given = {k: v for k, v in (overrides or {}).items() if v is not None}
    configs = shot_config_variants(replace(ShotConfig(), **given), detectors)
    truth = read_cuts(truth_file)
    tols = sorted({0, tolerance, 5})
    table, details, runs = evaluate_detectors(
        video, truth, configs, tols, DecodeConfig(), primary=tolerance
    )
    rep = Report(Path(out), title=f"Shot boundaries: {video.name}", quiet=quiet)
    rep.write_json("config", {"args": options or {}, "shot_configs": [vars(c) for c in configs]})
    n_truth = len(truth.to_frames(runs[0].fps, runs[0].t0))
    rep.note(
        f"truth: {truth.source} ({n_truth} cuts); video {runs[0].fps:g} fps, "
        f"{runs[0].n_frames} frames"
    )
    rep.note(
        "cut = first frame of every shot but the first; one-to-one matching within ± tolerance "
        "frames (greedy in time order, which is a maximum matching on a line)"
    )
    rep.table(
        "scores", table, "precision / recall / F1 per detector and tolerance", in_summary=True
    )
    rep.table(
        "cuts",
        pl.concat(details, how="diagonal"),
        f"every cut at ±{tolerance} frames: match, missed or false positive",
        show=False,
    )
    rep.figure("f1_vs_tolerance", f1_plot(table), "F1, precision and recall against tolerance")
    return rep.write_summary()


# ------------------------------------------------------------------------------ transitions
def default_corpus() -> Path:
    """``$SCENESEARCH_CORPUS``, else ``../shared/corpus`` beside the source checkout."""
    env = os.environ.get("SCENESEARCH_CORPUS")
    return Path(env) if env else Path(__file__).resolve().parents[1].parent / "shared" / "corpus"


def run_transitions(
    specs: Sequence[str] | None,
    out: str | Path,
    *,
    corpus: str | Path | None = None,
    clips: str | Path | None = None,
    seed: int = 0,
    with_corpus: bool = True,
    log: Callable[[str], None] | None = None,
) -> Path:
    """Score shot-detector configurations (default: eval.transitions.DEFAULT_SPECS) on seeded
    clips of corpus footage joined by known transitions, plus the annotated corpus clips;
    rewrites the report after every clip (long runs show progress). Returns the report folder."""
    from scenesearch.eval.transitions import DEFAULT_SPECS, benchmark, write
    from scenesearch.indexer.detectors import config_from_label

    specs = list(specs or DEFAULT_SPECS)
    for s in specs:
        config_from_label(s)  # a typo fails now, not after minutes of clip building
    corpus = Path(corpus) if corpus else default_corpus()
    if not (corpus / "video").is_dir():
        raise InputError(f"corpus not found: {corpus} (give --corpus DIR)")
    out = Path(out)
    t0 = time.perf_counter()

    def partial(done, tallies, note):
        write(out, done, tallies, seed, time.perf_counter() - t0, note)

    done, tallies = benchmark(
        specs, Path(clips) if clips else out / "clips", corpus, seed,
        with_corpus=with_corpus, log=log or (lambda _m: None), progress=partial,
    )  # fmt: skip
    return write(out, done, tallies, seed, time.perf_counter() - t0)


# ------------------------------------------------------------------------------ retrieval
def run_retrieval(
    store: ShotStore,
    index_dir: str,
    out: str | Path,
    *,
    relevance: str = "weak",
    labels_file: str | None = None,
    queries_file: str | None = None,
    template: str = DEFAULT_TEMPLATE,
    ks: Sequence[int] = DEFAULT_KS,
    min_relevant: int = 1,
    device: str = "cpu",
    quiet: bool = False,
    options: dict[str, Any] | None = None,
) -> Path:
    """Text-query retrieval metrics through the index's own text search. ``relevance``:
    ``human`` (the scene labels in ``labels_file``) or ``weak`` (the index's clean labels)."""
    from scenesearch.eval.features import load_shots
    from scenesearch.eval.retrieval import (
        evaluate_queries,
        label_queries,
        read_queries,
        summary_plot,
    )
    from scenesearch.eval.scene_truth import load_label_map_150, read_ground_truth
    from scenesearch.eval.scenes import shot_labels_from_gt
    from scenesearch.search.engine import SearchEngine

    rep = Report(Path(out), title="Text retrieval", quiet=quiet)
    table = load_shots(store, vectors=("scenes",))
    if relevance == "human":
        gt = read_ground_truth(labels_file, load_label_map_150())
        shot_labels = shot_labels_from_gt(gt.shots, table)
        if not shot_labels:
            raise InputError("no scene label matched an indexed shot (check movie names and times)")
        rep.note(f"relevance: human labels from {labels_file} ({len(shot_labels)} labelled shots)")
    else:
        shot_labels = {
            sid: set(ls) for sid, ls in zip(table.shot_ids, table.labels, strict=True) if ls
        }
        rep.warn(
            "relevance from the index's own weak labels: circular (the same CLIP model made "
            "them); a consistency check of text search, not a measure against human judgement"
        )
    queries = (
        read_queries(queries_file, shot_labels)
        if queries_file
        else label_queries(shot_labels, template, min_relevant)
    )
    if not queries:
        raise InputError("no query to run: no label has a shot")
    engine = SearchEngine(store, index_dir, device=device)

    def search_fn(text: str, k: int) -> list[str]:
        return [h.shot_id for h in engine.search(text=text, limit=k).hits]

    res = evaluate_queries(queries, search_fn, ks)
    rep.write_json(
        "config",
        {"args": options or {}, "device": device, "index_meta": meta_brief(table.meta)},
    )
    source = f"from {queries_file}" if queries_file else f"one per label: {template!r}"
    rep.note(
        f"{len(queries)} queries ({source}) over {len(table)} shots; text search = the index's "
        "CLIP model + vector search (search.engine)"
    )
    rep.note(
        "recall@k = |top k ∩ relevant| / |relevant| (IR recall); hit@k = 1 if any relevant shot "
        "is in the top k (the R@k of text-to-video papers); mAP@k normalised by "
        "min(|relevant|, k); binary nDCG@k; MRR over the top max(k)"
    )
    if table.meta.get("pretrained") == "random":
        rep.warn("the index was built with random weights: retrieval numbers are meaningless")
    if res.skipped:
        rep.warn(f"{len(res.skipped)} queries have no relevant shot and are not averaged")
    rep.table("summary", res.summary, "retrieval metrics (mean over queries)", in_summary=True)
    rep.table("per_query", res.per_query, "metrics per query", show=False)
    rep.figure("retrieval_at_k", summary_plot(res, ks), "metrics against k")
    return rep.write_summary()
