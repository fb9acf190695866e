"""Configuration: one small dataclass per component, composed once at the entry point.

Every default lives here, next to a comment saying what it means. Environment variables are read
in exactly one place, :func:`env_defaults`, and only by the entry points (CLI, web app, benches).
"""

from __future__ import annotations

import dataclasses
import json
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from platformdirs import user_cache_dir, user_data_dir

VIDEO_EXTENSIONS = (
    ".mp4", ".m4v", ".mov", ".mkv", ".webm", ".avi", ".mpg", ".mpeg", ".ts", ".m2ts", ".mts",
    ".wmv", ".flv", ".ogv", ".3gp", ".vob", ".mxf",
)  # fmt: skip


@dataclass
class DecodeConfig:
    short_side: int = 256  # frames are scaled by PyAV (swscale, in C) so their short side is this
    threads: str = "AUTO"  # PyAV thread_type: AUTO (frame+slice threads), FRAME, SLICE or NONE
    # Decoder threads per movie; 0: FFmpeg's choice for a movie decoded alone, and
    # cores // workers when several decode workers run at once (no oversubscription).
    thread_count: int = 0
    max_corrupt_frames: int = 200  # give up on a movie after this many undecodable packets/frames
    max_side: int = 1024  # cap for extreme aspect ratios (keeps memory bounded)
    # Decoder: "pyav" (FFmpeg on the CPU) or "torchcodec" (NVDEC when device is cuda, FFmpeg on
    # the CPU otherwise; optional extra "gpu"). indexer/decode.py has both.
    backend: str = "pyav"
    device: str = "cpu"  # torchcodec's decode device: cpu or cuda[:n] (resolved at the entry point)


@dataclass
class ShotConfig:
    # Detector spec: one registered name, or several joined with "+" whose cuts are merged.
    # The default, chosen on the transitions benchmark and the annotated corpus clips
    # (docs/shot_detection.md, `scenesearch eval transitions`): hard cuts from the content
    # detector, fades through black from the threshold detector, dissolves and other fades
    # from TransNetV2 run only where the gate sees a gradual transition, flashes dropped, one
    # cut per fade. "content+threshold" was the default before (no dissolves).
    detector: str = "content+threshold+transnet"
    content_threshold: float = 27.0  # ContentDetector threshold (PySceneDetect 0.7 default)
    # How the content detector computes its frame scores: "opencv" (PySceneDetect) or "torch"
    # (the same scores as batched torch ops on content_device, content_batch frames at a time;
    # indexer/content_torch.py). Same cuts either way.
    content_backend: str = "opencv"
    content_device: str = "cpu"
    content_batch: int = 64
    adaptive_threshold: float = 3.0  # AdaptiveDetector adaptive_threshold
    hash_threshold: float = 0.395  # HashDetector threshold
    histogram_threshold: float = 0.05  # HistogramDetector threshold
    fade_threshold: float = 12.0  # ThresholdDetector mean-brightness threshold (0-255)
    # Where a fade through black is cut: -1 at the fade-out, 0 mid-black (PySceneDetect's
    # default), +1 at the first frame of the fade-in: the new shot starts when its picture
    # appears, and the cut is known at once (no unbounded report delay).
    fade_bias: float = 1.0
    min_shot_s: float = 0.6  # minimum shot length in seconds (the paper used 0.6 s)
    # Flash filter: a cut whose picture comes back within this many seconds (the frame before it
    # reappears after it, or the frame after it was already there before) is a flash or strobe,
    # not a cut, and is dropped (indexer/shots.py). 0: off.
    flash_return_s: float = 0.5
    # One cut per fade through black: every cut inside a dip (dark frames and the brightness
    # ramps around them) moves to the dip's end, the first frame that is not dark
    # (indexer/fades.py). Detectors that see a fade-out and a fade-in cut it once.
    merge_fades: bool = True
    # Split longer shots into max_shot_s pieces while streaming (bounded memory; the last piece is
    # shorter, never below min_shot_s). None: never split.
    max_shot_s: float | None = None
    detect_short_side: int = 128  # frames are box-downscaled to about this for detection
    # TransNetV2 (detector "transnet", indexer/transnet.py): a cut where its per-frame boundary
    # probability exceeds this (also settable in the spec: "transnet:0.3").
    transnet_threshold: float = 0.5
    transnet_device: str = "auto"  # auto → cuda when torch sees one (entry points pass theirs)
    transnet_batch: int = 0  # 100-frame windows per forward pass; 0: 1 on CPU, 4 on CUDA
    # Cascade: run the model only on windows whose dissolve score (indexer.transnet.
    # dissolve_score, 0-255) reaches this; hard cuts come from the cheap detectors. 0: every
    # window. Applies only when the spec has a detector that finds hard cuts (DetectorEntry.finds:
    # content, adaptive, hash, histogram); transnet alone always sees every window.
    transnet_gate: float = 8.0
    # The gate ignores fades through black (a change that only rescales the picture; indexer.
    # transnet.dissolve_score) and leaves them to the threshold detector, which finds them all.
    # None: on when the cascade has a detector that finds them (DetectorEntry.finds: threshold).
    transnet_skip_black: bool | None = None
    # Which model output is thresholded: "single" (the frame of a cut), "many" (every frame of a
    # gradual transition: one run per dissolve or fade), "max" of both, or "auto": "many" in a
    # cascade (the spec has a hard-cut detector), "single" for transnet alone, which must find
    # hard cuts itself (docs/shot_detection.md).
    transnet_head: str = "auto"
    # Hysteresis: a run of frames above transnet_low (0: the threshold) is one transition, cut
    # once at its most probable frame if that passes transnet_threshold. None: 0.1 with the
    # "many" head, else 0.
    transnet_low: float | None = None
    # Intra-op threads of the model's CPU forward pass (0: torch's own setting, every core; 1
    # measured slower end to end on a quiet machine: docs/shot_detection.md).
    transnet_threads: int = 0


@dataclass
class SampleConfig:
    frames_per_shot: int | str = 3  # k evenly spaced frames per shot, or "all" (the paper's way)
    # Duration-aware sampling: one frame every frame_interval_s seconds of a shot, never fewer
    # than frames_per_shot and at most max_frames_per_shot (None or 0: always k). The default
    # was chosen with `scenesearch bench stills` (docs/benchmarks.md, "Stills").
    frame_interval_s: float | None = 2.0
    max_frames_per_shot: int = 32
    # With duration-aware sampling, also a frame this many seconds inside each end of a shot
    # when no sampled frame is near it (0: off). Chosen with `bench stills` like the above.
    edge_frame_s: float = 0.1
    # Keep every sampled frame's vector with its shot (the multivector "frames"), so a query
    # ranks shots by their best-matching frame and a hit says which moment matched (match_s).
    frame_vectors: bool = True
    # k mode: strided frames of the open shot kept while its cut is pending (at least 4·k); the
    # stride doubles when full, so memory stays bounded however long the shot. Shots up to this
    # many frames are sampled exactly, longer ones to within half a stride.
    buffer_frames: int = 32
    chunk_frames: int = 64  # "all" mode: frames per FrameChunk message
    thumb_width: int = 400  # thumbnail JPEG width (16:9 → 400x225)
    thumb_quality: int = 85


@dataclass
class ModelConfig:
    name: str = "ViT-B-32"  # open_clip model name (open_clip.list_models())
    pretrained: str = (
        "openai"  # hub tag, a local weights file path, or "random" (seeded; demos only)
    )
    device: str = "auto"  # auto → cuda if available else cpu; resolved once at the entry point
    precision: str = "auto"  # auto → bf16 on CUDA / native-bf16 CPUs, else fp32; fp32|fp16|bf16
    batch_size: int = 64  # images per forward pass; batches span shots and movies
    cache_dir: str | None = None  # open_clip download cache (None: open_clip's default)


@dataclass
class LabelConfig:
    taxonomy: str | None = None  # label file, one label per line (None: MovieCLIP's 179 labels)
    prompt: str = "a photo of a {label}, a type of background location"  # MovieCLIP's prompt
    logit_scale: float = 100.0  # softmax(logit_scale · cos) as in MovieCLIP
    top_k: int = 5  # labels kept with scores per shot
    clean_top1: float = 0.4  # clean label set: top-1 kept if score ≥ this ...
    clean_rest: float = 0.1  # ... and ranks 2..top_k kept if score ≥ this


@dataclass
class StoreConfig:
    index_dir: str = ""  # index folder: embedded shard, thumbnails, state (also with a server)
    qdrant_url: str | None = None  # use a Qdrant server instead of the embedded store
    api_key: str | None = None
    collection: str = "shots"
    # Qdrant cluster options, used when the server creates the collection (None: the server's
    # default, 1). shard_number: a multiple of the node count (self-hosted Qdrant does not
    # rebalance shards by itself); replication_factor: copies of each shard, fixed at creation;
    # write_consistency_factor: replicas that must apply a write before it is acknowledged.
    shard_number: int | None = None
    replication_factor: int | None = None
    write_consistency_factor: int | None = None


@dataclass
class RunConfig:
    workers: int = 0  # decode processes; 0 → chosen from the CPU count
    queue_size: int = 4  # decoded movies waiting for the embedder (bounds memory)
    force: bool = False  # re-index movies already done
    progress: bool = True  # progress bars on stderr


@dataclass
class IndexConfig:
    decode: DecodeConfig = field(default_factory=DecodeConfig)
    shots: ShotConfig = field(default_factory=ShotConfig)
    sample: SampleConfig = field(default_factory=SampleConfig)
    model: ModelConfig = field(default_factory=ModelConfig)
    labels: LabelConfig = field(default_factory=LabelConfig)
    store: StoreConfig = field(default_factory=StoreConfig)
    run: RunConfig = field(default_factory=RunConfig)

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    def write(self, path: str | os.PathLike) -> None:
        """Write the resolved config as JSON (next to the outputs), without secrets."""
        d = self.to_dict()
        d["store"]["api_key"] = "***" if d["store"]["api_key"] else None
        Path(path).write_text(json.dumps(d, indent=2, default=str))


def default_index_dir() -> str:
    return os.path.join(user_data_dir("scenesearch", appauthor=False), "index")


def default_cache_dir() -> str:
    return os.environ.get("SCENESEARCH_CACHE_DIR") or user_cache_dir("scenesearch", appauthor=False)


def env_defaults() -> dict[str, str | None]:
    """The environment variables scenesearch reads, in one place.

    SCENESEARCH_INDEX (index folder), QDRANT_URL / QDRANT_API_KEY (server backend),
    SCENESEARCH_DEVICE (auto/cpu/cuda), SCENESEARCH_CACHE_DIR (label-matrix cache).
    """
    return {
        "index_dir": os.environ.get("SCENESEARCH_INDEX") or default_index_dir(),
        "qdrant_url": os.environ.get("QDRANT_URL") or None,
        "api_key": os.environ.get("QDRANT_API_KEY") or None,
        "device": os.environ.get("SCENESEARCH_DEVICE") or "auto",
    }


def resolve_device(device: str) -> str:
    """auto → cuda when torch sees a GPU, else cpu. Called once at the entry point."""
    import torch

    if device == "auto":
        return "cuda" if torch.cuda.is_available() else "cpu"
    if device.startswith("cuda") and not torch.cuda.is_available():
        from scenesearch.indexer.errors import ConfigError

        raise ConfigError(f"--device {device} asked for, but torch sees no CUDA device")
    return device


def available_cores() -> int:
    """CPU cores this process may run on (its affinity mask where the OS has one)."""
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1


def auto_workers() -> int:
    """Decode worker processes: one per core, minus one for the embedder, at least 1."""
    return max(1, available_cores() - 1)
