"""Writers of small synthetic test videos with known answers, made with PyAV (its wheel ships an
H.264 encoder, so no ffmpeg program is needed). Every writer returns a ``WrittenVideo`` stating
what the file holds: frame count, per-frame times, cut frames (first frame of each shot after the
first) and fade spans. Shots differ in BRIGHTNESS and pattern (PySceneDetect's content detector
ignores pure hue changes; its hash detector ignores pure brightness changes), and each frame
moves a little so frames within a shot are not identical. Seeded and deterministic.

Typical use::

    from videos import write_video  # or tests.videos under `python -m pytest`
    v = write_video(tmp_path / "cuts.mp4", [(24, 40), (30, 200), (20, 60)])
    assert v.cuts == (24, 54)
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass, field
from fractions import Fraction
from pathlib import Path

import av
import cv2
import numpy as np

# Alternating dark/bright levels: adjacent shots differ by >= 110 in brightness, well above the
# content detector's default threshold of 27 (its score averages hue, saturation and value).
LEVELS = (40, 200, 70, 230, 30, 170)


@dataclass(frozen=True)
class Segment:
    """One synthetic shot: ``n_frames`` frames around mean brightness ``level`` (0-255).
    ``pattern`` picks the texture: "bars" (a smooth random texture per ``seed``, drifting, so
    the hash and histogram detectors also see cuts), "flat" (uniform grey), "noise" (seeded
    static, new every frame), "fadeout" (bars fading to near-black after the first quarter)."""

    n_frames: int
    level: int
    pattern: str = "bars"
    seed: int = 0


@dataclass(frozen=True)
class WrittenVideo:
    """What a writer put in the file (frames in display order, 0-based)."""

    path: Path
    n_frames: int
    fps: float
    size: tuple[int, int]  # (width, height) as stored (before any display rotation)
    times: tuple[float, ...]  # presentation time of every frame, seconds
    cuts: tuple[int, ...] = ()  # first frame of each shot after the first
    fades: tuple[tuple[int, int], ...] = ()  # (first, last) frame of each fade-out+in
    codec: str = "libx264"
    rotation: int = 0
    extra: dict = field(default_factory=dict)

    @property
    def cut_times(self) -> tuple[float, ...]:
        return tuple(self.times[c] for c in self.cuts)


# ------------------------------------------------------------------------------ frame rendering
FADEOUT_FRAMES = 8  # "fadeout" pattern: frames of the fade
NEAR_BLACK = 14.0  # "fadeout" pattern: level after the fade


def render_frame(seg: Segment, i: int, size: tuple[int, int]) -> np.ndarray:
    """Frame ``i`` of a segment as RGB uint8 [h, w, 3]; mean close to ``seg.level``."""
    w, h = size
    level = float(seg.level)
    if seg.pattern == "flat":
        img = np.full((h, w), level, np.float32)
    elif seg.pattern == "noise":
        rng = np.random.default_rng(seg.seed * 10_007 + i)
        img = level + rng.normal(0.0, 18.0, (h, w)).astype(np.float32)
    elif seg.pattern == "bars":
        # A smooth random texture (one per seed) drifting 1 px per frame: low frequencies keep
        # the hash and histogram detectors steady within a shot, and shots differ in structure.
        rng = np.random.default_rng(seg.seed + 1)
        coarse = rng.uniform(-1.0, 1.0, (4, 6)).astype(np.float32)
        tex = cv2.resize(coarse, (w, h), interpolation=cv2.INTER_CUBIC)
        amp = min(40.0, level, 255.0 - level)
        img = level + amp * np.roll(tex, i, axis=1) / max(1e-6, float(np.abs(tex).max()))
    elif seg.pattern == "fadeout":
        # "bars" for the first quarter, a fade over FADEOUT_FRAMES, then near-black (flat, mean
        # NEAR_BLACK, above the threshold detector's 12, so no fade cut) to the end: the shot's
        # middle frame is near-black, its first quarter is not (tests of the thumbnail choice)
        bars = render_frame(Segment(seg.n_frames, seg.level, "bars", seg.seed), i, size)[..., 0]
        t = min(1.0, max(0.0, (i - seg.n_frames // 4) / FADEOUT_FRAMES))
        img = (1.0 - t) * bars.astype(np.float32) + t * NEAR_BLACK
    else:
        raise ValueError(f"unknown pattern {seg.pattern!r}; available: bars, fadeout, flat, noise")
    img = np.clip(img, 0, 255).astype(np.uint8)
    # A faint tint keeps frames in colour (and chroma planes non-trivial).
    return np.stack([img, img, np.clip(img.astype(np.int16) + 8, 0, 255).astype(np.uint8)], -1)


def _as_segments(segments: Sequence[Segment | tuple]) -> list[Segment]:
    out = []
    for k, s in enumerate(segments):
        if hasattr(s, "n_frames"):  # a Segment (from `videos` or `tests.videos`, same class)
            out.append(Segment(s.n_frames, s.level, s.pattern, s.seed))
        else:
            n, level, *rest = s
            out.append(Segment(int(n), int(level), *(rest or ["bars"]), seed=k))
    return out


# ------------------------------------------------------------------------------ writing
def _open_video_stream(container, codec: str, fps: float, size: tuple[int, int],
                       pix_fmt: str | None, time_base: Fraction | None):  # fmt: skip
    rate = Fraction(fps).limit_denominator(1001)
    stream = container.add_stream(codec, rate=rate)
    stream.width, stream.height = size
    stream.pix_fmt = pix_fmt or ("yuvj420p" if codec == "mjpeg" else "yuv420p")
    if codec == "libx264":
        # Short GOP and no B-frame surprises keep tiny test files seekable and exact.
        stream.options = {"g": "24", "preset": "ultrafast", "tune": "zerolatency"}
    if time_base is not None:
        stream.time_base = time_base
        stream.codec_context.time_base = time_base
    return stream


def _encode(container, stream, rgb: np.ndarray, pts: int | None = None, tb=None) -> None:
    frame = av.VideoFrame.from_ndarray(rgb, format="rgb24")
    if pts is not None:
        frame.pts = pts
        frame.time_base = tb
    for packet in stream.encode(frame):
        container.mux(packet)


def _flush(container, stream) -> None:
    for packet in stream.encode():
        container.mux(packet)


def _add_silence(container, seconds: float, rate: int = 16_000):
    """An AAC track of silence (so files look like real movies with sound)."""
    astream = container.add_stream("aac", rate=rate)
    n = 1024
    for k in range(max(1, int(seconds * rate / n))):
        frame = av.AudioFrame.from_ndarray(
            np.zeros((1, n), np.float32), format="fltp", layout="mono"
        )
        frame.sample_rate = rate
        frame.pts = k * n
        for packet in astream.encode(frame):
            container.mux(packet)
    for packet in astream.encode():
        container.mux(packet)


def write_frames(
    path: str | os.PathLike,
    frames: Sequence[np.ndarray],
    fps: float = 24.0,
    codec: str = "libx264",
    pix_fmt: str | None = None,
    times: Sequence[float] | None = None,
    rotation: int = 0,
    container_format: str | None = None,
    container_options: dict | None = None,
    audio: bool = False,
) -> WrittenVideo:
    """Encode given RGB frames. ``times`` (seconds, increasing) makes a VFR file; ``rotation``
    stores a display matrix (counter-clockwise degrees, as PyAV's ``VideoFrame.rotation``)."""
    path = Path(path)
    h, w = frames[0].shape[:2]
    tb = Fraction(1, 1000) if times is not None else None
    with av.open(str(path), "w", format=container_format, options=container_options or {}) as c:
        stream = _open_video_stream(c, codec, fps, (w, h), pix_fmt, tb)
        if rotation:
            stream.set_display_rotation(rotation)
        for i, rgb in enumerate(frames):
            if times is None:
                _encode(c, stream, rgb)
            else:
                _encode(c, stream, rgb, round(times[i] * 1000), tb)
        _flush(c, stream)
        if audio:
            dur = times[-1] if times is not None else len(frames) / fps
            _add_silence(c, dur)
    ts = tuple(times) if times is not None else tuple(i / fps for i in range(len(frames)))
    return WrittenVideo(path, len(frames), fps, (w, h), ts, codec=codec, rotation=rotation)


def render_segments(
    segments: Sequence[Segment | tuple], size: tuple[int, int]
) -> tuple[list[Segment], list[np.ndarray], list[int]]:
    """The frames of consecutive shots: (segments, RGB frames, cut frames = each segment's first
    frame after the first segment)."""
    segs = _as_segments(segments)
    frames: list[np.ndarray] = []
    cuts: list[int] = []
    for seg in segs:
        if frames:
            cuts.append(len(frames))
        frames += [render_frame(seg, i, size) for i in range(seg.n_frames)]
    return segs, frames, cuts


def write_video(
    path: str | os.PathLike,
    segments: Sequence[Segment | tuple],
    fps: float = 24.0,
    size: tuple[int, int] = (160, 96),
    times: Sequence[float] | None = None,
    **encoding,
) -> WrittenVideo:
    """A video of consecutive shots. ``segments`` are ``Segment``s or ``(n_frames, level)``
    tuples (optionally ``(n, level, pattern)``); the cut frames are the segment starts after the
    first. ``times`` and ``encoding`` (codec, pix_fmt, rotation, container_format,
    container_options, audio) are ``write_frames``'s options. x264 needs even sizes (use
    ``codec="mpeg4"`` or ``pix_fmt="yuv444p"`` for odd ones)."""
    segs, frames, cuts = render_segments(segments, size)
    if times is not None and len(times) != len(frames):
        raise ValueError(f"{len(times)} times for {len(frames)} frames")
    v = write_frames(path, frames, fps, times=times, **encoding)
    return WrittenVideo(v.path, v.n_frames, fps, v.size, v.times, tuple(cuts), codec=v.codec,
                        rotation=v.rotation, extra={"segments": segs})  # fmt: skip


def write_fade_video(
    path: str | os.PathLike,
    fps: float = 24.0,
    size: tuple[int, int] = (160, 96),
    shot_frames: int = 36,
    fade_frames: int = 12,
    black_frames: int = 6,
    levels: Sequence[int] = (170, 200),
) -> WrittenVideo:
    """Shot A, fade to black over ``fade_frames``, ``black_frames`` of black, fade in over
    ``fade_frames`` to shot B, and so on for each level. Adjacent frames differ little (no hard
    cut anywhere); ``fades`` holds (first faded frame, last faded frame) of each transition."""
    frames: list[np.ndarray] = []
    fades: list[list[int]] = []
    last = len(levels) - 1
    for k, level in enumerate(levels):
        seg = Segment(shot_frames + 2 * fade_frames, level, "bars", seed=k)
        shot = [render_frame(seg, i, size).astype(np.float32) for i in range(seg.n_frames)]
        for i in range(fade_frames):
            if k > 0:  # fade in from black
                shot[i] *= (i + 1) / (fade_frames + 1)
            if k < last:  # fade out to black
                shot[-fade_frames + i] *= 1 - (i + 1) / (fade_frames + 1)
        if k > 0:
            fades[-1][1] = len(frames) + fade_frames - 1  # the fade-in's last frame
        frames += [f.astype(np.uint8) for f in shot]
        if k < last:
            fades.append([len(frames) - fade_frames, -1])
            frames += [np.zeros_like(frames[0]) for _ in range(black_frames)]
    v = write_frames(path, frames, fps)
    return WrittenVideo(v.path, v.n_frames, fps, v.size, v.times, fades=tuple(map(tuple, fades)))


def write_rotated_video(
    path: str | os.PathLike, rotation: int = 90, size: tuple[int, int] = (160, 96), n: int = 12
) -> WrittenVideo:
    """Stored frames are ``size`` (landscape) with a white block in the stored top-left corner
    and grey elsewhere; the display matrix says rotate ``rotation`` degrees counter-clockwise.
    Displayed at 90°, the frame is portrait and the block sits bottom-left."""
    w, h = size
    frame = np.full((h, w, 3), 60, np.uint8)
    frame[: h // 3, : w // 4] = 250
    return write_frames(path, [frame] * n, rotation=rotation)


def write_two_stream_video(
    path: str | os.PathLike,
    segments: Sequence[Segment | tuple] = ((20, 40), (20, 200)),
    fps: float = 24.0,
    size: tuple[int, int] = (160, 96),
    second_size: tuple[int, int] = (320, 192),
) -> WrittenVideo:
    """Two video streams in one mp4: stream 0 holds ``segments`` (the answer), stream 1 is a
    larger, flat, cut-free picture (what FFmpeg's "best stream" would pick)."""
    segs, frames, cuts = render_segments(segments, size)
    other = render_frame(Segment(1, 128, "flat"), 0, second_size)
    path = Path(path)
    with av.open(str(path), "w") as c:
        s0 = _open_video_stream(c, "libx264", fps, size, None, None)
        s1 = _open_video_stream(c, "libx264", fps, second_size, None, None)
        # Both "default": FFmpeg's best-stream rule would then pick the larger s1.
        s0.disposition = s1.disposition = av.stream.Disposition.default
        for rgb in frames:
            _encode(c, s0, rgb)
            _encode(c, s1, other)
        _flush(c, s0)
        _flush(c, s1)
    times = tuple(i / fps for i in range(len(frames)))
    return WrittenVideo(path, len(frames), fps, size, times, tuple(cuts))


def write_audio_only(path: str | os.PathLike, seconds: float = 1.0) -> Path:
    """An .m4a/.mp4 file with one AAC track and no video."""
    with av.open(str(path), "w", format="mp4") as c:
        _add_silence(c, seconds)
    return Path(path)


def write_truncated_video(
    path: str | os.PathLike, n_frames: int = 96, keep: float = 0.5, fmt: str = "matroska"
) -> WrittenVideo:
    """A good file cut to ``keep`` of its bytes. Matroska (default) or an mp4 written with
    ``faststart`` keep their index up front, so the head still decodes; a plain mp4 keeps its
    index at the end and becomes unreadable (``fmt="mp4"``)."""
    segs = [
        Segment(n_frames // 2, 60, "noise", 1),
        Segment(n_frames - n_frames // 2, 200, "noise", 2),
    ]
    opts = {"movflags": "faststart"} if fmt == "mp4-faststart" else None
    v = write_video(path, segs, container_format="mp4" if fmt.startswith("mp4") else fmt,
                    container_options=opts)  # fmt: skip
    truncate_file(path, keep)
    return v


def truncate_file(path: str | os.PathLike, keep: float) -> None:
    """Cut a file to ``keep`` (0-1) of its size, as an interrupted download would."""
    data = Path(path).read_bytes()
    Path(path).write_bytes(data[: int(len(data) * keep)])


def write_corrupt_video(
    path: str | os.PathLike, n_frames: int = 30, bad: Sequence[int] = range(5, 15), seed: int = 0
) -> WrittenVideo:
    """MJPEG in AVI (every frame independent) whose packets listed in ``bad`` have their data
    replaced by random bytes: exactly ``len(bad)`` packets fail to decode, the rest are fine."""
    path = Path(path)
    clean = path.with_suffix(".clean.avi")
    segs = [Segment(n_frames // 2, 50), Segment(n_frames - n_frames // 2, 210, seed=1)]
    write_video(clean, segs, codec="mjpeg", container_format="avi")
    rng = np.random.default_rng(seed)
    bad = set(bad)
    with av.open(str(clean)) as src, av.open(str(path), "w", format="avi") as dst:
        ist = src.streams.video[0]
        ost = dst.add_stream_from_template(ist)
        k = 0
        for packet in src.demux(ist):
            if packet.dts is None:
                continue
            if k in bad:
                junk = bytes(rng.integers(0, 256, packet.size, dtype=np.uint8))
                garbled = av.Packet(junk)
                garbled.pts, garbled.dts, garbled.time_base = (
                    packet.pts,
                    packet.dts,
                    packet.time_base,
                )
                packet = garbled
            packet.stream = ost
            dst.mux(packet)
            k += 1
    clean.unlink()
    times = tuple(i / 24.0 for i in range(n_frames))
    return WrittenVideo(path, n_frames, 24.0, (160, 96), times, (n_frames // 2,), codec="mjpeg",
                        extra={"bad": sorted(bad)})  # fmt: skip


def write_zero_byte(path: str | os.PathLike) -> Path:
    Path(path).write_bytes(b"")
    return Path(path)


def write_text_as_video(path: str | os.PathLike) -> Path:
    """A text file with a video extension."""
    Path(path).write_text("this is not a video, just some text named like one\n" * 20)
    return Path(path)
