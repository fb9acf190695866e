"""Scene ground truth: MovieCLIP split parser, 150-label projection, time-overlap matching."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from scenesearch.eval.features import ShotTable
from scenesearch.eval.scene_truth import (
    MERGED_150,
    GtShot,
    load_label_map_150,
    project_names,
    projection_matrix,
    read_ground_truth,
    read_movieclip_split,
    read_movieclip_times,
    read_scene_table,
)
from scenesearch.eval.scenes import (
    evaluate_scenes,
    match_to_index,
    overlap_seconds,
    shot_labels_from_gt,
)
from scenesearch.indexer.labels import load_taxonomy

SHARED = Path(__file__).resolve().parents[2] / "shared" / "movieclip"


def test_label_map_is_taxonomy_minus_27_plus_2_merges():
    """150 names, all in the 179-label taxonomy; of the 29 others, 2 are merged, 27 dropped."""
    l150 = load_label_map_150()
    tax = load_taxonomy().labels
    assert len(l150) == 150 and l150[0] == "courtroom" and l150[149] == "cellar"
    assert set(l150) <= set(tax)
    rest = set(tax) - set(l150)
    assert len(rest) == 29
    assert {"interrogation room", "phone booth"} <= rest
    assert all(v in l150 for v in MERGED_150.values())
    if (SHARED / "multi_label_thresh_0_4_0_1_label_map.json").is_file():
        ref = json.loads((SHARED / "multi_label_thresh_0_4_0_1_label_map.json").read_text())
        assert l150 == tuple(sorted(ref, key=ref.get))


def test_projection_sums_merged_scores_and_drops_the_rest():
    src = ("room", "interrogation room", "house", "booth", "phone booth")
    dst = ("booth", "room")
    M = projection_matrix(src, dst)
    s = np.array([[0.1, 0.2, 0.3, 0.15, 0.25]])
    # booth .15 + .25, room .1 + .2; house dropped
    assert (s @ M)[0].tolist() == pytest.approx([0.4, 0.3])
    assert project_names(["interrogation room", "house", "room"], dst) == ("room",)


def test_movieclip_split_parser(tmp_path):
    """Three lines in the authors' format: label indices into the 150 map (0 courtroom,
    20 room, 147 funeral); Scene-NNN is 1-based, so Scene-018 is shot index 17."""
    p = tmp_path / "test_split.txt"
    p.write_text(
        "qM8jk56Vj9Y/qM8jk56Vj9Y-Scene-018.mp4 147\n"
        "qM8jk56Vj9Y/qM8jk56Vj9Y-Scene-001.mp4 0 20\n"
        "\n"
        "v_-ZxtmD_seg_0_10/v_-ZxtmD_seg_0_10-Scene-002.mp4 20 0 147\n"
    )
    gt = read_ground_truth(p)
    assert gt.space == "movieclip-150"
    assert [(g.movie, g.shot_index, g.labels) for g in gt.shots] == [
        ("qM8jk56Vj9Y", 17, ("funeral",)),
        ("qM8jk56Vj9Y", 0, ("courtroom", "room")),
        ("v_-ZxtmD_seg_0_10", 1, ("room", "courtroom", "funeral")),
    ]
    times = {("qM8jk56Vj9Y", "qM8jk56Vj9Y-Scene-018.mp4"): (44.169, 47.422)}
    gt2 = read_movieclip_split(p, times=times)
    assert (gt2.shots[0].start_s, gt2.shots[0].end_s, gt2.shots[0].shot_index) == (
        44.169,
        47.422,
        None,
    )


def test_movieclip_times_reader(tmp_path):
    """The authors' movieCLIP_dataset.json layout: clip → scene file → times and labels."""
    p = tmp_path / "movieCLIP_dataset.json"
    p.write_text(json.dumps({"qM8jk56Vj9Y": {"qM8jk56Vj9Y-Scene-018.mp4": {
        "start_frame": 1059.0, "end_frame": 1137.0, "start_time": 44.169, "end_time": 47.422,
        "labels": {"banquet": 0.786, "dining room": 0.071}}}}))  # fmt: skip
    assert read_movieclip_times(p) == {
        ("qM8jk56Vj9Y", "qM8jk56Vj9Y-Scene-018.mp4"): (44.169, 47.422)
    }
    split = tmp_path / "test.txt"
    split.write_text("qM8jk56Vj9Y/qM8jk56Vj9Y-Scene-018.mp4 50\n")
    gt = read_ground_truth(split, times_path=p)
    assert (gt.shots[0].start_s, gt.shots[0].labels) == (44.169, ("banquet",))


def test_scene_table_reader(tmp_path):
    p = tmp_path / "shots.csv"
    p.write_text(
        "# comment\nmovie,start_s,end_s,shot_id,labels\n"
        "Sintel,0,3.07,,forest|mountain\n,,,m1:0004,Kitchen\n"
    )
    gt = read_scene_table(p)
    assert gt.shots[0] == GtShot(
        "Sintel", ("forest", "mountain"), 0.0, 3.07, None, None, "shots.csv:2"
    )
    assert gt.shots[1].movie == "m1" and gt.shots[1].shot_id == "m1:0004"
    assert gt.shots[1].labels == ("kitchen",)


def test_overlap_seconds_hand_computed():
    starts, ends = np.array([0.0, 2.0, 5.0]), np.array([2.0, 5.0, 9.0])
    assert overlap_seconds(1.0, 6.0, starts, ends).tolist() == [1.0, 3.0, 1.0]
    assert overlap_seconds(9.0, 10.0, starts, ends).tolist() == [0.0, 0.0, 0.0]


@pytest.fixture
def three_shot_table():
    """Movie "m1" (title "Film One", file /v/film_one.mp4): shots [0,2), [2,5), [5,9) s with
    scenes vectors over 3 labels (kitchen, forest, room) peaked on kitchen, forest, room."""
    S = np.array([[0.8, 0.1, 0.1], [0.1, 0.7, 0.2], [0.2, 0.2, 0.6]], dtype=np.float32)
    return ShotTable(
        shot_ids=["m1:0000", "m1:0001", "m1:0002"],
        movie_ids=["m1"] * 3,
        titles=["Film One"] * 3,
        paths=["/v/film_one.mp4"] * 3,
        shot_index=np.arange(3),
        start_s=np.array([0.0, 2.0, 5.0]),
        end_s=np.array([2.0, 5.0, 9.0]),
        genres=[()] * 3,
        labels=[("kitchen",), ("forest",), ()],
        vectors={"clip": np.eye(3, dtype=np.float32), "scenes": S},
        meta={"taxonomy": {"labels": ["kitchen", "forest", "room"]}},
    )


def test_time_overlap_matching(three_shot_table):
    gt = [
        GtShot("Film One", ("forest",), 1.0, 5.0),  # overlaps shot 0 by 1 s, shot 1 by 3 s
        GtShot("film_one", ("room",), 5.0, 9.0),  # file stem; exactly shot 2
        GtShot("m1", ("kitchen",), 8.5, 20.0),  # covers 0.5 of 11.5 s: unmatched
        GtShot("other", ("kitchen",), 0.0, 1.0),  # unknown movie
        GtShot("m1", ("forest",), shot_index=1),
    ]
    m = match_to_index(gt, three_shot_table)
    assert len(m.gt) == 3
    # weights 1/4 and 3/4: 0.25·[.8,.1,.1] + 0.75·[.1,.7,.2]
    assert m.scores[0] == pytest.approx([0.275, 0.55, 0.175])
    assert m.shot_ids[0] == ("m1:0000", "m1:0001")
    assert m.clean[0] == ("forest",)  # clean labels of the best-overlapping shot
    assert m.scores[1] == pytest.approx([0.2, 0.2, 0.6])
    assert m.shot_ids[2] == ("m1:0001",)
    assert [r for _, r in m.unmatched] == [
        "indexed shots cover 4% of the range",
        "movie not in the index",
    ]
    labels = shot_labels_from_gt(gt, three_shot_table)
    # shot 1 lies fully inside [1, 5) → forest; shot 0 only half inside [1, 5) → forest (≥ 0.5)
    assert labels == {"m1:0000": {"forest"}, "m1:0001": {"forest"}, "m1:0002": {"room"}}


def test_evaluate_scenes_hand_computed(three_shot_table):
    """Three ground-truth shots = the three indexed shots; truths kitchen, forest, kitchen.
    kitchen scores .8 (+), .1, .2 (+) → AP 1; forest .1, .7 (+), .2 → AP 1; room: no positive
    (excluded). top-1: kitchen ✓, forest ✓, room ✗ → 2/3."""
    t = three_shot_table
    gt = read_ground_truth_from(
        [("m1:0000", "kitchen"), ("m1:0001", "forest"), ("m1:0002", "kitchen")]
    )
    evals, matched, warns = evaluate_scenes(gt, t)
    (ev,) = evals  # a 3-label taxonomy: no 150-label projection
    assert ev.summary["mAP"] == 1.0
    assert ev.summary["top1_acc"] == pytest.approx(2 / 3)
    assert ev.excluded == ["room"]
    assert ev.confusion.row(0) == ("kitchen", "room", 1, 0.5)
    assert any("not MovieCLIP" in w for w in warns)
    # clean labels: kitchen ✓, forest ✓, none for shot 2 → tp 2, fp 0, fn 1 → micro-F1 0.8
    assert ev.summary["clean_micro_f1"] == pytest.approx(0.8)


def read_ground_truth_from(pairs):
    from scenesearch.eval.scene_truth import GroundTruth

    return GroundTruth([GtShot("", (lab,), shot_id=sid) for sid, lab in pairs], "taxonomy")
