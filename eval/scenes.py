"""Scene recognition: the index's weak scene scores against human scene labels, as in MovieCLIP.

Ground truth (read by eval/scene_truth.py) is a CSV/Parquet table or MovieCLIP's split files.
Ground-truth shots are mapped to indexed shots by
time overlap (or directly by shot id / index), and scored with the stored ``scenes`` vectors:
mAP over classes (sklearn AP per class; classes with no positive are excluded and listed), top-1
and top-5 accuracy, AP per label, a confusion summary, and the micro/macro F1 of the stored clean
labels. Both the 179-label taxonomy and MovieCLIP's 150-label projection are evaluated; the
projection merges "interrogation room" into "room" and "phone booth" into "booth" (scores summed:
the probability of the merged class) and drops the 27 labels their splits do not use.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np
import polars as pl

from scenesearch.eval.features import ShotTable
from scenesearch.eval.metrics import f1_at_threshold, mean_average_precision, topk_accuracy
from scenesearch.eval.scene_truth import (
    GroundTruth,
    GtShot,
    load_label_map_150,
    project_names,
    projection_matrix,
)
from scenesearch.indexer.errors import InputError

# ---------------------------------------------------------------------------- matching


def overlap_seconds(start: float, end: float, starts: np.ndarray, ends: np.ndarray) -> np.ndarray:
    """``max(0, min(end, e_i) − max(start, s_i))`` for every interval [s_i, e_i)."""
    return np.maximum(0.0, np.minimum(end, ends) - np.maximum(start, starts))


@dataclass
class Matched:
    """Ground-truth shots that found indexed shots, with the scores they are evaluated on."""

    gt: list[GtShot]
    scores: np.ndarray  # [n, L] overlap-weighted mean of the indexed shots' scenes vectors
    clean: list[tuple[str, ...]]  # clean labels of the best-overlapping indexed shot
    shot_ids: list[tuple[str, ...]]  # indexed shots used for each
    unmatched: list[tuple[GtShot, str]] = field(default_factory=list)


def match_to_index(gt: Sequence[GtShot], table: ShotTable, min_coverage: float = 0.5) -> Matched:
    """Find the indexed shots of each ground-truth shot.

    By ``shot_id`` or ``shot_index``: that shot. By time range: every indexed shot of the movie
    overlapping it; its score vector is the overlap-weighted mean ``Σ o_i S_i / Σ o_i`` (so a
    ground-truth shot the detector split in two still gets one score), and it is left unmatched
    when the indexed shots cover less than ``min_coverage`` of the range.
    """
    S = table.vectors["scenes"].astype(np.float64)
    by_id = {sid: i for i, sid in enumerate(table.shot_ids)}
    rows_of: dict[str, np.ndarray] = {}
    out_gt, scores, clean, used, unmatched = [], [], [], [], []
    for g in gt:
        if g.shot_id and g.shot_id in by_id:
            i = by_id[g.shot_id]
            out_gt.append(g)
            scores.append(S[i])
            clean.append(table.labels[i])
            used.append((table.shot_ids[i],))
            continue
        mid = table.resolve_movie(g.movie)
        if mid is None:
            unmatched.append((g, "movie not in the index"))
            continue
        rows = rows_of.setdefault(mid, table.rows_of_movie(mid))
        if g.shot_index is not None and g.start_s is None:
            hit = rows[table.shot_index[rows] == g.shot_index]
            if not len(hit):
                unmatched.append((g, f"no shot {g.shot_index} in the index"))
                continue
            i = int(hit[0])
            out_gt.append(g)
            scores.append(S[i])
            clean.append(table.labels[i])
            used.append((table.shot_ids[i],))
            continue
        if g.start_s is None or g.end_s is None:
            unmatched.append((g, "no time range, shot id or shot index"))
            continue
        o = overlap_seconds(g.start_s, g.end_s, table.start_s[rows], table.end_s[rows])
        cov = o.sum() / (g.end_s - g.start_s)
        if cov < min_coverage:
            unmatched.append((g, f"indexed shots cover {cov:.0%} of the range"))
            continue
        w = o / o.sum()
        sel = rows[o > 0]
        out_gt.append(g)
        scores.append(w[o > 0] @ S[sel])
        clean.append(table.labels[int(rows[np.argmax(o)])])
        used.append(tuple(table.shot_ids[i] for i in sel))
    L = S.shape[1]
    return Matched(out_gt, np.array(scores).reshape(-1, L), clean, used, unmatched)


def shot_labels_from_gt(
    gt: Sequence[GtShot], table: ShotTable, min_fraction: float = 0.5
) -> dict[str, set[str]]:
    """Ground-truth labels of *indexed* shots (for retrieval relevance): a shot named by id or
    index takes that row's labels; an indexed shot lying ≥ ``min_fraction`` inside a
    ground-truth time range takes the range's labels."""
    out: dict[str, set[str]] = {}
    by_id = {sid: i for i, sid in enumerate(table.shot_ids)}
    for g in gt:
        if g.shot_id and g.shot_id in by_id:
            out.setdefault(g.shot_id, set()).update(g.labels)
            continue
        mid = table.resolve_movie(g.movie)
        if mid is None:
            continue
        rows = table.rows_of_movie(mid)
        if g.shot_index is not None and g.start_s is None:
            for i in rows[table.shot_index[rows] == g.shot_index]:
                out.setdefault(table.shot_ids[i], set()).update(g.labels)
            continue
        if g.start_s is None or g.end_s is None:
            continue
        o = overlap_seconds(g.start_s, g.end_s, table.start_s[rows], table.end_s[rows])
        dur = np.maximum(table.end_s[rows] - table.start_s[rows], 1e-9)
        for i in rows[o / dur >= min_fraction]:
            out.setdefault(table.shot_ids[i], set()).update(g.labels)
    return out


# ---------------------------------------------------------------------------- evaluation


@dataclass
class SceneEval:
    space: str
    summary: dict  # mAP, top-1, top-5, clean-label F1, counts
    per_label: pl.DataFrame  # label, positives, ap (nan: no positive, excluded from mAP)
    confusion: pl.DataFrame  # true label, top-1 predicted label not in the truth, count
    excluded: list[str]  # labels without positives
    unknown: list[str]  # ground-truth labels outside the label space


def binarize(
    label_sets: Sequence[Sequence[str]], names: Sequence[str]
) -> tuple[np.ndarray, list[str]]:
    """[n, L] 0/1 matrix of label sets; names outside ``names`` are returned, not encoded."""
    j = {n: k for k, n in enumerate(names)}
    Y = np.zeros((len(label_sets), len(names)), dtype=int)
    unknown: Counter[str] = Counter()
    for i, ls in enumerate(label_sets):
        for n in ls:
            if n in j:
                Y[i, j[n]] = 1
            else:
                unknown[n] += 1
    return Y, sorted(unknown)


def evaluate_scores(
    truth: Sequence[Sequence[str]],
    scores: np.ndarray,
    names: Sequence[str],
    clean: Sequence[Sequence[str]] | None = None,
    space: str = "",
    top_confusions: int = 40,
) -> SceneEval:
    """MovieCLIP's metrics for score vectors ``scores`` [n, L] against label sets ``truth``."""
    Y, unknown = binarize(truth, names)
    m = mean_average_precision(Y, scores)
    pos = Y.sum(axis=0)
    top1 = np.argmax(scores, axis=1) if len(scores) else np.array([], dtype=int)
    pred_count = np.bincount(top1, minlength=len(names))
    per = pl.DataFrame(
        {
            "label": list(names),
            "positives": pos.tolist(),
            "ap": m.per_class.tolist(),
            "predicted_top1": pred_count.tolist(),
        }
    )
    per = per.with_columns(pl.col("ap").fill_nan(None))  # null sorts last and is JSON-safe
    per = per.sort(["ap", "positives"], descending=[True, True], nulls_last=True)
    conf: Counter[tuple[str, str]] = Counter()
    for i, t in enumerate(top1):
        if Y[i].any() and not Y[i, t]:
            for lab in np.flatnonzero(Y[i]):
                conf[(names[lab], names[t])] += 1
    rows = [
        {"true_label": a, "predicted_top1": b, "count": c, "share_of_true": c / pos[names.index(a)]}
        for (a, b), c in conf.most_common(top_confusions)
    ]
    confusion = pl.DataFrame(
        rows,
        schema={
            "true_label": pl.String,
            "predicted_top1": pl.String,
            "count": pl.Int64,
            "share_of_true": pl.Float64,
        },
    )
    summary = {
        "space": space,
        "samples": len(Y),
        "labels_scored": m.n_classes,
        "labels_excluded": len(m.excluded),
        "mAP": m.value,
        "top1_acc": topk_accuracy(Y, scores, 1),
        "top5_acc": topk_accuracy(Y, scores, 5),
    }
    if clean is not None:
        C, _ = binarize(clean, names)
        f = f1_at_threshold(Y, C, 0.5)
        summary["clean_micro_f1"] = f.micro
        scored = pos > 0
        summary["clean_macro_f1"] = (
            float(f.per_class[scored].mean()) if scored.any() else float("nan")
        )
    return SceneEval(space, summary, per, confusion, [names[c] for c in m.excluded], unknown)


def evaluate_scenes(
    gt: GroundTruth,
    table: ShotTable,
    min_coverage: float = 0.5,
    label_map: Sequence[str] | None = None,
) -> tuple[list[SceneEval], Matched, list[str]]:
    """Match the ground truth to the index and evaluate the taxonomy and/or the 150-label
    projection. Returns (evaluations, matches, warnings)."""
    warns: list[str] = []
    matched = match_to_index(gt.shots, table, min_coverage)
    if matched.unmatched:
        reasons = Counter(r for _, r in matched.unmatched)
        warns.append(
            f"{len(matched.unmatched)} of {len(gt.shots)} ground-truth shots not matched to the "
            f"index ({'; '.join(f'{c}× {r}' for r, c in reasons.most_common(4))})"
        )
    if not matched.gt:
        raise InputError(
            "no ground-truth shot matched an indexed shot (check movie names and times)"
        )
    names = table.label_names
    truth = [g.labels for g in matched.gt]
    evals = []
    l150 = tuple(label_map) if label_map else load_label_map_150()
    is_movieclip = len(names) == 179 and set(l150) <= set(names)
    if gt.space == "taxonomy":
        ev = evaluate_scores(truth, matched.scores, names, matched.clean, f"taxonomy-{len(names)}")
        if ev.unknown:
            warns.append(
                f"ground-truth labels not in the index taxonomy (ignored): {', '.join(ev.unknown[:10])}"
            )
        evals.append(ev)
    else:
        warns.append(
            "ground truth uses the 150-label map: only the 150-label projection is evaluated"
        )
    if is_movieclip:
        M = projection_matrix(names, l150)
        t150 = [project_names(t, l150) for t in truth]
        c150 = [project_names(c, l150) for c in matched.clean]
        evals.append(evaluate_scores(t150, matched.scores @ M, l150, c150, "movieclip-150"))
    elif gt.space != "taxonomy":
        raise InputError(
            "the ground truth uses MovieCLIP's 150-label map but the index was labelled "
            "with another taxonomy"
        )
    else:
        warns.append("the index taxonomy is not MovieCLIP's 179 labels: no 150-label projection")
    for ev in evals:
        if ev.excluded:
            warns.append(
                f"{ev.space}: {len(ev.excluded)} labels have no positive shot and are excluded "
                "from mAP (listed in per_label with an empty ap)"
            )
    return evals, matched, warns


def per_label_plot(evals: Sequence[SceneEval]):
    """AP per label (labels with positives) for each label space, side by side."""
    from scenesearch.eval.report import bar_plot

    values = {
        ev.space: {
            r["label"]: r["ap"] for r in ev.per_label.iter_rows(named=True) if r["positives"] > 0
        }
        for ev in evals
    }
    return bar_plot(values, "Scene recognition: AP per label")
