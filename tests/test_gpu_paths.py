"""The CUDA path against the CPU path (run on a GPU machine by scripts/gpu_check.sh; skipped
without CUDA): NVDEC frames with the same indices and times as PyAV's, close pixels, tensors on
the GPU; content scores computed on the GPU equal PySceneDetect's on the CPU, with the same cuts."""

from __future__ import annotations

import contextlib

import numpy as np
import pytest
import torch
from conftest import corpus_file
from videos import write_video

from scenesearch.indexer.config import DecodeConfig, ShotConfig
from scenesearch.indexer.content_torch import frame_scores
from scenesearch.indexer.decode import VideoReader
from scenesearch.indexer.shots import ShotSegmenter, detect_shots

pytestmark = [
    pytest.mark.gpu,
    pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device"),
]
NVDEC = DecodeConfig(backend="torchcodec", device="cuda")


def _clips(tmp_path) -> list:
    """A fixture with four brightness segments (cuts at 15, 30, 45) and, when carried, corpus
    clips (720p H.264 and a two-stream file)."""
    clips = [write_video(tmp_path / "cuts.mp4", [(15, 30), (15, 220), (15, 90), (15, 250)],
                         size=(640, 360)).path]  # fmt: skip
    for name in ("sintel_mangomm_848x480_26s.mp4", "nasa_13013_torchcodec.mp4"):
        with contextlib.suppress(pytest.skip.Exception):  # not carried: the fixture alone
            clips.append(corpus_file(f"video/{name}"))
    return clips


def test_nvdec_frames_and_times_equal_pyav(tmp_path):
    for path in _clips(tmp_path):
        cpu = list(VideoReader(path))
        reader = VideoReader(path, NVDEC, as_tensor=True)
        gpu = list(reader)
        assert reader.backend == "torchcodec", "NVDEC fell back to the CPU for H.264"
        assert [(f.index, f.t, f.duration) for f in gpu] == [
            (f.index, f.t, f.duration) for f in cpu
        ]
        assert gpu[0].rgb.is_cuda and gpu[0].rgb.shape == cpu[0].rgb.shape
        diff = np.mean([np.abs(g.rgb.cpu().numpy().astype(int) - c.rgb.astype(int)).mean()
                        for g, c in zip(gpu, cpu)])  # fmt: skip
        assert diff < 3.0


def test_content_scores_on_gpu_equal_cpu_and_same_cuts(tmp_path):
    for path in _clips(tmp_path):
        reader = VideoReader(path)
        prep = ShotSegmenter(ShotConfig(detector="content"), reader.fps)
        frames = np.stack([prep._prepare(f.rgb) for f in reader])
        cpu, _ = frame_scores(frames, "cpu")
        gpu, _ = frame_scores(torch.from_numpy(frames).cuda(), "cuda")
        np.testing.assert_allclose(gpu, cpu, rtol=0, atol=1e-9)
        want, _ = detect_shots(path, ShotConfig())
        got, _ = detect_shots(path, ShotConfig(content_backend="torch", content_device="cuda"),
                              NVDEC)  # fmt: skip
        starts = [s.start_frame for s in want]
        assert len(got) == len(want)
        assert all(abs(a.start_frame - b) <= 1 for a, b in zip(got, starts))
