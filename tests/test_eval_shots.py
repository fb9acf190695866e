"""Shot-boundary evaluation: ground-truth readers and the detector on the annotated Sintel clip."""

from __future__ import annotations

import importlib.util

import pytest

from scenesearch.eval.metrics import match_cuts
from scenesearch.eval.shot_eval import (
    CutTruth,
    cut_details,
    cut_table,
    evaluate_detectors,
    match_transitions,
    read_cuts,
)
from scenesearch.indexer.config import ShotConfig
from tests.conftest import corpus_file as corpus_path


def test_read_annotation_csv_prefers_times(tmp_path):
    """Our annotation format: # comments, time_s and frame; the time wins (frame columns may be
    1-based). 3.073 s at 25 fps with the stream starting at 0.033 s is decoded frame 76."""
    p = tmp_path / "cuts.csv"
    p.write_text("# hand-checked\ncut_index,time_s,frame,score\n1,3.073,77,0.65\n2,4.873,122,0.4\n")
    t = read_cuts(p)
    assert t.times == (3.073, 4.873) and t.frames is None
    assert t.to_frames(25.0, t0=0.033) == [76, 121]
    assert t.to_frames(25.0) == [77, 122]


def test_read_other_formats(tmp_path):
    (tmp_path / "g.json").write_text('{"cuts": [30, 180, 394]}')
    assert read_cuts(tmp_path / "g.json").frames == (30, 180, 394)
    (tmp_path / "list.txt").write_text("# times\n1.5, 2.25\n00:00:03.5\n")
    assert read_cuts(tmp_path / "list.txt").times == (1.5, 2.25, 3.5)
    # PySceneDetect list-scenes CSV: the scene at frame 0 is no cut; the trailing section is ignored
    (tmp_path / "scenes.csv").write_text(
        "scene,timecode,frame,time (ms)\n0,00:00:00.0,0.000000,0\n1,00:00:06.706,201.000000,6706\n"
        "\nComma-separated timecode list:\n00:00:06.706\n"
    )
    t = read_cuts(tmp_path / "scenes.csv")
    assert t.frames == (0, 201) and t.to_frames(29.97) == [201]
    assert CutTruth(times=(0.5,)).to_frames(24.0) == [12]


def test_cut_table_and_details():
    """pred 10, 20, 31 vs truth 11, 30: ±0 → nothing; ±1 → 10↔11, 31↔30 (20 spurious)."""
    t = cut_table([10, 20, 31], [11, 30], (0, 1))
    assert t.row(0) == (0, 0, 3, 2, 0.0, 0.0, 0.0)
    assert t.row(1, named=True)["tp"] == 2 and t.row(1, named=True)["f1"] == pytest.approx(0.8)
    d = cut_details([10, 20, 31], [11, 30], 1, fps=10.0)
    assert d["kind"].to_list() == ["match", "false_positive", "match"]
    assert d["offset"].to_list() == [-1, None, 1]


def test_match_transitions_is_the_one_definition():
    """Points are one-frame spans: on random cuts it scores exactly as match_cuts does. A fade
    (spans 40-50) takes one cut anywhere inside it ± the tolerance, a second cut in it is a false
    positive; a cut in an ignored span (0-5) counts neither way. Hand count at ±1: cuts 3
    (ignored), 20 (↔ 21), 44 (↔ fade), 47 (spurious), 80 (spurious); truth 21, 40-50, 70
    (missed) → tp 2, fp 2, fn 1."""
    import numpy as np

    rng = np.random.default_rng(0)
    for _ in range(200):
        pred = rng.integers(0, 60, rng.integers(0, 8)).tolist()
        truth = rng.integers(0, 60, rng.integers(0, 8)).tolist()
        tol = int(rng.integers(0, 4))
        a, b = match_transitions(pred, truth, tol), match_cuts(pred, truth, tol)
        assert (a.tp, a.fp, a.fn, a.f1) == (b.tp, b.fp, b.fn, b.f1)
    m = match_transitions([3, 20, 44, 47, 80], [21, (40, 50), 70], 1, ignore=[(0, 5)])
    assert (m.tp, m.fp, m.fn) == (2, 2, 1)
    with pytest.raises(ValueError):
        match_transitions([1], [1], -1)


def test_corpus_annotations_parse():
    """Every annotation file of the shared corpus reads (skipped without the corpus)."""
    sintel = read_cuts(corpus_path("annotations/sintel_mangomm_shots.csv"))
    assert sintel.times == (3.073, 4.873, 12.793, 18.313, 21.833, 24.473)
    assert len(read_cuts(corpus_path("annotations/bbb_first30s_shots.csv")).times) == 3
    golden = corpus_path("annotations/psd_goldens/testvideo.mp4.ContentDetector.default.json")
    assert read_cuts(golden).frames == (30, 180, 394)
    assert read_cuts(corpus_path("annotations/psd_testvideo_scenes.csv")).frames == (0, 201, 382)


CORPUS_CASES = [
    # (video, truth, detector, tolerance → expected F1): measured on the annotated corpus clips
    ("sintel_mangomm_848x480_26s.mp4", "sintel_mangomm_shots.csv", "content", {0: 1.0, 1: 1.0}),
    ("bbb_first30s_moviepy_1280x720_24p.webm", "bbb_first30s_shots.csv", "content", {0: 1.0}),
    # the 480p re-encode of the same excerpt runs 2 frames behind the annotated webm times
    ("bbb_first30s_bower_480p.mp4", "bbb_first30s_shots.csv", "content", {1: 0.0, 5: 1.0}),
    (
        "psd_testvideo_1280x720.mp4",
        "psd_goldens/testvideo.mp4.ContentDetector.default.json",
        "content",
        {0: 1.0},
    ),
]


@pytest.mark.slow
@pytest.mark.parametrize(("video", "truth", "detector", "expected"), CORPUS_CASES)
def test_annotated_corpus_clips(video, truth, detector, expected):
    """The indexer's content detector on each annotated clip: F1 per tolerance as measured."""
    if importlib.util.find_spec("scenesearch.indexer.shots") is None:
        pytest.skip("indexer.shots not available yet")
    v = corpus_path(f"video/{video}")
    t = read_cuts(corpus_path(f"annotations/{truth}"))
    cfg = ShotConfig(detector=detector, flash_return_s=0.0, merge_fades=False)  # PySceneDetect's
    table, _, _ = evaluate_detectors(v, t, [cfg], sorted(expected))
    assert dict(zip(table["tolerance"], table["f1"], strict=True)) == expected


@pytest.mark.slow
def test_sintel_content_detector_is_exact():
    """Sintel excerpt (25 fps, 652 frames), 6 hand-checked hard cuts; the content detector finds
    all six on the right frame: F1 = 1.0 at ±1 (and at ±0)."""
    if importlib.util.find_spec("scenesearch.indexer.shots") is None:
        pytest.skip("indexer.shots not available yet")
    video = corpus_path("video/sintel_mangomm_848x480_26s.mp4")
    truth = read_cuts(corpus_path("annotations/sintel_mangomm_shots.csv"))
    table, details, runs = evaluate_detectors(
        video, truth, [ShotConfig(detector="content")], (0, 1, 5)
    )
    f1 = dict(zip(table["tolerance"], table["f1"], strict=True))
    assert f1[1] == 1.0
    assert f1[0] == 1.0
    assert runs[0].cuts == [76, 121, 319, 457, 545, 611]
