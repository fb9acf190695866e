"""Shot-boundary evaluation: detected cuts against ground-truth cuts, with a frame tolerance.

A cut is the first frame of every shot except the first. Ground truth comes as our annotation
CSVs (``time_s`` and/or ``frame`` columns, ``#`` comments), PySceneDetect scene lists (a
``frame`` or ``time (ms)`` column; its trailing timecode section is ignored), PySceneDetect
goldens JSON (``{"cuts": [frames]}``) or a plain list of times in seconds (or timecodes). An
annotated time is the presentation time of the new shot's first frame; it becomes a decoded-frame
index as ``round((t − t0) · fps)`` with ``t0`` the first frame's time (streams often start a
frame or so after 0: the Sintel clip starts at 0.033 s). When a table has both a time and a frame
column the time wins, because frame columns are 0- or 1-based depending on the tool. Cuts are
matched one-to-one by :func:`match_transitions`, the project's one definition of shot-boundary
matching (also used for the annotated corpus clips and by scripts/choose_detector.py); precision,
recall and F1 are reported at each tolerance (default 0, 1 and 5 frames) for every detector configuration
asked for, so a user can tune the detector on their own footage.
"""

from __future__ import annotations

import csv
import io
import json
import re
import time
from collections.abc import Sequence
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np
import polars as pl

from scenesearch.eval.metrics import CutMatch, match_windows
from scenesearch.indexer.config import DecodeConfig, ShotConfig
from scenesearch.indexer.errors import InputError

DEFAULT_TOLERANCES = (0, 1, 5)
_TIMECODE = re.compile(r"^(?:(\d+):)?(\d+):(\d+(?:\.\d+)?)$")


@dataclass(frozen=True)
class CutTruth:
    """Ground-truth cuts, as frame indices or as times (seconds), never both."""

    frames: tuple[int, ...] | None = None
    times: tuple[float, ...] | None = None
    source: str = ""

    def to_frames(self, fps: float | None, t0: float = 0.0) -> list[int]:
        """Decoded-frame index of each cut (``round((t − t0) · fps)`` for times, ``t0`` the
        first frame's time); a cut at frame 0 is dropped (the start is not a cut)."""
        if self.frames is not None:
            out = list(self.frames)
        else:
            if not fps:
                raise InputError(f"{self.source}: cut times need the video's frame rate")
            out = [round((t - t0) * fps) for t in self.times or ()]
        return sorted(f for f in out if f > 0)


def parse_time(s: str) -> float:
    """Seconds from ``12.5`` or a timecode ``HH:MM:SS.mmm`` / ``MM:SS.mmm``."""
    s = s.strip()
    m = _TIMECODE.match(s)
    if m:
        h, mi, sec = m.groups()
        return int(h or 0) * 3600 + int(mi) * 60 + float(sec)
    return float(s)


def _from_csv(text: str, src: str) -> CutTruth:
    lines = [ln for ln in text.splitlines() if not ln.lstrip().startswith("#")]
    while lines and not lines[0].strip():
        lines.pop(0)
    body = []
    for ln in lines:  # stop at the first blank line: PySceneDetect appends a second section
        if not ln.strip():
            break
        body.append(ln)
    rows = list(csv.reader(io.StringIO("\n".join(body))))
    if not rows:
        return CutTruth(frames=(), source=src)
    head = [h.strip().lower() for h in rows[0]]
    data = rows[1:]

    def col(*names):
        return next((head.index(n) for n in names if n in head), None)

    try:
        if (j := col("time_s", "time", "seconds", "start_s", "cut_s")) is not None:
            return CutTruth(times=tuple(parse_time(r[j]) for r in data if r[j].strip()), source=src)
        if (j := col("frame", "frames", "start_frame", "cut_frame")) is not None:
            return CutTruth(
                frames=tuple(round(float(r[j])) for r in data if r[j].strip()), source=src
            )
        if (j := col("time (ms)", "time_ms", "ms")) is not None:
            return CutTruth(
                times=tuple(float(r[j]) / 1000 for r in data if r[j].strip()), source=src
            )
        if (j := col("timecode", "start timecode")) is not None:
            return CutTruth(times=tuple(parse_time(r[j]) for r in data if r[j].strip()), source=src)
    except (ValueError, IndexError) as e:
        raise InputError(f"{src}: unreadable cut value ({e})") from e
    raise InputError(f"{src}: no frame or time column (columns: {', '.join(rows[0])})")


def read_cuts(path: str | Path) -> CutTruth:
    """Read ground-truth cuts in any supported format (see the module docstring)."""
    p = Path(path)
    if not p.is_file():
        raise InputError(f"cut ground truth not found: {p}")
    text = p.read_text(encoding="utf-8", errors="replace")
    src = str(p)
    stripped = text.strip()
    if stripped.startswith(("{", "[")):
        try:
            data = json.loads(stripped)
        except ValueError as e:
            raise InputError(f"{src}: invalid JSON: {e}") from e
        if isinstance(data, dict) and "cuts" in data:
            return CutTruth(frames=tuple(int(x) for x in data["cuts"]), source=src)
        if isinstance(data, dict) and ("times" in data or "cuts_s" in data):
            return CutTruth(
                times=tuple(float(x) for x in data.get("times", data.get("cuts_s"))), source=src
            )
        if isinstance(data, list):
            return CutTruth(times=tuple(float(x) for x in data), source=src)
        raise InputError(f"{src}: JSON cuts need a 'cuts' (frames) or 'times' (seconds) key")
    first = next(
        (ln for ln in text.splitlines() if ln.strip() and not ln.lstrip().startswith("#")), ""
    )
    if re.search(r"[A-Za-z_]", first):
        return _from_csv(text, src)
    try:  # a plain list of times: numbers or timecodes, separated by commas, blanks or lines
        vals = [
            parse_time(t)
            for ln in text.splitlines()
            if not ln.lstrip().startswith("#")
            for t in re.split(r"[,\s]+", ln.strip())
            if t
        ]
    except ValueError as e:
        raise InputError(f"{src}: not a list of times ({e})") from e
    return CutTruth(times=tuple(vals), source=src)


def match_transitions(
    pred: Sequence[int],
    truth: Sequence[int | tuple[int, int]],
    tolerance: int,
    ignore: Sequence[tuple[int, int]] = (),
) -> CutMatch:
    """Match detected cuts to true transitions: the one definition of shot-boundary precision,
    recall and F1 in this project (``eval shots``, the corpus clips of ``eval transitions`` and
    scripts/choose_detector.py).

    A cut is the first frame of a shot (every shot but the first). A true transition is a frame
    span ``(first, last)``: a hard cut is the one-frame span ``(t, t)`` of the new shot's first
    frame (a bare ``t`` is read so), a fade or dissolve spans its transitional frames, since
    it has no single true frame. A cut matches a transition when
    ``first − tolerance ≤ cut ≤ last + tolerance``, one-to-one (:func:`eval.metrics.match_windows`,
    a maximum matching: a second cut in one fade is a false positive, it makes a junk shot); for
    hard cuts this is :func:`eval.metrics.match_cuts`. Cuts inside an ``ignore`` span (widened
    likewise: a fade from black at the very start, to black at the very end, with no shot on the
    other side) count neither way. ``pairs`` are ``(cut, transition index)``.
    """
    if tolerance < 0:
        raise ValueError("tolerance must be ≥ 0")
    spans = [(t, t) if isinstance(t, int | np.integer) else (int(t[0]), int(t[1])) for t in truth]
    kept = [int(c) for c in pred if not any(a - tolerance <= c <= b + tolerance for a, b in ignore)]
    return match_windows(kept, [(a - tolerance, b + tolerance) for a, b in spans])


def cut_table(
    pred: Sequence[int], truth: Sequence[int], tolerances: Sequence[int] = DEFAULT_TOLERANCES
) -> pl.DataFrame:
    """One row per tolerance: tolerance, tp, fp, fn, precision, recall, f1."""
    rows = []
    for t in tolerances:
        m = match_transitions(pred, truth, t)
        rows.append(
            {
                "tolerance": int(t),
                "tp": m.tp,
                "fp": m.fp,
                "fn": m.fn,
                "precision": m.precision,
                "recall": m.recall,
                "f1": m.f1,
            }
        )
    return pl.DataFrame(rows)


def cut_details(
    pred: Sequence[int], truth: Sequence[int], tolerance: int, fps: float | None
) -> pl.DataFrame:
    """Every cut with its fate at ``tolerance``: matched (with the offset), missed or spurious."""
    truth = sorted(int(t) for t in truth)
    m = match_transitions(pred, truth, tolerance)
    pairs = sorted((p, truth[j]) for p, j in m.pairs)
    rows = [{"kind": "match", "pred_frame": p, "true_frame": t, "offset": p - t} for p, t in pairs]
    mp = {p for p, _ in pairs}
    mt = {t for _, t in pairs}
    rows += [
        {"kind": "false_positive", "pred_frame": p, "true_frame": None, "offset": None}
        for p in pred
        if p not in mp
    ]
    rows += [
        {"kind": "missed", "pred_frame": None, "true_frame": t, "offset": None}
        for t in truth
        if t not in mt
    ]
    df = pl.DataFrame(
        rows,
        schema={
            "kind": pl.String,
            "pred_frame": pl.Int64,
            "true_frame": pl.Int64,
            "offset": pl.Int64,
        },
    )
    df = df.with_columns(pl.coalesce("true_frame", "pred_frame").alias("_k")).sort("_k").drop("_k")
    if fps:
        df = df.with_columns(
            (pl.coalesce("true_frame", "pred_frame") / fps).round(3).alias("time_s")
        )
    return df


@dataclass
class DetectorRun:
    name: str  # the configuration's label, e.g. "content(t=27)"
    cuts: list[int]  # frame index of each cut
    fps: float
    n_frames: int
    seconds: float
    t0: float = 0.0  # time of the first decoded frame


def detect_cuts(
    video: str | Path, shot_cfg: ShotConfig, decode_cfg: DecodeConfig | None = None
) -> DetectorRun:
    """Run the indexer's shot detector on a video; cuts = start frames of shots 2..n."""
    from scenesearch.indexer.shots import detect_shots

    started = time.perf_counter()
    shots, info = detect_shots(str(video), shot_cfg, decode_cfg or DecodeConfig(), movie_id="eval")
    dt = time.perf_counter() - started
    return DetectorRun(
        config_label(shot_cfg),
        [s.start_frame for s in shots[1:]],
        float(info.fps),
        int(info.n_frames),
        dt,
        float(shots[0].start_s) if shots else 0.0,
    )


def config_label(cfg: ShotConfig) -> str:
    """A short label naming the detector spec and the thresholds it uses."""
    th = {
        "content": f"t={cfg.content_threshold:g}",
        "adaptive": f"a={cfg.adaptive_threshold:g}",
        "hash": f"h={cfg.hash_threshold:g}",
        "histogram": f"hist={cfg.histogram_threshold:g}",
        "threshold": f"fade={cfg.fade_threshold:g}",
    }
    parts = [f"{d}({th[d]})" if d in th else d for d in cfg.detector.split("+")]
    return "+".join(parts) + f" min={cfg.min_shot_s:g}s"


def evaluate_detectors(
    video: str | Path,
    truth: CutTruth,
    configs: Sequence[ShotConfig],
    tolerances: Sequence[int] = DEFAULT_TOLERANCES,
    decode_cfg: DecodeConfig | None = None,
    primary: int | None = None,
) -> tuple[pl.DataFrame, list[pl.DataFrame], list[DetectorRun]]:
    """Detect and score every configuration. Returns (scores table, per-config cut details at
    the ``primary`` tolerance (default: the middle one), runs)."""
    tabs, details, runs = [], [], []
    if primary is None:
        primary = sorted(tolerances)[len(tolerances) // 2]
    for cfg in configs:
        run = detect_cuts(video, cfg, decode_cfg)
        true_frames = truth.to_frames(run.fps, run.t0)
        t = cut_table(run.cuts, true_frames, tolerances)
        tabs.append(
            t.with_columns(
                pl.lit(run.name).alias("detector"),
                pl.lit(len(run.cuts)).alias("detected"),
                pl.lit(len(true_frames)).alias("truth"),
                pl.lit(round(run.n_frames / run.seconds, 1) if run.seconds else None).alias(
                    "fps_processed"
                ),
            )
        )
        details.append(
            cut_details(run.cuts, true_frames, primary, run.fps).with_columns(
                pl.lit(run.name).alias("detector")
            )
        )
        runs.append(run)
    table = pl.concat(tabs).select(
        "detector",
        "tolerance",
        "tp",
        "fp",
        "fn",
        "precision",
        "recall",
        "f1",
        "detected",
        "truth",
        "fps_processed",
    )
    return table, details, runs


def shot_config_variants(
    base: ShotConfig, detectors: Sequence[str] | None = None
) -> list[ShotConfig]:
    """One config per detector spec (thresholds taken from ``base``)."""
    if not detectors:
        return [base]
    return [replace(base, detector=d) for d in detectors]


def f1_plot(table: pl.DataFrame):
    """F1, precision and recall against tolerance for each detector configuration."""
    from scenesearch.eval.report import pyplot

    plt = pyplot()
    fig, axes = plt.subplots(1, 3, figsize=(11, 3.4), sharey=True)
    for name in table["detector"].unique(maintain_order=True):
        t = table.filter(pl.col("detector") == name).sort("tolerance")
        for ax, metric in zip(axes, ("f1", "precision", "recall"), strict=True):
            ax.plot(t["tolerance"], t[metric], marker="o", label=name)
            ax.set_title(metric)
            ax.set_xlabel("tolerance (frames)")
    axes[0].set_ylim(0, 1.05)
    axes[0].legend(fontsize=7)
    fig.tight_layout()
    return fig
