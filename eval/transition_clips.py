"""Labelled transition clips built from real footage, for the transitions benchmark.

Excerpts are taken from inside long shots of corpus films (a seeded random start, kept only when
the excerpt and 0.5 s either side are cut-free: no adjacent-frame change above ``MAX_STEP`` and
no fade, measured on 64×36 grey frames), centre-cropped to 16:9 and scaled to 640×360, then
joined by known transitions: hard cuts, dissolves (0.3–2.5 s), fades through black and through
white (0.5–2 s, with 0–4 held frames of black/white). Some excerpts carry a trap that is not a
cut: a flash (2–4 frames blown towards white), a fast pan (the excerpt seen through a 640×360
window sliding across a 1.5× enlargement, up to ~50 px per frame), a title fading in over the
shot, a strobe (brightness alternating every 2 frames for ~1 s). Everything is drawn from
``numpy.random.default_rng(seed)``, so a seed gives the same clips and truth every time. Clips are
written with PyAV (H.264, CRF 16, 24 fps, constant frame rate) and the truth is exact: frame
indices of the written file (checked when it is decoded: the frame count must match).
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from pathlib import Path

import av
import cv2
import numpy as np

from scenesearch.indexer.errors import InputError

FPS = 24
SIZE = (640, 360)  # output (w, h)
PAN_ZOOM = 1.5
MAX_STEP = 22.0  # mean |grey difference| between adjacent 64×36 frames that counts as a cut
MARGIN_S = 0.5
GRADUAL = ("dissolve", "fade_black", "fade_white")
TRAPS = ("flash", "pan", "title", "strobe")
# Sources: (corpus file, earliest and latest excerpt start in seconds).
SOURCES = (
    ("bbb_full_1280x720_24p.mp4", 12.0, 530.0),  # the film; its credits start at ~9:00
    ("bbb_full_1280x720_24p.mp4", 12.0, 530.0),
    ("bbb_full_1280x720_24p.mp4", 12.0, 530.0),
    ("sintel_mangomm_848x480_26s.mp4", 0.5, 22.0),
    ("city_kivy_cc0_720x405.mpg", 0.5, 3.5),
    ("flower_mdn_cc0_960x540.mp4", 0.3, 1.0),
    ("his_girl_friday_1940_mdn_6s.mp4", 0.3, 1.5),
    ("bbb_0340_vfi_854x480.mp4", 0.3, 5.5),
)


@dataclass
class Event:
    """One labelled span of a clip: a transition (``kind`` in cut/dissolve/fade_black/
    fade_white) or a trap (flash/pan/title/strobe); frames ``first..last`` inclusive (a hard cut:
    both = the new shot's first frame)."""

    kind: str
    first: int
    last: int
    source: str = ""

    @property
    def is_trap(self) -> bool:
        return self.kind in TRAPS


@dataclass
class ClipSpec:
    """A built clip: its file, length in frames and its events."""

    name: str
    path: str
    n_frames: int
    fps: float = FPS
    events: list[Event] = field(default_factory=list)


# ------------------------------------------------------------------------------ excerpts
def _fit(rgb: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """Centre-crop to the aspect of ``size`` and area-scale to it."""
    h, w = rgb.shape[:2]
    tw, th = size
    if w * th > h * tw:
        cw = round(h * tw / th)
        rgb = rgb[:, (w - cw) // 2 : (w - cw) // 2 + cw]
    else:
        ch = round(w * th / tw)
        rgb = rgb[(h - ch) // 2 : (h - ch) // 2 + ch]
    return cv2.resize(rgb, size, interpolation=cv2.INTER_AREA)


def read_excerpt(path: Path, start_s: float, n: int, size: tuple[int, int]) -> list[np.ndarray]:
    """``n`` consecutive frames from ``start_s`` on, fitted to ``size`` (RGB uint8)."""
    out: list[np.ndarray] = []
    with av.open(str(path)) as c:
        s = c.streams.video[0]
        s.thread_type = "AUTO"
        c.seek(int(start_s / s.time_base), stream=s, backward=True)
        for frame in c.decode(s):
            if frame.pts is None or frame.pts * s.time_base < start_s:
                continue
            out.append(_fit(frame.to_ndarray(format="rgb24"), size))
            if len(out) == n:
                break
    if len(out) < n:
        raise InputError(f"{path}: only {len(out)} of {n} frames from {start_s:.2f} s")
    return out


def cut_free(frames: list[np.ndarray]) -> bool:
    """No adjacent-frame jump above MAX_STEP, no fade (brightness range within 0.6×–1.6×),
    not dark (mean ≥ 25): a stretch inside one shot."""
    g = [
        cv2.resize(cv2.cvtColor(f, cv2.COLOR_RGB2GRAY), (64, 36), interpolation=cv2.INTER_AREA)
        for f in frames
    ]
    g = np.asarray(g, dtype=np.float32)
    steps = np.abs(np.diff(g, axis=0)).mean(axis=(1, 2))
    mean = g.mean(axis=(1, 2))
    return bool(steps.max() < MAX_STEP and mean.min() >= 25 and mean.max() < 1.6 * mean.min())


def pick_excerpt(rng, corpus: Path, n: int, size, avoid: str = "", tries: int = 60):
    """A cut-free run of ``n`` frames (plus MARGIN_S either side) from a random source other
    than ``avoid`` (the previous excerpt's file: a transition joins two different films)."""
    pad = round(MARGIN_S * FPS)
    for _ in range(tries):
        file, lo, hi = SOURCES[rng.integers(len(SOURCES))]
        path = corpus / "video" / file
        if file == avoid or not path.is_file():
            continue
        start = float(rng.uniform(lo, hi))
        try:
            frames = read_excerpt(path, start, n + 2 * pad, size)
        except InputError:
            continue
        if cut_free(frames):
            return frames[pad : pad + n], f"{file}@{start + MARGIN_S:.2f}s"
    raise InputError(f"no cut-free excerpt of {n} frames found in {corpus / 'video'}")


# ------------------------------------------------------------------------------ traps
def _blend(a: np.ndarray, b: np.ndarray | float, alpha: float) -> np.ndarray:
    return np.clip(a.astype(np.float32) * (1 - alpha) + np.float32(alpha) * b, 0, 255).astype(
        np.uint8
    )


def apply_trap(kind: str, frames: list[np.ndarray], rng, big=None) -> tuple[int, int]:
    """Put a trap into the middle of ``frames`` (in place); returns its (first, last) frame."""
    n = len(frames)
    mid = n // 2
    if kind == "flash":
        k = int(rng.integers(2, 5))
        for i in range(k):
            frames[mid + i] = _blend(frames[mid + i], 255.0, 0.85 * (1 - i / k))
        return mid, mid + k - 1
    if kind == "strobe":
        k = FPS
        gain = float(rng.uniform(1.5, 1.9))
        for i in range(k):
            if (i // 2) % 2 == 0:
                f = frames[mid - k // 2 + i].astype(np.float32) * gain
                frames[mid - k // 2 + i] = np.clip(f, 0, 255).astype(np.uint8)
        return mid - k // 2, mid + k // 2 - 1
    if kind == "title":
        k = int(rng.integers(FPS // 2, FPS + 1))
        words = ("THE END", "CHAPTER TWO", "MEANWHILE", "TEN YEARS LATER", "PART III")
        text = words[int(rng.integers(len(words)))]
        layer = np.zeros_like(frames[0])
        mask8 = np.zeros(frames[0].shape[:2], np.uint8)
        org = (40, SIZE[1] // 2 + 20)
        cv2.putText(layer, text, org, cv2.FONT_HERSHEY_DUPLEX, 1.6, (255, 255, 255), 4, cv2.LINE_AA)
        cv2.putText(mask8, text, org, cv2.FONT_HERSHEY_DUPLEX, 1.6, 255, 4, cv2.LINE_AA)
        mask = mask8.astype(np.float32) / 255.0
        start = mid - k // 2
        for i in range(start, n):
            a = min(1.0, (i - start + 1) / k) * mask[..., None]
            f = frames[i].astype(np.float32) * (1 - a) + layer.astype(np.float32) * a
            frames[i] = f.astype(np.uint8)
        return start, start + k - 1
    if kind == "pan":
        # The whole excerpt through a window sliding across a 1.5x enlargement; the slide is a
        # smooth ease-in-out lasting the middle ~1.2 s (peak ≈ 2 × mean speed).
        assert big is not None
        bw = big[0].shape[1]
        travel = bw - SIZE[0]
        k = int(rng.integers(FPS, FPS + FPS // 2))
        start = mid - k // 2
        left = bool(rng.integers(2))
        for i in range(n):
            u = min(1.0, max(0.0, (i - start) / k))
            x = round(travel * (0.5 - 0.5 * np.cos(np.pi * u)))
            x = travel - x if left else x
            y = (big[i].shape[0] - SIZE[1]) // 2
            frames[i] = np.ascontiguousarray(big[i][y : y + SIZE[1], x : x + SIZE[0]])
        return start, start + k - 1
    raise ValueError(f"unknown trap {kind!r}")


# ------------------------------------------------------------------------------ joins
def join(out: list[np.ndarray], b: list[np.ndarray], kind: str, d: int, hold: int = 0):
    """Append excerpt ``b`` to ``out`` through a transition; returns the transition's span.
    A dissolve blends out's last ``d`` frames into b's first ``d`` (so both excerpts must be
    long enough); a fade takes ``d`` frames of out down to black/white, holds ``hold`` frames,
    brings b up over ``d`` frames."""
    if kind == "cut":
        first = len(out)
        out.extend(b)
        return first, first
    if kind == "dissolve":
        first = len(out) - d
        for i in range(d):
            out[first + i] = _blend(out[first + i], b[i].astype(np.float32), (i + 1) / (d + 1))
        out.extend(b[d:])
        return first, first + d - 1
    level = 0.0 if kind == "fade_black" else 255.0
    first = len(out) - d
    for i in range(d):
        out[first + i] = _blend(out[first + i], level, (i + 1) / (d + 1))
    out.extend([np.full_like(b[0], int(level))] * hold)
    for i in range(d):
        b[i] = _blend(b[i], level, 1 - (i + 1) / (d + 1))
    out.extend(b)
    return first, len(out) - len(b) + d - 1


def write_clip(path: Path, frames: list[np.ndarray]) -> None:
    """H.264 (CRF 16, yuv420p), constant 24 fps: frame i has pts i/24."""
    with av.open(str(path), "w") as c:
        s = c.add_stream("libx264", rate=FPS, options={"crf": "16", "preset": "veryfast"})
        s.width, s.height = SIZE
        s.pix_fmt = "yuv420p"
        for f in frames:
            for pkt in s.encode(av.VideoFrame.from_ndarray(f, format="rgb24")):
                c.mux(pkt)
        for pkt in s.encode():
            c.mux(pkt)


def plan(rng, n_clips: int, counts: dict[str, int]) -> list[list[tuple[str, str | None]]]:
    """Per clip, a list of (transition into the next excerpt, trap of this excerpt)."""
    trans = [k for k, c in counts.items() if k not in TRAPS for _ in range(c)]
    traps = [k for k, c in counts.items() if k in TRAPS for _ in range(c)]
    rng.shuffle(trans)
    rng.shuffle(traps)
    n_exc = len(trans) + n_clips
    slots: list[str | None] = traps + [None] * max(0, n_exc - len(traps))
    rng.shuffle(slots)
    clips, t = [], 0
    per = [len(trans) // n_clips + (i < len(trans) % n_clips) for i in range(n_clips)]
    for i, m in enumerate(per):
        exc = [slots[t + j] for j in range(m + 1)]
        t += m + 1
        tr = trans[sum(per[:i]) : sum(per[:i]) + m]
        clips.append([(tr[j] if j < m else "", exc[j]) for j in range(m + 1)])
    return clips


DEFAULT_COUNTS = {"cut": 12, "dissolve": 12, "fade_black": 6, "fade_white": 6}
DEFAULT_COUNTS.update({"flash": 5, "pan": 5, "title": 5, "strobe": 5})


def build(
    out_dir: Path, corpus: Path, seed: int = 0, n_clips: int = 6, counts: dict | None = None
) -> list[ClipSpec]:
    """Build (or reuse, when ``truth.json`` for the same seed and counts exists) the clips."""
    counts = dict(counts or DEFAULT_COUNTS)
    out_dir.mkdir(parents=True, exist_ok=True)
    key = {"seed": seed, "n_clips": n_clips, "counts": counts, "version": 2}
    tfile = out_dir / "truth.json"
    if tfile.is_file():
        saved = json.loads(tfile.read_text())
        if saved.get("key") == key and all(Path(c["path"]).is_file() for c in saved["clips"]):
            return [
                ClipSpec(**{**c, "events": [Event(**e) for e in c["events"]]})
                for c in saved["clips"]
            ]
    rng = np.random.default_rng(seed)
    specs = []
    for ci, steps in enumerate(plan(rng, n_clips, counts)):
        frames: list[np.ndarray] = []
        events: list[Event] = []
        pending: tuple[str, int, int] | None = None  # transition into this excerpt
        prev = ""
        for kind_out, trap in steps:
            core = round(rng.uniform(3.5 if trap else 2.0, 4.0 if trap else 3.0) * FPS)
            d = {
                "cut": 0,
                "dissolve": round(rng.uniform(0.3, 2.5) * FPS),
                "fade_black": round(rng.uniform(0.25, 1.0) * FPS),
                "fade_white": round(rng.uniform(0.25, 1.0) * FPS),
                "": 0,
            }[kind_out]
            d_in = pending[1] if pending else 0
            n = core + d + d_in
            if trap == "pan":
                w, h = round(SIZE[0] * PAN_ZOOM), round(SIZE[1] * PAN_ZOOM)
                big, src = pick_excerpt(rng, corpus, n, (w, h), prev)
                exc = [cv2.resize(f, SIZE, interpolation=cv2.INTER_AREA) for f in big]
            else:
                big = None
                exc, src = pick_excerpt(rng, corpus, n, SIZE, prev)
            prev = src.split("@")[0]
            if trap:
                a, b = apply_trap(trap, exc, rng, big)
                off = len(frames) - d_in if pending and pending[0] == "dissolve" else len(frames)
                if pending and pending[0].startswith("fade"):
                    off += pending[2]
                events.append(Event(trap, off + a, off + b, src))
            if pending is None:
                frames.extend(exc)
            else:
                kind, dd, hold = pending
                first, last = join(frames, exc, kind, dd, hold)
                events.append(Event(kind, first, last, src))
            hold = int(rng.integers(0, 5)) if kind_out.startswith("fade") else 0
            pending = (kind_out, d, hold) if kind_out else None
        path = out_dir / f"transitions_{ci:02d}.mp4"
        write_clip(path, frames)
        events.sort(key=lambda e: e.first)
        specs.append(ClipSpec(f"synth{ci:02d}", str(path), len(frames), FPS, events))
    clips = [{**asdict(s)} for s in specs]
    tfile.write_text(json.dumps({"key": key, "clips": clips}, indent=1))
    return specs
