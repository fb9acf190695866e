"""What every benchmark shares: the machine description, a resource sampler, timers and the
report writers (``report.json`` + ``report.md`` in one folder).

Benchmarks on a shared machine are noisy, so every phase records, besides wall seconds, the CPU
seconds it burned (this process and its children) and the load average seen while it ran; the
figures we quote are ratios measured within one run. Timings are never asserted in tests.
"""

from __future__ import annotations

import contextlib
import json
import os
import platform
import sys
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import numpy as np

RANDOM_WEIGHTS_NOTE = (
    "Model weights are seeded RANDOM (no pretrained weights can be downloaded on this machine): "
    "speed is the same as with real weights; labels are meaningless, and the fidelity checks are "
    "pipeline-agreement checks (same model, same weights on both sides), not accuracy."
)


# ------------------------------------------------------------------------------ machine
def _cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def _cpu_flags() -> list[str]:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("flags"):
                flags = line.split(":", 1)[1].split()
                return sorted(f for f in flags if f.startswith(("avx", "amx")))
    except OSError:
        pass
    return []


def _version(module: str) -> str | None:
    from importlib import metadata

    for dist in (module, module.replace("_", "-")):
        try:
            return metadata.version(dist)
        except metadata.PackageNotFoundError:
            continue
    return None


def source_revision() -> str | None:
    """The scenesearch commit the run used (``+dirty`` with uncommitted changes to tracked
    files), or None outside a git checkout."""
    import subprocess

    root = Path(__file__).resolve().parents[2]
    try:
        head = subprocess.run(["git", "-C", str(root), "rev-parse", "--short", "HEAD"],
                              capture_output=True, text=True, timeout=10)  # fmt: skip
        if head.returncode != 0:
            return None
        dirty = subprocess.run(
            ["git", "-C", str(root), "status", "--porcelain", "--untracked-files=no"],
            capture_output=True, text=True, timeout=10,
        ).stdout.strip()  # fmt: skip
    except (OSError, subprocess.SubprocessError):
        return None
    return head.stdout.strip() + ("+dirty" if dirty else "")


def machine_info() -> dict[str, Any]:
    """CPU model, cores, RAM, GPU and the versions of the libraries whose speed we measure."""
    import psutil
    import torch

    from scenesearch.indexer import __version__

    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    gpu = None
    if torch.cuda.is_available():
        p = torch.cuda.get_device_properties(0)
        gpu = {"name": p.name, "memory_gib": round(p.total_memory / 2**30, 1)}
    return {
        "cpu": _cpu_model(),
        "cpu_flags": _cpu_flags(),
        "cores": cores,
        "ram_gib": round(psutil.virtual_memory().total / 2**30, 1),
        "gpu": gpu,
        "os": platform.platform(),
        "python": platform.python_version(),
        "torch_threads": torch.get_num_threads(),
        "versions": {
            "scenesearch": __version__ + (f" ({rev})" if (rev := source_revision()) else ""),
            "torch": torch.__version__,
            "open_clip": _version("open_clip_torch"),
            "qdrant-edge": _version("qdrant_edge_py") or _version("qdrant_edge"),
            "qdrant-client": _version("qdrant_client"),
            "PyAV": _version("av"),
            "scenedetect": _version("scenedetect-headless") or _version("scenedetect"),
            "numpy": np.__version__,
            "gradio": _version("gradio"),
        },
        "load_avg_at_start": [round(x, 2) for x in os.getloadavg()],
    }


# ------------------------------------------------------------------------------ sampling
class ResourceSampler:
    """Background thread: peak RSS of this process + its children, and load average samples.

    ``phase(name)`` resets the peak, so each benchmark phase gets its own figure. GPU memory is
    read from torch at the end of a phase (``torch.cuda.max_memory_allocated``) when on CUDA.
    """

    def __init__(self, interval_s: float = 0.2):
        import psutil

        self._proc = psutil.Process()
        self.interval_s = interval_s
        self.peak_rss = 0
        self.loads: list[float] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, daemon=True)

    def rss_now(self) -> int:
        import psutil

        total = 0
        try:
            total = self._proc.memory_info().rss
            for c in self._proc.children(recursive=True):
                with contextlib.suppress(psutil.Error):
                    total += c.memory_info().rss
        except psutil.Error:
            pass
        return total

    def _loop(self) -> None:
        n = 0
        while not self._stop.wait(self.interval_s):
            self.peak_rss = max(self.peak_rss, self.rss_now())
            n += 1
            if n % 10 == 0:  # every ~2 s is plenty for a load figure
                self.loads.append(os.getloadavg()[0])

    def start(self) -> ResourceSampler:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(timeout=2)

    def reset(self) -> None:
        self.peak_rss = self.rss_now()
        self.loads = [os.getloadavg()[0]]


def _cpu_seconds() -> float:
    t = os.times()
    return t.user + t.system + t.children_user + t.children_system


@dataclass
class Phase:
    """Wall and CPU seconds of one measured phase, with its peak RSS and load average."""

    name: str
    wall_s: float = 0.0
    cpu_s: float = 0.0
    peak_rss_mib: float = 0.0
    load_avg: float = 0.0
    gpu_peak_mib: float | None = None
    extra: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        d = {
            "wall_s": round(self.wall_s, 3),
            "cpu_s": round(self.cpu_s, 3),
            "peak_rss_mib": round(self.peak_rss_mib, 1),
            "load_avg": round(self.load_avg, 2),
        }
        if self.gpu_peak_mib is not None:
            d["gpu_peak_mib"] = round(self.gpu_peak_mib, 1)
        d.update(self.extra)
        return d


@contextlib.contextmanager
def measure(name: str, sampler: ResourceSampler | None, log=None) -> Iterator[Phase]:
    """Time a phase: wall, CPU (self + reaped children), peak RSS, mean load, GPU peak."""
    ph = Phase(name)
    cuda = False
    with contextlib.suppress(Exception):
        import torch

        cuda = torch.cuda.is_available()
        if cuda:
            torch.cuda.reset_peak_memory_stats()
    if sampler:
        sampler.reset()
    if log:
        log(f"[{name}] start")
    c0, t0 = _cpu_seconds(), time.perf_counter()
    try:
        yield ph
    finally:
        ph.wall_s = time.perf_counter() - t0
        ph.cpu_s = _cpu_seconds() - c0
        if sampler:
            ph.peak_rss_mib = max(sampler.peak_rss, sampler.rss_now()) / 2**20
            ph.load_avg = float(np.mean(sampler.loads)) if sampler.loads else os.getloadavg()[0]
        if cuda:
            import torch

            torch.cuda.synchronize()
            ph.gpu_peak_mib = torch.cuda.max_memory_allocated() / 2**20
        if log:
            log(f"[{name}] {ph.wall_s:.1f} s wall, {ph.cpu_s:.1f} s CPU")


def percentiles(ms: list[float] | np.ndarray) -> dict[str, float]:
    """p50 / p95 / p99 / mean / max of latencies in milliseconds."""
    a = np.asarray(ms, dtype=np.float64)
    if a.size == 0:
        return {"n": 0}
    p50, p95, p99 = np.percentile(a, [50, 95, 99])
    return {
        "n": int(a.size),
        "p50_ms": round(float(p50), 3),
        "p95_ms": round(float(p95), 3),
        "p99_ms": round(float(p99), 3),
        "mean_ms": round(float(a.mean()), 3),
        "max_ms": round(float(a.max()), 3),
    }


def dir_size(path: str | os.PathLike) -> int:
    """Bytes on disk under ``path`` (allocated blocks, so sparse files count what they use)."""
    total = 0
    for root, _, files in os.walk(path):
        for f in files:
            with contextlib.suppress(OSError):
                st = os.stat(os.path.join(root, f))
                total += min(st.st_size, st.st_blocks * 512)
    return total


class Log:
    """Progress lines to stderr and to ``<out>/progress.log`` (poll it during long runs)."""

    def __init__(self, out_dir: str | os.PathLike, quiet: bool = False):
        Path(out_dir).mkdir(parents=True, exist_ok=True)
        self.path = Path(out_dir) / "progress.log"
        self.path.write_text("")
        self.quiet = quiet
        self.t0 = time.perf_counter()

    def __call__(self, msg: str) -> None:
        line = f"{time.perf_counter() - self.t0:8.1f}s  {msg}"
        with open(self.path, "a") as f:
            f.write(line + "\n")
        if not self.quiet:
            print(line, file=sys.stderr, flush=True)


@contextlib.contextmanager
def exclusive_bench(log=None) -> Iterator[None]:
    """Hold the machine-wide benchmark lock (``$SCENESEARCH_BENCH_LOCK``, default
    ``$TMPDIR/scenesearch-bench.lock``): benchmarks of ours that would distort each other's
    figures take it, and wait for it, instead of running at the same time."""
    import fcntl
    import tempfile

    path = os.environ.get("SCENESEARCH_BENCH_LOCK") or os.path.join(
        tempfile.gettempdir(), "scenesearch-bench.lock"
    )
    with open(path, "a+") as f:
        try:
            fcntl.flock(f, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            if log:
                log("waiting for another scenesearch benchmark to finish (bench lock)")
            fcntl.flock(f, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(f, fcntl.LOCK_UN)


# ------------------------------------------------------------------------------ reports
def now_iso() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="seconds")


def md_table(headers: list[str], rows: list[list[Any]]) -> str:
    """A GitHub Markdown table; floats get at most 3 significant decimals."""

    def fmt(v: Any) -> str:
        if v is None:
            return "—"
        if isinstance(v, bool):
            return "yes" if v else "no"
        if isinstance(v, float):
            if abs(v) >= 100:
                return f"{v:,.0f}"
            if abs(v) >= 10:
                return f"{v:.1f}"
            return f"{v:.3g}"
        if isinstance(v, int):
            return f"{v:,}"
        return str(v).replace("|", "\\|")

    out = ["| " + " | ".join(headers) + " |", "|" + "|".join("---" for _ in headers) + "|"]
    out += ["| " + " | ".join(fmt(v) for v in r) + " |" for r in rows]
    return "\n".join(out)


def machine_md(m: dict[str, Any]) -> str:
    v = m["versions"]
    gpu = f"{m['gpu']['name']} ({m['gpu']['memory_gib']} GiB)" if m.get("gpu") else "none"
    return md_table(
        ["machine", ""],
        [
            ["CPU", f"{m['cpu']} ({m['cores']} cores; {' '.join(m['cpu_flags'][:6])}…)"],
            ["RAM", f"{m['ram_gib']} GiB"],
            ["GPU", gpu],
            ["torch threads", m["torch_threads"]],
            ["load average at start", " / ".join(str(x) for x in m["load_avg_at_start"])],
            [
                "versions",
                ", ".join(f"{k} {val}" for k, val in v.items() if val is not None)
                + f", Python {m['python']}",
            ],
            ["OS", m["os"]],
        ],
    )


def target_rows(targets: list[dict[str, Any]]) -> list[list[Any]]:
    return [
        [t["target"], t["measured"], "**met**" if t["met"] else "**not met**", t.get("note", "")]
        for t in targets
    ]


def write_report(out_dir: str | os.PathLike, report: dict[str, Any], markdown: str) -> Path:
    """Write ``report.json`` and ``report.md`` into ``out_dir``; returns the folder."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    (out / "report.json").write_text(json.dumps(report, indent=2, default=_json_default) + "\n")
    (out / "report.md").write_text(markdown.rstrip() + "\n")
    return out


def _json_default(o: Any) -> Any:
    if isinstance(o, np.generic):
        return o.item()
    if isinstance(o, np.ndarray):
        return o.tolist()
    if isinstance(o, Path):
        return str(o)
    raise TypeError(f"not JSON serialisable: {type(o).__name__}")
