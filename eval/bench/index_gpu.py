"""``bench index --device cuda``: images/s of the embedder on the GPU for several batch sizes."""

from __future__ import annotations

import time
from typing import Any

import numpy as np

from scenesearch.eval.bench.common import (
    Log,
    measure,
)

# ------------------------------------------------------------------------------ GPU
GPU_BATCHES = (64, 256, 512, 1024)


def gpu_throughput(encoder, sampler, log: Log, seconds: float = 3.0) -> dict[str, Any]:
    """Images/s of the embedder on CUDA for several batch sizes, two ways:

    - ``pipeline``: what the indexer calls — uint8 frames at the decoder's working size
      (455×256, a 16:9 frame) in host memory → ``ClipEncoder.encode_frames`` (pinned upload,
      resize/crop/normalise on the GPU, bf16 autocast forward pass, features back to the host);
    - ``model``: the forward pass alone on a ready [B,3,S,S] tensor on the GPU (the ceiling).

    Each case is warmed up, then timed for about ``seconds`` with the GPU synchronised.
    """
    import torch

    from scenesearch.indexer.encoder import autocast_context

    dev = encoder.device
    h, w = 256, 455
    frames = np.random.default_rng(0).integers(0, 256, size=(max(GPU_BATCHES), h, w, 3),
                                               dtype=np.uint8)  # fmt: skip
    rows = []
    with measure("gpu_throughput", sampler, log) as ph:
        for b in GPU_BATCHES:
            batch = frames[:b]
            encoder.encode_frames(batch, batch_size=b)  # warm-up (kernels, allocator)
            torch.cuda.synchronize()
            torch.cuda.reset_peak_memory_stats()
            n, t0 = 0, time.perf_counter()
            while n < 3 * b or time.perf_counter() - t0 < seconds:
                encoder.encode_frames(batch, batch_size=b)
                n += b
            torch.cuda.synchronize()
            pipe = n / (time.perf_counter() - t0)
            pipe_mem = torch.cuda.max_memory_allocated() / 2**20

            x = torch.randn(b, 3, encoder.image_size, encoder.image_size, device=dev)
            x = x.to(encoder.image_dtype)
            with torch.inference_mode(), autocast_context(encoder.device, encoder.precision_used):
                encoder.model.encode_image(x)
                torch.cuda.synchronize()
                m, t0 = 0, time.perf_counter()
                while m < 3 * b or time.perf_counter() - t0 < seconds:
                    encoder.model.encode_image(x)
                    m += b
                torch.cuda.synchronize()
            model = m / (time.perf_counter() - t0)
            rows.append({
                "batch": b,
                "pipeline_images_s": round(pipe, 1),
                "model_images_s": round(model, 1),
                "gpu_peak_mib_pipeline": round(pipe_mem, 1),
            })  # fmt: skip
            log(f"[gpu] batch {b}: pipeline {pipe:,.0f} images/s, model alone {model:,.0f}")
    best = max(rows, key=lambda r: r["pipeline_images_s"])
    return {
        "device": torch.cuda.get_device_name(0),
        "precision": encoder.precision_used,
        "frame_size": f"{w}x{h} uint8",
        "rows": rows,
        "best_pipeline_images_s": best["pipeline_images_s"],
        "best_batch": best["batch"],
        **ph.to_dict(),
    }


def gpu_section(device: str) -> dict[str, Any]:
    import torch

    if device.startswith("cuda") and torch.cuda.is_available():
        return {"device": torch.cuda.get_device_name(0), "targets_checked_here": True}
    if device.startswith("cuda"):
        return {"device": None, "note": "--device cuda was asked for but torch sees no GPU"}
    return {
        "device": None,
        "note": "no GPU on this machine: the GPU targets (≥ 5,000 images/s ViT-B-32 embedding, "
        "≥ 100× realtime end to end on 720p) were not measured here; see docs/benchmarks.md",
    }
