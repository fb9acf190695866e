"""Decode stage: sizes, exact timestamps, rotation, stream choice, and every way a file can be
unusable (each an InputError with a one-line reason). Fixture videos are written per test with
``tests/videos.py``; the real corpus is used when present."""

from __future__ import annotations

import numpy as np
import pytest
from conftest import corpus_file
from videos import (
    write_audio_only,
    write_corrupt_video,
    write_rotated_video,
    write_text_as_video,
    write_truncated_video,
    write_two_stream_video,
    write_video,
    write_zero_byte,
)

from scenesearch.indexer.config import DecodeConfig
from scenesearch.indexer.decode import VideoReader, iter_frames, probe, working_size
from scenesearch.indexer.errors import ConfigError, InputError


def test_working_size_keeps_aspect_never_upscales_and_caps():
    assert working_size(1920, 1080, 256, 1024) == (455, 256)
    assert working_size(1080, 1920, 256, 1024) == (256, 455)
    assert working_size(320, 180, 256, 1024) == (320, 180)  # smaller than asked: unchanged
    assert working_size(161, 97, 64, 1024) == (106, 64)  # odd sizes are fine
    assert working_size(10_000, 500, 256, 1024) == (1024, 51)  # extreme aspect: long side capped


def test_frames_times_and_info(tmp_path):
    """3 shots, 24 fps, 160x96 (short side below 256: kept as is)."""
    v = write_video(tmp_path / "a.mp4", [(10, 40), (12, 200), (8, 70)])
    reader = VideoReader(v.path)
    frames = list(reader)
    assert [f.index for f in frames] == list(range(30))
    np.testing.assert_allclose([f.t for f in frames], v.times, atol=1e-3)
    assert frames[0].rgb.shape == (96, 160, 3) and frames[0].rgb.dtype == np.uint8
    # Brightness follows the written segments (RGB order, not BGR: blue carries the +8 tint).
    assert abs(frames[15].rgb.mean() - 203) < 8
    assert frames[15].rgb[..., 2].mean() > frames[15].rgb[..., 0].mean()
    info = reader.info
    assert (info.width, info.height, info.n_frames, info.codec) == (160, 96, 30, "h264")
    assert info.fps == 24.0 and info.duration_s == pytest.approx(30 / 24, abs=1e-3)
    assert info.corrupt_frames == 0 and reader.decode_s > 0


def test_iter_frames_and_probe(tmp_path):
    v = write_video(tmp_path / "a.mp4", [(6, 40), (6, 200)], size=(512, 288))
    out = list(iter_frames(v.path))
    assert [i for i, _, _ in out] == list(range(12))
    assert out[0][2].shape == (256, 455, 3)  # short side scaled to 256 by swscale
    info = probe(v.path)
    assert (info.width, info.height, info.n_frames, info.rotation) == (512, 288, 12, 0)
    assert info.duration_s == pytest.approx(0.5, abs=0.05)


def test_decoding_twice_from_one_reader_is_refused(tmp_path):
    v = write_video(tmp_path / "a.mp4", [(4, 40)])
    reader = VideoReader(v.path)
    list(reader)
    with pytest.raises(RuntimeError, match="decodes once"):
        list(reader)


def test_thread_modes_give_identical_frames(tmp_path):
    v = write_video(tmp_path / "a.mp4", [(10, 40), (10, 200)])
    auto = [f.rgb for f in VideoReader(v.path, DecodeConfig(threads="AUTO"))]
    none = [f.rgb for f in VideoReader(v.path, DecodeConfig(threads="NONE"))]
    assert len(auto) == len(none) == 20
    assert all(np.array_equal(a, b) for a, b in zip(auto, none, strict=True))
    with pytest.raises(ConfigError, match="unknown decode threads 'FAST'; available: AUTO"):
        VideoReader(v.path, DecodeConfig(threads="FAST"))


def test_vfr_times_come_from_pts(tmp_path):
    """Variable frame rate: 10 frames 50 ms apart, then 10 frames 100 ms apart."""
    times = [i * 0.05 for i in range(10)] + [0.5 + i * 0.1 for i in range(10)]
    v = write_video(tmp_path / "vfr.mp4", [(10, 40), (10, 200)], times=times)
    frames = list(VideoReader(v.path))
    np.testing.assert_allclose([f.t for f in frames], times, atol=1e-3)
    np.testing.assert_allclose([f.duration for f in frames[:-1]], np.diff(times), atol=1e-3)


@pytest.mark.parametrize(
    ("rotation", "block_at"),
    [(90, (-5, 5)), (-90, (5, -5)), (180, (-5, -5))],
    ids=["ccw90", "cw90", "180"],
)
def test_rotation_is_applied(tmp_path, rotation, block_at):
    """Stored 160x96 with a white block top-left; displayed rotated by the display matrix."""
    v = write_rotated_video(tmp_path / "r.mp4", rotation=rotation)
    reader = VideoReader(v.path)
    rgb = next(iter(reader)).rgb
    portrait = rotation % 180 != 0
    assert rgb.shape == ((160, 96, 3) if portrait else (96, 160, 3))
    assert rgb[block_at].min() > 200  # the block moved where a player shows it
    assert rgb[5, 5].max() < 100 if rotation == -90 else True
    info = reader.info
    assert info.rotation == rotation % 360
    assert (info.width, info.height) == ((96, 160) if portrait else (160, 96))


@pytest.mark.parametrize(
    ("codec", "pix_fmt"), [("mpeg4", None), ("libx264", "yuv444p")], ids=["mpeg4", "x264-444"]
)
def test_odd_frame_size(tmp_path, codec, pix_fmt):
    v = write_video(tmp_path / "odd.mp4", [(5, 40), (5, 200)], size=(161, 97), codec=codec,
                    pix_fmt=pix_fmt)  # fmt: skip
    frames = list(iter_frames(v.path))
    assert len(frames) == 10 and frames[0][2].shape == (97, 161, 3)
    small = list(iter_frames(v.path, DecodeConfig(short_side=64)))
    assert small[0][2].shape == (64, 106, 3)


def test_two_video_streams_decode_the_first(tmp_path):
    """Stream 0: 160x96 with a cut at 20; stream 1: 320x192, flat (both 'default')."""
    v = write_two_stream_video(tmp_path / "two.mp4")
    reader = VideoReader(v.path)
    frames = list(reader)
    assert len(frames) == 40 and frames[0].rgb.shape == (96, 160, 3)
    assert frames[5].rgb.mean() < 80 and frames[30].rgb.mean() > 150  # stream 0's content
    assert (reader.info.width, reader.info.height) == (160, 96)


@pytest.mark.parametrize(
    ("make", "reason"),
    [
        (lambda p: p / "missing.mp4", "file not found"),
        (lambda p: p, "is a directory"),
        (lambda p: write_zero_byte(p / "zero.mp4"), r"empty file \(0 bytes\)"),
        (lambda p: write_text_as_video(p / "text.mp4"), "not a media file"),
        (lambda p: write_audio_only(p / "audio.m4a"), r"no video stream \(audio-only file\)"),
    ],
    ids=["missing", "directory", "zero-bytes", "text-as-mp4", "audio-only"],
)
def test_unusable_files_raise_input_error(tmp_path, make, reason):
    path = make(tmp_path)
    with pytest.raises(InputError, match=reason) as e:
        list(iter_frames(path))
    assert "\n" not in str(e.value) and str(path) in str(e.value)
    with pytest.raises(InputError, match=reason):
        probe(path)


def test_truncated_file_decodes_what_is_there(tmp_path):
    """96 frames written to Matroska, file cut to 50% of its bytes: the head decodes."""
    v = write_truncated_video(tmp_path / "t.mkv", n_frames=96, keep=0.5)
    reader = VideoReader(v.path)
    frames = list(reader)
    assert 10 < len(frames) < 96
    assert reader.info.n_frames == len(frames)
    np.testing.assert_allclose([f.t for f in frames], v.times[: len(frames)], atol=1e-3)


def test_truncated_faststart_mp4_decodes_and_plain_mp4_is_unreadable(tmp_path):
    v = write_truncated_video(tmp_path / "fs.mp4", keep=0.5, fmt="mp4-faststart")
    assert 10 < len(list(iter_frames(v.path))) < 96
    # A plain mp4 keeps its index (moov) at the end: cut, nothing can be read.
    v = write_truncated_video(tmp_path / "plain.mp4", keep=0.5, fmt="mp4")
    with pytest.raises(InputError, match="not a media file"):
        list(iter_frames(v.path))


def test_corrupt_packets_are_skipped_counted_and_capped(tmp_path):
    """MJPEG, 30 frames, packets 5..14 replaced by random bytes."""
    v = write_corrupt_video(tmp_path / "bad.avi", n_frames=30, bad=range(5, 15))
    reader = VideoReader(v.path, DecodeConfig(max_corrupt_frames=10))
    frames = list(reader)
    assert len(frames) == 20 and reader.info.corrupt_frames == 10
    assert [f.index for f in frames] == list(range(20))  # indices count presented frames
    np.testing.assert_allclose(
        [f.t for f in frames], [v.times[i] for i in range(30) if not 5 <= i < 15], atol=1e-3
    )
    with pytest.raises(InputError, match="more than 9 corrupt packets/frames"):
        list(VideoReader(v.path, DecodeConfig(max_corrupt_frames=9)))


def test_no_decodable_frame_is_an_input_error(tmp_path):
    v = write_corrupt_video(tmp_path / "allbad.avi", n_frames=6, bad=range(6))
    with pytest.raises(InputError, match="no decodable video frames"):
        list(iter_frames(v.path))


# ------------------------------------------------------------------------------ real corpus
def test_corpus_two_stream_clip_reads_stream_zero():
    """nasa_13013: stream 0 is 320x180 25 fps (325 frames), stream 3 is 480x270 29.97 fps."""
    path = corpus_file("video/nasa_13013_torchcodec.mp4")
    info = probe(path)
    assert (info.width, info.height, info.fps, info.n_frames) == (320, 180, 25.0, 325)


def test_corpus_stream_start_offset_is_kept():
    """The Sintel clip's first frame has pts 0.033 s: times are the stream's own timeline."""
    path = corpus_file("video/sintel_mangomm_848x480_26s.mp4")
    first = next(iter(VideoReader(path)))
    assert first.t == pytest.approx(0.033, abs=1e-3) and first.rgb.shape == (256, 452, 3)
