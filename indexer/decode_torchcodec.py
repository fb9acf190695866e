"""The torchcodec pixel source of :class:`indexer.decode.VideoReader`: NVDEC decoding on a CUDA
device (frames land in GPU memory as torch tensors, colour-converted there), or FFmpeg on the
CPU through the same API (which is how the tests check it against PyAV on machines without a GPU).

This module only produces pixels and raw timestamps; :mod:`indexer.decode` stays the one place
that chooses the stream, fixes the working size, numbers the frames and turns timestamps into the
strictly increasing times every stage uses, for both backends alike. Frames come from
``VideoDecoder.get_frames_in_range`` in chunks (bounded memory), in presentation order, with
``seek_mode="exact"`` (a scan of the packet index first, so variable-frame-rate files keep their
true times). Each chunk is area-scaled to the working size on the decode device by
``torch.nn.functional.interpolate(mode="area")`` — the counterpart of swscale's AREA filter on
the PyAV path; pixels differ from PyAV's by a few levels (different YUV→RGB and scaling order),
frame indices and times do not. torchcodec applies the stream's display rotation itself.

torchcodec is an optional dependency (``pip install 'scenesearch[gpu]'``, needs FFmpeg's shared
libraries): it is imported only when this backend is asked for, and a missing install is a
one-line ``ConfigError``.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Iterator
from fractions import Fraction

import numpy as np

from scenesearch.indexer.errors import ConfigError, InputError

log = logging.getLogger(__name__)

CHUNK_FRAMES = 32  # frames decoded per call: 32 × 1080p RGB = 190 MB of device memory at most


def _import_decoder():
    try:
        from torchcodec.decoders import VideoDecoder
    except (ImportError, OSError, RuntimeError) as e:  # OSError/RuntimeError: FFmpeg libs missing
        first = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
        raise ConfigError(
            "decode backend 'torchcodec' needs torchcodec and FFmpeg's shared libraries: "
            f"pip install 'scenesearch[gpu]' ({first})"
        ) from e
    return VideoDecoder


def torchcodec_available() -> None:
    """Nothing when torchcodec and its FFmpeg libraries load; else a one-line ConfigError."""
    _import_decoder()


def require_cuda(device: str, what: str) -> None:
    """A one-line ConfigError when ``device`` is a CUDA device torch cannot use: asked for the
    GPU, nothing may quietly run on the CPU instead."""
    import torch

    if device.startswith("cuda") and not torch.cuda.is_available():
        raise ConfigError(f"{what} on {device} asked for, but torch sees no CUDA device")


def exact_seconds(pts_seconds: float, time_base: Fraction | None) -> float:
    """The PyAV path's ``float(pts × time_base)`` from torchcodec's ``pts_seconds`` (a double
    computed as ``pts · num / den``, which may differ in the last bit): the integer pts is
    recovered and the time recomputed exactly, so both backends give identical floats."""
    if not time_base:
        return float(pts_seconds)
    pts = round(Fraction(pts_seconds) / time_base)
    return float(pts * time_base)


def rotation_degrees(rotation: float | None) -> int:
    """torchcodec's counter-clockwise rotation as a multiple of 90 in [0, 360)."""
    return (round((rotation or 0.0) / 90) * 90) % 360


class TorchcodecFrames:
    """One movie's frames through torchcodec on ``device`` ("cpu" or "cuda[:n]").

    ``fallback`` holds a one-line reason when torchcodec, asked for a CUDA device, would decode
    on the CPU instead (a codec or profile NVDEC does not support, or no NVDEC library); the
    caller then decodes with PyAV. ``size`` is the frames' (width, height) as torchcodec returns
    them (display rotation applied), ``rotation`` that rotation."""

    def __init__(self, path: str | os.PathLike, stream_index: int, device: str = "cpu") -> None:
        require_cuda(device, "decoding")
        VideoDecoder = _import_decoder()
        self.path = os.fspath(path)
        self.device = device
        try:
            self.decoder = VideoDecoder(
                self.path,
                stream_index=stream_index,
                dimension_order="NCHW",
                device=device,
                seek_mode="exact",
                num_ffmpeg_threads=0,  # CPU decoding: FFmpeg's choice; no effect on NVDEC
            )
        except (RuntimeError, ValueError) as e:
            raise InputError(f"{self.path}: torchcodec cannot open it ({_first_line(e)})") from e
        meta = self.decoder.metadata
        self.rotation = rotation_degrees(meta.rotation)
        self.size = (int(meta.width), int(meta.height))
        self.n_frames = len(self.decoder)
        self.fallback: str | None = None
        self.lost = 0  # frames at the end torchcodec failed to deliver (see _salvage)
        self.last_error: str | None = None
        if device.startswith("cuda"):
            status = self.decoder.cpu_fallback
            if status:
                self.fallback = str(status)

    def frames(
        self, size: tuple[int, int], time_base: Fraction | None, as_tensor: bool = False
    ) -> Iterator[tuple[float, float | None, object]]:
        """``(t, own_duration, rgb)`` per frame in presentation order: ``t`` exactly as the
        PyAV path computes it, ``rgb`` uint8 ``[H, W, 3]`` at ``size`` (w, h) — a numpy array
        in host memory, or with ``as_tensor`` a torch tensor left on the decode device."""
        import torch
        import torch.nn.functional as F

        w, h = size
        for start in range(0, self.n_frames, CHUNK_FRAMES):
            stop = min(start + CHUNK_FRAMES, self.n_frames)
            try:
                batch = self.decoder.get_frames_in_range(start, stop)
            except (RuntimeError, IndexError) as e:
                batch = self._salvage(start, stop, e)
                if batch is None:
                    return
            x = batch.data  # uint8 [N, 3, H, W] on the decode device
            if tuple(x.shape[-2:]) != (h, w):
                x = F.interpolate(x.float(), size=(h, w), mode="area")
                x = x.round_().clamp_(0, 255).to(torch.uint8)
            x = x.permute(0, 2, 3, 1).contiguous()  # [N, H, W, 3]
            if not as_tensor:
                x = x.cpu().numpy()
            pts = batch.pts_seconds.tolist()
            dur = batch.duration_seconds.tolist()
            for i in range(len(pts)):
                own = exact_seconds(dur[i], time_base) if dur[i] > 0 else None
                yield exact_seconds(pts[i], time_base), own, x[i]
            if self.lost:
                return

    def _salvage(self, start: int, stop: int, error: BaseException):
        """A chunk that failed, decoded again frame by frame up to the first frame that fails;
        the frames from there to the end are ``lost`` (torchcodec 0.17 loses the last frames of
        some MPEG-2 files that PyAV decodes). None when not even the first one decodes."""
        good = start
        while good < stop:
            try:
                self.decoder.get_frames_in_range(good, good + 1)
            except (RuntimeError, IndexError):
                break
            good += 1
        self.lost = self.n_frames - good
        self.last_error = _first_line(error)
        if good == start and start == 0:
            raise InputError(f"{self.path}: torchcodec decodes no frame ({self.last_error})")
        return self.decoder.get_frames_in_range(start, good) if good > start else None

    def close(self) -> None:
        self.decoder = None


def _first_line(e: BaseException) -> str:
    text = str(e).strip()
    return text.splitlines()[0] if text else type(e).__name__


def host_frame(rgb) -> np.ndarray:
    """A frame as a host numpy array (a device tensor is copied; numpy passes through)."""
    if isinstance(rgb, np.ndarray):
        return rgb
    return rgb.detach().cpu().numpy()
