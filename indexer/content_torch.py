"""PySceneDetect's content detector with its frame scores computed as batched torch ops — on
the CPU or on the CUDA device the frames were decoded on — as a backend of the ``content``
detector of :mod:`indexer.shots` (``ShotConfig.content_backend = "torch"``), not a second
segmenter: cut decisions (threshold, flash filter, minimum length) stay PySceneDetect's own.

The score of frame i is ContentDetector's: the mean absolute difference of OpenCV's 8-bit HSV
channels between frames i-1 and i, averaged over hue, saturation and value (weights 1, 1, 1, 0;
the first frame scores 0). :func:`bgr_to_hsv` is OpenCV's integer ``COLOR_BGR2HSV`` for 8-bit
images (``cv::RGB2HSV_b``: fixed-point division tables with a 12-bit shift, hue in [0, 180)), so
on the same frames the channels are bit-identical and the scores equal PySceneDetect's to float
rounding (the test allows 1e-9). :class:`TorchContentDetector` buffers ``batch`` frames, scores them
in one pass, then hands each frame to ContentDetector's own ``process_frame`` with its score, so
it reports cuts up to ``batch - 1`` frames later than the OpenCV backend (its
``event_buffer_length`` says so, and :class:`indexer.shots.ShotSegmenter` waits for it).
"""

from __future__ import annotations

from collections import deque

import numpy as np
from scenedetect import FrameTimecode
from scenedetect.detectors import ContentDetector

from scenesearch.indexer.decode_torchcodec import require_cuda
from scenesearch.indexer.errors import ConfigError

_SHIFT = 12  # OpenCV's hsv_shift


def _tables(device):
    """OpenCV's ``sdiv_table`` (255·4096/v) and ``hdiv_table180`` (180·4096/(6·d)), rounded
    to nearest as ``saturate_cast<int>`` does; entry 0 is 0."""
    import torch

    i = np.arange(256, dtype=np.float64)
    with np.errstate(divide="ignore"):
        sdiv = np.where(i > 0, np.rint((255 << _SHIFT) / i), 0)
        hdiv = np.where(i > 0, np.rint((180 << _SHIFT) / (6.0 * i)), 0)
    return (
        torch.from_numpy(sdiv.astype(np.int32)).to(device),
        torch.from_numpy(hdiv.astype(np.int32)).to(device),
    )


_TABLES: dict[str, tuple] = {}


def bgr_to_hsv(bgr):
    """uint8 BGR ``[..., H, W, 3]`` (torch) → int32 ``[..., 3, H, W]`` H, S, V exactly as
    ``cv2.cvtColor(img, cv2.COLOR_BGR2HSV)`` computes them for 8-bit images."""
    import torch

    key = str(bgr.device)
    if key not in _TABLES:
        _TABLES[key] = _tables(bgr.device)
    sdiv, hdiv = _TABLES[key]
    x = bgr.to(torch.int32)
    b, g, r = x[..., 0], x[..., 1], x[..., 2]
    v = torch.maximum(torch.maximum(b, g), r)
    vmin = torch.minimum(torch.minimum(b, g), r)
    diff = v - vmin
    half = 1 << (_SHIFT - 1)
    s = (diff * sdiv[v] + half) >> _SHIFT
    h = torch.where(v == r, g - b, torch.where(v == g, b - r + 2 * diff, r - g + 4 * diff))
    h = (h * hdiv[diff] + half) >> _SHIFT  # arithmetic shift: floor, as in OpenCV
    h = torch.where(h < 0, h + 180, h)
    return torch.stack([h, s, v], dim=-3)


def frame_scores(frames, device: str = "cpu", previous=None):
    """Content scores of consecutive BGR uint8 frames (``[N, H, W, 3]`` numpy or torch, or a
    list of them) as a float64 numpy array of N; ``previous`` is the HSV of the frame before the
    first (its score is 0 without one). Returns ``(scores, hsv_of_last_frame)``."""
    import torch

    if isinstance(frames, list | tuple):
        frames = (
            torch.stack([_as_tensor(f, device) for f in frames])
            if frames and not isinstance(frames[0], np.ndarray)
            else np.stack(frames)
        )
    x = _as_tensor(frames, device)
    hsv = bgr_to_hsv(x)  # [N, 3, H, W]
    n_pix = float(hsv.shape[-1] * hsv.shape[-2])
    if previous is not None:
        hsv_all = torch.cat([previous.unsqueeze(0), hsv])
    else:
        hsv_all = hsv
    # integer sums per channel, exact like numpy's sum over int32 differences
    sums = (hsv_all[1:] - hsv_all[:-1]).abs_().sum(dim=(-2, -1), dtype=torch.int64).cpu().numpy()
    # the same float operations as ContentDetector: sum(component * weight) / sum(|weight|)
    per_channel = sums / n_pix
    scores = ((per_channel[:, 0] * 1.0 + per_channel[:, 1] * 1.0) + per_channel[:, 2] * 1.0) / 3.0
    if previous is None:
        scores = np.concatenate([[0.0], scores])
    return scores, hsv[-1]


def _as_tensor(frames, device: str):
    import torch

    if isinstance(frames, np.ndarray):
        return torch.from_numpy(np.ascontiguousarray(frames)).to(device, non_blocking=True)
    return frames.to(device)


class TorchContentDetector(ContentDetector):
    """ContentDetector whose frame scores are computed ``batch`` frames at a time by
    :func:`frame_scores` on ``device``; same threshold, same flash filter, same cuts."""

    def __init__(
        self, threshold: float = 27.0, min_scene_len: int = 15, device: str = "cpu", batch: int = 64
    ) -> None:
        super().__init__(threshold=threshold, min_scene_len=min_scene_len)
        if batch < 1:
            raise ConfigError(f"content batch must be ≥ 1, got {batch}")
        require_cuda(device, "content scores")
        self.device = device
        self.batch = int(batch)
        self._waiting: list[tuple[FrameTimecode, object]] = []
        self._scores: deque[float] = deque()
        self._prev_hsv = None

    def _calculate_frame_score(self, timecode: FrameTimecode, frame_img) -> float:
        # ContentDetector.process_frame asks for the score of each frame: it was computed in the
        # batch that this frame belonged to.
        return self._scores.popleft()

    def process_frame(self, timecode: FrameTimecode, frame_img) -> list[FrameTimecode]:
        self._waiting.append((timecode, frame_img))
        if len(self._waiting) < self.batch:
            return []
        return self._flush()

    def post_process(self, timecode: FrameTimecode) -> list[FrameTimecode]:
        return self._flush() + list(super().post_process(timecode))

    def _flush(self) -> list[FrameTimecode]:
        if not self._waiting:
            return []
        scores, self._prev_hsv = frame_scores(
            [f for _, f in self._waiting], self.device, self._prev_hsv
        )
        self._scores.extend(scores.tolist())
        cuts: list[FrameTimecode] = []
        waiting, self._waiting = self._waiting, []
        for tc, img in waiting:
            cuts += super().process_frame(tc, img)
        return cuts

    @property
    def event_buffer_length(self) -> int:
        # frames still waiting for their batch may report a cut that far back, on top of the
        # flash filter's own delay
        return super().event_buffer_length + self.batch - 1
