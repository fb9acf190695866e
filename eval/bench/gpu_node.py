"""``scenesearch bench index VIDEO --gpu``: what one GPU node does, stage by stage and end to end.

Phases, all on one CUDA device (refused with one line anywhere else — never a CPU run labelled
GPU):

1. ``stages`` — each GPU stage alone at its best: NVDEC decoding through torchcodec into device
   tensors (one stream, then ``max(films)`` streams at once, threads), content frame scores on
   device frames (:mod:`indexer.content_torch`), TransNetV2 on batched windows, and CLIP on
   device frames (``ClipEncoder.encode_frames``).
2. ``e2e_<N>`` — the product indexer (:class:`indexer.pipeline.Indexer`) on N copies of the film
   at once (distinct remuxed files), decoder and detectors as ``--device cuda`` sets them
   (:func:`indexer.decode.decoder_for_device`, :func:`indexer.detectors.for_device`): wall time,
   × realtime, per-stage seconds, how busy the GPU (``nvidia-smi`` utilisation, sampled) and the
   decoders were, and GPU memory (device total in use: every process's context and caches).
3. ``agreement`` — the same film indexed by the CPU path (PyAV, OpenCV content scores, CLIP on
   the CPU in fp32) and the GPU path: shot boundaries within ±1 frame, cosine of each shot vector.

Targets are evaluated, never asserted. Nothing here was run on a GPU yet (see docs/benchmarks.md).
"""

from __future__ import annotations

import shutil
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from scenesearch.eval.bench.common import (
    Log,
    ResourceSampler,
    machine_info,
    machine_md,
    md_table,
    measure,
    now_iso,
    target_rows,
    write_report,
)
from scenesearch.eval.bench.gpu_measure import (
    GpuSampler,
    compare_shots,
    decoder_busy_share,
    read_shot_vectors,
)
from scenesearch.eval.bench.index import remux_video, video_facts
from scenesearch.eval.bench.index_gpu import gpu_throughput
from scenesearch.indexer.decode_torchcodec import require_cuda
from scenesearch.indexer.errors import ConfigError, InputError

TARGET_16_FILMS = 500.0  # × realtime, 720p H.264, 16 films at once (issue 18)
TARGET_ONE_FILM = 150.0
TARGET_1080P = 430.0  # NVIDIA's Cosmos-Embed1 pipeline on one H100
TARGET_COSINE = 0.999


@dataclass
class GpuBenchConfig:
    """Options of one ``bench index --gpu`` run."""

    video: str
    out_dir: str
    device: str = "cuda"
    model: str = "ViT-B-32"
    pretrained: str = "random"
    precision: str = "auto"
    batch_size: int = 256
    films: tuple[int, ...] = (1, 16)  # films indexed at once in the end-to-end runs
    decoder: str = "auto"  # indexer.decode.decoder_for_device
    workers: int = 0  # decode workers (0: automatic)
    limit_seconds: float | None = None  # bench the first S seconds of VIDEO only
    stage_frames: int = 2000  # frames per stage-rate measurement
    agreement: bool = True
    work_dir: str | None = None
    quiet: bool = False


def require_gpu(device: str) -> None:
    """One-line ConfigError unless ``device`` is a CUDA device torch can use."""
    if not device.startswith("cuda"):
        raise ConfigError(f"bench index --gpu measures a CUDA device, not --device {device}")
    require_cuda(device, "bench index --gpu")


# ------------------------------------------------------------------------------ stage rates
def _timed(fn: Callable[[], int], device: str) -> float:
    """Items per second of ``fn`` (returns the item count), the GPU synchronised around it."""
    import torch

    sync = torch.cuda.synchronize if device.startswith("cuda") else (lambda _d: None)
    sync(device)
    t0 = time.perf_counter()
    n = fn()
    sync(device)
    return n / max(time.perf_counter() - t0, 1e-9)


def decode_rate(paths: list[str], device: str, max_frames: int) -> float:
    """Frames/s of NVDEC decoding (torchcodec, frames kept on the device at the working size),
    ``len(paths)`` streams at once in threads (torchcodec releases the GIL while decoding)."""
    from scenesearch.indexer.config import DecodeConfig
    from scenesearch.indexer.decode import VideoReader

    counts = [0] * len(paths)

    def one(i: int) -> None:
        reader = VideoReader(paths[i], DecodeConfig(backend="torchcodec", device=device), True)
        if reader.backend != "torchcodec":
            raise InputError(f"{paths[i]}: NVDEC cannot decode it; no GPU decode rate")
        for _ in reader:
            counts[i] += 1
            if counts[i] >= max_frames:
                reader.close()
                break

    def run() -> int:
        threads = [threading.Thread(target=one, args=(i,)) for i in range(len(paths))]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        return sum(counts)

    return _timed(run, device)


def stage_rates(paths: list[str], encoder, cfg: GpuBenchConfig, log: Log) -> dict[str, Any]:
    """Each GPU stage alone (see the module docstring), in frames or images per second."""
    import torch

    from scenesearch.indexer.config import DecodeConfig, ShotConfig
    from scenesearch.indexer.content_torch import frame_scores
    from scenesearch.indexer.decode import VideoReader
    from scenesearch.indexer.shots import detect_size
    from scenesearch.indexer.transnet import STEP, WINDOW, load_model

    dev, n = cfg.device, cfg.stage_frames
    out: dict[str, Any] = {"decode_fps_1": round(decode_rate(paths[:1], dev, n), 1)}
    out[f"decode_fps_{len(paths)}"] = round(decode_rate(paths, dev, n), 1)
    log(f"[stages] NVDEC decode {out}")
    frames = []
    for f in VideoReader(paths[0], DecodeConfig(backend="torchcodec", device=dev), True):
        frames.append(f.rgb)
        if len(frames) >= min(n, 1024):
            break
    x = torch.stack(frames)  # [N, H, W, 3] uint8 on the device
    h, w = x.shape[1:3]
    sw, sh = detect_size(w, h, ShotConfig().detect_short_side)
    small = torch.nn.functional.interpolate(x.permute(0, 3, 1, 2).float(), size=(sh, sw),
                                            mode="area").round().to(torch.uint8)  # fmt: skip
    small = small.permute(0, 2, 3, 1).flip(-1).contiguous()  # BGR, as the detectors see it

    def score() -> int:
        for i in range(0, len(small), 64):
            frame_scores(small[i : i + 64], dev)
        return len(small)

    score()  # warm-up
    out["content_scores_fps"] = round(_timed(score, dev), 1)
    model = load_model(dev)
    windows = torch.randint(0, 256, (8, WINDOW, 27, 48, 3), dtype=torch.uint8, device=dev)

    def transnet() -> int:
        with torch.inference_mode():
            for _ in range(5):
                model.predict_raw(windows)
        return 5 * len(windows) * STEP

    transnet()
    out["transnet_fps"] = round(_timed(transnet, dev), 1)
    bs = cfg.batch_size
    batch = x[:bs] if len(x) >= bs else x.repeat((bs + len(x) - 1) // len(x), 1, 1, 1)[:bs]
    encoder.encode_frames(batch, batch_size=bs)

    def embed() -> int:
        for _ in range(5):
            encoder.encode_frames(batch, batch_size=bs)
        return 5 * bs

    out["embed_images_s_device_frames"] = round(_timed(embed, dev), 1)
    log(f"[stages] {out}")
    return out


# ------------------------------------------------------------------------------ end to end
def _index_config(cfg: GpuBenchConfig, index_dir: str, device: str):
    from scenesearch.indexer.config import IndexConfig
    from scenesearch.indexer.decode import decoder_for_device
    from scenesearch.indexer.detectors import for_device

    ic = IndexConfig()
    ic.model.name, ic.model.pretrained, ic.model.device = cfg.model, cfg.pretrained, device
    ic.model.batch_size = cfg.batch_size
    ic.shots = for_device(ic.shots, device)
    ic.decode = decoder_for_device(ic.decode, device, cfg.decoder if device != "cpu" else "pyav")
    ic.store.index_dir = index_dir
    ic.run.workers = cfg.workers
    ic.run.progress = False
    return ic


def end_to_end(cfg, paths, encoder, labeler, work: Path, gpu: GpuSampler, sampler, log) -> dict:
    """The product indexer on ``paths`` at once; figures for the report."""
    from scenesearch.indexer.config import auto_workers
    from scenesearch.indexer.pipeline import Indexer

    name = f"e2e_{len(paths)}"
    ic = _index_config(cfg, str(work / f"index-{name}"), cfg.device)
    gpu.mark()
    with measure(name, sampler, log) as ph:
        summary = Indexer(ic, encoder, labeler).run(paths)
    if summary.failed:
        raise InputError(f"{name}: indexing failed: {summary.failed[0].reason}")
    d = summary.to_dict()
    workers = max(1, min(cfg.workers or auto_workers(), len(paths)))  # -1 (inline) counts 1
    stages = {k: round(v, 3) for k, v in summary.stage_s.items()}
    out = {
        "films": len(paths), "decoder": ic.decode.backend, "content": ic.shots.content_backend,
        "workers": workers, "shots": d["shots"], "frames_decoded": d["frames_decoded"],
        "video_s": round(d["video_s"], 2), "realtime_factor": round(d["realtime_factor"], 2),
        "decode_fps": round(d["frames_per_s"], 1), "images_per_s": round(d["images_per_s"], 1),
        "stage_s": stages,
        "decoder_busy_share": decoder_busy_share(summary.stage_s, summary.wall_s, workers),
        **gpu.window(), **ph.to_dict(),
    }  # fmt: skip
    log(f"[{name}] {out['realtime_factor']}× realtime, GPU busy {out['gpu_busy_share']}")
    return out


# ------------------------------------------------------------------------------ agreement
def agreement(cfg, path: str, encoder, labeler, work: Path, log) -> dict[str, Any]:
    """The film through the CPU path and through the GPU path (see the module docstring)."""
    from scenesearch.indexer.config import ModelConfig
    from scenesearch.indexer.encoder import ClipEncoder
    from scenesearch.indexer.labels import SceneLabeler
    from scenesearch.indexer.pipeline import Indexer

    cpu_encoder = ClipEncoder(
        ModelConfig(cfg.model, cfg.pretrained, device="cpu", precision="fp32")
    )
    dirs = {}
    for side, dev, enc, lab in (("cpu", "cpu", cpu_encoder, SceneLabeler(cpu_encoder)),
                                ("gpu", cfg.device, encoder, labeler)):  # fmt: skip
        dirs[side] = str(work / f"index-agree-{side}")
        Indexer(_index_config(cfg, dirs[side], dev), enc, lab).run([path])
    out = compare_shots(read_shot_vectors(dirs["cpu"]), read_shot_vectors(dirs["gpu"]))
    log(f"[agreement] {out}")
    return out


# ------------------------------------------------------------------------------ report
def evaluate_targets(r: dict[str, Any]) -> list[dict[str, Any]]:
    """Issue 18's targets against the measured figures (only those that were measured)."""
    rows, h = [], r.get("video", {}).get("height", 0)
    for e in r.get("end_to_end", []):
        if h >= 1080:  # the anchor: a whole node's throughput, so the many-films run only
            want = TARGET_1080P if e["films"] >= 16 else None
        else:
            want = {1: TARGET_ONE_FILM, 16: TARGET_16_FILMS}.get(e["films"])
        if want is None:
            continue
        rows.append({"target": f"{e['films']} film(s) at {h}p ≥ {want:g}× realtime",
                     "measured": f"{e['realtime_factor']:g}×", "met": e["realtime_factor"] >= want,
                     "note": f"GPU busy {e.get('gpu_busy_share')}"})  # fmt: skip
    a = r.get("agreement")
    if a and a.get("cosine_min") is not None:
        rows.append({"target": "same shots (±1 frame) as the CPU path",
                     "measured": f"{a['matched']}/{a['cpu_shots']} matched",
                     "met": a["matched"] == a["cpu_shots"] == a["gpu_shots"]})  # fmt: skip
        rows.append(
            {
                "target": f"shot-vector cosine ≥ {TARGET_COSINE} vs the CPU path",
                "measured": f"min {a['cosine_min']}",
                "met": a["cosine_min"] >= TARGET_COSINE,
            }
        )
    return rows


def render_markdown(r: dict[str, Any]) -> str:
    """The report as Markdown (every figure in report.json, in tables)."""
    v = r["video"]
    lines = [
        f"# GPU indexing benchmark — {Path(v['path']).name}", "",
        f"Created {r['created']} with `{r['command']}`. {r['note']}", "",
        machine_md(r["machine"]), "",
        f"Video: {v['width']}×{v['height']}, {v['fps']} fps, {v['duration_s']} s, {v['codec']}.",
        "", "## Targets", "",
        md_table(["target", "measured", "", "note"], target_rows(r["targets"])), "",
    ]  # fmt: skip
    if r.get("stages"):
        lines += ["## Stages alone (per second)", "",
                  md_table(["stage", "rate"], [[k, f"{v:,.0f}"] for k, v in r["stages"].items()]),
                  ""]  # fmt: skip
    if r.get("end_to_end"):
        keys = ["films", "decoder", "content", "workers", "wall_s", "realtime_factor",
                "decode_fps", "images_per_s", "decoder_busy_share", "gpu_busy_share",
                "gpu_util_p95", "gpu_memory_peak_mib", "peak_rss_mib"]  # fmt: skip
        lines += ["## End to end", "", md_table(keys, [[e.get(k) for k in keys]
                                                       for e in r["end_to_end"]]), ""]  # fmt: skip
        for e in r["end_to_end"]:
            lines.append(f"- {e['films']} film(s), stage seconds: {e['stage_s']}")
        lines.append("")
    if r.get("embed"):
        lines += [f"CLIP from host frames (bench index's own figure): best "
                  f"{r['embed']['best_pipeline_images_s']:,.0f} images/s at batch "
                  f"{r['embed']['best_batch']}.", ""]  # fmt: skip
    if r.get("agreement"):
        lines += [
            "## CPU path vs GPU path",
            "",
            md_table(list(r["agreement"]), [list(r["agreement"].values())]),
        ]
    return "\n".join(lines)


def run_gpu_bench(cfg: GpuBenchConfig) -> dict[str, Any]:
    """Run every phase on the GPU and write report.json + report.md; returns the report."""
    require_gpu(cfg.device)
    from scenesearch.indexer.config import ModelConfig
    from scenesearch.indexer.encoder import ClipEncoder
    from scenesearch.indexer.labels import SceneLabeler

    if not Path(cfg.video).is_file():
        raise InputError(f"{cfg.video}: file not found")
    log = Log(cfg.out_dir, cfg.quiet)
    work = Path(cfg.work_dir or tempfile.mkdtemp(prefix="scenesearch-gpubench-"))
    work.mkdir(parents=True, exist_ok=True)
    sampler, gpu = ResourceSampler().start(), GpuSampler().start()
    try:
        films = sorted(set(cfg.films))
        paths = [remux_video(cfg.video, str(work / f"film{i:02d}.mp4"), cfg.limit_seconds,
                             title=f"film {i}") for i in range(max(films))]  # fmt: skip
        report: dict[str, Any] = {
            "kind": "bench-index-gpu", "created": now_iso(),
            "command": "scenesearch " + " ".join(sys.argv[1:]), "machine": machine_info(),
            "config": asdict(cfg), "video": video_facts(paths[0]),
            "note": "ViT-B-32 random weights: speed as with real weights, labels meaningless.",
        }  # fmt: skip
        encoder = ClipEncoder(
            ModelConfig(cfg.model, cfg.pretrained, device=cfg.device, precision=cfg.precision)
        )
        labeler = SceneLabeler(encoder)
        report["stages"] = stage_rates(paths[: max(films)], encoder, cfg, log)
        report["embed"] = gpu_throughput(encoder, sampler, log, seconds=2.0)
        report["end_to_end"] = [end_to_end(cfg, paths[:n], encoder, labeler, work, gpu, sampler,
                                           log) for n in films]  # fmt: skip
        if cfg.agreement:
            report["agreement"] = agreement(cfg, paths[0], encoder, labeler, work, log)
        report["targets"] = evaluate_targets(report)
        write_report(cfg.out_dir, report, render_markdown(report))
    finally:
        gpu.stop()
        sampler.stop()
        if not cfg.work_dir:
            shutil.rmtree(work, ignore_errors=True)
    return report
