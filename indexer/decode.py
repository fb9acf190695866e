"""Decode stage: one pass of PyAV over a movie's video stream, yielding small RGB frames with exact
timestamps. Frames are scaled in C by swscale (``VideoFrame.reformat``) straight to the working
size (short side ``DecodeConfig.short_side``, display aspect kept, never upscaled, long side capped
at ``max_side``; YUV planes are area-scaled before the RGB conversion), turned to display orientation when the stream carries a rotation (display
matrix), and stamped with ``pts × time_base`` so variable-frame-rate movies keep true times. The
frame index is the position of the frame among the presented frames that decoded (0, 1, 2, ...).
The stream read is the first video stream with the "default" disposition (else the first video
stream; cover-art pictures never), which is also what the nasa two-stream test clip expects.
Undecodable packets and frames flagged corrupt are skipped and counted up to
``max_corrupt_frames``; every way a file can be unusable ends in an ``InputError`` with a one-line
reason. ``VideoInfo.width/height`` are the source's display size; the frames' own shape is the
working size (``VideoReader.frame_size``).

Two pixel backends (``DecodeConfig.backend``) feed the same reader: ``pyav`` (above; the
default) and ``torchcodec`` (:mod:`indexer.decode_torchcodec`: NVDEC on a CUDA device, FFmpeg on
the CPU otherwise). Stream choice, working size, frame numbering and timestamps are decided here
for both, so both select the same frames with the same times. A movie NVDEC cannot decode is
decoded by PyAV instead, with one log line; ``VideoReader.backend`` says which one ran.

Why this module is over ~400 lines: ``VideoReader`` is one unit (stream choice, working size,
rotation, numbering, timestamps, corrupt-frame accounting for both pixel backends); split, the
two backends could again disagree on which frames they select and at which times.
"""

from __future__ import annotations

import logging
import os
import time
from collections.abc import Iterator
from dataclasses import dataclass, replace
from pathlib import Path

import av
import numpy as np
from av.video.reformatter import VideoReformatter

from scenesearch.indexer.config import DecodeConfig
from scenesearch.indexer.decode_torchcodec import TorchcodecFrames, torchcodec_available
from scenesearch.indexer.errors import ConfigError, InputError
from scenesearch.indexer.records import VideoInfo

log = logging.getLogger(__name__)

_THREAD_TYPES = ("AUTO", "FRAME", "SLICE", "NONE")
BACKENDS = ("pyav", "torchcodec")
_FALLBACK_FPS = 25.0  # only when a stream states no rate at all (raw streams, some AVIs)


@dataclass(frozen=True)
class DecodedFrame:
    """One presented frame: its index among decoded frames, time in seconds, RGB pixels."""

    index: int
    t: float  # pts × time_base, seconds on the stream's own timeline (may not start at 0)
    duration: float  # seconds until the next frame (best guess for the last one)
    # uint8 [H, W, 3], working size, display orientation (a device tensor with as_tensor)
    rgb: np.ndarray


def working_size(width: int, height: int, short_side: int, max_side: int) -> tuple[int, int]:
    """Frame size (w, h) with the short side scaled to ``short_side`` (never up) and the long
    side capped at ``max_side``; aspect kept, odd sizes allowed (swscale handles them)."""
    if width <= 0 or height <= 0:
        raise InputError(f"invalid frame size {width}x{height}")
    scale = min(1.0, short_side / min(width, height))
    scale = min(scale, max_side / max(width, height))
    return max(1, round(width * scale)), max(1, round(height * scale))


def _choose_stream(container: av.container.InputContainer, path: str) -> av.video.VideoStream:
    video = [
        s
        for s in container.streams.video
        if not (s.disposition & av.stream.Disposition.attached_pic)  # cover art, not the movie
    ]
    if not video:
        if container.streams.audio:
            raise InputError(f"{path}: no video stream (audio-only file)")
        raise InputError(f"{path}: no video stream")
    # Not av_find_best_stream (it picks the biggest stream): a container's first default video
    # stream is the one players show, and the nasa clip's annotated cut is on that stream.
    defaults = [s for s in video if s.disposition & av.stream.Disposition.default]
    return (defaults or video)[0]


def _stream_fps(stream: av.video.VideoStream) -> float:
    for rate in (stream.average_rate, stream.guessed_rate, stream.base_rate):
        if rate and float(rate) > 0:
            return float(rate)
    return _FALLBACK_FPS


def _rotation_of(frame: av.VideoFrame, stream: av.video.VideoStream) -> int:
    """Counter-clockwise display rotation in degrees, a multiple of 90 in [0, 360)."""
    rot = frame.rotation or 0
    if not rot:
        # Old-style "rotate" tag (clockwise degrees); FFmpeg's mp4 demuxer already turns it into
        # a display matrix, other demuxers may not.
        tag = stream.metadata.get("rotate")
        if tag and tag.lstrip("-").isdigit():
            rot = -int(tag)
    return (round(rot / 90) * 90) % 360


def _check_file(path: str) -> None:
    p = Path(path)
    if not p.exists():
        raise InputError(f"{path}: file not found")
    if p.is_dir():
        raise InputError(f"{path}: is a directory, not a video file")
    if p.stat().st_size == 0:
        raise InputError(f"{path}: empty file (0 bytes)")


# FFmpeg demuxers of single still images: a photo named .mp4 opens as a one-frame "video"
_IMAGE_FORMATS = ("image2", "image2pipe", "gif_pipe")
# Missing tail, beyond which a movie that decodes shorter than its container says is truncated:
# timestamps and rounding make a whole file end up to a frame or two short, never this much.
TRUNCATED_MIN_S, TRUNCATED_FRACTION = 0.5, 0.05


def _open(path: str) -> av.container.InputContainer:
    _check_file(path)
    try:
        container = av.open(path, mode="r")
    except av.error.InvalidDataError as e:
        raise InputError(
            f"{path}: not a media file (FFmpeg cannot read it; truncated MP4s lose their index)"
        ) from e
    except (av.FFmpegError, OSError) as e:
        raise InputError(f"{path}: cannot open ({e})") from e
    fmt = container.format.name or ""
    if fmt.endswith("_pipe") or fmt in _IMAGE_FORMATS:
        container.close()
        kind = fmt.removesuffix("_pipe").upper() if fmt.endswith("_pipe") else "still"
        raise InputError(f"{path}: not a video (it is a {kind} image)")
    return container


class VideoReader:
    """Decodes one movie once. Iterate it for ``DecodedFrame``s; afterwards ``info`` holds the
    frames actually decoded, the corrupt count and the measured duration, and ``decode_s`` the
    seconds spent inside the decoder (including scaling). Use as a context manager or call
    ``close()``; iterating to the end closes the file too. With the torchcodec backend and
    ``as_tensor``, frames' ``rgb`` are torch tensors left on the decode device (no host copy)."""

    def __init__(
        self, path: str | os.PathLike, cfg: DecodeConfig | None = None, as_tensor: bool = False
    ) -> None:
        self.path = os.fspath(path)
        self.cfg = cfg or DecodeConfig()
        self.backend = self.cfg.backend.lower()
        if self.backend not in BACKENDS:
            raise ConfigError(
                f"unknown decode backend {self.cfg.backend!r}; available: {', '.join(BACKENDS)}"
            )
        self.as_tensor = as_tensor
        threads = self.cfg.threads.upper()
        if threads not in _THREAD_TYPES:
            raise ConfigError(
                f"unknown decode threads {self.cfg.threads!r}; available: {', '.join(_THREAD_TYPES)}"
            )
        self._container = _open(self.path)
        try:
            self._stream = _choose_stream(self._container, self.path)
            if threads != "NONE":
                self._stream.thread_type = threads
            codec = self._stream.codec_context
            if codec is None:
                raise InputError(f"{self.path}: no decoder for its video codec")
            if threads != "NONE" and self.cfg.thread_count > 0:
                codec.thread_count = self.cfg.thread_count
            self.codec = codec.name
        except BaseException:
            self._container.close()
            raise
        self.fps = _stream_fps(self._stream)
        self._time_base = self._stream.time_base
        # container facts read now: `info` may be asked after the file is closed
        self._nominal_duration = self._read_nominal_duration()
        self._stream_frames = int(self._stream.frames or 0)
        self._stream_size = (self._stream.width, self._stream.height)
        self.rotation = 0
        self.display_size: tuple[int, int] | None = None  # source (w, h) after SAR and rotation
        self.frame_size: tuple[int, int] | None = None  # working (w, h) of the frames we yield
        self.n_frames = 0
        self.corrupt_frames = 0
        self.decode_s = 0.0
        self.last_error: str | None = None
        self._end_t = 0.0
        self._first_t: float | None = None
        self._started = False
        self._scaler = VideoReformatter()
        self._converter = VideoReformatter()
        self._tc: TorchcodecFrames | None = None
        if self.backend == "torchcodec":
            self._open_torchcodec()

    def _open_torchcodec(self) -> None:
        """Open the torchcodec source on ``cfg.device``; a movie it would decode on the CPU
        although a GPU was asked for goes to PyAV instead (same frames), said in one line."""
        try:
            tc = TorchcodecFrames(self.path, self._stream.index, self.cfg.device)
        except BaseException:
            self._container.close()
            raise
        if tc.fallback:
            log.warning("%s: NVDEC cannot decode this %s stream (%s); decoding it on the CPU "
                        "with PyAV", self.path, self.codec, tc.fallback)  # fmt: skip
            tc.close()
            self.backend = "pyav"
            return
        self._tc = tc

    # -- facts --------------------------------------------------------------------------------
    @property
    def nominal_duration_s(self) -> float:
        """Duration the container states (0 when it states none)."""
        return self._nominal_duration

    def _read_nominal_duration(self) -> float:
        s = self._stream
        if s.duration and self._time_base:
            return float(s.duration * self._time_base)
        if self._container.duration:
            return self._container.duration / av.time_base
        return 0.0

    @property
    def info(self) -> VideoInfo:
        """Stream facts; after iteration n_frames/duration are what was actually decoded."""
        w, h = self.display_size or self._stream_size
        decoded = self.n_frames > 0
        return VideoInfo(
            width=int(w),
            height=int(h),
            fps=self.fps,
            duration_s=self._end_t if decoded else self.nominal_duration_s,
            n_frames=self.n_frames if decoded else self._stream_frames,
            codec=self.codec,
            rotation=self.rotation,
            corrupt_frames=self.corrupt_frames,
            declared_s=self.nominal_duration_s,
            truncated=decoded and self.truncated,
        )

    @property
    def truncated(self) -> bool:
        """After iteration: the frames decoded end well before the duration the container
        states (a cut download: a faststart MP4 or an MKV keeps its header, loses its tail)."""
        if self._first_t is None or self.nominal_duration_s <= 0:
            return False
        missing = self.nominal_duration_s - (self._end_t - self._first_t)
        return missing > max(TRUNCATED_MIN_S, TRUNCATED_FRACTION * self.nominal_duration_s)

    # -- iteration ------------------------------------------------------------------------------
    def __iter__(self) -> Iterator[DecodedFrame]:
        if self._started:
            raise RuntimeError("a VideoReader decodes once; open a new one to read again")
        self._started = True
        try:
            yield from self._decode()
        finally:
            self.close()
        if self.corrupt_frames:
            log.warning(
                "%s: skipped %d corrupt packets/frames (last error: %s)",
                self.path,
                self.corrupt_frames,
                self.last_error,
            )

    def _count_corrupt(self, why: str) -> None:
        self.corrupt_frames += 1
        self.last_error = why
        if self.corrupt_frames > self.cfg.max_corrupt_frames:
            raise InputError(
                f"{self.path}: more than {self.cfg.max_corrupt_frames} corrupt packets/frames "
                f"(last: {why}); the file is damaged"
            )

    def _raw_frames(self) -> Iterator[av.VideoFrame]:
        packets = self._container.demux(self._stream)
        while True:
            try:
                packet = next(packets)
            except StopIteration:
                return  # demux ends with an empty packet that already flushed the decoder
            except av.FFmpegError as e:
                # The container itself is damaged here (typically a truncated file): keep what was
                # decoded, drain the decoder, stop.
                self._count_corrupt(f"demux: {e.strerror or e}")
                break
            try:
                frames = packet.decode()
            except av.FFmpegError as e:
                self._count_corrupt(f"decode: {e.strerror or e}")
                continue
            yield from frames
        try:
            yield from self._stream.codec_context.decode(None)
        except av.FFmpegError as e:
            self._count_corrupt(f"flush: {e.strerror or e}")

    def _setup_size(self, frame: av.VideoFrame) -> tuple[int, int]:
        """Fix the working size from the first frame (kept for the whole movie, even if the
        stream changes resolution) and return the size to ask swscale for (coded orientation)."""
        self.rotation = _rotation_of(frame, self._stream)
        w, h = frame.width, frame.height
        sar = self._stream.sample_aspect_ratio or self._stream.codec_context.sample_aspect_ratio
        if sar and sar.numerator > 0 and sar != 1:
            w = max(1, round(w * float(sar)))  # anamorphic: display width = coded width × SAR
        if self.rotation in (90, 270):
            w, h = h, w
        self.display_size = (w, h)
        self.frame_size = working_size(w, h, self.cfg.short_side, self.cfg.max_side)
        fw, fh = self.frame_size
        return (fh, fw) if self.rotation in (90, 270) else (fw, fh)

    def _to_rgb(self, frame: av.VideoFrame, size: tuple[int, int]) -> np.ndarray:
        """Scale then convert, in C (swscale, area averaging). For YUV sources the scaling runs
        on the YUV planes and the RGB conversion on the small frame: ~4x less CPU than swscale's
        combined bilinear scale-and-convert (which cost as much as decoding 720p H.264), for a
        mean difference of ~1/255. The reformatters are kept so swscale reuses its contexts."""
        w, h = size
        if frame.format.name.startswith(("yuv", "nv")):
            small = self._scaler.reformat(frame, w, h, interpolation="AREA")
            return self._converter.reformat(small, format="rgb24").to_ndarray()
        return self._converter.reformat(
            frame, w, h, format="rgb24", interpolation="AREA"
        ).to_ndarray()

    def _pyav_source(self) -> Iterator[tuple[float | None, float | None, np.ndarray]]:
        """PyAV's frames as ``(t or None, own duration or None, rgb)`` at the working size."""
        tb = self._time_base
        scale_to: tuple[int, int] | None = None
        k_rot = 0
        for frame in self._raw_frames():
            if frame.is_corrupt:
                self._count_corrupt("frame decoded with errors")
                continue
            if scale_to is None:
                scale_to = self._setup_size(frame)
                k_rot = self.rotation // 90
            t = float(frame.pts * tb) if frame.pts is not None and tb is not None else None
            rgb = self._to_rgb(frame, scale_to)
            if k_rot:
                # np.rot90 turns counter-clockwise, the same sense as the display matrix angle.
                rgb = np.ascontiguousarray(np.rot90(rgb, k_rot))
            own = float(frame.duration * tb) if frame.duration and tb is not None else None
            yield t, own, rgb

    def _torchcodec_source(self) -> Iterator[tuple[float | None, float | None, object]]:
        """torchcodec's frames, sized here exactly as the PyAV path sizes its first frame."""
        tc = self._tc
        self.rotation = tc.rotation
        w, h = tc.size  # rotation already applied by torchcodec
        sar = self._stream.sample_aspect_ratio or self._stream.codec_context.sample_aspect_ratio
        if sar and sar.numerator > 0 and sar != 1:
            if self.rotation in (90, 270):
                h = max(1, round(h * float(sar)))  # the coded width is the displayed height
            else:
                w = max(1, round(w * float(sar)))
        self.display_size = (w, h)
        self.frame_size = working_size(w, h, self.cfg.short_side, self.cfg.max_side)
        self._container.close()  # PyAV only chose the stream; torchcodec reads the file
        yield from tc.frames(self.frame_size, self._time_base, self.as_tensor)
        if tc.lost:  # counted like PyAV's undecodable frames (same cap, same warning)
            for _ in range(tc.lost):
                self._count_corrupt(f"torchcodec: {tc.last_error}")

    def _decode(self) -> Iterator[DecodedFrame]:
        step = 1.0 / self.fps
        prev: tuple[float, np.ndarray, float] | None = None  # (t, rgb, own duration guess)
        source = self._torchcodec_source() if self._tc is not None else self._pyav_source()
        t0 = time.perf_counter()
        for t, own, rgb in source:
            if t is None:
                t = prev[0] + step if prev else 0.0
            if prev is not None and t <= prev[0]:
                t = prev[0] + step  # broken/duplicate pts: keep time strictly increasing
            if self._first_t is None:
                self._first_t = t
            if prev is not None:
                self.decode_s += time.perf_counter() - t0
                yield DecodedFrame(self.n_frames, prev[0], t - prev[0], prev[1])
                t0 = time.perf_counter()
                self.n_frames += 1
            prev = (t, rgb, own or step)
        self.decode_s += time.perf_counter() - t0
        if prev is None:
            why = f" (last error: {self.last_error})" if self.last_error else ""
            raise InputError(f"{self.path}: no decodable video frames{why}")
        self._end_t = prev[0] + prev[2]
        yield DecodedFrame(self.n_frames, prev[0], prev[2], prev[1])
        self.n_frames += 1

    def close(self) -> None:
        self._container.close()
        if self._tc is not None:
            self._tc.close()

    def __enter__(self) -> VideoReader:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


DECODERS = ("auto", *BACKENDS)


def decoder_for_device(cfg: DecodeConfig, device: str, decoder: str = "auto") -> DecodeConfig:
    """``cfg`` for indexing with CLIP on ``device`` (resolved). ``decoder``: ``pyav``,
    ``torchcodec`` (on ``device``: NVDEC when it is a GPU) or ``auto`` — torchcodec on a CUDA
    device when it is installed, else PyAV, which on a GPU machine is said in one log line (the
    frames are then decoded by the CPU, as the user should know)."""
    choice = decoder.lower()
    if choice not in DECODERS:
        raise ConfigError(f"unknown decoder {decoder!r}; available: {', '.join(DECODERS)}")
    if choice == "auto":
        if not device.startswith("cuda"):
            return replace(cfg, backend="pyav")
        try:
            torchcodec_available()
        except ConfigError as e:
            log.warning("decoding on the CPU with PyAV: %s", e)
            return replace(cfg, backend="pyav")
        choice = "torchcodec"
    return replace(cfg, backend=choice, device=device if choice == "torchcodec" else "cpu")


def iter_frames(
    path: str | os.PathLike, cfg: DecodeConfig | None = None
) -> Iterator[tuple[int, float, np.ndarray]]:
    """Decode ``path`` once: ``(frame_index, t_seconds, rgb uint8 [H, W, 3])`` per frame."""
    for f in VideoReader(path, cfg):
        yield f.index, f.t, f.rgb


def probe(path: str | os.PathLike, cfg: DecodeConfig | None = None) -> VideoInfo:
    """Stream facts without a full decode (decodes one frame to learn rotation and size).
    ``n_frames`` and ``duration_s`` are what the container states; corrupt_frames is 0."""
    reader = VideoReader(path, cfg)
    try:
        it = iter(reader)
        next(it)
        facts = reader.info
        nominal = reader.nominal_duration_s
        n_frames = int(reader._stream.frames or round(nominal * facts.fps))
        it.close()
    finally:
        reader.close()
    return VideoInfo(
        width=facts.width,
        height=facts.height,
        fps=facts.fps,
        duration_s=nominal or facts.duration_s,
        n_frames=n_frames,
        codec=facts.codec,
        rotation=facts.rotation,
        corrupt_frames=0,
    )
