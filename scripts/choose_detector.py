"""Choose the default shot detector by measured F1 on the annotated corpus clips.

Each clip is decoded once with the indexer's decoder; every candidate configuration then runs the
indexer's own incremental ``ShotSegmenter`` over those frames (the same path as indexing), and its
cuts are scored against the clips' ground-truth transitions with the same definition of
precision / recall / F1 as ``scenesearch eval shots``: :func:`eval.shot_eval.match_transitions`
(a hard cut is the new shot's first frame; a fade or dissolve is the span of its faded frames; a
detected cut matches a transition within the tolerance, 0, 1 or 5 frames, one-to-one; "ignore"
spans count neither way). Scores are micro-averaged over all clips. Writes a Markdown report
(default ``docs/shot_detection.md``).

    python scripts/choose_detector.py [--corpus ../shared/corpus] [--out docs/shot_detection.md]
"""

from __future__ import annotations

import argparse
import dataclasses
import os
import sys
import time
from dataclasses import replace
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from scenesearch.eval.metrics import prf  # noqa: E402
from scenesearch.eval.shot_corpus import PRIMARY_TOL, TOLERANCES, build_clips, run, score  # noqa: E402
from scenesearch.indexer.config import DecodeConfig, ShotConfig  # noqa: E402


def candidates() -> list[tuple[str, ShotConfig]]:
    base = ShotConfig()
    out: list[tuple[str, ShotConfig]] = []

    def add(label: str, **kw) -> None:
        out.append((label, replace(base, **kw)))

    for t in (20.0, 27.0, 35.0):
        add(f"content t={t:g}", detector="content", content_threshold=t)
    for t in (2.0, 3.0, 5.0):
        add(f"adaptive a={t:g}", detector="adaptive", adaptive_threshold=t)
    for t in (0.25, 0.35, 0.395):
        add(f"hash h={t:g}", detector="hash", hash_threshold=t)
    for t in (0.05, 0.1, 0.2):
        add(f"histogram h={t:g}", detector="histogram", histogram_threshold=t)
    for t in (8.0, 12.0, 20.0):
        add(f"threshold f={t:g}", detector="threshold", fade_threshold=t)
    add("threshold f=12 bias=0", detector="threshold", fade_bias=0.0)
    for spec in ("content+threshold", "adaptive+threshold", "hash+threshold",
                 "histogram+threshold", "content+histogram", "adaptive+histogram",
                 "content+adaptive", "content+hash", "content+histogram+threshold",
                 "adaptive+histogram+threshold"):  # fmt: skip
        add(spec, detector=spec)
    add("content+threshold bias=0", detector="content+threshold", fade_bias=0.0)
    add("adaptive+threshold bias=0", detector="adaptive+threshold", fade_bias=0.0)
    add("content t=20+threshold", detector="content+threshold", content_threshold=20.0)
    add("adaptive a=2+threshold", detector="adaptive+threshold", adaptive_threshold=2.0)
    add("histogram h=0.1+threshold", detector="histogram+threshold", histogram_threshold=0.1)
    return out


def evaluate(configs, clips, repeat: int = 1):
    """Score every configuration; detection CPU time is the best of ``repeat`` runs."""
    rows = []
    for label, cfg in configs:
        per_clip, seconds, frames = {}, 0.0, 0
        for clip in clips:
            runs = [run(cfg, clip) for _ in range(repeat)]
            cuts = runs[0][0]
            seconds += min(s for _, s in runs)
            frames += len(clip.frames)
            per_clip[clip.name] = (cuts, {tol: score(cuts, clip, tol) for tol in TOLERANCES})
        tot = {
            tol: tuple(sum(v[1][tol][k] for v in per_clip.values()) for k in range(3))
            for tol in TOLERANCES
        }
        rows.append({"label": label, "cfg": cfg, "clips": per_clip, "total": tot,
                     "fps": frames / seconds if seconds else 0.0})  # fmt: skip
        p, r, f = prf(*tot[PRIMARY_TOL])
        print(f"{label:34s} P={p:.2f} R={r:.2f} F1={f:.3f}  {rows[-1]['fps']:.0f} fps", flush=True)
    return rows


def fmt_prf(t) -> str:
    p, r, f = prf(*t)
    return f"{p:.2f} / {r:.2f} / **{f:.2f}**"


def report(rows, clips, size_rows, out: Path, chosen: str) -> None:
    L = ["# Shot detection: choosing the default detector", "",
         "Produced by `scripts/choose_detector.py` (re-run it after changing a detector or the "
         "decoder). Every configuration runs the indexer's own `ShotSegmenter` on frames from "
         "the indexer's decoder (short side 256, detection on a 128-px-short-side box downscale, "
         "minimum shot 0.6 s), so these are the numbers the indexer gets.", "",
         "## Ground truth", "",
         "Scored as `scenesearch eval shots` scores (`eval.shot_eval.match_transitions`, the "
         "project's one definition). A transition is a frame span: one frame for a hard cut "
         "(the new shot's first frame), the faded frames for a fade or dissolve. A detected cut "
         "matches when it lies in the span widened by the tolerance; one-to-one, so two cuts in "
         "one fade give one true and one false positive (the second makes a junk shot). Spans "
         "marked *ignored* count neither way. Frames are 0-based indices of decoded frames.", "",
         "| clip | frames | transitions | ignored | how it was established |", "|---|---|---|---|---|"]  # fmt: skip
    for c in clips:
        sp = ", ".join(f"{a}" if a == b else f"{a}-{b}" for a, b in c.spans)
        ig = ", ".join(f"{a}-{b}" for a, b in c.ignore) or "-"
        L.append(f"| {c.name} | {len(c.frames)} | {sp} | {ig} | {c.note} |")
    n_t = sum(len(c.spans) for c in clips)
    n_hard = sum(1 for c in clips for a, b in c.spans if a == b)
    L += ["", f"{n_t} transitions in all: {n_hard} hard cuts, {n_t - n_hard} gradual.", "",
          "## All candidates (micro-averaged over the clips)", "",
          "P / R / F1 at each tolerance; detect fps = frames per CPU-second of detection alone "
          "(downscale + detectors; decoding excluded), one core of this 2-core machine.", "",
          "| configuration | ±0 frames | ±1 frame | ±5 frames | detect fps |", "|---|---|---|---|---|"]  # fmt: skip
    ranked = sorted(rows, key=lambda r: (-round(prf(*r["total"][PRIMARY_TOL])[2], 4), -r["fps"]))
    for r in ranked:
        L.append(f"| {r['label']} | {fmt_prf(r['total'][0])} | {fmt_prf(r['total'][1])} | "
                 f"{fmt_prf(r['total'][5])} | {r['fps']:.0f} |")  # fmt: skip
    L += ["", "## Per clip, F1 at ±1 frame (cuts found)", "",
          "| configuration | " + " | ".join(c.name for c in clips) + " |",
          "|---|" + "---|" * len(clips)]  # fmt: skip
    for r in ranked[:12]:
        cells = []
        for c in clips:
            cuts, sc = r["clips"][c.name]
            cells.append(f"{prf(*sc[PRIMARY_TOL])[2]:.2f} ({', '.join(map(str, cuts)) or '-'})")
        L.append(f"| {r['label']} | " + " | ".join(cells) + " |")
    if size_rows:
        L += ["", "## Detection size", "",
              f"`{chosen}` with frames box-downscaled to a short side of N pixels before the "
              "detectors (the working frames are 256); detect fps = best of 3 runs.", "",
              "| detect_short_side | ±0 | ±1 | ±5 | detect fps |", "|---|---|---|---|---|"]  # fmt: skip
        for n, r in size_rows:
            L.append(f"| {n} | {fmt_prf(r['total'][0])} | {fmt_prf(r['total'][1])} | "
                     f"{fmt_prf(r['total'][5])} | {r['fps']:.0f} |")  # fmt: skip
    out.parent.mkdir(parents=True, exist_ok=True)
    text = "\n".join(L) + "\n"
    marker = "<!-- decision -->"
    if out.exists() and marker in out.read_text():
        # Keep the hand-written decision section below the marker across re-runs.
        text += "\n" + marker + out.read_text().split(marker, 1)[1]
    out.write_text(text)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    here = Path(__file__).resolve().parents[1]
    ap.add_argument("--corpus", type=Path,
                    default=Path(os.environ.get("SCENESEARCH_CORPUS", here.parent / "shared" / "corpus")))  # fmt: skip
    ap.add_argument("--out", type=Path, default=here / "docs" / "shot_detection.md")
    ap.add_argument("--sizes", default="64,96,128,256", help="detect_short_side values to compare")
    args = ap.parse_args(argv)
    dcfg = DecodeConfig()
    t0 = time.perf_counter()
    clips = build_clips(args.corpus, dcfg)
    print(f"decoded {sum(len(c.frames) for c in clips)} frames of {len(clips)} clips in "
          f"{time.perf_counter() - t0:.1f} s", flush=True)  # fmt: skip
    rows = evaluate(candidates(), clips)
    best = max(rows, key=lambda r: (round(prf(*r["total"][PRIMARY_TOL])[2], 4), r["fps"]))
    print(f"best by F1 at ±{PRIMARY_TOL}: {best['label']}")
    size_rows = []
    for n in (int(x) for x in args.sizes.split(",") if x):
        cfg = dataclasses.replace(best["cfg"], detect_short_side=n)
        size_rows.append((n, evaluate([(f"{best['label']} @{n}", cfg)], clips, repeat=3)[0]))
    report(rows, clips, size_rows, args.out, best["label"])
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
