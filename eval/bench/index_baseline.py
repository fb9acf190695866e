"""``bench index``'s reference side: the MovieCLIP authors' pipeline (scenedetect split-video, then
CLIP one frame at a time) and the fidelity checks of our pipeline against it."""

from __future__ import annotations

import csv
import shutil
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np

from scenesearch.eval.bench.common import (
    Log,
    ResourceSampler,
    measure,
)
from scenesearch.indexer.errors import ConfigError, InputError


# ------------------------------------------------------------------------------ the baseline
def scenedetect_exe() -> str:
    exe = Path(sys.executable).with_name("scenedetect")
    if exe.exists():
        return str(exe)
    found = shutil.which("scenedetect")
    if not found:
        raise ConfigError("the scenedetect command is not installed (pip install scenedetect)")
    return found


def read_scene_csv(path: Path) -> list[tuple[float, float]]:
    """(start_s, end_s) per scene from ``scenedetect list-scenes`` CSV (cut list row skipped)."""
    rows = list(csv.reader(path.read_text().splitlines()))
    start = next(i for i, r in enumerate(rows) if r and r[0].strip() == "Scene Number")
    head = [h.strip() for h in rows[start]]
    a, b = head.index("Start Time (seconds)"), head.index("End Time (seconds)")
    return [(float(r[a]), float(r[b])) for r in rows[start + 1 :] if r]


def pil_preprocess(model):
    """open_clip's own inference transform for ``model`` (PIL resize/crop/normalize)."""
    from open_clip.transform import PreprocessCfg, image_transform_v2

    return image_transform_v2(PreprocessCfg(**model.visual.preprocess_cfg), is_train=False)


def run_baseline(
    max_shots: int | None,
    video: str,
    encoder,
    text_matrix: np.ndarray,
    work: Path,
    sampler: ResourceSampler,
    log: Log,
) -> dict[str, Any]:
    """The MovieCLIP authors' procedure (see the module docstring), stage by stage."""
    import av
    import torch

    if not shutil.which("ffmpeg"):
        raise ConfigError(
            "the baseline needs the ffmpeg program (scenedetect split-video); install it "
            "(apt-get install ffmpeg) or pass --skip-baseline"
        )
    out_dir = work / "baseline-shots"
    shutil.rmtree(out_dir, ignore_errors=True)
    out_dir.mkdir(parents=True)
    model = encoder.model
    preprocess = pil_preprocess(model)
    T = torch.as_tensor(text_matrix, dtype=torch.float32)
    stages = {"detect_split": 0.0, "decode": 0.0, "preprocess": 0.0, "embed": 0.0, "label": 0.0}
    with measure("baseline", sampler, log) as ph:
        t0 = time.perf_counter()
        cmd = [scenedetect_exe(), "-i", video, "-o", str(out_dir), "detect-content",
               "list-scenes", "split-video"]  # fmt: skip
        proc = subprocess.run(cmd, capture_output=True, text=True)
        if proc.returncode != 0:
            raise InputError(f"scenedetect failed: {proc.stderr.strip().splitlines()[-1:]}")
        stages["detect_split"] = time.perf_counter() - t0
        scenes = read_scene_csv(next(out_dir.glob("*-Scenes.csv")))
        files = sorted(out_dir.glob("*-Scene-*.mp4"))
        if len(files) != len(scenes):
            raise InputError(f"scenedetect wrote {len(files)} files for {len(scenes)} scenes")
        log(f"[baseline] scenedetect detect-content + split-video: {len(scenes)} shots in "
            f"{stages['detect_split']:.1f} s")  # fmt: skip
        n = len(files) if max_shots is None else min(max_shots, len(files))
        shots, frames = [], 0
        with torch.no_grad():
            for i, f in enumerate(files[:n]):
                probs = []
                t = time.perf_counter()
                with av.open(str(f)) as c:
                    for frame in c.decode(video=0):
                        img = frame.to_image()  # full-resolution RGB PIL image
                        t1 = time.perf_counter()
                        x = preprocess(img).unsqueeze(0)
                        t2 = time.perf_counter()
                        feat = model.encode_image(x).float()
                        feat = feat / feat.norm(dim=-1, keepdim=True)
                        t3 = time.perf_counter()
                        probs.append(torch.softmax(100.0 * feat @ T.T, dim=-1)[0])
                        t4 = time.perf_counter()
                        stages["decode"] += t1 - t
                        stages["preprocess"] += t2 - t1
                        stages["embed"] += t3 - t2
                        stages["label"] += t4 - t3
                        t = time.perf_counter()
                frames += len(probs)
                score = torch.stack(probs).mean(0).numpy() if probs else None
                shots.append(
                    {
                        "start_s": scenes[i][0],
                        "end_s": scenes[i][1],
                        "n_frames": len(probs),
                        "top1": None if score is None else int(np.argmax(score)),
                        "scores": score,
                    }
                )
                if (i + 1) % 10 == 0 or i + 1 == n:
                    log(f"[baseline] CLIP on shot {i + 1}/{n}: {frames} frames, "
                        f"{frames / max(1e-9, sum(stages.values()) - stages['detect_split']):.1f} "
                        "frames/s")  # fmt: skip
    clip_s = sum(v for k, v in stages.items() if k != "detect_split")
    total_frames = frames
    estimated = None
    if n < len(files):
        # Quick run: extrapolate the CLIP part by frames (the authors tagged every shot).
        total_frames = sum(_count_frames(f) for f in files)
        est_clip = clip_s * total_frames / max(1, frames)
        estimated = {
            "shots_embedded": n,
            "frames_embedded": frames,
            "frames_total": total_frames,
            "wall_s_estimated": round(stages["detect_split"] + est_clip, 2),
        }
    res = {
        "command": " ".join(Path(c).name if i == 0 else c for i, c in enumerate(cmd)),
        "scenedetect_detector": "detect-content (defaults)",
        "shots": len(scenes),
        "frames_embedded": frames,
        "images_per_s": round(frames / clip_s, 2) if clip_s else 0.0,
        "stage_s": {k: round(v, 3) for k, v in stages.items()},
        "estimated_full": estimated,
        **ph.to_dict(),
    }
    res["_shots"] = shots
    return res


def _count_frames(path: Path) -> int:
    import av

    with av.open(str(path)) as c:
        s = c.streams.video[0]
        return int(s.frames) or sum(1 for _ in c.demux(s) if _.size)


# ------------------------------------------------------------------------------ fidelity
def feature_fidelity(
    video: str, encoder, n_frames: int, log: Log, reference=None
) -> dict[str, Any]:
    """Cosine between image features of (a) our path — PyAV scales the frame to the working
    size, ClipEncoder's tensor preprocessing, the product's precision — and (b) open_clip's PIL
    preprocessing of the full-resolution frame through ``reference`` (the same weights in fp32),
    on ``n_frames`` frames spread over the video."""
    import av
    import torch

    from scenesearch.indexer.config import DecodeConfig
    from scenesearch.indexer.decode import VideoReader

    with av.open(video) as c:
        s = c.streams.video[0]
        total = int(s.frames) or int(float(s.duration * s.time_base) * float(s.average_rate))
    picks = set(np.linspace(0, max(0, total - 1), n_frames).round().astype(int).tolist())
    # Pass 1: the product's own frame path (VideoReader at the working size).
    small: dict[int, np.ndarray] = {}
    for f in VideoReader(video, DecodeConfig()):
        if f.index in picks:
            small[f.index] = f.rgb
    # Pass 2: the reference path, full-resolution frames (same presented-frame order).
    full: dict[int, Any] = {}
    with av.open(video) as c:
        s = c.streams.video[0]
        s.thread_type = "AUTO"
        for i, frame in enumerate(c.decode(s)):
            if i in small:
                full[i] = frame.to_image()
    keys = sorted(small.keys() & full.keys())
    reference = reference or encoder
    preprocess = pil_preprocess(reference.model)
    ours, ref = [], []
    for i in keys:
        ours.append(encoder.encode_frames(small[i][None])[0])
        with torch.no_grad():
            x = preprocess(full[i]).unsqueeze(0).to(reference.device)
            f = reference.model.encode_image(x).float()
            ref.append(torch.nn.functional.normalize(f, dim=-1)[0].cpu().numpy())
    a, b = np.stack(ours), np.stack(ref)
    cos = np.sum(a * b, axis=1)
    # How alike the features of DIFFERENT frames are: if random weights made every image look
    # the same, a high cosine above would mean nothing; this says how much it does mean.
    g = b @ b.T
    off = g[~np.eye(len(b), dtype=bool)] if len(b) > 1 else np.array([np.nan])
    log(f"[fidelity] feature cosine over {len(cos)} frames: min {cos.min():.4f}, "
        f"mean {cos.mean():.4f}")  # fmt: skip
    return {
        "frames": len(cos),
        "cos_min": round(float(cos.min()), 5),
        "cos_mean": round(float(cos.mean()), 5),
        "cos_p05": round(float(np.percentile(cos, 5)), 5),
        "cos_between_different_frames_mean": round(float(np.mean(off)), 5),
        "ours": "indexer.decode.VideoReader frames (working size) + ClipEncoder.preprocess "
        f"(bicubic antialias resize, centre crop, normalise), {encoder.precision_used}",
        "reference": "full-resolution frame → PIL → open_clip image_transform_v2 (is_train=False), "
        f"{reference.precision_used}",
    }


def label_agreement(ours: list[dict], base: list[dict], labels: tuple[str, ...]) -> dict:
    """Top-1 agreement over shots matched by time overlap: each baseline shot is matched to our
    shot overlapping it most, if that overlap covers ≥ 50 % of the shorter of the two."""
    matched = same = 0
    cosines = []
    for b in base:
        if b["top1"] is None:
            continue
        best, best_ov = None, 0.0
        for o in ours:
            ov = min(b["end_s"], o["end_s"]) - max(b["start_s"], o["start_s"])
            if ov > best_ov:
                best, best_ov = o, ov
        if best is None:
            continue
        shorter = min(b["end_s"] - b["start_s"], best["end_s"] - best["start_s"])
        if best_ov < 0.5 * shorter:
            continue
        matched += 1
        same += best["top1"] == labels[b["top1"]]
        u, v = best["scores"], b["scores"]
        cosines.append(float(u @ v / max(1e-12, np.linalg.norm(u) * np.linalg.norm(v))))
    return {
        "baseline_shots": len(base),
        "our_shots": len(ours),
        "matched": matched,
        "same_top1": same,
        "agreement": round(same / matched, 4) if matched else None,
        "score_vector_cos_mean": round(float(np.mean(cosines)), 5) if cosines else None,
        "distinct_top1_ours": len({o["top1"] for o in ours}),
        "distinct_top1_baseline": len({b["top1"] for b in base if b["top1"] is not None}),
        "rule": "each baseline shot ↔ our shot with the largest time overlap, kept if the "
        "overlap covers ≥ 50 % of the shorter shot",
    }
