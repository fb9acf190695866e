"""The indexing pipeline end to end (real decode, detectors, tiny random OpenCLIP, both stores):
shots and payloads, resume / incremental behaviour, kill -9 recovery, bad inputs, the CLI."""

from __future__ import annotations

import json
import os
import shutil
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from scenesearch.indexer.catalog import index_info, indexing_lock
from scenesearch.indexer.config import IndexConfig
from scenesearch.indexer.errors import IndexBusyError, IndexMismatchError
from scenesearch.indexer.pipeline import Indexer
from scenesearch.indexer.records import point_id
from scenesearch.indexer.store import open_store
from tests.conftest import REPO, TINY_MODEL, corpus_file
from tests.videos import (
    Segment,
    write_audio_only,
    write_corrupt_video,
    write_text_as_video,
    write_truncated_video,
    write_video,
    write_zero_byte,
)

SEGS_A = [(30, 40), (24, 200), (36, 70)]  # cuts at 30, 54; 90 frames at 24 fps
SEGS_B = [(40, 220), (30, 30)]  # cut at 40
SEGS_C = [(20, 60), (20, 230), (20, 40), (30, 180)]  # cuts at 20, 40, 60


def make_cfg(index_dir, **kw) -> IndexConfig:
    cfg = IndexConfig()
    cfg.store.index_dir = str(index_dir)
    cfg.model.name = TINY_MODEL
    cfg.model.pretrained = "random"
    cfg.model.device = "cpu"
    cfg.run.workers = kw.pop("workers", -1)  # inline decode unless a test asks for processes
    cfg.run.progress = False
    cfg.run.force = kw.pop("force", False)
    if "qdrant_url" in kw:
        cfg.store.qdrant_url = kw.pop("qdrant_url")
    if "frames_per_shot" in kw:
        cfg.sample.frames_per_shot = kw.pop("frames_per_shot")
    assert not kw, kw
    return cfg


@pytest.fixture(scope="module")
def movies(tmp_path_factory):
    """Three synthetic movies with known cuts: a.mp4 (3 shots), b.mp4 (2), c.mp4 (4)."""
    d = tmp_path_factory.mktemp("movies")
    (d / "sub").mkdir()
    return {
        "a": write_video(d / "a.mp4", SEGS_A),
        "b": write_video(d / "b.mp4", SEGS_B),
        "c": write_video(d / "sub" / "c.mp4", SEGS_C),
    }


def all_points(index_dir, qdrant_url=None):
    cfg = make_cfg(index_dir, **({"qdrant_url": qdrant_url} if qdrant_url else {}))
    with open_store(cfg.store) as st:
        return {r.id: r.payload for r in st.iter_points()}


def test_index_folder_gives_one_point_per_shot(tmp_path, movies, tiny_encoder, tiny_labeler):
    idx = tmp_path / "idx"
    summary = Indexer(make_cfg(idx), tiny_encoder, tiny_labeler).run([str(movies["a"].path.parent)])
    assert summary.count("indexed") == 3 and not summary.failed
    pts = all_points(idx)
    assert len(pts) == 3 + 2 + 4
    by_movie: dict[str, list] = {}
    for pid, p in pts.items():
        assert pid == point_id(p["shot_id"])  # deterministic ids
        by_movie.setdefault(p["title"], []).append(p)
    a = sorted(by_movie["a"], key=lambda p: p["shot_index"])
    assert [p["start_frame"] for p in a] == [0, 30, 54]
    assert [p["end_frame"] for p in a] == [30, 54, 90]
    assert [p["start_s"] for p in a] == pytest.approx([0, 30 / 24, 54 / 24], abs=1e-3)
    assert a[-1]["end_s"] == pytest.approx(90 / 24, abs=1e-3)
    p = a[1]
    assert p["duration_s"] == pytest.approx(p["end_s"] - p["start_s"], abs=1e-3)
    assert len(p["top"]) == 5 and [t["rank"] for t in p["top"]] == [1, 2, 3, 4, 5]
    assert p["top_labels"] == [t["label"] for t in p["top"]]
    assert p["n_frames_used"] == 3 and p["model"] == "tiny-clip/random"
    assert (idx / p["thumb"]).is_file()
    from PIL import Image

    w, h = Image.open(idx / p["thumb"]).size
    vw, vh = movies["a"].size
    assert w == 400 and abs(w / h - vw / vh) < 0.02  # 400 px wide, aspect kept
    info = index_info(open_store(make_cfg(idx).store))
    assert info["movies"] == 3 and info["shots"] == 9 and info["model"] == "tiny-clip"
    assert sum(info["labels"].values()) == sum(len(p["labels"]) for p in pts.values())
    assert json.loads((idx / "config.json").read_text())["model"]["pretrained"] == "random"
    assert list((idx / "runs").glob("*.json"))


def test_vectors_and_labels_match_a_direct_computation(
    tmp_path, movies, tiny_encoder, tiny_labeler
):
    """The stored shot vector is the normalised mean of its k frames' embeddings and the stored
    score vector their mean softmax — recomputed here from frames decoded independently."""
    from scenesearch.indexer.decode import iter_frames
    from scenesearch.indexer.sampling import sample_indices

    idx = tmp_path / "idx"
    Indexer(make_cfg(idx), tiny_encoder, tiny_labeler).run([str(movies["a"].path)])
    frames = [rgb for _, _, rgb in iter_frames(str(movies["a"].path))]
    cfg = make_cfg(idx)
    with open_store(cfg.store) as st:
        recs = sorted(st.iter_points(with_vectors=True), key=lambda r: r.payload["shot_index"])
    for r in recs:
        p = r.payload
        pick = sample_indices(p["start_frame"], p["end_frame"] - p["start_frame"], 3)
        feats = tiny_encoder.encode_frames(np.stack([frames[i] for i in pick]))
        v = feats.mean(0)
        v /= np.linalg.norm(v)
        np.testing.assert_allclose(r.vectors["clip"], v, atol=2e-3)
        scores = tiny_labeler.frame_scores(feats).mean(0)
        s = np.asarray(r.vectors["scenes"])
        np.testing.assert_allclose(
            s / np.linalg.norm(s), scores / np.linalg.norm(scores), atol=2e-3
        )
        assert p["top_labels"][0] == tiny_labeler.labels[int(np.argmax(scores))]


def test_rerun_skips_force_replaces_changed_file_reindexes(
    tmp_path, movies, tiny_encoder, tiny_labeler
):
    idx, src = tmp_path / "idx", tmp_path / "src"
    src.mkdir()
    shutil.copy(movies["a"].path, src / "a.mp4")
    shutil.copy(movies["b"].path, src / "b.mp4")
    run = lambda **kw: Indexer(make_cfg(idx, **kw), tiny_encoder, tiny_labeler).run([str(src)])  # noqa: E731
    first = run()
    before = all_points(idx)
    again = run()
    assert again.count("indexed") == 0 and again.count("skipped") == 2
    assert all_points(idx) == before
    forced = run(force=True)
    assert forced.count("indexed") == 2 and set(all_points(idx)) == set(before)
    # the file at a.mp4 is replaced by other content: old shots go, new ones come, no mixing
    shutil.copy(movies["c"].path, src / "a.mp4")
    changed = run()
    assert changed.count("indexed") == 1
    pts = all_points(idx)
    assert len(pts) == 4 + 2
    assert {p["movie_id"] for p in pts.values()} == {
        r.movie_id for r in [*first.movies, *changed.movies] if r.status == "indexed"
    } - {first.movies[0].movie_id}
    # a rename is not a change: metadata is updated in place, nothing re-indexed
    os.rename(src / "b.mp4", src / "renamed.mp4")
    renamed = run()
    assert renamed.count("indexed") == 0 and renamed.count("updated") == 1
    titles = {p["title"] for p in all_points(idx).values()}
    assert titles == {"a", "renamed"}


def test_remove_and_info_via_cli(tmp_path, movies, tiny_encoder, tiny_labeler, capsys):
    from scenesearch.ui.cli import main

    idx = tmp_path / "idx"
    Indexer(make_cfg(idx), tiny_encoder, tiny_labeler).run(
        [str(movies["a"].path), str(movies["b"].path)]
    )
    assert main(["info", "--index", str(idx), "--json"]) == 0
    info = json.loads(capsys.readouterr().out)
    assert (info["movies"], info["shots"], info["model"], info["pretrained"]) == (
        2,
        5,
        "tiny-clip",
        "random",
    )
    assert isinstance(info["labels"], dict)
    assert main(["remove", "--index", str(idx), "b"]) == 0
    assert "removed" in capsys.readouterr().out
    assert {p["title"] for p in all_points(idx).values()} == {"a"}
    b_id = [m for m in info["movie_list"] if m["title"] == "b"][0]["movie_id"]
    assert not (idx / "thumbs" / b_id).exists()
    assert main(["remove", "--index", str(idx), "nosuchmovie"]) == 1
    assert "not in the index: nosuchmovie" in capsys.readouterr().err


def test_bad_inputs_are_reported_and_the_rest_lands(tmp_path, movies, tiny_encoder, tiny_labeler):
    src = tmp_path / "in"
    src.mkdir()
    good = shutil.copy(movies["b"].path, src / "good.mp4")
    write_zero_byte(src / "empty.mp4")
    write_text_as_video(src / "notes.mp4")
    write_audio_only(src / "sound.mp4")
    write_truncated_video(src / "truncated.mkv", 96, keep=0.6)
    write_truncated_video(src / "trunc_moov.mp4", 60, keep=0.5, fmt="mp4")
    write_corrupt_video(src / "corrupt.avi", 30, bad=(5, 6, 25))
    idx = tmp_path / "idx"
    s = Indexer(make_cfg(idx), tiny_encoder, tiny_labeler).run(
        [str(src), str(tmp_path / "missing.mp4")]
    )
    status = {Path(m.path).name: (m.status, m.reason) for m in s.movies}
    assert status["good.mp4"][0] == "indexed"
    assert (
        status["empty.mp4"] == ("failed", status["empty.mp4"][1])
        and "empty" in status["empty.mp4"][1]
    )
    assert "not a media file" in status["notes.mp4"][1]
    assert "no video stream" in status["sound.mp4"][1]
    assert status["missing.mp4"] == ("failed", "no such file or folder")
    assert status["truncated.mkv"][0] == "indexed"  # what is there is indexed
    assert status["trunc_moov.mp4"][0] == "failed" and status["trunc_moov.mp4"][1]
    assert status["corrupt.avi"][0] == "indexed"  # 3 bad frames skipped, under the cap
    for name, (st, reason) in status.items():
        if st == "failed":
            assert "\n" not in reason, name  # one line each
    assert len(s.failed) == 5
    titles = {p["title"] for p in all_points(idx).values()}
    assert titles == {"good", "truncated", "corrupt"}
    states = open_store(make_cfg(idx).store).get_movies()
    corrupt = [m for m in states.values() if m["title"] == "corrupt"][0]
    assert corrupt["corrupt_frames"] >= 3
    assert good


def test_other_model_or_prompt_is_refused(tmp_path, movies, tiny_encoder, tiny_labeler):
    idx = tmp_path / "idx"
    Indexer(make_cfg(idx), tiny_encoder, tiny_labeler).run([str(movies["b"].path)])
    cfg = make_cfg(idx)
    cfg.labels.prompt = "a picture of {label}"
    with pytest.raises(IndexMismatchError, match="prompt"):
        Indexer(cfg, tiny_encoder).run([str(movies["a"].path)])
    cfg = make_cfg(idx)
    cfg.labels.top_k = 3  # the "any of the top k" filter relies on one top_k per index
    with pytest.raises(IndexMismatchError, match="top 5 labels per shot, not 3"):
        Indexer(cfg, tiny_encoder).run([str(movies["a"].path)])


def test_second_indexer_on_the_same_index_is_refused(tmp_path):
    with (
        indexing_lock(str(tmp_path)),
        pytest.raises(IndexBusyError, match="being indexed"),
        indexing_lock(str(tmp_path)),
    ):
        pass


def test_server_backend_gives_the_same_points(tmp_path, movies, tiny_encoder, tiny_labeler):
    """The same run into qdrant-client's in-process store (server code path) and the embedded
    shard yields identical point ids and payloads."""
    from scenesearch.indexer.store.server import ServerStore

    idx = tmp_path / "idx"
    Indexer(make_cfg(idx), tiny_encoder, tiny_labeler).run([str(movies["a"].path)])
    edge = all_points(idx)
    mem = ServerStore(":memory:")
    cfg = make_cfg(tmp_path / "thumbs", qdrant_url=":memory:")
    ix = Indexer(cfg, tiny_encoder, tiny_labeler)
    ix.open_store = lambda: _NoClose(mem, ix)  # keep the in-memory client alive after the run
    ix.run([str(movies["a"].path)])
    server = {r.id: r.payload for r in mem.iter_points()}
    strip = lambda d: {k: {x: y for x, y in v.items() if x != "thumb"} for k, v in d.items()}  # noqa: E731
    assert strip(server) == strip(edge)


class _NoClose:
    """Wraps a store so the pipeline's ``with`` does not close it (in-memory stores vanish)."""

    def __init__(self, store, ix):
        from scenesearch.indexer.catalog import check_meta

        self._s = store
        if not store.exists():
            store.create(ix.collection_spec())
            store.set_meta(ix.meta)
        check_meta(store.get_meta(), ix.meta)

    def __getattr__(self, k):
        return getattr(self._s, k)

    def __enter__(self):
        return self._s

    def __exit__(self, *exc):
        return False


def test_worker_processes_give_the_same_index(tmp_path, movies, tiny_encoder, tiny_labeler):
    a, b = tmp_path / "inline", tmp_path / "procs"
    paths = [str(v.path) for v in movies.values()]
    Indexer(make_cfg(a), tiny_encoder, tiny_labeler).run(paths)
    s = Indexer(make_cfg(b, workers=2), tiny_encoder, tiny_labeler).run(paths)
    assert s.count("indexed") == 3
    pa, pb = all_points(a), all_points(b)
    assert set(pa) == set(pb)
    for k in pa:
        assert pa[k]["top_labels"] == pb[k]["top_labels"]


def test_all_frames_mode_uses_every_frame(tmp_path, movies, tiny_encoder, tiny_labeler):
    idx = tmp_path / "idx"
    Indexer(make_cfg(idx, frames_per_shot="all"), tiny_encoder, tiny_labeler).run(
        [str(movies["a"].path)]
    )
    pts = sorted(all_points(idx).values(), key=lambda p: p["shot_index"])
    assert [p["n_frames_used"] for p in pts] == [30, 24, 36]


def _cli(args, **kw):
    env = {**os.environ, "SCENESEARCH_DEVICE": "cpu", "PYTHONUNBUFFERED": "1"}
    return subprocess.Popen(
        [sys.executable, "-m", "scenesearch.ui", *args], cwd=REPO, env=env, **kw
    )


def _done_count(idx: Path) -> int:
    db = idx / "movies.sqlite"
    if not db.exists():
        return 0
    try:
        with sqlite3.connect(f"file:{db}?mode=ro", uri=True, timeout=1) as c:
            return c.execute("select count(*) from movies").fetchone()[0]
    except sqlite3.Error:
        return 0


@pytest.mark.slow
def test_kill_9_mid_run_then_rerun_equals_a_clean_run(tmp_path):
    """SIGKILL the indexer after its first movie is committed, rerun: same points as a clean run,
    no duplicates (deterministic ids + each movie replaced as a unit)."""
    src = tmp_path / "src"
    src.mkdir()
    for i in range(5):
        segs = [Segment(48, 30, seed=i), Segment(48, 220, seed=i + 10), Segment(48, 100, seed=i)]
        write_video(src / f"m{i}.mp4", segs, size=(320, 180))
    args = ["index", "--model", TINY_MODEL, "--pretrained", "random", "--no-progress", str(src)]
    clean = tmp_path / "clean"
    assert _cli([*args, "--index", str(clean)]).wait(timeout=300) == 0

    killed = tmp_path / "killed"
    proc = _cli([*args, "--index", str(killed)], start_new_session=True)
    deadline = time.time() + 240
    while _done_count(killed) < 1 and time.time() < deadline and proc.poll() is None:
        time.sleep(0.05)
    assert proc.poll() is None, "run finished before it could be killed"
    os.killpg(proc.pid, signal.SIGKILL)  # the whole group: main process and decode workers
    proc.wait()
    partial = _done_count(killed)
    assert 1 <= partial < 5
    r = _cli([*args, "--index", str(killed)], stdout=subprocess.PIPE, text=True)
    out = r.communicate(timeout=300)[0]
    assert r.returncode == 0, out
    assert "already done" in out
    a, b = all_points(clean), all_points(killed)
    assert len(b) == len(a) == 15 and set(a) == set(b)


def test_cli_index_exit_codes_and_summary(tmp_path, movies, capsys):
    from scenesearch.ui.cli import main

    bad = write_text_as_video(tmp_path / "bad.mp4")
    idx = tmp_path / "idx"
    args = ["index", "--index", str(idx), "--model", TINY_MODEL, "--pretrained", "random",
            "--workers", "-1", "--no-progress"]  # fmt: skip
    assert main([*args, str(movies["b"].path), str(bad)]) == 2
    out = capsys.readouterr()
    assert "1 indexed" in out.out and "1 failed" in out.out
    assert f"FAILED {bad}" in out.out and "RANDOM WEIGHTS" in out.out
    assert main([*args, "--json", str(movies["b"].path)]) == 0
    summary = json.loads(capsys.readouterr().out)
    assert summary["skipped"] == 1 and summary["failed"] == 0
    assert main(["index", "--index", str(idx), "--model", "ViT-B-33", str(movies["b"].path)]) == 1
    assert "unknown model 'ViT-B-33'" in capsys.readouterr().err
    assert main([*args, "--frames-per-shot", "zero", str(movies["b"].path)]) == 1
    assert "--frames-per-shot" in capsys.readouterr().err


def test_manifest_metadata_lands_in_payloads(tmp_path, movies, tiny_encoder, tiny_labeler):
    man = tmp_path / "m.csv"
    man.write_text(
        "path,title,year,genres,id\n"
        f"{movies['a'].path},The A Movie,1999,Drama|Crime,movie-a\n"
        f"{movies['b'].path},,,comedy,\n"
    )
    idx = tmp_path / "idx"
    Indexer(make_cfg(idx), tiny_encoder, tiny_labeler).run([], manifest=str(man))
    pts = list(all_points(idx).values())
    a = [p for p in pts if p["movie_id"] == "movie-a"]
    assert len(a) == 3 and a[0]["title"] == "The A Movie" and a[0]["year"] == 1999
    assert a[0]["genres"] == ["drama", "crime"]
    b = [p for p in pts if p["movie_id"] != "movie-a"]
    assert b[0]["title"] == "b" and b[0]["year"] is None and b[0]["genres"] == ["comedy"]


@pytest.mark.slow
def test_real_corpus_clip_indexes_with_exact_cuts(tmp_path, tiny_encoder, tiny_labeler):
    """Sintel excerpt: shot starts within ±1 frame of the 6 hand-checked cuts."""
    path = corpus_file("video/sintel_mangomm_848x480_26s.mp4")
    idx = tmp_path / "idx"
    Indexer(make_cfg(idx), tiny_encoder, tiny_labeler).run([str(path)])
    starts = sorted(p["start_frame"] for p in all_points(idx).values())
    truth = [77, 122, 320, 458, 546, 612]
    assert len(starts) == len(truth) + 1
    for got, want in zip(starts[1:], truth):
        assert abs(got - want) <= 1


@pytest.mark.weights
def test_real_weights_smoke(tmp_path):
    """With real ViT-B-32 weights (SCENESEARCH_TEST_WEIGHTS=/path/to/file), a forest clip's top
    labels include an outdoor nature scene and the text query "a flower" finds the flower clip."""
    weights = os.environ.get("SCENESEARCH_TEST_WEIGHTS")
    if not weights or not Path(weights).is_file():
        pytest.skip("set SCENESEARCH_TEST_WEIGHTS to a local ViT-B-32 weights file")
    from scenesearch.search import SearchEngine

    flower = corpus_file("video/flower_mdn_cc0_960x540.mp4")
    city = corpus_file("video/city_kivy_cc0_720x405.mpg")
    cfg = make_cfg(tmp_path / "idx")
    cfg.model.name = os.environ.get("SCENESEARCH_TEST_MODEL", "ViT-B-32")
    cfg.model.pretrained = weights
    s = Indexer(cfg).run([str(flower), str(city)])
    assert s.count("indexed") == 2
    with SearchEngine.open(cfg.store) as eng:
        hits = eng.search("a close-up photo of a flower", limit=1).hits
        assert hits[0].title.startswith("flower")
        hits = eng.search("a city street with buildings", limit=1).hits
        assert hits[0].title.startswith("city")


def test_odd_rotated_multistream_and_vfr_videos_index_correctly(
    tmp_path, tiny_encoder, tiny_labeler
):
    """Unusual but valid videos are indexed right: odd frame size, a display rotation (portrait
    thumbnail), two video streams (shots of the default stream), and VFR (times from pts)."""
    from PIL import Image

    from tests.videos import write_rotated_video, write_two_stream_video

    src = tmp_path / "src"
    src.mkdir()
    write_video(src / "odd.avi", [(24, 40), (24, 220)], size=(161, 97), codec="mpeg4")
    write_rotated_video(src / "rotated.mp4", rotation=90, size=(160, 96), n=30)
    two = write_two_stream_video(src / "two.mp4", [(30, 40), (30, 220)])
    # VFR: 24 frames at 1/24 s, then 24 frames at 1/12 s (a cut at frame 24)
    times = [i / 24 for i in range(24)] + [1.0 + i / 12 for i in range(24)]
    vfr = write_video(
        src / "vfr.mkv", [(24, 40), (24, 220)], times=times, container_format="matroska"
    )
    idx = tmp_path / "idx"
    s = Indexer(make_cfg(idx), tiny_encoder, tiny_labeler).run([str(src)])
    assert s.count("indexed") == 4, [(m.path, m.reason) for m in s.movies]
    by = {}
    for p in all_points(idx).values():
        by.setdefault(p["title"], []).append(p)
    for v in by.values():
        v.sort(key=lambda p: p["shot_index"])
    assert [p["start_frame"] for p in by["odd"]] == [0, 24]
    w, h = Image.open(idx / by["rotated"][0]["thumb"]).size
    assert h > w  # displayed portrait
    assert [p["start_frame"] for p in by["two"]] == [0, *two.cuts]
    assert [p["start_frame"] for p in by["vfr"]] == [0, 24]
    assert by["vfr"][1]["start_s"] == pytest.approx(vfr.times[24], abs=1e-3)
    # the last frame's own duration is not stored in the file: the end lies after its pts
    assert vfr.times[-1] < by["vfr"][1]["end_s"] <= vfr.times[-1] + 1 / 12 + 1e-3
