"""Duration-aware sampling and frame vectors end to end: real decode, tiny random OpenCLIP, the
embedded store, the engine and the CLI. Labels keep MovieCLIP's recipe over the sampled frames;
older indexes (no frame vectors) keep their layout and rank by mean vectors, saying so once."""

from __future__ import annotations

import json

import numpy as np
import pytest

from scenesearch.indexer.config import SampleConfig, StoreConfig
from scenesearch.indexer.pipeline import Indexer
from scenesearch.indexer.sampling import sample_targets
from scenesearch.indexer.store import VECTOR_CLIP, VECTOR_FRAMES, VECTOR_SCENES, open_store
from scenesearch.search import SearchEngine
from scenesearch.ui.cli import main
from tests.test_pipeline import make_cfg
from tests.videos import write_video

# 24 fps: a 1.25 s shot, an 11 s shot, a 2.5 s shot
SEGS = [(30, 40), (264, 200), (60, 90)]


@pytest.fixture(scope="module")
def movie(tmp_path_factory):
    d = tmp_path_factory.mktemp("long")
    return write_video(d / "long.mp4", SEGS), write_video(d / "other.mp4", [(40, 60), (50, 210)])


def shots_of(idx, with_vectors=True):
    with open_store(make_cfg(idx).store) as st:
        meta = st.get_meta()
        recs = list(st.iter_points(with_vectors=with_vectors))
    return meta, sorted(recs, key=lambda r: (r.payload["title"], r.payload["shot_index"]))


def test_long_shot_gets_a_frame_every_interval_and_labels_keep_the_recipe(
    tmp_path, movie, tiny_encoder, tiny_labeler
):
    idx = tmp_path / "idx"
    Indexer(make_cfg(idx), tiny_encoder, tiny_labeler).run([str(movie[0].path)])
    meta, recs = shots_of(idx)
    assert meta["frame_vectors"] == VECTOR_FRAMES
    assert meta["sampling"] == {"frames_per_shot": 3, "frame_interval_s": 2.0,
                                "max_frames_per_shot": 32, "edge_frame_s": 0.1}  # fmt: skip
    counts = [len(r.payload["frame_s"]) for r in recs]
    sc = SampleConfig()
    assert counts == [
        len(sample_targets(0, p["end_frame"] - p["start_frame"], p["duration_s"], 3, sc))
        for p in (r.payload for r in recs)
    ]
    # 1.25 s: 3 centres only; 11 s: 6 centres + a frame 0.1 s inside each end; 2.5 s: the
    # first centre is 10 frames in (0.42 s > 0.3 s from the edge frame), the last 9 (0.29 s)
    assert counts == [3, 8, 4]
    for r in recs:
        p, rows = r.payload, r.vectors[VECTOR_FRAMES]
        assert rows.shape == (len(p["frame_s"]), tiny_encoder.spec.embed_dim)
        assert p["n_frames_used"] == len(rows)
        assert p["frame_s"] == sorted(p["frame_s"])
        assert p["start_s"] - 1e-3 <= p["frame_s"][0] and p["frame_s"][-1] < p["end_s"]
        # MovieCLIP's recipe over the same frames: mean of per-frame softmax; mean vector
        scores = tiny_labeler.frame_scores(rows).mean(0)
        s = r.vectors[VECTOR_SCENES]  # stored as a cosine vector: unit length
        np.testing.assert_allclose(s, scores / np.linalg.norm(scores), atol=1e-5)
        assert p["top_labels"][0] == tiny_labeler.labels[int(np.argmax(scores))]
        m = rows.mean(0)
        np.testing.assert_allclose(r.vectors[VECTOR_CLIP], m / np.linalg.norm(m), atol=1e-5)
    fs = recs[1].payload["frame_s"]
    gaps = np.diff(fs[1:-1])
    assert np.all(np.abs(gaps - 11 / 6) < 0.5), gaps  # one frame every ~11/6 s in the 11 s shot
    start, end = recs[1].payload["start_s"], recs[1].payload["end_s"]
    assert abs(fs[0] - start - 0.1) < 0.05 and abs(end - 1 / 24 - fs[-1] - 0.1) < 0.05  # edges

    # the engine: a query equal to one frame finds that shot, at that frame's time
    with SearchEngine.open(StoreConfig(index_dir=str(idx)), encoder=tiny_encoder) as eng:
        assert eng.ranking == "frames"
        row = recs[1].vectors[VECTOR_FRAMES][4]
        top = eng.nearest(row, None, 3)[:3]
        assert top[0].id == recs[1].id and top[0].score == pytest.approx(1.0, abs=1e-4)
        assert eng.match_times(row, top)[recs[1].id] == recs[1].payload["frame_s"][4]
        res = eng.search(text="a long take", limit=3)
        assert all(h.start_s - 1e-3 <= h.match_s < h.end_s for h in res.hits)
        like = eng.search(like=res.hits[0].shot_id, limit=2)  # more-like-this: mean vectors
        assert like.hits[0].shot_id == res.hits[0].shot_id and like.hits[0].match_s is None


def test_all_frames_mode_keeps_a_duration_aware_subset_of_vectors(
    tmp_path, movie, tiny_encoder, tiny_labeler
):
    idx = tmp_path / "idx"
    Indexer(make_cfg(idx, frames_per_shot="all"), tiny_encoder, tiny_labeler).run(
        [str(movie[0].path)]
    )
    _, recs = shots_of(idx)
    assert [r.payload["n_frames_used"] for r in recs] == [30, 264, 60]  # labels: every frame
    assert [len(r.vectors[VECTOR_FRAMES]) for r in recs] == [3, 8, 4]  # as in k mode


def test_index_without_frame_vectors_keeps_its_layout_and_says_so(
    tmp_path, movie, tiny_encoder, tiny_labeler, capsys
):
    """An index built without frame vectors (as before this feature) ranks by mean vectors,
    says so once per search, has no match_s; adding movies later keeps that layout."""
    idx = tmp_path / "idx"
    cfg = make_cfg(idx)
    cfg.sample.frame_vectors = False
    Indexer(cfg, tiny_encoder, tiny_labeler).run([str(movie[0].path)])
    Indexer(make_cfg(idx), tiny_encoder, tiny_labeler).run([str(movie[1].path)])  # default cfg
    meta, recs = shots_of(idx, with_vectors=[VECTOR_CLIP])
    assert meta["frame_vectors"] is None and len(recs) == 5
    assert all("frame_s" not in r.payload for r in recs)
    with open_store(make_cfg(idx).store) as st:
        assert VECTOR_FRAMES not in st.retrieve([recs[0].id], with_vectors=True)[0].vectors

    code = main(["search", "--index", str(idx), "bright", "--json"])
    out = capsys.readouterr()
    assert code == 0
    assert out.err.count("no per-frame vectors") == 1 and "re-index" in out.err
    hits = [json.loads(line) for line in out.out.splitlines()]
    assert hits and all(h["match_s"] is None for h in hits)


def test_cli_sampling_options(tmp_path, movie, capsys):
    """`index --frame-interval off --max-frames-per-shot 4`: recorded in the meta, k frames per
    shot; a negative interval is one clear error line and exit code 1."""
    from tests.conftest import TINY_MODEL

    idx = str(tmp_path / "idx")
    base = ["index", "--index", idx, "--model", TINY_MODEL, "--pretrained", "random",
            "--device", "cpu", "--workers", "-1", "--no-progress"]  # fmt: skip
    assert main([*base, "--frame-interval", "-1", str(movie[0].path)]) == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "frame interval" in err[0]
    code = main([*base, "--frame-interval", "off", "--max-frames-per-shot", "4",
                 str(movie[0].path)])  # fmt: skip
    assert code == 0
    meta, recs = shots_of(idx, with_vectors=False)
    assert meta["sampling"] == {"frames_per_shot": 3, "frame_interval_s": None,
                                "max_frames_per_shot": 4, "edge_frame_s": 0.1}  # fmt: skip
    assert [r.payload["n_frames_used"] for r in recs] == [3, 3, 3]


def test_adding_movies_keeps_the_index_sampling(
    tmp_path, movie, tiny_encoder, tiny_labeler, caplog
):
    """An index records its frame sampling; movies added later by a run with other settings (e.g.
    after an upgrade changed the defaults) are sampled the way the index records, with one
    warning, so one index never mixes samplings."""
    idx = tmp_path / "idx"
    cfg = make_cfg(idx)
    cfg.sample.max_frames_per_shot, cfg.sample.edge_frame_s = 4, 0.0
    Indexer(cfg, tiny_encoder, tiny_labeler).run([str(movie[1].path)])
    with caplog.at_level("WARNING"):
        Indexer(make_cfg(idx), tiny_encoder, tiny_labeler).run([str(movie[0].path)])  # defaults
    assert sum("samples frames with" in r.getMessage() for r in caplog.records) == 1
    meta, recs = shots_of(idx)
    assert meta["sampling"] == {"frames_per_shot": 3, "frame_interval_s": 2.0,
                                "max_frames_per_shot": 4, "edge_frame_s": None}  # fmt: skip
    added = [r.payload for r in recs if r.payload["path"] == str(movie[0].path)]
    kept = SampleConfig(max_frames_per_shot=4, edge_frame_s=0.0)
    counts = [len(p["frame_s"]) for p in added]
    assert counts == [
        len(sample_targets(0, p["end_frame"] - p["start_frame"], p["duration_s"], 3, kept))
        for p in added
    ]
    assert counts == [3, 4, 3]  # the 11 s shot: 4 frames (the index's cap), not 8 (defaults)
