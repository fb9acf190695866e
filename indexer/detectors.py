"""Shot detectors by name: a registry of PySceneDetect detectors and TransNetV2
(:mod:`indexer.transnet`) with how late each may report a cut, the detector spec language
(``"content+threshold"``, ``"transnet:0.3"``) and the per-device choice of backends. It decides
no boundaries itself: :class:`indexer.shots.ShotSegmenter` drives the detectors it builds and is
the one place shot boundaries are decided."""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Callable
from dataclasses import dataclass, replace

from scenedetect.detector import SceneDetector
from scenedetect.detectors import (
    AdaptiveDetector,
    ContentDetector,
    HashDetector,
    HistogramDetector,
    ThresholdDetector,
)

from scenesearch.indexer.config import ShotConfig
from scenesearch.indexer.content_torch import TorchContentDetector
from scenesearch.indexer.errors import ConfigError


def _generic_horizon(det: SceneDetector, f: int) -> int:
    # PySceneDetect's own promise: no event is reported more than event_buffer_length frames
    # behind the frame being processed (flash filter: min length; adaptive: its window).
    return f + 1 - det.event_buffer_length


def _threshold_horizon(det: ThresholdDetector, f: int) -> int:
    # ThresholdDetector reports a fade on the fade-IN, placing the cut between the fade-out frame
    # and the fade-in frame by fade_bias (-1: at the fade-out, 0: the middle, +1: at the fade-in).
    # While faded out, the earliest cut it may still report lies that far from the fade-out to
    # the next frame.
    fade = det.last_fade
    if fade.get("type") == "out" and fade.get("frame") is not None:
        out = fade["frame"].frame_num
        return out + math.floor((f + 1 - out) * (1.0 + det.fade_bias) / 2.0)
    return f + 1


def _generic_lag(det: SceneDetector) -> int | None:
    return det.event_buffer_length


def _threshold_lag(det: ThresholdDetector) -> int | None:
    # With fade_bias +1 the cut is the fade-in frame itself, reported as it is processed.
    return 0 if det.fade_bias >= 1.0 else None


@dataclass(frozen=True)
class DetectorEntry:
    """A registered detector: how to build it from ShotConfig and how late it may report.
    ``param`` names the ShotConfig field a spec such as ``"content:20"`` sets."""

    name: str
    build: Callable[[ShotConfig, int], SceneDetector]  # (cfg, min_len_frames) -> detector
    horizon: Callable[[SceneDetector, int], int] = _generic_horizon  # earliest future cut
    lag: Callable[[SceneDetector], int | None] = _generic_lag  # frames behind; None: unbounded
    about: str = ""
    param: str | None = None
    # What it finds on its own: "cuts" (hard cuts), "black_fades" (fades through black). With
    # a detector that finds cuts in the spec, transnet's gate may skip windows that hold no
    # gradual transition; with one that finds black fades, the gate leaves those to it.
    finds: frozenset[str] = frozenset()
    # True: the detector is fed the segmenter's small frame (48×27 BGR, area-scaled once per
    # frame and shared with the flash filter and the fade merger) instead of the detection frame.
    small: bool = False


_REGISTRY: dict[str, DetectorEntry] = {}


def register_detector(entry: DetectorEntry) -> None:
    """Add (or replace) a detector under ``entry.name``; names may not contain '+'."""
    if "+" in entry.name or not entry.name:
        raise ConfigError(f"invalid detector name {entry.name!r}")
    _REGISTRY[entry.name] = entry


def available_detectors() -> list[str]:
    return sorted(_REGISTRY)


def _build_content(c: ShotConfig, n: int) -> SceneDetector:
    # One detector, two ways to compute its frame scores: PySceneDetect's OpenCV code, or the
    # same scores as batched torch ops (indexer/content_torch.py), e.g. on the GPU.
    if c.content_backend == "opencv":
        return ContentDetector(threshold=c.content_threshold, min_scene_len=n)
    if c.content_backend == "torch":
        return TorchContentDetector(c.content_threshold, n, c.content_device, c.content_batch)
    raise ConfigError(f"unknown content backend {c.content_backend!r}; available: opencv, torch")


register_detector(
    DetectorEntry(
        "content",
        _build_content,
        about="HSV change between adjacent frames (hard cuts); the paper's detector",
        param="content_threshold",
        finds=frozenset({"cuts"}),
    )
)
register_detector(
    DetectorEntry(
        "adaptive",
        lambda c, n: AdaptiveDetector(adaptive_threshold=c.adaptive_threshold, min_scene_len=n),
        about="content score relative to its neighbours (robust to fast motion)",
        param="adaptive_threshold",
        finds=frozenset({"cuts"}),
    )
)
register_detector(
    DetectorEntry(
        "hash",
        lambda c, n: HashDetector(threshold=c.hash_threshold, min_scene_len=n),
        about="perceptual-hash distance between adjacent frames",
        param="hash_threshold",
        finds=frozenset({"cuts"}),
    )
)
register_detector(
    DetectorEntry(
        "histogram",
        lambda c, n: HistogramDetector(threshold=c.histogram_threshold, min_scene_len=n),
        about="luma histogram correlation between adjacent frames",
        param="histogram_threshold",
        finds=frozenset({"cuts"}),
    )
)
register_detector(
    DetectorEntry(
        "threshold",
        lambda c, n: ThresholdDetector(
            threshold=c.fade_threshold, min_scene_len=n, fade_bias=c.fade_bias
        ),
        horizon=_threshold_horizon,
        lag=_threshold_lag,
        about="mean brightness crossing a level (fades to/from black)",
        param="fade_threshold",
        finds=frozenset({"black_fades"}),
    )
)


def _build_transnet(c: ShotConfig, n: int) -> SceneDetector:
    from scenesearch.indexer.transnet import TransNetDetector

    # A cascade: the spec has a detector that finds hard cuts (transnet alone sees every window).
    finds = set().union(*(detector_entry(d).finds for d in parse_detector_spec(c.detector)))
    cascade = "cuts" in finds
    skip_black = c.transnet_skip_black
    if skip_black is None:
        skip_black = "black_fades" in finds
    head = c.transnet_head if c.transnet_head != "auto" else ("many" if cascade else "single")
    low = c.transnet_low if c.transnet_low is not None else (0.1 if head == "many" else 0.0)
    return TransNetDetector(
        c.transnet_threshold,
        c.transnet_device,
        c.transnet_batch,
        gate=c.transnet_gate if cascade else 0.0,
        skip_black=cascade and skip_black,
        head=head,
        low=low,
        threads=c.transnet_threads,
    )


register_detector(
    DetectorEntry(
        "transnet",
        _build_transnet,
        horizon=lambda det, f: det.horizon(),
        lag=lambda det: det.lag,
        about="TransNetV2 learned boundaries (hard cuts, dissolves, fades); indexer/transnet.py",
        param="transnet_threshold",
        small=True,  # its input is 48×27
    )
)


def _split_spec(spec: str) -> list[tuple[str, float | None]]:
    out = []
    for part in spec.split("+"):
        name, sep, value = part.strip().lower().partition(":")
        name = name.strip()
        if name not in _REGISTRY:
            raise ConfigError(
                f"unknown detector {name!r}; available: {', '.join(available_detectors())}"
            )
        number = None
        if sep:
            if _REGISTRY[name].param is None:
                raise ConfigError(f"detector {name!r} takes no threshold (in {spec!r})")
            try:
                number = float(value)
            except ValueError:
                raise ConfigError(
                    f"bad threshold {value.strip()!r} for detector {name!r} in {spec!r}"
                ) from None
        out.append((name, number))
    names = [n for n, _ in out]
    if len(set(names)) != len(names):
        raise ConfigError(f"detector listed twice in {spec!r}")
    return out


def parse_detector_spec(spec: str) -> list[str]:
    """``"content+threshold"`` → ``["content", "threshold"]``; unknown names → ConfigError. A
    name may carry its threshold, ``"content:20+transnet:0.3"`` (see :func:`apply_spec`)."""
    return [name for name, _ in _split_spec(spec)]


def config_from_label(label: str, base: ShotConfig | None = None) -> ShotConfig:
    """A configuration from its label: a detector spec, then optional ``FIELD=VALUE`` overrides
    of ShotConfig fields, e.g. ``"content+threshold merge_fades=0 flash_return_s=0"`` (``index
    --detector``, ``bench index --detector``, ``eval transitions --detector``)."""
    spec, *over = label.split() or [""]
    cfg = replace(base or ShotConfig(), detector=spec)
    fields = {f.name: f.type for f in dataclasses.fields(ShotConfig)}
    for kv in over:
        key, sep, value = kv.partition("=")
        if not sep or key not in fields or key == "detector":
            raise ConfigError(f"bad override {kv!r} in {label!r}; use FIELD=VALUE of ShotConfig")
        try:
            cfg = replace(cfg, **{key: _typed(fields[key], getattr(cfg, key), value)})
        except ValueError:
            raise ConfigError(f"bad value {value!r} for {key} in {label!r}") from None
    parse_detector_spec(spec)
    return cfg


def _typed(declared: str, current, value: str):
    """``value`` as the field's type: a bool for a field declared ``bool`` (or ``bool | None``),
    else the type of its current value (None: a number)."""
    if declared.split(" |")[0] == "bool":
        low = value.strip().lower()
        if low not in ("0", "1", "true", "false", "on", "off"):
            raise ValueError(value)
        return low in ("1", "true", "on")
    return type(current or 0.0)(value)


def apply_spec(cfg: ShotConfig) -> ShotConfig:
    """``cfg`` with the thresholds written in its detector spec (``"transnet:0.3"`` sets
    ``transnet_threshold``) moved into their fields."""
    over = {_REGISTRY[n].param: v for n, v in _split_spec(cfg.detector) if v is not None}
    return replace(cfg, **over) if over else cfg


def for_device(cfg: ShotConfig, device: str, frames_on_device: bool = True) -> ShotConfig:
    """``cfg`` for indexing on ``device`` (resolved): the learned detector runs there, and on a
    GPU the content detector's scores too (backend "torch": the same scores and cuts as
    PySceneDetect's, tests/test_content_torch.py; its speed there is not measured yet) unless
    ``frames_on_device`` is False (Ray: frames are decoded on CPU-only nodes). The
    default detector is the same on every device: the cascade met every transitions-benchmark
    target on the CPU, the model's outputs do not depend on the device, and on a GPU the
    cascade runs the model on fewer windows than ``transnet`` alone (docs/shot_detection.md)."""
    if device.startswith("cuda") and frames_on_device:
        return replace(cfg, transnet_device=device, content_backend="torch", content_device=device)
    return replace(cfg, transnet_device=device)


def detector_entry(name: str) -> DetectorEntry:
    """The registered detector ``name`` (names come from :func:`parse_detector_spec`)."""
    return _REGISTRY[name]
