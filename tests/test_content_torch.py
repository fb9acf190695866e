"""The content detector's torch backend against PySceneDetect (the reference): OpenCV's 8-bit HSV
bit for bit, the same frame scores (tolerance 1e-9, float rounding only) and the same cuts on
synthetic and real corpus clips, for several batch sizes."""

from __future__ import annotations

import cv2
import numpy as np
import pytest
from conftest import corpus_file
from scenedetect import FrameTimecode
from scenedetect.detectors import ContentDetector
from videos import write_video

from scenesearch.indexer.config import ShotConfig
from scenesearch.indexer.content_torch import TorchContentDetector, bgr_to_hsv, frame_scores
from scenesearch.indexer.decode import VideoReader
from scenesearch.indexer.errors import ConfigError
from scenesearch.indexer.shots import ShotSegmenter, detect_shots

SCORE_TOLERANCE = 1e-9


def test_hsv_equals_opencv_on_every_colour_class():
    """Random pixels plus the corner cases of the hue formula (greys, ties between channels,
    pure primaries, black and white): identical to cv2.COLOR_BGR2HSV."""
    import torch

    rng = np.random.default_rng(0)
    img = rng.integers(0, 256, (64, 96, 3), dtype=np.uint8)
    special = np.array(
        [[0, 0, 0], [255, 255, 255], [7, 7, 7], [255, 0, 0], [0, 255, 0], [0, 0, 255],
         [10, 200, 200], [200, 10, 200], [200, 200, 10], [1, 0, 0], [0, 1, 1], [254, 255, 0]],
        np.uint8,
    )  # fmt: skip
    img[0, : len(special)] = special
    ref = cv2.cvtColor(img, cv2.COLOR_BGR2HSV)
    got = bgr_to_hsv(torch.from_numpy(img)).permute(1, 2, 0).numpy()
    assert np.array_equal(got, ref.astype(np.int32))


def _reference_scores(frames: list[np.ndarray]) -> list[float]:
    det = ContentDetector()
    out = []
    for i, f in enumerate(frames):
        det.process_frame(FrameTimecode(i, fps=25.0), f)
        out.append(det._frame_score)
    return out


def _detection_frames(path) -> list[np.ndarray]:
    seg = ShotSegmenter(ShotConfig(detector="content"), 25.0)
    return [seg._prepare(f.rgb) for f in VideoReader(path)]


def _segment(decoded, fps: float, cfg: ShotConfig):
    """detect_shots on frames decoded once (the same core: ShotSegmenter)."""
    seg = ShotSegmenter(cfg, fps)
    shots = []
    for f in decoded:
        shots += seg.push(f.index, f.t, f.rgb)
    return shots + seg.finish(decoded[-1].t + decoded[-1].duration)


def test_scores_and_cuts_equal_on_synthetic_cuts(tmp_path):
    """Four brightness segments (three hard cuts at frames 15, 30, 45): the same scores, and the
    same shots for batches of 1, 7 and 64 frames."""
    v = write_video(tmp_path / "cuts.mp4", [(15, 30), (15, 220), (15, 90), (15, 250)])
    frames = _detection_frames(v.path)
    ref = _reference_scores(frames)
    # one batch, and the same frames scored in two batches carrying the previous frame over
    whole, _ = frame_scores(np.stack(frames))
    a, prev = frame_scores(np.stack(frames[:20]))
    b, _ = frame_scores(np.stack(frames[20:]), previous=prev)
    np.testing.assert_allclose(whole, ref, rtol=0, atol=SCORE_TOLERANCE)
    np.testing.assert_allclose(np.concatenate([a, b]), ref, rtol=0, atol=SCORE_TOLERANCE)
    want, _ = detect_shots(v.path, ShotConfig())
    assert [s.start_frame for s in want] == [0, 15, 30, 45]
    for batch in (1, 7, 64):
        got, _ = detect_shots(v.path, ShotConfig(content_backend="torch", content_batch=batch))
        assert got == want


@pytest.mark.slow
@pytest.mark.parametrize(
    "clip",
    [
        "sintel_mangomm_848x480_26s.mp4",  # 6 hand-checked hard cuts
        "psd_testvideo_1280x720.mp4",  # PySceneDetect's own test video (with fades)
    ],
)
def test_corpus_scores_and_cuts_equal_pyscenedetect(clip):
    reader = VideoReader(corpus_file(f"video/{clip}"))
    decoded = list(reader)
    prep = ShotSegmenter(ShotConfig(detector="content"), reader.fps)
    frames = [prep._prepare(f.rgb) for f in decoded]
    scores, _ = frame_scores(np.stack(frames))
    np.testing.assert_allclose(scores, _reference_scores(frames), rtol=0, atol=SCORE_TOLERANCE)
    want = _segment(decoded, reader.fps, ShotConfig())  # the default spec: content+threshold
    got = _segment(decoded, reader.fps, ShotConfig(content_backend="torch"))
    assert got == want and len(want) > 1


def test_backend_settings_are_checked(tmp_path):
    v = write_video(tmp_path / "v.mp4", [(6, 30)])
    with pytest.raises(ConfigError, match="unknown content backend 'cuda'; available: opencv"):
        detect_shots(v.path, ShotConfig(content_backend="cuda"))
    with pytest.raises(ConfigError, match="content batch must be"):
        TorchContentDetector(batch=0)
    # the segmenter waits for the batch: its lag covers batch - 1 more frames
    opencv = ShotSegmenter(ShotConfig(detector="content"), 25.0)
    torch_ = ShotSegmenter(ShotConfig(detector="content", content_backend="torch"), 25.0)
    assert torch_.max_lag == opencv.max_lag + 63
