"""The annotated corpus clips as shot-boundary ground truth, and scoring cuts against it.

Each clip is decoded once with the indexer's decoder (its frames kept in memory, so every
detector configuration can run the indexer's own incremental ``ShotSegmenter`` over the same
frames). A transition is a frame span [first, last]: a hard cut is a span of one frame, a fade
or dissolve spans its faded frames. A detected cut matches a transition when it lies inside the
span widened by the tolerance, one-to-one, and "ignore" spans (a fade from black at the very
start, a fade to black at the very end: no shot on the other side) count neither way — the
project's one definition of shot-boundary matching, :func:`eval.shot_eval.match_transitions`. Used by ``scripts/choose_detector.py`` and ``scenesearch eval transitions``.
"""

from __future__ import annotations

import csv
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from scenesearch.eval.shot_eval import DEFAULT_TOLERANCES, match_transitions
from scenesearch.indexer.config import DecodeConfig, ShotConfig
from scenesearch.indexer.decode import VideoReader
from scenesearch.indexer.shots import ShotSegmenter

TOLERANCES = DEFAULT_TOLERANCES
PRIMARY_TOL = 1


@dataclass
class Clip:
    """One annotated clip: file, transitions as (first, last) frame spans, spans to ignore."""

    name: str
    file: str
    note: str
    spans: list[tuple[int, int]] = field(default_factory=list)
    ignore: list[tuple[int, int]] = field(default_factory=list)
    # filled by load():
    times: list[float] = field(default_factory=list)
    frames: list[np.ndarray] = field(default_factory=list)
    end_t: float = 0.0
    fps: float = 0.0


def frame_at(times: list[float], t: float) -> int:
    """Index of the frame whose timestamp is nearest to ``t``."""
    return int(np.argmin(np.abs(np.asarray(times) - t)))


def dark_spans(mean: np.ndarray, level: float) -> list[tuple[int, int]]:
    """Maximal runs of frames whose mean brightness is below ``level``."""
    spans, start = [], None
    for i, dark in enumerate(mean < level):
        if dark and start is None:
            start = i
        if not dark and start is not None:
            spans.append((start, i - 1))
            start = None
    if start is not None:
        spans.append((start, len(mean) - 1))
    return spans


def align(a: Clip, b: Clip, max_off: int = 6) -> int:
    """Frame offset o such that b's frame i + o shows a's frame i (least mean difference)."""
    import cv2

    def small(c: Clip) -> list[np.ndarray]:
        return [
            cv2.resize(x, (64, 36), interpolation=cv2.INTER_AREA).astype(np.float32)
            for x in c.frames
        ]

    sa, sb = small(a), small(b)
    lo, hi = max_off, min(len(sa), len(sb)) - max_off
    err = {
        o: np.mean([np.abs(sa[i] - sb[i + o]).mean() for i in range(lo, hi)])
        for o in range(-max_off, max_off + 1)
    }
    return min(err, key=err.get)


def read_cut_times(csv_path: Path) -> list[float]:
    rows = [r for r in csv_path.read_text().splitlines() if r and not r.startswith("#")]
    return [float(r["time_s"]) for r in csv.DictReader(rows)]


def load(clip: Clip, corpus: Path, decode_cfg: DecodeConfig) -> Clip:
    reader = VideoReader(corpus / "video" / clip.file, decode_cfg)
    for f in reader:
        clip.times.append(f.t)
        clip.frames.append(f.rgb)
        clip.end_t = f.t + f.duration
    clip.fps = reader.fps
    return clip


def build_clips(corpus: Path, decode_cfg: DecodeConfig) -> list[Clip]:
    """The ground truth, each piece stated and derived from the footage where it can be."""
    ann = corpus / "annotations"
    clips: list[Clip] = []

    c = load(Clip("sintel", "sintel_mangomm_848x480_26s.mp4",
                  "6 hand-checked hard cuts (annotation times = pts of the new shot's first frame)"),
             corpus, decode_cfg)  # fmt: skip
    c.spans = [
        (f, f)
        for f in (frame_at(c.times, t) for t in read_cut_times(ann / "sintel_mangomm_shots.csv"))
    ]
    clips.append(c)

    webm = None
    for name, file in (("bbb30-webm", "bbb_first30s_moviepy_1280x720_24p.webm"),
                       ("bbb30-480p", "bbb_first30s_bower_480p.mp4")):  # fmt: skip
        c = load(Clip(name, file, "3 hard cuts; the opening fade from black (frame 0 is black, "
                      "full picture by ~2 s) starts the first shot: ignored"), corpus, decode_cfg)  # fmt: skip
        cuts = [frame_at(c.times, t) for t in read_cut_times(ann / "bbb_first30s_shots.csv")]
        if webm is None:
            webm = c
        else:
            # The annotation times are the webm's; the 480p re-encode runs some frames later.
            # Align the pictures (offset of least mean difference) instead of trusting the CSV.
            off = align(webm, c)
            cuts = [f + off for f in cuts]
            c.note += f"; aligned to the webm: this file is {off:+d} frames later"
        c.spans = [(f, f) for f in cuts]
        mean = np.array([x.mean() for x in c.frames])
        fade_end = int(np.argmax(mean >= 0.95 * mean[: cuts[0]].max()))
        c.ignore = [(0, fade_end)]
        c.note = c.note.replace("full picture by ~2 s", f"full picture at frame {fade_end}")
        clips.append(c)

    c = load(Clip("psd-testvideo", "psd_testvideo_1280x720.mp4",
                  "checked by eye: black leader then hard cut 30; leaf->deer = hard cut to black "
                  "180 + black + fade-in to 240; deer->leaf = fade-out 330 + black + fade-in to "
                  "423; leaf->tyre dissolve 527-557; final fade to black 663-719 ignored"),
             corpus, decode_cfg)  # fmt: skip
    c.spans = [(30, 30), (180, 240), (330, 423), (527, 557)]
    c.ignore = [(663, len(c.frames) - 1)]
    clips.append(c)

    c = load(Clip("psd-counter", "psd_counter_1920x1080_10fps.mp4",
                  "3 colour blocks of 10 frames (grey, red, green): cuts 10 and 20 (PySceneDetect's "
                  "goldens find only 20: their 15-frame minimum hides 10)"), corpus, decode_cfg)  # fmt: skip
    c.spans = [(10, 10), (20, 20)]
    clips.append(c)

    c = load(Clip("psd-fades", "psd_fades_480x320.mp4",
                  "one grey picture fading to black and back: transitions = the black dips "
                  "(frames below 10% of peak brightness); the dips at the very start/end ignored"),
             corpus, decode_cfg)  # fmt: skip
    mean = np.array([x.mean() for x in c.frames])
    dips = dark_spans(mean, 0.1 * mean.max())
    c.ignore = [d for d in dips if d[0] == 0 or d[1] == len(mean) - 1]
    c.spans = [d for d in dips if d not in c.ignore]
    c.note += f": {c.spans}"
    clips.append(c)

    c = load(Clip("nasa", "nasa_13013_torchcodec.mp4",
                  "stream 0; checked by eye: dissolve 127-151 (dark shot -> lit close-up), hard "
                  "cut 202 (the manifest's 8.08 s)"), corpus, decode_cfg)  # fmt: skip
    c.spans = [(127, 151), (202, 202)]
    clips.append(c)
    return clips


def score(cuts: list[int], clip: Clip, tol: int) -> tuple[int, int, int]:
    """(true positives, false positives, false negatives) of ``cuts`` against the clip's
    transitions at ``tol`` frames (:func:`eval.shot_eval.match_transitions`)."""
    m = match_transitions(cuts, clip.spans, tol, clip.ignore)
    return m.tp, m.fp, m.fn


def run(cfg: ShotConfig, clip: Clip) -> tuple[list[int], float]:
    """Cuts of one configuration on one clip, and the CPU seconds spent detecting (CPU time, not
    wall time: the machine is shared, and wall time swung 2x between identical runs)."""
    seg = ShotSegmenter(cfg, clip.fps, clip.name)
    shots = []
    c0 = time.process_time()
    for i, (t, rgb) in enumerate(zip(clip.times, clip.frames, strict=True)):
        shots += seg.push(i, t, rgb)
    shots += seg.finish(clip.end_t)
    return [s.start_frame for s in shots[1:]], time.process_time() - c0
