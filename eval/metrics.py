"""Evaluation metrics as small pure functions over numpy arrays and id lists.

Each function states its formula and its conventions for empty or degenerate inputs in its
docstring; the tests check each one against a hand-computed value and, where one exists, against
a reference implementation (scikit-learn's ``average_precision_score`` for AP, a brute-force
maximum matching for cut matching). Nothing here reads files, stores or models.
"""

from __future__ import annotations

import bisect
from collections.abc import Collection, Sequence
from dataclasses import dataclass

import numpy as np

# ------------------------------------------------------------------------- ranking of scores


def average_precision(
    y_true: Sequence[int] | np.ndarray, y_score: Sequence[float] | np.ndarray
) -> float:
    """Average precision of one binary label, exactly as scikit-learn computes it.

    ``AP = Σ_n (R_n − R_{n−1}) · P_n`` over the distinct score thresholds taken in decreasing
    order, where ``P_n`` and ``R_n`` are the precision and recall of predicting positive every
    sample scored ≥ the n-th threshold (tied scores enter together, no interpolation).
    Returns ``nan`` when there is no positive (AP is undefined; callers exclude such classes).
    """
    y = np.asarray(y_true).astype(bool).ravel()
    s = np.asarray(y_score, dtype=np.float64).ravel()
    if y.shape != s.shape:
        raise ValueError(f"y_true and y_score differ in length: {y.shape} vs {s.shape}")
    n_pos = int(y.sum())
    if n_pos == 0:
        return float("nan")
    order = np.argsort(-s, kind="mergesort")
    s, y = s[order], y[order]
    # the last index of each run of tied scores is where a threshold takes effect
    last = np.r_[np.flatnonzero(np.diff(s)), len(s) - 1]
    tp = np.cumsum(y)[last]
    predicted = last + 1
    precision = tp / predicted
    recall = tp / n_pos
    return float(np.sum(np.diff(np.r_[0.0, recall]) * precision))


@dataclass(frozen=True)
class MeanAP:
    """mAP over classes with at least one positive, and which classes were left out."""

    value: float  # nan when no class has a positive
    per_class: np.ndarray  # AP per class, nan where the class has no positive
    excluded: tuple[int, ...]  # class indices without positives (not in the mean)

    @property
    def n_classes(self) -> int:
        return int(np.sum(~np.isnan(self.per_class)))


def mean_average_precision(y_true: np.ndarray, y_score: np.ndarray) -> MeanAP:
    """Macro mAP: ``mAP = (1/|C⁺|) Σ_{c∈C⁺} AP_c`` with ``C⁺`` the classes having ≥ 1 positive.

    This is MovieCLIP's metric (the mean over classes of sklearn's ``average_precision_score``);
    classes with no positive have undefined AP, so they are excluded and listed in ``excluded``.
    ``y_true`` is a binary [n_samples, n_classes] matrix, ``y_score`` real scores of that shape.
    """
    y_true = np.asarray(y_true)
    y_score = np.asarray(y_score)
    if y_true.ndim != 2 or y_true.shape != y_score.shape:
        raise ValueError(
            f"need two [n, C] arrays of one shape, got {y_true.shape} and {y_score.shape}"
        )
    per = np.array([average_precision(y_true[:, c], y_score[:, c]) for c in range(y_true.shape[1])])
    excluded = tuple(int(c) for c in np.flatnonzero(np.isnan(per)))
    value = float(np.nanmean(per)) if len(excluded) < len(per) else float("nan")
    return MeanAP(value, per, excluded)


def topk_accuracy(y_true: np.ndarray, y_score: np.ndarray, k: int = 1) -> float:
    """Multi-label top-k accuracy: the share of samples whose k highest-scored classes include
    at least one true class, ``(1/|S⁺|) Σ_{i∈S⁺} 1[topk(s_i) ∩ Y_i ≠ ∅]``.

    ``S⁺`` are the samples with at least one true class (others are skipped); ties are broken
    by class order. Returns ``nan`` when no sample has a true class.
    """
    y_true = np.asarray(y_true).astype(bool)
    y_score = np.asarray(y_score, dtype=np.float64)
    keep = y_true.any(axis=1)
    if not keep.any():
        return float("nan")
    y_true, y_score = y_true[keep], y_score[keep]
    top = np.argsort(-y_score, axis=1, kind="stable")[:, :k]
    hit = np.take_along_axis(y_true, top, axis=1).any(axis=1)
    return float(hit.mean())


# ------------------------------------------------------------------------- thresholded F1


def prf(tp: int, fp: int, fn: int) -> tuple[float, float, float]:
    """Precision ``tp/(tp+fp)``, recall ``tp/(tp+fn)``, F1 ``2PR/(P+R)``.

    Conventions for empty denominators: a precision with no prediction is 1 (nothing was wrongly
    predicted) and a recall with nothing to find is 1 (nothing was missed), so "no truth, no
    prediction" scores P = R = F1 = 1, while "truth but no prediction" scores R = 0, F1 = 0 and
    "prediction but no truth" scores P = 0, F1 = 0. F1 is 0 when P + R = 0.
    """
    p = tp / (tp + fp) if tp + fp else 1.0
    r = tp / (tp + fn) if tp + fn else 1.0
    f = 2 * p * r / (p + r) if p + r else 0.0
    return float(p), float(r), float(f)


@dataclass(frozen=True)
class F1Scores:
    micro: float  # F1 of the pooled counts over every (sample, class) cell
    macro: float  # mean over classes of per-class F1 (classes with no positive and no prediction count as 1)
    per_class: np.ndarray


def f1_at_threshold(y_true: np.ndarray, y_prob: np.ndarray, threshold: float) -> F1Scores:
    """Multi-label F1 when every class with score ≥ ``threshold`` is predicted.

    micro-F1 = F1(Σ_c tp_c, Σ_c fp_c, Σ_c fn_c); macro-F1 = (1/C) Σ_c F1(tp_c, fp_c, fn_c),
    with the empty-denominator conventions of :func:`prf`.
    """
    y = np.asarray(y_true).astype(bool)
    pred = np.asarray(y_prob) >= threshold
    tp = (y & pred).sum(axis=0)
    fp = (~y & pred).sum(axis=0)
    fn = (y & ~pred).sum(axis=0)
    per = np.array([prf(int(a), int(b), int(c))[2] for a, b, c in zip(tp, fp, fn, strict=True)])
    micro = prf(int(tp.sum()), int(fp.sum()), int(fn.sum()))[2]
    return F1Scores(micro, float(per.mean()) if len(per) else float("nan"), per)


def tune_threshold(
    y_true: np.ndarray, y_prob: np.ndarray, grid: Sequence[float] | None = None, by: str = "micro"
) -> float:
    """The threshold of ``grid`` (default 0.05, 0.10, …, 0.95) maximising micro- or macro-F1
    of :func:`f1_at_threshold`; the lowest such threshold on ties."""
    grid = np.round(np.arange(0.05, 0.951, 0.05), 2) if grid is None else np.asarray(grid)
    best_t, best = float(grid[0]), -1.0
    for t in grid:
        f = f1_at_threshold(y_true, y_prob, float(t))
        v = f.micro if by == "micro" else f.macro
        if v > best + 1e-12:
            best_t, best = float(t), v
    return best_t


# ------------------------------------------------------------------------- cut matching


@dataclass(frozen=True)
class CutMatch:
    """One-to-one matching of predicted to true cut positions (in frames)."""

    tp: int
    fp: int
    fn: int
    pairs: tuple[tuple[int, int], ...]  # (predicted, true) matched pairs
    precision: float
    recall: float
    f1: float


def match_windows(pred: Sequence[int], windows: Sequence[tuple[int, int]]) -> CutMatch:
    """Match predicted cuts to true transitions one-to-one; transition j accepts a cut ``p`` when
    ``lo_j ≤ p ≤ hi_j`` (its frame span widened by whatever tolerance the caller allows: ±1 frame
    around a hard cut, a dissolve's span ± 0.5 s, ...).

    Matching: transitions in order of ``hi`` (then ``lo``), each taking the earliest unmatched
    cut inside its window — the classic greedy for points and intervals, which finds a
    *maximum* matching (exchange argument: the transition that closes first can always take the
    earliest cut that fits it); the tests check it against the Hungarian algorithm.
    ``tp`` = matched pairs, ``fp`` = unmatched cuts, ``fn`` = unmatched transitions; pairs are
    ``(cut, transition index)`` in transition order; P/R/F1 follow :func:`prf`.
    """
    free = sorted(int(x) for x in pred)
    order = sorted(range(len(windows)), key=lambda j: (windows[j][1], windows[j][0]))
    pairs = []
    for j in order:
        lo, hi = windows[j]
        k = bisect.bisect_left(free, lo)
        if k < len(free) and free[k] <= hi:
            pairs.append((free.pop(k), j))
    tp = len(pairs)
    fp, fn = len(pred) - tp, len(windows) - tp
    pr, rc, f = prf(tp, fp, fn)
    return CutMatch(tp, fp, fn, tuple(sorted(pairs, key=lambda x: x[1])), pr, rc, f)


def match_cuts(pred: Sequence[int], truth: Sequence[int], tolerance: int = 1) -> CutMatch:
    """Match predicted cuts to true cuts one-to-one, a pair allowed when ``|p − t| ≤ tolerance``:
    :func:`match_windows` with the window ``[t − tolerance, t + tolerance]`` around each true
    cut. ``pairs`` are ``(predicted, true)`` in time order; ``tp`` = matched pairs, ``fp`` =
    unmatched predictions, ``fn`` = unmatched truths; P/R/F1 follow :func:`prf` (no truth and no
    prediction → 1, 1, 1). Duplicate positions are kept.
    """
    if tolerance < 0:
        raise ValueError("tolerance must be ≥ 0")
    t = sorted(int(x) for x in truth)
    m = match_windows(pred, [(x - tolerance, x + tolerance) for x in t])
    pairs = tuple(sorted((p, t[j]) for p, j in m.pairs))
    return CutMatch(m.tp, m.fp, m.fn, pairs, m.precision, m.recall, m.f1)


# ------------------------------------------------------------------------- retrieval
# A ranking is a list of ids, best first; ``relevant`` is a set of ids. Binary relevance.


def precision_at_k(ranked: Sequence[str], relevant: Collection[str], k: int) -> float:
    """``P@k = |top_k ∩ R| / k`` (a ranking shorter than k counts the missing places as misses)."""
    if k <= 0:
        raise ValueError("k must be ≥ 1")
    rel = set(relevant)
    return sum(1 for d in ranked[:k] if d in rel) / k


def recall_at_k(ranked: Sequence[str], relevant: Collection[str], k: int) -> float:
    """``R@k = |top_k ∩ R| / |R|`` — the information-retrieval recall (share of all relevant
    items found in the top k). ``nan`` when R is empty. Not the "R@k" of text-to-video papers,
    which is :func:`hit_at_k`."""
    rel = set(relevant)
    if not rel:
        return float("nan")
    return sum(1 for d in set(ranked[:k]) if d in rel) / len(rel)


def hit_at_k(ranked: Sequence[str], relevant: Collection[str], k: int) -> float:
    """``Hit@k = 1[top_k ∩ R ≠ ∅]`` — the "R@k" of text-to-video retrieval papers (a query
    succeeds if any relevant item is in the top k). ``nan`` when R is empty."""
    rel = set(relevant)
    if not rel:
        return float("nan")
    return 1.0 if any(d in rel for d in ranked[:k]) else 0.0


def ap_at_k(ranked: Sequence[str], relevant: Collection[str], k: int) -> float:
    """``AP@k = (1 / min(|R|, k)) Σ_{i=1..k} P@i · rel_i`` with ``rel_i = 1[ranked_i ∈ R]``.

    The normaliser ``min(|R|, k)`` makes a top k filled with relevant items score 1 even when
    more than k items are relevant (the convention of ml_metrics' ``apk``). ``nan`` when R is
    empty.
    """
    rel = set(relevant)
    if not rel:
        return float("nan")
    hits, total, seen = 0, 0.0, set()
    for i, d in enumerate(ranked[:k], start=1):
        if d in rel and d not in seen:
            hits += 1
            total += hits / i
        seen.add(d)
    return total / min(len(rel), k)


def ndcg_at_k(ranked: Sequence[str], relevant: Collection[str], k: int) -> float:
    """``nDCG@k = DCG@k / IDCG@k`` with binary gains, ``DCG@k = Σ_{i=1..k} rel_i / log2(i + 1)``
    and ``IDCG@k`` the DCG of ``min(|R|, k)`` relevant items at the top. ``nan`` when R is empty."""
    rel = set(relevant)
    if not rel:
        return float("nan")
    seen: set[str] = set()
    dcg = 0.0
    for i, d in enumerate(ranked[:k], start=1):
        if d in rel and d not in seen:
            dcg += 1.0 / np.log2(i + 1)
        seen.add(d)
    idcg = sum(1.0 / np.log2(i + 1) for i in range(1, min(len(rel), k) + 1))
    return float(dcg / idcg)


def reciprocal_rank(ranked: Sequence[str], relevant: Collection[str]) -> float:
    """``RR = 1 / rank of the first relevant item`` in the ranking (0 when none is retrieved);
    MRR is its mean over queries. ``nan`` when R is empty."""
    rel = set(relevant)
    if not rel:
        return float("nan")
    for i, d in enumerate(ranked, start=1):
        if d in rel:
            return 1.0 / i
    return 0.0
