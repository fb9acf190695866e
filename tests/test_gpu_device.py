"""``--device cuda`` never quietly runs on the CPU: on a machine where torch sees no GPU, every
entry point and every GPU stage (CLIP, decoding, content scores) stops with one line saying so.
The device choices that follow from a resolved device are checked too (decoder, detectors)."""

from __future__ import annotations

import logging

import pytest
import torch
from videos import write_video

from scenesearch.indexer import decode as decode_mod
from scenesearch.indexer.config import DecodeConfig, ShotConfig
from scenesearch.indexer.content_torch import TorchContentDetector
from scenesearch.indexer.decode import VideoReader, decoder_for_device
from scenesearch.indexer.detectors import for_device
from scenesearch.indexer.errors import ConfigError
from scenesearch.ui.cli import main

no_gpu = pytest.mark.skipif(torch.cuda.is_available(), reason="this machine has a CUDA device")
NO_CUDA = "asked for, but torch sees no CUDA device"


def _one_line_error(capsys, *argv) -> str:
    code = main(list(argv))
    err = capsys.readouterr().err.strip()
    assert code == 1
    assert len(err.splitlines()) == 1, err
    return err


@no_gpu
def test_index_with_device_cuda_is_one_line_error(tmp_path, capsys, monkeypatch):
    v = write_video(tmp_path / "v.mp4", [(6, 30)])
    idx = str(tmp_path / "idx")
    err = _one_line_error(capsys, "index", str(v.path), "--index", idx, "--device", "cuda")
    assert NO_CUDA in err and "--device cuda" in err
    monkeypatch.setenv("SCENESEARCH_DEVICE", "cuda:0")
    assert NO_CUDA in _one_line_error(capsys, "index", str(v.path), "--index", idx)
    assert not (tmp_path / "idx" / "config.json").exists()  # nothing ran


@no_gpu
def test_bench_index_with_device_cuda_is_one_line_error(tmp_path, capsys):
    v = write_video(tmp_path / "v.mp4", [(6, 30)])
    out = tmp_path / "report"
    err = _one_line_error(
        capsys, "bench", "index", str(v.path), "--device", "cuda", "--out", str(out)
    )
    assert NO_CUDA in err
    assert not out.exists()


@no_gpu
def test_gpu_stages_refuse_without_cuda(tmp_path):
    v = write_video(tmp_path / "v.mp4", [(6, 30)])
    with pytest.raises(ConfigError, match=f"decoding on cuda {NO_CUDA}"):
        VideoReader(v.path, DecodeConfig(backend="torchcodec", device="cuda"))
    with pytest.raises(ConfigError, match=f"content scores on cuda:0 {NO_CUDA}"):
        TorchContentDetector(device="cuda:0")


def test_decoder_and_detectors_follow_the_device(monkeypatch, caplog):
    cpu = decoder_for_device(DecodeConfig(), "cpu")
    assert (cpu.backend, cpu.device) == ("pyav", "cpu")
    forced = decoder_for_device(DecodeConfig(), "cuda", "pyav")
    assert (forced.backend, forced.device) == ("pyav", "cpu")
    with pytest.raises(ConfigError, match="unknown decoder 'nvdec'; available: auto, pyav"):
        decoder_for_device(DecodeConfig(), "cuda", "nvdec")
    monkeypatch.setattr(decode_mod, "torchcodec_available", lambda: None)
    gpu = decoder_for_device(DecodeConfig(), "cuda:1")
    assert (gpu.backend, gpu.device) == ("torchcodec", "cuda:1")

    def missing():
        raise ConfigError("decode backend 'torchcodec' needs torchcodec (mocked away)")

    monkeypatch.setattr(decode_mod, "torchcodec_available", missing)
    with caplog.at_level(logging.WARNING, logger="scenesearch.indexer.decode"):
        fallback = decoder_for_device(DecodeConfig(), "cuda")
    assert fallback.backend == "pyav"
    assert [r.getMessage() for r in caplog.records] == [
        "decoding on the CPU with PyAV: decode backend 'torchcodec' needs torchcodec (mocked away)"
    ]
    on_gpu = for_device(ShotConfig(), "cuda")
    assert (on_gpu.content_backend, on_gpu.content_device, on_gpu.transnet_device) == (
        "torch", "cuda", "cuda")  # fmt: skip
    assert for_device(ShotConfig(), "cpu").content_backend == "opencv"
    ray = for_device(ShotConfig(), "cuda", frames_on_device=False)  # Ray: CPU decode nodes
    assert (ray.content_backend, ray.transnet_device) == ("opencv", "cuda")
