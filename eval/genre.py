"""Genre linear probe: how well pooled index features predict a movie's genres.

MovieCLIP's downstream test, on the user's own movies: per movie (or per clip of a movie) the
mean of its shots' CLIP vectors, the mean of its scene-score vectors and their concatenation are
fed to one-vs-rest logistic regression. Evaluation is k-fold cross-validation with folds grouped
by film (all files and clips of one film on one side), balanced greedily over genres, seeded;
the regularisation C is chosen per genre by an inner grouped cross-validation on the training
part only, features are standardised on the training part only, and the decision threshold for
F1 is tuned on the inner out-of-fold predictions. Two baselines run through the same folds:
"prior" (constant training-set genre frequencies) and "random" (Gaussian features of the CLIP
features' dimension). Degenerate inputs (few films, a genre on one film or on every film) are
handled and reported as warnings, never as crashes.
"""

from __future__ import annotations

import warnings as _warnings
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import polars as pl

from scenesearch.eval.features import ShotTable, feature_sets, pool
from scenesearch.eval.genre_data import (
    GenreRow,
    folds_from_split,
    group_folds,
    resolve_genres,
)
from scenesearch.eval.metrics import (
    average_precision,
    f1_at_threshold,
    mean_average_precision,
    tune_threshold,
)
from scenesearch.indexer.errors import InputError

PRIOR = "prior"
RANDOM = "random"


@dataclass
class ProbeConfig:
    n_splits: int = 5  # outer folds (reduced to the number of films when there are fewer)
    inner_splits: int = 3  # inner folds choosing C (reduced likewise)
    Cs: tuple[float, ...] = (0.01, 0.1, 1.0, 10.0, 100.0)  # inverse regularisation strengths tried
    seed: int = 0  # folds, random-feature baseline
    pooling: tuple[str, ...] = ("mean",)  # "mean" (fstVid) and/or "max" over a group's shots
    clip_s: float | None = None  # None: one sample per movie; else fixed clips of this many seconds
    standardize: bool = True  # z-score features with training-fold statistics
    max_iter: int = 2000  # lbfgs iterations
    baselines: bool = True  # also run the prior and random-feature baselines
    threshold_by: str = "micro"  # tune the F1 threshold for micro- or macro-F1


# ---------------------------------------------------------------------------- probe core


def _fit_genre(X, y, C: float, cfg: ProbeConfig):
    """Standardise (training statistics only) + logistic regression, fitted on (X, y)."""
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    steps = [StandardScaler()] if cfg.standardize else []
    model = make_pipeline(*steps, LogisticRegression(C=C, max_iter=cfg.max_iter))
    with _warnings.catch_warnings():
        # tiny folds often stop lbfgs early or hit perfect separation; the fit is still usable
        _warnings.simplefilter("ignore")
        model.fit(X, y)
    return model


def _choose_c(X, y, groups, cfg, seed) -> tuple[float, np.ndarray | None]:
    """C with the best inner-CV AP (pooled out-of-fold predictions); ties → smaller C.
    Returns (C, out-of-fold probabilities for it or None when no inner fold was usable)."""
    n_groups = len(set(groups))
    k = min(cfg.inner_splits, n_groups)
    if k < 2:
        return 1.0, None
    try:
        inner = group_folds(groups, y[:, None].astype(float), k, seed)
    except ValueError:
        return 1.0, None
    best = (-1.0, 1.0, None)
    for C in sorted(cfg.Cs):
        oof = np.full(len(y), np.nan)
        for tr, va in inner:
            if len(set(y[tr].tolist())) < 2:
                continue  # this inner training part has one class only
            oof[va] = _fit_genre(X[tr], y[tr], C, cfg).predict_proba(X[va])[:, 1]
        ok = ~np.isnan(oof)
        if not ok.any() or not y[ok].any():
            continue
        ap = average_precision(y[ok], oof[ok])
        if ap > best[0] + 1e-9:
            best = (ap, C, oof)
    return best[1], best[2]


@dataclass
class FoldPrediction:
    probs: np.ndarray  # [n_test, G]
    threshold: float
    Cs: list[float | None]  # chosen C per genre (None: constant predictor)


def probe_fold(X_tr, Y_tr, g_tr, X_te, cfg: ProbeConfig, seed: int = 0) -> FoldPrediction:
    """Fit one-vs-rest logistic regression on a training fold and predict the test fold.

    A genre constant on the training fold (no positive or no negative) gets a constant
    prediction equal to its training frequency.
    """
    G = Y_tr.shape[1]
    P = np.zeros((len(X_te), G))
    oof = np.zeros(Y_tr.shape)
    Cs: list[float | None] = []
    for g in range(G):
        y = Y_tr[:, g].astype(int)
        prior = float(y.mean())
        if y.min() == y.max():
            P[:, g] = prior
            oof[:, g] = prior
            Cs.append(None)
            continue
        C, o = _choose_c(X_tr, y, g_tr, cfg, seed + g)
        P[:, g] = _fit_genre(X_tr, y, C, cfg).predict_proba(X_te)[:, 1]
        oof[:, g] = prior if o is None else np.where(np.isnan(o), prior, o)
        Cs.append(C)
    thr = tune_threshold(Y_tr, oof, by=cfg.threshold_by)
    return FoldPrediction(P, thr, Cs)


def prior_fold(Y_tr: np.ndarray, n_test: int) -> FoldPrediction:
    """The prior baseline: every test sample scored with the training genre frequencies."""
    prior = Y_tr.mean(axis=0)
    thr = tune_threshold(Y_tr, np.tile(prior, (len(Y_tr), 1)))
    return FoldPrediction(np.tile(prior, (n_test, 1)), thr, [None] * Y_tr.shape[1])


@dataclass
class ProbeResult:
    summary: pl.DataFrame  # one row per feature type
    per_genre: pl.DataFrame  # feature × genre
    per_fold: pl.DataFrame  # feature × fold
    folds: pl.DataFrame  # group/movie → fold (its test fold)
    genres: list[str]
    warnings: list[str]
    notes: list[str]
    fold_rows: list[tuple[np.ndarray, np.ndarray]]  # (train, test) row indices per fold
    oof: dict[str, np.ndarray]  # feature -> out-of-fold test probabilities [n, G]


def run_probe(
    features: dict[str, np.ndarray],
    Y: np.ndarray,
    genres: Sequence[str],
    movie_of_row: Sequence[str],
    group_of_row: Sequence[str] | None = None,
    cfg: ProbeConfig | None = None,
    folds: list[tuple[np.ndarray, np.ndarray]] | None = None,
    sample_ids: Sequence[str] | None = None,
) -> ProbeResult:
    """Cross-validated probe of each feature matrix (rows = samples) against binary ``Y``.

    ``group_of_row`` (default: the movie) keeps a film's rows on one side of every split;
    ``folds`` overrides the generated folds. Metrics per fold: AP per genre (nan where the test
    fold has no positive), mAP over genres with positives, micro/macro F1 at the tuned
    threshold; reported as mean and sample std over folds, plus "pooled" mAP over the
    concatenated out-of-fold predictions (every sample predicted exactly once).
    """
    cfg = cfg or ProbeConfig()
    Y = np.asarray(Y).astype(int)
    n, G = Y.shape
    groups = np.asarray(group_of_row if group_of_row is not None else movie_of_row)
    warns: list[str] = []
    notes: list[str] = []
    n_groups = len(set(groups.tolist()))
    if folds is None:
        if n_groups < 2:
            raise InputError(f"the probe needs at least 2 films with genres, found {n_groups}")
        k = min(cfg.n_splits, n_groups)
        if k < cfg.n_splits:
            warns.append(
                f"only {n_groups} films: {k}-fold cross-validation instead of {cfg.n_splits}-fold; "
                "numbers from so few films are a smoke test, not a measurement"
            )
        folds = group_folds(groups, Y, k, cfg.seed)
        notes.append(
            f"{len(folds)}-fold cross-validation grouped by film (seed {cfg.seed}); "
            f"C chosen per genre from {list(cfg.Cs)} by {cfg.inner_splits}-fold inner CV"
        )
    else:
        notes.append(f"{len(folds)} fold(s) from the user's split file")
    for tr, te in folds:
        leaked = set(groups[tr].tolist()) & set(groups[te].tolist())
        if leaked:
            raise InputError(f"split puts films on both sides: {', '.join(sorted(leaked)[:5])}")
    pos_groups = [len(set(groups[Y[:, g] > 0].tolist())) for g in range(G)]
    for g, name in enumerate(genres):
        if pos_groups[g] == 1:
            warns.append(
                f"genre {name!r} is on one film only: whenever it is tested, training has no "
                "positive (its AP says nothing about the features)"
            )
        if pos_groups[g] == n_groups:
            warns.append(f"genre {name!r} is on every film: its AP is 1 for any predictor")

    if all(len(set(groups[te].tolist())) == 1 for _, te in folds):
        warns.append(
            "every test fold holds a single film, so per-fold AP is undefined (a fold's samples all "
            "share its film's genres): read mAP_pooled, over all out-of-fold predictions together"
        )
    feats = dict(features)
    if cfg.baselines:
        base_dim = next(iter(features.values())).shape[1] if features else 16
        if "clip" in features:
            base_dim = features["clip"].shape[1]
        feats[RANDOM] = np.random.default_rng(cfg.seed).standard_normal((n, base_dim))
        feats[PRIOR] = None  # type: ignore[assignment]

    fold_rows, genre_rows, sum_rows = [], [], []
    oof_all: dict[str, np.ndarray] = {}
    for name, X in feats.items():
        oof = np.full((n, G), np.nan)
        per_fold_ap = []
        for k, (tr, te) in enumerate(folds):
            if name == PRIOR:
                fp = prior_fold(Y[tr], len(te))
            else:
                fp = probe_fold(X[tr], Y[tr], groups[tr], X[te], cfg, cfg.seed + 1000 * k)
            oof[te] = fp.probs
            per, value = fold_ap(Y[te], fp.probs)
            f1 = f1_at_threshold(Y[te], fp.probs, fp.threshold)
            per_fold_ap.append(per)
            fold_rows.append(
                {
                    "feature": name,
                    "fold": k,
                    "n_train": len(tr),
                    "n_test": len(te),
                    "mAP": value,
                    "genres_scored": int(np.sum(~np.isnan(per))),
                    "micro_f1": f1.micro,
                    "macro_f1": f1.macro,
                    "threshold": fp.threshold,
                }
            )
        oof_all[name] = oof
        aps = np.array(per_fold_ap)  # [folds, G]
        covered = ~np.isnan(oof).any(axis=1)
        pooled = mean_average_precision(Y[covered], oof[covered])
        for g, gname in enumerate(genres):
            col = aps[:, g]
            ok = col[~np.isnan(col)]
            genre_rows.append(
                {
                    "feature": name,
                    "genre": gname,
                    "ap_mean": _mean(ok),
                    "ap_std": _std(ok),
                    "ap_pooled": float(pooled.per_class[g]),
                    "folds_scored": len(ok),
                    "positive_films": pos_groups[g],
                    "positive_samples": int(Y[:, g].sum()),
                }
            )
        fr = [r for r in fold_rows if r["feature"] == name]
        sum_rows.append(
            {
                "feature": name,
                "dim": 0 if X is None else int(X.shape[1]),
                "mAP_mean": _mean([r["mAP"] for r in fr]),
                "mAP_std": _std([r["mAP"] for r in fr]),
                "mAP_pooled": pooled.value,
                "micro_f1_mean": _mean([r["micro_f1"] for r in fr]),
                "micro_f1_std": _std([r["micro_f1"] for r in fr]),
                "macro_f1_mean": _mean([r["macro_f1"] for r in fr]),
                "macro_f1_std": _std([r["macro_f1"] for r in fr]),
                "folds": len(fr),
            }
        )
    fold_of = np.full(n, -1)
    for k, (_, te) in enumerate(folds):
        fold_of[te] = k
    ids = list(sample_ids) if sample_ids is not None else [str(i) for i in range(n)]
    folds_df = pl.DataFrame(
        {
            "sample": ids,
            "movie_id": list(map(str, movie_of_row)),
            "group": groups.astype(str).tolist(),
            "test_fold": fold_of.tolist(),
        }
    )
    return ProbeResult(
        pl.DataFrame(sum_rows),
        pl.DataFrame(genre_rows),
        pl.DataFrame(fold_rows),
        folds_df,
        list(genres),
        warns,
        notes,
        folds,
        oof_all,
    )


def fold_ap(Y: np.ndarray, P: np.ndarray) -> tuple[np.ndarray, float]:
    """AP per genre on one test fold and their mean. A genre's AP counts only when the fold has
    both positive and negative samples: with no positive AP is undefined, and with no negative
    it is 1 for any scores — both are NaN here and left out of the fold's mAP."""
    m = mean_average_precision(Y, P)
    per = m.per_class.copy()
    per[Y.astype(bool).all(axis=0)] = np.nan
    return per, (float(np.nanmean(per)) if (~np.isnan(per)).any() else float("nan"))


def _mean(v) -> float:
    v = [x for x in v if x == x]  # drop nan
    return float(np.mean(v)) if v else float("nan")


def _std(v) -> float:
    v = [x for x in v if x == x]
    return float(np.std(v, ddof=1)) if len(v) > 1 else float("nan")


# ---------------------------------------------------------------------------- from an index


def genre_probe(
    table: ShotTable,
    rows: Sequence[GenreRow] | None,
    cfg: ProbeConfig | None = None,
    split: dict[str, str] | None = None,
) -> ProbeResult:
    """Pool the index's features per movie (or clip), attach genres and run :func:`run_probe`."""
    cfg = cfg or ProbeConfig()
    targets = resolve_genres(table, rows)
    pooled = pool(table, cfg.clip_s, cfg.pooling)
    keep = [i for i, m in enumerate(pooled.movie_ids) if m in targets.genres]
    if not keep:
        raise InputError("no indexed movie has genres")
    movies = [pooled.movie_ids[i] for i in keep]
    genres = sorted({g for m in set(movies) for g in targets.genres[m]})
    Y = np.array([[g in targets.genres[m] for g in genres] for m in movies], dtype=int)
    feats = {k: v[keep] for k, v in feature_sets(pooled, cfg.pooling).items()}
    groups = [targets.group[m] for m in movies]
    warns = list(targets.warnings)
    folds = None
    if split is not None:
        assignment = {}
        for name, fold in split.items():
            mid = table.resolve_movie(name)
            if mid is None:
                warns.append(f"split file names a movie not in the index: {name}")
            else:
                assignment[mid] = fold
        missing = sorted({m for m in movies if m not in assignment})
        if missing:
            warns.append(f"{len(missing)} movies are not in the split file and are left out")
            sel = [i for i, m in enumerate(movies) if m in assignment]
            movies = [movies[i] for i in sel]
            groups = [groups[i] for i in sel]
            Y = Y[sel]
            feats = {k: v[sel] for k, v in feats.items()}
            keep = [keep[i] for i in sel]
        folds = folds_from_split(movies, assignment)
    res = run_probe(
        feats, Y, genres, movies, groups, cfg, folds, sample_ids=[pooled.group_ids[i] for i in keep]
    )
    res.warnings[:0] = warns
    unit = f"clips of {cfg.clip_s:g} s" if cfg.clip_s else "movies"
    res.notes.insert(
        0,
        f"{len(movies)} samples ({unit}) from {len(set(movies))} movies in "
        f"{len(set(groups))} film groups; {len(genres)} genres; pooling: {', '.join(cfg.pooling)}",
    )
    return res


def per_genre_plot(res: ProbeResult):
    """Per-genre AP for each feature type, side by side: the mean over folds, or — when no fold
    could score a genre (e.g. one film per test fold) — AP pooled over all out-of-fold
    predictions, so the plot never comes out empty."""
    from scenesearch.eval.report import bar_plot

    rows = list(res.per_genre.iter_rows(named=True))
    key = "ap_mean" if any(r["ap_mean"] == r["ap_mean"] for r in rows) else "ap_pooled"  # NaN≠NaN
    values: dict[str, dict[str, float]] = {}
    for r in rows:
        values.setdefault(r["feature"], {})[r["genre"]] = r[key]
    what = "mean over folds" if key == "ap_mean" else "pooled over out-of-fold predictions"
    return bar_plot(values, f"Genre probe: AP per genre ({what})")
