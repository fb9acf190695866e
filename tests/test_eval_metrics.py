"""Metric functions: hand-computed values (answer in the assert) and reference implementations."""

from __future__ import annotations

import itertools

import numpy as np
import pytest
from scipy.optimize import linear_sum_assignment
from sklearn.metrics import average_precision_score

from scenesearch.eval.metrics import (
    ap_at_k,
    average_precision,
    f1_at_threshold,
    hit_at_k,
    match_cuts,
    match_windows,
    mean_average_precision,
    ndcg_at_k,
    precision_at_k,
    prf,
    recall_at_k,
    reciprocal_rank,
    topk_accuracy,
    tune_threshold,
)


def test_average_precision_hand_computed():
    # ranks: + - + -  → P@1 = 1 (R .5), P@3 = 2/3 (R 1) → AP = .5·1 + .5·2/3
    assert average_precision([1, 0, 1, 0], [0.9, 0.8, 0.7, 0.1]) == pytest.approx(0.8333333333)
    # tied scores enter together: {+,-} at 0.5 → P .5 R .5; then + → P 2/3 R 1
    assert average_precision([1, 0, 1], [0.5, 0.5, 0.2]) == pytest.approx(0.5833333333)
    assert np.isnan(average_precision([0, 0], [0.1, 0.2]))


def test_mean_ap_excludes_classes_without_positives():
    y = np.array([[1, 0, 0], [0, 0, 0], [1, 0, 0], [0, 0, 1]])
    s = np.array([[0.9, 0.1, 0.9], [0.8, 0.2, 0.8], [0.7, 0.3, 0.7], [0.1, 0.4, 0.1]])
    m = mean_average_precision(y, s)
    # class 0 AP = 0.8333, class 2 (positive ranked last of 4) AP = 0.25, class 1 excluded
    assert m.value == pytest.approx((0.8333333333 + 0.25) / 2)
    assert m.excluded == (1,)
    assert m.n_classes == 2


def test_mean_ap_equals_sklearn_on_random_data():
    """200 samples × 30 classes, random sparse labels and scores with many ties (rounded)."""
    rng = np.random.default_rng(0)
    y = (rng.random((200, 30)) < 0.1).astype(int)
    y[:, 7] = 0  # one class without positives: excluded by both
    s = np.round(rng.random((200, 30)), 2)
    m = mean_average_precision(y, s)
    ref = [average_precision_score(y[:, c], s[:, c]) for c in range(30) if y[:, c].any()]
    assert m.value == pytest.approx(float(np.mean(ref)), abs=1e-12)
    assert m.excluded == (7,)
    for c in range(30):
        if y[:, c].any():
            assert m.per_class[c] == pytest.approx(average_precision_score(y[:, c], s[:, c]))


def test_topk_accuracy_hand_computed():
    y = np.array([[1, 0, 0], [0, 0, 1], [0, 0, 0]])  # third sample has no label: skipped
    s = np.array([[0.1, 0.5, 0.4], [0.2, 0.3, 0.5], [0.9, 0.0, 0.0]])
    assert topk_accuracy(y, s, 1) == 0.5
    assert topk_accuracy(y, s, 2) == 0.5
    assert topk_accuracy(y, s, 3) == 1.0


def test_prf_conventions():
    assert prf(2, 2, 1) == pytest.approx((0.5, 2 / 3, 4 / 7))
    assert prf(0, 0, 0) == (1.0, 1.0, 1.0)  # nothing to find, nothing predicted
    assert prf(0, 0, 3) == (1.0, 0.0, 0.0)
    assert prf(0, 2, 0) == (0.0, 1.0, 0.0)


def test_f1_at_threshold_hand_computed():
    y = np.array([[1, 0], [1, 1], [0, 0]])
    p = np.array([[0.8, 0.6], [0.3, 0.7], [0.1, 0.6]])
    f = f1_at_threshold(y, p, 0.5)
    # class 0: tp1 fp0 fn1 → F 2/3; class 1: tp1 fp2 fn0 → F 1/2; pooled tp2 fp2 fn1 → 4/7
    assert f.per_class == pytest.approx([2 / 3, 0.5])
    assert f.micro == pytest.approx(4 / 7)
    assert f.macro == pytest.approx(7 / 12)


def test_tune_threshold_picks_lowest_best():
    y = np.array([[1], [0]])
    p = np.array([[0.7], [0.4]])
    assert tune_threshold(y, p) == 0.45  # any t in (0.4, 0.7] is perfect; lowest grid point


def test_match_cuts_hand_computed():
    m = match_cuts([10, 20, 31, 50], [11, 30, 40], tolerance=1)
    assert (m.tp, m.fp, m.fn) == (2, 2, 1)
    assert m.pairs == ((10, 11), (31, 30))
    assert (m.precision, m.recall, m.f1) == pytest.approx((0.5, 2 / 3, 4 / 7))
    assert match_cuts([10, 20, 31, 50], [11, 30, 40], tolerance=0).tp == 0
    m10 = match_cuts([10, 20, 31, 50], [11, 30, 40], tolerance=10)
    assert (m10.tp, m10.fp, m10.fn) == (3, 1, 0)
    assert match_cuts([], [], 1).f1 == 1.0
    assert match_cuts([5], [], 1).f1 == 0.0


def _max_matching(pred, truth, tol):
    """Reference: Hungarian algorithm on 0/1 costs (maximum one-to-one matching)."""
    if not pred or not truth:
        return 0
    ok = np.abs(np.subtract.outer(np.array(pred), np.array(truth))) <= tol
    r, c = linear_sum_assignment(-ok.astype(float))
    return int(ok[r, c].sum())


def test_match_cuts_greedy_is_maximum():
    """300 random small cut lists (positions 0..40, duplicates allowed) at tolerances 0..5."""
    rng = np.random.default_rng(0)
    for _, tol in itertools.product(range(50), range(6)):
        pred = rng.integers(0, 40, rng.integers(0, 9)).tolist()
        truth = rng.integers(0, 40, rng.integers(0, 9)).tolist()
        assert match_cuts(pred, truth, tol).tp == _max_matching(pred, truth, tol)


def test_retrieval_metrics_hand_computed():
    ranked = ["a", "b", "c", "d", "e"]
    rel = {"b", "d", "x"}  # x is never retrieved
    assert precision_at_k(ranked, rel, 3) == pytest.approx(1 / 3)
    assert recall_at_k(ranked, rel, 3) == pytest.approx(1 / 3)
    assert recall_at_k(ranked, rel, 5) == pytest.approx(2 / 3)
    assert hit_at_k(ranked, rel, 1) == 0.0
    assert hit_at_k(ranked, rel, 2) == 1.0
    # AP@5 = (1/min(3,5)) · (1/2 + 2/4) ; AP@2 = (1/2) · (1/2)
    assert ap_at_k(ranked, rel, 5) == pytest.approx(1 / 3)
    assert ap_at_k(ranked, rel, 2) == pytest.approx(0.25)
    # DCG = 1/log2 3 + 1/log2 5 ; IDCG = 1 + 1/log2 3 + 1/log2 4
    assert ndcg_at_k(ranked, rel, 5) == pytest.approx(0.4981892575)
    assert reciprocal_rank(ranked, rel) == 0.5
    assert reciprocal_rank(ranked, {"z"}) == 0.0
    assert np.isnan(recall_at_k(ranked, set(), 5))
    # a perfect ranking scores 1 everywhere
    assert ap_at_k(["b", "d"], {"b", "d"}, 10) == 1.0
    assert ndcg_at_k(["b", "d"], {"b", "d"}, 10) == pytest.approx(1.0)


def test_match_windows_hand_computed_and_maximum():
    """Spans of different widths (a dissolve 10-30, a hard cut at 40 ±1): the cut at 29 goes to
    the dissolve and 41 to the hard cut; a second cut in the dissolve (15) is a false positive."""
    m = match_windows([15, 29, 41, 60], [(10, 30), (39, 41)])
    assert (m.tp, m.fp, m.fn) == (2, 2, 0)
    assert m.pairs == ((15, 0), (41, 1))
    # a greedy by start would give the wide window the cut the narrow one needs
    assert match_windows([5], [(0, 10), (4, 6)]).tp == 1
    assert match_windows([5, 9], [(0, 10), (4, 6)]).tp == 2
    rng = np.random.default_rng(1)
    for _ in range(300):
        pred = rng.integers(0, 40, rng.integers(0, 9)).tolist()
        lo = rng.integers(0, 40, rng.integers(0, 7))
        wins = [(int(a), int(a + rng.integers(0, 8))) for a in lo]
        ok = np.array([[a <= p <= b for a, b in wins] for p in pred], dtype=float)
        best = 0
        if len(pred) and len(wins):
            r, c = linear_sum_assignment(-ok)
            best = int(ok[r, c].sum())
        assert match_windows(pred, wins).tp == best
