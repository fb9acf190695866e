"""``bench index --gpu``: the parts that run without a GPU — it refuses anything but a usable
CUDA device (one line, nothing written), the busy shares and GPU sampling (fed fake nvidia-smi
readings), the CPU-vs-GPU shot matching, the targets and the Markdown report."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from videos import write_video

from scenesearch.eval.bench.common import Log, machine_info
from scenesearch.eval.bench.gpu_measure import (
    GpuSampler,
    compare_shots,
    decoder_busy_share,
    nvidia_smi_query,
    summarise_gpu,
)
from scenesearch.eval.bench.gpu_node import (
    GpuBenchConfig,
    agreement,
    decode_rate,
    end_to_end,
    evaluate_targets,
    render_markdown,
    require_gpu,
    run_gpu_bench,
)
from scenesearch.indexer.errors import ConfigError
from scenesearch.ui.cli import main

no_gpu = pytest.mark.skipif(torch.cuda.is_available(), reason="this machine has a CUDA device")


@no_gpu
def test_refuses_without_a_cuda_device(tmp_path, capsys):
    v = write_video(tmp_path / "v.mp4", [(6, 30)])
    out = tmp_path / "report"
    with pytest.raises(ConfigError, match="measures a CUDA device, not --device cpu"):
        require_gpu("cpu")
    with pytest.raises(ConfigError, match="bench index --gpu on cuda asked for, but torch sees"):
        run_gpu_bench(GpuBenchConfig(str(v.path), str(out)))
    assert main(["bench", "index", str(v.path), "--gpu", "--out", str(out)]) == 1
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "measures a CUDA device" in err
    assert not out.exists()  # nothing ran, nothing written


def test_sampler_busy_share_and_memory():
    """Readings 10 %, 30 %, 50 % busy and 100/300/200 MiB: busy share 0.3, peak 300 MiB; a
    window after mark() sees only the later readings."""
    readings = iter([(10.0, 100.0), (30.0, 300.0), (50.0, 200.0)])
    sampler = GpuSampler(query=lambda: next(readings, None), interval_s=0.01).start()
    for _ in range(200):
        if len(sampler.samples) == 3:
            break
        sampler._stop.wait(0.01)
    sampler.stop()
    w = sampler.window()
    assert w == {"gpu_busy_share": 0.3, "gpu_util_p95": 48.0, "gpu_memory_peak_mib": 300.0,
                 "gpu_samples": 3}  # fmt: skip
    sampler._from = 2
    assert sampler.window()["gpu_busy_share"] == 0.5
    assert summarise_gpu([])["gpu_busy_share"] is None


def test_decoder_busy_share_by_hand():
    # 2 workers for 4 s = 8 worker-seconds; 2 + 1 + 1 = 4 busy → 0.5
    assert (
        decoder_busy_share({"decode": 2.0, "detect": 1.0, "sample": 1.0, "embed": 9.0}, 4, 2) == 0.5
    )
    assert decoder_busy_share({"decode": 30.0}, 4, 2) == 1.0  # capped
    assert decoder_busy_share({}, 0, 2) is None


def test_nvidia_smi_absent_gives_none(monkeypatch):
    monkeypatch.setenv("PATH", "")
    assert nvidia_smi_query() is None


def test_compare_shots_matches_within_one_frame():
    e = np.eye(4, dtype=np.float32)
    cpu = [(0, 10, e[0]), (10, 25, e[1]), (25, 40, e[2])]
    gpu = [(0, 11, e[0]), (11, 25, (e[1] + e[2]) / np.sqrt(2)), (27, 40, e[2])]
    got = compare_shots(cpu, gpu)
    # shot 3 starts 2 frames off: unmatched; shot 2's vector is 45° away: cosine 0.70711
    assert (got["matched"], got["unmatched_cpu_shots"]) == (2, 1)
    assert got["cosine_min"] == pytest.approx(0.70711, abs=1e-5)
    assert got["cosine_mean"] == pytest.approx((1 + 0.70711) / 2, abs=1e-5)


def _report(height: int = 720) -> dict:
    return {
        "created": "2026-11-28T00:00:00+00:00", "command": "scenesearch bench index x --gpu",
        "note": "random weights", "machine": machine_info(),
        "video": {"path": "/x/film.mp4", "width": 1280, "height": height, "fps": 24.0,
                  "duration_s": 210.0, "codec": "h264"},
        "stages": {"decode_fps_1": 2000.0, "content_scores_fps": 50000.0},
        "end_to_end": [
            {"films": 1, "decoder": "torchcodec", "content": "torch", "workers": 1, "wall_s": 1.0,
             "realtime_factor": 160.0, "gpu_busy_share": 0.4, "stage_s": {"decode": 1.0}},
            {"films": 16, "decoder": "torchcodec", "content": "torch", "workers": 15,
             "wall_s": 9.0, "realtime_factor": 373.3, "gpu_busy_share": 0.8, "stage_s": {}},
        ],
        "agreement": {"cpu_shots": 45, "gpu_shots": 45, "matched": 45, "unmatched_cpu_shots": 0,
                      "cosine_min": 0.9995, "cosine_mean": 0.9999},
    }  # fmt: skip


def test_targets_and_markdown():
    r = _report()
    r["targets"] = evaluate_targets(r)
    met = {t["target"]: t["met"] for t in r["targets"]}
    assert met == {
        "1 film(s) at 720p ≥ 150× realtime": True,
        "16 film(s) at 720p ≥ 500× realtime": False,
        "same shots (±1 frame) as the CPU path": True,
        "shot-vector cosine ≥ 0.999 vs the CPU path": True,
    }
    md = render_markdown(r)
    assert "| 16 film(s) at 720p ≥ 500× realtime | 373.3× | **not met** |" in md
    assert "| decode_fps_1 | 2,000 |" in md and "## CPU path vs GPU path" in md
    json.dumps(r)  # the report is plain JSON
    hd = _report(1080)
    assert [t["target"] for t in evaluate_targets(hd)][0] == "16 film(s) at 1080p ≥ 430× realtime"


def test_product_runs_and_agreement_plumbing_on_cpu(tmp_path, tiny_encoder, tiny_labeler):
    """The GPU bench's end-to-end run and its CPU-vs-GPU comparison, driven on the CPU with the
    tiny model (the code path of the GPU run; only the device differs). Three brightness
    segments: 3 shots; both sides on the CPU, so every shot matches with cosine 1."""
    from conftest import TINY_MODEL

    v = str(write_video(tmp_path / "cuts.mp4", [(15, 30), (15, 220), (15, 90)]).path)
    out = tmp_path / "out"
    cfg = GpuBenchConfig(v, str(out), device="cpu", model=TINY_MODEL, workers=-1, batch_size=16)
    log = Log(out, quiet=True)
    gpu = GpuSampler(query=lambda: (40.0, 500.0), interval_s=0.01).start()
    e = end_to_end(cfg, [v], tiny_encoder, tiny_labeler, tmp_path, gpu, None, log)
    gpu.stop()
    assert (e["films"], e["shots"], e["decoder"], e["content"]) == (1, 3, "pyav", "opencv")
    assert e["gpu_busy_share"] == 0.4 and e["gpu_memory_peak_mib"] == 500.0
    assert 0 < e["decoder_busy_share"] <= 1 and e["realtime_factor"] > 0
    a = agreement(cfg, v, tiny_encoder, tiny_labeler, tmp_path, log)
    assert a["matched"] == a["cpu_shots"] == a["gpu_shots"] == 3
    assert a["cosine_min"] == pytest.approx(1.0, abs=1e-6)


def test_decode_rate_counts_frames_of_every_stream(tmp_path):
    """Two streams at once through the torchcodec backend (on the CPU here), 10 frames each."""
    from scenesearch.indexer.decode_torchcodec import torchcodec_available

    try:
        torchcodec_available()
    except ConfigError as e:
        pytest.skip(str(e))
    v = str(write_video(tmp_path / "v.mp4", [(12, 30), (12, 200)]).path)
    assert decode_rate([v, v], "cpu", 10) > 0
