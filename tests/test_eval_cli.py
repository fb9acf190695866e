"""``scenesearch eval …`` end to end on a small index built in the test, and the feature reader.

The index is a real embedded store (EdgeStore) in tmp_path, filled with payloads as the indexer
writes them and with vectors whose meaning is known, so the reports can be checked for values,
not only for files.
"""

from __future__ import annotations

import argparse
import importlib.util
import json

import numpy as np
import polars as pl
import pytest

from scenesearch.eval.features import feature_sets, load_shots, pool
from scenesearch.indexer.errors import InputError
from scenesearch.indexer.records import make_shot_id, point_id
from scenesearch.indexer.store import (
    VECTOR_CLIP,
    VECTOR_SCENES,
    CollectionSpec,
    StorePoint,
    VectorSpec,
)
from scenesearch.indexer.store.edge import EdgeStore
from scenesearch.ui.cli_eval import register
from tests.conftest import corpus_file

SCENE_LABELS = ("kitchen", "forest", "beach", "church")
MOVIES = [  # (movie_id, title, genres, film group)
    ("m0", "Alpha", ("comedy",), "alpha"),
    ("m1", "Bravo", ("drama",), "bravo"),
    ("m2", "Charlie", ("comedy", "romance"), "charlie"),
    ("m3", "Delta", ("drama",), "delta"),
    ("m4", "Echo", ("comedy",), "echo"),
    ("m5", "Foxtrot", ("drama", "romance"), "foxtrot"),
    ("m6", "Golf", ("comedy",), "golf"),
    ("m7", "Hotel", ("drama",), "hotel"),
]
SHOTS_PER_MOVIE = 6  # 2 s each; shot i is labelled SCENE_LABELS[(i + movie) % 4]


def shot_label(movie: int, i: int) -> str:
    return SCENE_LABELS[(i + movie) % len(SCENE_LABELS)]


@pytest.fixture(scope="module")
def index_dir(tmp_path_factory, tiny_encoder, tiny_labeler):
    """An embedded index of 8 movies × 6 shots of 2 s (48 shots), built with the tiny model.

    Shot i of movie m shows SCENE_LABELS[(i + m) % 4]: its "clip" vector is the tiny model's
    text embedding of "a photo of a <label>" plus small noise (so text search for that prompt
    ranks the label's 12 shots first: hit@1 = 1), its "scenes" vector is a 179-d distribution
    with 0.6 on that label (so scene mAP = 1 and top-1 accuracy = 1), and its clean labels are
    [label]. Comedy movies' clip vectors are shifted along one fixed direction and drama ones
    along the opposite, so genre is linearly separable from pooled clip features.
    Index metadata is the indexer's own (tiny model, MovieCLIP taxonomy).
    """
    from scenesearch.indexer.catalog import index_meta

    rng = np.random.default_rng(0)
    labels = tiny_labeler.labels
    text = tiny_encoder.encode_text([f"a photo of a {lab}" for lab in SCENE_LABELS])
    genre_dir = rng.standard_normal(tiny_encoder.spec.embed_dim)
    genre_dir /= np.linalg.norm(genre_dir)
    root = tmp_path_factory.mktemp("evalindex") / "index"
    store = EdgeStore(str(root))
    store.create(
        CollectionSpec(
            [
                VectorSpec(VECTOR_CLIP, tiny_encoder.spec.embed_dim),
                VectorSpec(VECTOR_SCENES, len(labels)),
            ]
        )
    )
    store.set_meta(index_meta(tiny_encoder, tiny_labeler))
    points = []
    for m, (mid, title, genres, _) in enumerate(MOVIES):
        sign = 1.0 if "comedy" in genres else -1.0
        for i in range(SHOTS_PER_MOVIE):
            lab = shot_label(m, i)
            k = SCENE_LABELS.index(lab)
            clip = text[k] + 0.05 * rng.standard_normal(len(text[k])) + 0.1 * sign * genre_dir
            clip = (clip / np.linalg.norm(clip)).astype(np.float32)
            scenes = np.full(len(labels), 0.4 / (len(labels) - 1), dtype=np.float32)
            scenes[labels.index(lab)] = 0.6
            sid = make_shot_id(mid, i)
            payload = {
                "shot_id": sid, "movie_id": mid, "path": f"/movies/{title.lower()}.mp4",
                "title": title, "year": 2000 + m, "genres": list(genres), "shot_index": i,
                "start_s": 2.0 * i, "end_s": 2.0 * i + 2.0, "duration_s": 2.0,
                "start_frame": 48 * i, "end_frame": 48 * i + 48, "fps": 24.0,
                "labels": [lab], "top_labels": [lab], "top": [{"label": lab, "score": 0.6, "rank": 1}],
                "thumb": f"thumbs/{mid}/{i:04d}.jpg", "model": tiny_encoder.spec.model_id,
                "n_frames_used": 3,
            }  # fmt: skip
            points.append(
                StorePoint(point_id(sid), {VECTOR_CLIP: clip, VECTOR_SCENES: scenes}, payload)
            )
    store.upsert(points)
    store.flush()
    store.close()
    return root


def run_cli(*argv: str) -> int:
    p = argparse.ArgumentParser()
    sub = p.add_subparsers()
    register(sub)
    args = p.parse_args(list(argv))
    return args.func(args)


def eval_index(cmd: str, index_dir, out, *argv: str) -> int:
    """``scenesearch eval CMD --index INDEX_DIR ARGV... --out OUT --quiet``."""
    return run_cli("eval", cmd, "--index", str(index_dir), *argv, "--out", str(out), "--quiet")


def report_files(out):
    return sorted(p.name for p in out.iterdir())


def test_load_shots_and_pooling(index_dir):
    """48 shots back in (movie, shot) order; per-movie mean pooling gives 8 rows, 30 s clips 8
    (all shots of a movie start before 12 s), 4 s clips 24 (three per movie)."""
    with EdgeStore(str(index_dir)) as store:
        t = load_shots(store)
    assert len(t) == 48 and t.shot_ids[:2] == ["m0:0000", "m0:0001"]
    assert (
        t.vectors["scenes"].shape == (48, 179)
        and t.label_names[0] == t.meta["taxonomy"]["labels"][0]
    )
    assert t.resolve_movie("alpha") == "m0" and t.resolve_movie("/movies/bravo.mp4") == "m1"
    pm = pool(t)
    assert pm.group_ids == [m[0] for m in MOVIES]
    assert np.allclose(pm.features["clip-mean"][0], t.vectors["clip"][:6].mean(axis=0))
    assert len(pool(t, clip_s=30).group_ids) == 8
    pc = pool(t, clip_s=4, how=("mean", "max"))
    assert (
        pc.group_ids[:3] == ["m0@clip000", "m0@clip001", "m0@clip002"]
        and pc.movie_ids[:3] == ["m0"] * 3
    )
    assert set(feature_sets(pc, ("mean", "max"))) == {
        "clip", "scenes", "clip+scenes", "clip-max", "scenes-max", "clip+scenes-max"
    }  # fmt: skip


def test_eval_genre_cli(index_dir, tmp_path):
    """Genres from a table naming movies by title; 4 s clips (24 samples, 8 films): comedy vs
    drama is separable → clip mAP for comedy and drama = 1; romance is on 2 films only."""
    genres = tmp_path / "genres.csv"
    genres.write_text("title,genres\n" + "".join(f"{t},{'|'.join(g)}\n" for _, t, g, _ in MOVIES))
    out = tmp_path / "genre"
    rc = eval_index("genre", index_dir, out, "--genres", str(genres), "--clip-seconds", "4",
                    "--folds", "4", "--C", "0.1", "1")  # fmt: skip
    assert rc == 0
    files = report_files(out)
    for name in ("summary", "per_genre", "per_fold", "folds"):
        assert {f"{name}.csv", f"{name}.parquet", f"{name}.json"} <= set(files)
    assert {"per_genre_ap.png", "summary.md", "config.json"} <= set(files)
    per = pl.read_parquet(out / "per_genre.parquet")
    clip = {
        r["genre"]: r["ap_pooled"]
        for r in per.filter(pl.col("feature") == "clip").iter_rows(named=True)
    }
    assert clip["comedy"] == 1.0 and clip["drama"] == 1.0
    folds = pl.read_csv(out / "folds.csv")
    assert folds.height == 24
    assert folds.group_by("movie_id").agg(pl.col("test_fold").n_unique())["test_fold"].max() == 1
    summary = (out / "summary.md").read_text()
    assert "mAP_mean" in summary and "prior" in summary and "random" in summary


def test_eval_genre_uses_index_genres_and_split_file(index_dir, tmp_path):
    """No --genres: the genres stored in the payloads; a train/test split file gives one fold."""
    split = tmp_path / "split.csv"
    split.write_text("movie,split\n" + "".join(f"{mid},{'test' if k % 4 == 0 else 'train'}\n"
                                               for k, (mid, *_) in enumerate(MOVIES)))  # fmt: skip
    out = tmp_path / "genre2"
    assert eval_index("genre", index_dir, out, "--split", str(split), "--C", "1") == 0
    s = pl.read_csv(out / "summary.csv")
    assert s["folds"].to_list() == [1, 1, 1, 1, 1]  # clip, scenes, clip+scenes, random, prior
    assert "1 fold(s) from the user's split file" in (out / "summary.md").read_text()


def test_eval_genre_reads_the_indexer_manifest(index_dir, tmp_path):
    """The indexer's manifest (path, title, year, genres, id blank) works as a genres table:
    movies are found by path; no movie is reported missing."""
    manifest = tmp_path / "manifest.csv"
    manifest.write_text(
        "path,title,year,genres,id\n"
        + "".join(f"/movies/{t.lower()}.mp4,{t},2001,{'|'.join(g)},\n" for _, t, g, _ in MOVIES)
    )
    out = tmp_path / "genre3"
    assert eval_index("genre", index_dir, out, "--genres", str(manifest), "--folds", "2", "--C", "1",
                      "--no-baselines") == 0  # fmt: skip
    text = (out / "summary.md").read_text()
    assert "8 samples (movies) from 8 movies" in text and "not in the index" not in text
    assert pl.read_csv(out / "summary.csv")["feature"].to_list() == [
        "clip",
        "scenes",
        "clip+scenes",
    ]


def test_eval_scenes_cli(index_dir, tmp_path):
    """Human labels for every shot of movies m0–m2 by time range (= the weak labels): mAP 1,
    top-1 1 in the taxonomy and in the 150-label projection; one row for an unknown movie."""
    rows = ["movie,start_s,end_s,labels"]
    for m in range(3):
        rows += [f"{MOVIES[m][1]},{2 * i},{2 * i + 2},{shot_label(m, i)}" for i in range(6)]
    rows.append("Nope,0,2,kitchen")
    gt = tmp_path / "shots.csv"
    gt.write_text("\n".join(rows) + "\n")
    out = tmp_path / "scenes"
    assert eval_index("scenes", index_dir, out, "--labels", str(gt)) == 0
    s = {r["space"]: r for r in pl.read_csv(out / "summary.csv").iter_rows(named=True)}
    assert set(s) == {"taxonomy-179", "movieclip-150"}
    for space in s.values():
        assert space["mAP"] == 1.0 and space["top1_acc"] == 1.0 and space["clean_micro_f1"] == 1.0
        assert space["samples"] == 18 and space["labels_scored"] == 4
    per = pl.read_csv(out / "per_label_taxonomy-179.csv")
    assert per.filter(pl.col("positives") > 0).height == 4
    files = set(report_files(out))
    assert {"per_label_ap.png", "summary.md", "unmatched.csv", "matches.parquet"} <= files
    assert "1 of 19 ground-truth shots not matched" in (out / "summary.md").read_text()


def test_eval_scenes_movieclip_split_format(index_dir, tmp_path):
    """A split file naming movie m1's shots by scene number (Scene-001 = shot 0) with 150-map
    indices (kitchen = 102, forest = 42, beach = 69, church = 13): only the 150 space."""
    idx = {"kitchen": 102, "forest": 42, "beach": 69, "church": 13}
    lines = [f"m1/m1-Scene-{i + 1:03d}.mp4 {idx[shot_label(1, i)]}" for i in range(6)]
    split = tmp_path / "test_split.txt"
    split.write_text("\n".join(lines) + "\n")
    out = tmp_path / "scenes150"
    assert eval_index("scenes", index_dir, out, "--labels", str(split)) == 0
    s = pl.read_csv(out / "summary.csv")
    assert s["space"].to_list() == ["movieclip-150"] and s["mAP"][0] == 1.0 and s["samples"][0] == 6


def test_eval_retrieval_cli(index_dir, tmp_path):
    """Built-in label queries against human labels (all 48 shots): "a photo of a kitchen" etc.
    → 12 relevant shots each, retrieved first → hit@1 = 1, MRR = 1, recall@10 = 10/12."""
    rows = ["movie,start_s,end_s,labels"]
    for m in range(len(MOVIES)):
        rows += [f"{MOVIES[m][0]},{2 * i},{2 * i + 2},{shot_label(m, i)}" for i in range(6)]
    gt = tmp_path / "shots.csv"
    gt.write_text("\n".join(rows) + "\n")
    out = tmp_path / "retrieval"
    assert eval_index("retrieval", index_dir, out, "--labels", str(gt), "--k", "1", "10",
                      "--device", "cpu") == 0  # fmt: skip
    s = {r["metric"]: r["value"] for r in pl.read_csv(out / "summary.csv").iter_rows(named=True)}
    assert s["MRR"] == 1.0 and s["hit@1"] == 1.0 and s["precision@10"] == 1.0
    assert s["recall@10"] == pytest.approx(10 / 12)
    assert s["mAP@10"] == 1.0 and s["ndcg@10"] == pytest.approx(1.0)
    per = pl.read_csv(out / "per_query.csv")
    assert sorted(per["query"].to_list()) == sorted(f"a photo of a {lab}" for lab in SCENE_LABELS)
    assert {"retrieval_at_k.png", "summary.md", "per_query.parquet", "config.json"} <= set(
        report_files(out)
    )
    assert json.loads((out / "config.json").read_text())["device"] == "cpu"


def test_eval_retrieval_query_table_and_weak_relevance(index_dir, tmp_path):
    """A query table with explicit shot ids, relevance from the index's weak labels (warned)."""
    q = tmp_path / "q.csv"
    q.write_text(
        "query,relevant,labels\na photo of a beach,m0:0002,\na photo of a church,,church\n"
    )
    out = tmp_path / "retrieval2"
    assert eval_index("retrieval", index_dir, out, "--queries", str(q), "--k", "5",
                      "--device", "cpu") == 0  # fmt: skip
    per = pl.read_csv(out / "per_query.csv")
    assert per["relevant"].to_list() == [1, 12]
    assert "circular" in (out / "summary.md").read_text()


def test_user_errors_are_scenesearch_errors(index_dir, tmp_path):
    with pytest.raises(InputError, match="no index"):
        run_cli("eval", "genre", "--index", str(tmp_path / "missing"), "--out", str(tmp_path / "x"))
    bad = tmp_path / "bad.csv"
    bad.write_text("name,kind\na,b\n")
    with pytest.raises(InputError, match="genres table"):
        run_cli(
            "eval",
            "genre",
            "--index",
            str(index_dir),
            "--genres",
            str(bad),
            "--out",
            str(tmp_path / "x"),
        )


@pytest.mark.slow
def test_eval_shots_cli(tmp_path):
    """The Sintel clip with its annotation, two detector configurations: content finds the 6 cuts
    exactly; the report has scores, per-cut details, the plot and the summary."""
    if importlib.util.find_spec("scenesearch.indexer.shots") is None:
        pytest.skip("indexer.shots not available yet")
    video = corpus_file("video/sintel_mangomm_848x480_26s.mp4")
    truth = corpus_file("annotations/sintel_mangomm_shots.csv")
    out = tmp_path / "shots"
    assert run_cli("eval", "shots", str(video), "--truth", str(truth), "--detector", "content",
                   "--detector", "hash", "--out", str(out), "--quiet") == 0  # fmt: skip
    s = pl.read_csv(out / "scores.csv")
    assert sorted(set(s["tolerance"])) == [0, 1, 5]
    content = s.filter(pl.col("detector").str.starts_with("content") & (pl.col("tolerance") == 1))
    assert content["f1"][0] == 1.0 and content["tp"][0] == 6
    assert s["detector"].n_unique() == 2
    assert {"cuts.csv", "f1_vs_tolerance.png", "summary.md", "config.json"} <= set(
        report_files(out)
    )
