"""Scene recognition: the index's weak scene scores against human scene labels, as in MovieCLIP.

Ground truth is read from a CSV/Parquet table (``movie``, ``start_s``/``end_s`` or ``shot_id`` /
``shot_index``, ``labels`` "a|b") or from MovieCLIP's split files (``<clip>/<clip>-Scene-NNN.mp4
i j …`` with indices into the 150-label map). Ground-truth shots are mapped to indexed shots by
time overlap (or directly by shot id / index), and scored with the stored ``scenes`` vectors:
mAP over classes (sklearn AP per class; classes with no positive are excluded and listed), top-1
and top-5 accuracy, AP per label, a confusion summary, and the micro/macro F1 of the stored clean
labels. Both the 179-label taxonomy and MovieCLIP's 150-label projection are evaluated; the
projection merges "interrogation room" into "room" and "phone booth" into "booth" (scores summed:
the probability of the merged class) and drops the 27 labels their splits do not use.
"""

from __future__ import annotations

import json
import re
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path

import numpy as np
import polars as pl

from scenesearch.eval.features import ShotTable
from scenesearch.eval.metrics import f1_at_threshold, mean_average_precision, topk_accuracy
from scenesearch.indexer.errors import InputError
from scenesearch.indexer.inputs import read_table

# MovieCLIP's 150-label map renames these two taxonomy labels (verified by diffing the map
# against the 179-label taxonomy: 150 names kept, these 2 merged, 27 dropped).
MERGED_150 = {"interrogation room": "room", "phone booth": "booth"}

SPLIT_LINE = re.compile(
    r"^(?P<clip>[^/\s]+)/(?P<file>\S+?-Scene-(?P<n>\d+)\.\w+)(?P<idx>(?:\s+\d+)*)\s*$"
)


def bundled_label_map_path() -> Path:
    return Path(str(resources.files("indexer") / "data" / "movieclip_label_map_150.json"))


def load_label_map_150(path: str | Path | None = None) -> tuple[str, ...]:
    """The 150 label names ordered by their index in MovieCLIP's label-map JSON."""
    p = Path(path) if path else bundled_label_map_path()
    try:
        m = json.loads(p.read_text())
    except (OSError, ValueError) as e:
        raise InputError(f"cannot read label map {p}: {e}") from e
    names = sorted(m, key=lambda k: m[k])
    if [m[k] for k in names] != list(range(len(names))):
        raise InputError(f"label map {p} indices are not 0..{len(names) - 1}")
    return tuple(names)


def projection_matrix(
    src: Sequence[str], dst: Sequence[str], merges: dict[str, str] = MERGED_150
) -> np.ndarray:
    """0/1 matrix M [len(src), len(dst)]: ``M[i, j] = 1`` when source label i is target label j
    (same name, or merged into it). ``S @ M`` projects score vectors (merged scores add up)."""
    j_of = {n: j for j, n in enumerate(dst)}
    M = np.zeros((len(src), len(dst)), dtype=np.float64)
    for i, n in enumerate(src):
        j = j_of.get(merges.get(n, n))
        if j is not None:
            M[i, j] = 1.0
    return M


def project_names(
    names: Sequence[str], dst: Sequence[str], merges: dict[str, str] = MERGED_150
) -> tuple[str, ...]:
    """Label names in the target space (merged names renamed, labels outside it dropped)."""
    keep = set(dst)
    return tuple(dict.fromkeys(n2 for n in names if (n2 := merges.get(n, n)) in keep))


# ---------------------------------------------------------------------------- ground truth


@dataclass(frozen=True)
class GtShot:
    """One labelled shot of the ground truth."""

    movie: str  # how the ground truth names the movie (id, title, stem, path, or MovieCLIP clip)
    labels: tuple[str, ...]
    start_s: float | None = None
    end_s: float | None = None
    shot_id: str | None = None
    shot_index: int | None = None
    source: str = ""  # file:line, for messages


@dataclass
class GroundTruth:
    shots: list[GtShot]
    space: str  # "taxonomy" (label names of the index taxonomy) or "movieclip-150"
    path: str = ""


def _split_labels(v) -> tuple[str, ...]:
    if v is None:
        return ()
    items = v if isinstance(v, list | tuple) else re.split(r"[|;]", str(v))
    return tuple(dict.fromkeys(s.strip().lower() for s in map(str, items) if s.strip()))


def read_movieclip_split(
    path: str | Path,
    label_map: Sequence[str] | None = None,
    times: dict[tuple[str, str], tuple[float, float]] | None = None,
) -> GroundTruth:
    """MovieCLIP split file: ``<clip>/<clip>-Scene-NNN.mp4 i j …``, label indices into the
    150-label map. ``Scene-NNN`` is PySceneDetect's 1-based scene number, so it names shot
    index NNN−1 — the same shot only if the index was cut with the same detector settings;
    pass ``times`` (from :func:`read_movieclip_times`) to match by time overlap instead."""
    names = tuple(label_map) if label_map else load_label_map_150()
    p = Path(path)
    shots = []
    for i, line in enumerate(p.read_text().splitlines(), start=1):
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        m = SPLIT_LINE.match(line)
        if not m:
            raise InputError(f"{p}:{i}: not a MovieCLIP split line: {line[:80]!r}")
        idx = [int(x) for x in m["idx"].split()]
        bad = [x for x in idx if x >= len(names)]
        if bad:
            raise InputError(f"{p}:{i}: label index {bad[0]} outside the {len(names)}-label map")
        t = (times or {}).get((m["clip"], m["file"]))
        shots.append(
            GtShot(
                movie=m["clip"],
                labels=tuple(names[x] for x in idx),
                start_s=t[0] if t else None,
                end_s=t[1] if t else None,
                shot_index=None if t else int(m["n"]) - 1,
                source=f"{p.name}:{i}",
            )
        )
    return GroundTruth(shots, "movieclip-150", str(p))


def read_movieclip_times(path: str | Path) -> dict[tuple[str, str], tuple[float, float]]:
    """(clip, scene file) → (start_time, end_time) from MovieCLIP's ``movieCLIP_dataset.json``."""
    try:
        data = json.loads(Path(path).read_text())
    except (OSError, ValueError) as e:
        raise InputError(f"cannot read MovieCLIP shot times {path}: {e}") from e
    out = {}
    for clip, shots in data.items():
        for fname, rec in shots.items():
            out[(clip, fname)] = (float(rec["start_time"]), float(rec["end_time"]))
    return out


def read_scene_table(path: str | Path) -> GroundTruth:
    """CSV/Parquet ground truth: ``labels`` ("a|b") plus either ``movie`` + ``start_s`` +
    ``end_s`` (a time range), or ``shot_id`` (``movie:0007``), or ``movie`` + ``shot_index``.
    ``#`` lines are comments."""
    p = Path(path)
    df, cols = read_table(p, "scene labels")
    if "labels" not in cols:
        raise InputError(
            f"scene labels {p} need a 'labels' column; it has: {', '.join(df.columns)}"
        )
    has_range = {"start_s", "end_s"} <= set(cols)
    if not (has_range or "shot_id" in cols or "shot_index" in cols):
        raise InputError(f"scene labels {p} need start_s and end_s, shot_id, or shot_index columns")
    shots = []
    for i, r in enumerate(df.iter_rows(named=True), start=2):

        def g(k, r=r):
            return r.get(cols[k]) if k in cols else None

        movie = str(g("movie") or "").strip()
        sid = str(g("shot_id") or "").strip() or None
        if not movie and sid:
            movie = sid.rpartition(":")[0]
        if not movie:
            raise InputError(f"{p}:{i}: no movie")
        try:
            s = float(g("start_s")) if has_range and g("start_s") not in (None, "") else None
            e = float(g("end_s")) if has_range and g("end_s") not in (None, "") else None
            si = int(g("shot_index")) if g("shot_index") not in (None, "") else None
        except ValueError as ex:
            raise InputError(f"{p}:{i}: {ex}") from ex
        if s is not None and e is not None and e <= s:
            raise InputError(f"{p}:{i}: end_s {e} is not after start_s {s}")
        shots.append(GtShot(movie, _split_labels(g("labels")), s, e, sid, si, f"{p.name}:{i}"))
    return GroundTruth(shots, "taxonomy", str(p))


def read_ground_truth(
    path: str | Path, label_map: Sequence[str] | None = None, times_path: str | Path | None = None
) -> GroundTruth:
    """Read scene labels in either format (a MovieCLIP split file is recognised by its lines)."""
    p = Path(path)
    if not p.is_file():
        raise InputError(f"scene labels not found: {p}")
    if p.suffix.lower() not in (".csv", ".parquet", ".pq", ".tsv"):
        first = next(
            (ln for ln in p.read_text().splitlines() if ln.strip() and not ln.startswith("#")), ""
        )
        if SPLIT_LINE.match(first.strip()):
            times = read_movieclip_times(times_path) if times_path else None
            return read_movieclip_split(p, label_map, times)
    return read_scene_table(p)


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
