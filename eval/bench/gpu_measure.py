"""What ``bench index --gpu`` measures besides time: how busy the GPU was (``nvidia-smi``
utilisation sampled in a background thread), how busy the decode workers were (their stage
seconds over wall × workers), GPU memory in use, and how a GPU run's shots compare with a CPU
run's (boundaries within ±1 frame, cosine of the shot vectors). Pure functions and a sampler
that takes its reading function, so all of it is tested without a GPU."""

from __future__ import annotations

import subprocess
import threading
from collections.abc import Callable
from typing import Any

import numpy as np

TARGET_SHOT_FRAMES = 1  # boundaries within ±1 frame


def nvidia_smi_query(index: int = 0) -> tuple[float, float] | None:
    """(GPU utilisation %, memory in use MiB) of GPU ``index`` from nvidia-smi; None if absent.
    Utilisation is the share of the last sample period in which a kernel was running."""
    try:
        out = subprocess.run(
            ["nvidia-smi", f"--id={index}", "--query-gpu=utilization.gpu,memory.used",
             "--format=csv,noheader,nounits"],
            capture_output=True, text=True, timeout=5, check=True,
        ).stdout  # fmt: skip
        util, mem = (float(x) for x in out.strip().splitlines()[0].split(","))
        return util, mem
    except (OSError, subprocess.SubprocessError, ValueError, IndexError):
        return None


class GpuSampler:
    """Background thread: ``query()`` → (utilisation %, memory MiB) every ``interval_s``.
    ``mark()`` starts a window; ``window()`` summarises the samples since."""

    def __init__(self, query: Callable[[], tuple[float, float] | None] = nvidia_smi_query,
                 interval_s: float = 0.5) -> None:  # fmt: skip
        self.query = query
        self.interval_s = interval_s
        self.samples: list[tuple[float, float]] = []
        self._from = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, daemon=True)

    def _loop(self) -> None:
        while True:
            s = self.query()
            if s is not None:
                self.samples.append(s)
            if self._stop.wait(self.interval_s):
                return

    def start(self) -> GpuSampler:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(timeout=10)

    def mark(self) -> None:
        self._from = len(self.samples)

    def window(self) -> dict[str, Any]:
        return summarise_gpu(self.samples[self._from :])


def summarise_gpu(samples: list[tuple[float, float]]) -> dict[str, Any]:
    """GPU busy share = mean utilisation / 100 over the samples; p95 utilisation; peak memory."""
    if not samples:
        return {"gpu_busy_share": None, "gpu_util_p95": None, "gpu_memory_peak_mib": None,
                "gpu_samples": 0}  # fmt: skip
    util = np.array([s[0] for s in samples])
    return {
        "gpu_busy_share": round(float(util.mean()) / 100.0, 3),
        "gpu_util_p95": round(float(np.percentile(util, 95)), 1),
        "gpu_memory_peak_mib": round(max(s[1] for s in samples), 1),
        "gpu_samples": len(samples),
    }


def decoder_busy_share(stage_s: dict[str, float], wall_s: float, workers: int) -> float | None:
    """Share of the decode workers' time spent working: (decode + detect + sample seconds,
    summed over movies) / (wall × workers). 1.0: the decoders never waited."""
    if wall_s <= 0 or workers <= 0:
        return None
    busy = sum(stage_s.get(k, 0.0) for k in ("decode", "detect", "sample"))
    return round(min(1.0, busy / (wall_s * workers)), 3)


# ------------------------------------------------------------------------------ agreement
def read_shot_vectors(index_dir: str) -> list[tuple[int, int, np.ndarray]]:
    """(start_frame, end_frame, shot vector) of every shot in an index, in frame order."""
    from scenesearch.indexer.config import StoreConfig
    from scenesearch.indexer.store import VECTOR_CLIP, open_store

    rows = []
    with open_store(StoreConfig(index_dir=index_dir)) as store:
        for r in store.iter_points(with_vectors=[VECTOR_CLIP]):
            v = np.asarray(r.vectors[VECTOR_CLIP], np.float32)
            rows.append((r.payload["start_frame"], r.payload["end_frame"], v))
    return sorted(rows, key=lambda s: s[0])


def compare_shots(cpu: list[tuple[int, int, np.ndarray]], gpu: list[tuple[int, int, np.ndarray]],
                  tol: int = TARGET_SHOT_FRAMES) -> dict[str, Any]:  # fmt: skip
    """Shots of the two paths matched by boundaries (start and end within ``tol`` frames):
    how many match, and the cosine of each matched pair's shot vectors."""
    cos, unmatched, j = [], 0, 0
    for a0, a1, av in cpu:
        while j < len(gpu) and gpu[j][0] < a0 - tol:
            j += 1
        if j < len(gpu) and abs(gpu[j][0] - a0) <= tol and abs(gpu[j][1] - a1) <= tol:
            bv = gpu[j][2]
            cos.append(float(av @ bv / max(np.linalg.norm(av) * np.linalg.norm(bv), 1e-12)))
        else:
            unmatched += 1
    return {
        "cpu_shots": len(cpu), "gpu_shots": len(gpu), "matched": len(cos),
        "unmatched_cpu_shots": unmatched,
        "cosine_min": round(min(cos), 5) if cos else None,
        "cosine_mean": round(float(np.mean(cos)), 5) if cos else None,
    }  # fmt: skip
