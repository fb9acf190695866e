"""Smoke tests of the benchmark commands: they run end to end on tiny inputs and write
``report.json`` + ``report.md`` with the expected keys. No timing is ever asserted here (the
figures depend on the machine and its load); the real runs are in eval/results/.

Inputs: a synthetic 3-shot video (24 + 30 + 20 frames at 24 fps, brightness cuts at frames 24 and
54, so the content detector finds 3 shots), the tiny random OpenCLIP model, 2,000 synthetic
points for the search bench.
"""

from __future__ import annotations

import json
import shutil

import numpy as np
import pytest

from scenesearch.eval.bench.index_report import TARGET_FEATURE_COS
from scenesearch.indexer.config import SampleConfig
from scenesearch.ui.cli import main
from tests.conftest import TINY_MODEL
from tests.videos import write_video

MACHINE_KEYS = {"cpu", "cores", "ram_gib", "gpu", "versions"}
VERSION_KEYS = {"torch", "open_clip", "qdrant-edge", "PyAV", "scenedetect"}


@pytest.fixture(autouse=True)
def _private_bench_lock(tmp_path, monkeypatch):
    """A private benchmark lock: a real benchmark running on the machine must not block tests."""
    monkeypatch.setenv("SCENESEARCH_BENCH_LOCK", str(tmp_path / "bench.lock"))


@pytest.fixture(scope="module")
def clip3(tmp_path_factory):
    """A 3.1 s, 320x180 H.264 video with 3 shots (cuts at frames 24 and 54)."""
    d = tmp_path_factory.mktemp("bench-video")
    v = write_video(d / "three.mp4", [(24, 40), (30, 200), (20, 60)], size=(320, 180))
    assert v.cuts == (24, 54)
    return v.path


def bench_index(video, out, *argv: str) -> int:
    """``scenesearch bench index VIDEO`` on the tiny model and the CPU, quiet, into ``out``."""
    return main(["bench", "index", str(video), "--out", str(out), "--model", TINY_MODEL,
                 "--device", "cpu", "--quiet", *argv])  # fmt: skip


def _read(out):
    report = json.loads((out / "report.json").read_text())
    md = (out / "report.md").read_text()
    assert set(report["machine"]) >= MACHINE_KEYS
    assert set(report["machine"]["versions"]) >= VERSION_KEYS
    assert "| CPU |" in md and "versions" in md
    return report, md


@pytest.mark.skipif(
    not shutil.which("ffmpeg"), reason="the baseline needs ffmpeg (scenedetect split-video)"
)
def test_bench_index_with_baseline(clip3, tmp_path):
    out = tmp_path / "report"
    rc = bench_index(clip3, out, "--pretrained", "random", "--copies", "2", "--scale-seconds",
                     "2", "--fidelity-frames", "4")  # fmt: skip
    assert rc == 0
    r, md = _read(out)
    assert r["random_weights"] is True and "RANDOM" in md
    for name in ("ours_default", "ours_all"):
        o = r["ours"][name]
        assert o["shots"] == 3
        assert {"decode", "detect", "sample", "preprocess", "embed", "label", "store"} <= set(
            o["stage_s"]
        )
        for key in ("frames_per_s", "images_per_s", "shots_per_s", "realtime_factor",
                    "peak_rss_mib", "wall_s", "cpu_s"):  # fmt: skip
            assert key in o
    assert r["ours"]["ours_all"]["images_embedded"] == r["video"]["n_frames"]
    b = r["baseline"]
    assert b["shots"] == 3 and b["frames_embedded"] > 0
    assert {"detect_split", "decode", "preprocess", "embed", "label"} <= set(b["stage_s"])
    assert "split-video" in b["command"]
    fid = r["fidelity"]
    assert fid["features"]["frames"] == 4
    # our preprocessing (PyAV scaling + tensor transform) matches open_clip's PIL path
    assert fid["features"]["cos_min"] >= TARGET_FEATURE_COS
    assert fid["labels"]["matched"] == 3  # same detector on both sides: every shot matches
    assert r["scaling"]["one"]["movies"] == 1 and r["scaling"]["many"]["movies"] == 2
    assert {"ours_default", "ours_all"} <= set(r["comparison"])
    assert len(r["targets"]) == 5 and all("met" in t for t in r["targets"])
    assert "## Stages" in md and "## Fidelity" in md and "## Scaling" in md


def test_bench_index_quick_options(clip3, tmp_path):
    """--skip-baseline / --skip-all / --copies 0 / --limit-seconds: only our default run."""
    out = tmp_path / "quick"
    rc = bench_index(clip3, out, "--skip-baseline", "--skip-all", "--copies", "0",
                     "--fidelity-frames", "2", "--limit-seconds", "2")  # fmt: skip
    assert rc == 0
    r, _ = _read(out)
    assert set(r["ours"]) == {"ours_default"}
    assert "baseline" not in r and "scaling" not in r
    assert r["video"]["duration_s"] <= 2.2  # trimmed to the first 2 s
    assert (out / "progress.log").stat().st_size > 0


def test_bench_index_repeats_interleave_and_keep_the_fastest(clip3, tmp_path):
    """--repeats 2 with a --detector run: four runs in turn (default, detector, default,
    detector), each configuration keeps its fastest, every wall time and ratio is reported."""
    out = tmp_path / "rep"
    rc = bench_index(clip3, out, "--skip-baseline", "--skip-all", "--copies", "0",
                     "--fidelity-frames", "0", "--repeats", "2", "--detector", "content")  # fmt: skip
    assert rc == 0
    r, md = _read(out)
    assert set(r["ours"]) == {"ours_default", "ours_detector1"}
    log = (out / "progress.log").read_text()
    order = [n for n in ("ours_default_r1", "ours_detector1_r1", "ours_default_r2",
                         "ours_detector1_r2") if f"[{n}]" in log]  # fmt: skip
    assert len(order) == 4 and [log.index(f"[{n}]") for n in order] == sorted(
        log.index(f"[{n}]") for n in order
    )
    d, t = r["ours"]["ours_default"], r["ours"]["ours_detector1"]
    assert len(d["walls_s"]) == len(t["walls_s"]) == 2
    assert d["wall_s"] == min(d["walls_s"]) and t["wall_s"] == min(t["walls_s"])
    assert t["vs_default"] == [round(a / b, 3) for a, b in zip(t["walls_s"], d["walls_s"])]
    assert t["config"]["detector"] == "content" and t["shots"] == 3
    assert "Repeated runs" in md and ", ".join(f"{w:g}" for w in t["walls_s"]) in md


def test_bench_search_small(tmp_path):
    out = tmp_path / "search"
    rc = main(["bench", "search", "--points", "2000", "--out", str(out), "--model", TINY_MODEL,
               "--queries", "20", "--text-queries", "3", "--tuning", "bench-small",
               "--quiet"])  # fmt: skip
    assert rc == 0
    r, md = _read(out)
    cases = ("unfiltered", "narrow_label", "broad_genre", "above_full_scan", "top_label",
             "top_label_scored", "year_duration", "group_by_movie")  # fmt: skip
    for case in cases:
        lat = r["latency"][case]
        assert {"p50_ms", "p95_ms", "p99_ms"} <= set(lat)
        assert {"p50_ms", "p95_ms"} <= set(lat["brute_force"])
        # against the bench's numpy brute force on the same queries (2,000 points: the
        # store scans small filters exactly and its HNSW finds nearly all of the rest)
        assert r["recall"][case]["recall_at_10"] >= 0.9, case
        assert r["recall"][case]["short_lists"] == 0
    assert {"text_unfiltered", "text_narrow_label"} <= set(r["latency"])
    assert r["ingest"]["points"] == 2000 and r["ingest"]["points_per_s"] > 0
    assert r["reopen"]["reopen_s"] > 0 and r["reopen"]["rss_mib"] > 0
    assert r["build"]["wall_s"] > 0 and r["build"]["cpu_s"] > 0 and r["disk"]["index_mib"] > 0
    assert 0.0 < r["filters"]["narrow_label"]["fraction"] < 0.2
    # bench-small's full-scan threshold (16 KB) is exceeded by some label or genre of 2,000 points
    edge = r["filters"]["above_full_scan"]
    assert edge["fraction"] * 2000 > edge["full_scan_threshold_points"] > 0
    assert any("above_full_scan" in t["target"] for t in r["targets"])
    for case in ("top_label", "top_label_scored", "year_duration"):
        # each filter kind matches some shots, and numpy's mask agrees with the store's count
        rec = r["recall"][case]
        assert 0 < rec["matching_shots"] == rec["store_matching_shots"] < 2000, case
        assert r["filters"][case]["fraction"] == pytest.approx(
            rec["matching_shots"] / 2000, abs=1e-4
        )
    assert "## Latency" in md and "numpy" in md
    from scenesearch.indexer import __version__

    assert r["machine"]["versions"]["scenesearch"].startswith(__version__)  # + the git commit


def test_bench_bad_input_is_one_line_error(tmp_path, capsys):
    rc = main(["bench", "index", str(tmp_path / "missing.mp4"), "--out", str(tmp_path / "o"),
               "--model", TINY_MODEL, "--device", "cpu", "--quiet"])  # fmt: skip
    assert rc == 1
    assert "file not found" in capsys.readouterr().err
    rc = main(["bench", "search", "--points", "5", "--out", str(tmp_path / "s")])
    assert rc == 1


def test_bench_stills_small(tmp_path):
    """`bench stills` on two synthetic films (a long take and 3 short shots): every method is
    scored (pooled, per film, per length class), both schemes are indexed and timed, the sweep
    covers every setting, and the brute force upper bound finds every still's shot."""
    from scenesearch.eval.bench.stills import DENSITY, SWEEP

    d = tmp_path / "films"
    d.mkdir()
    a = write_video(d / "long.mp4", [(40, 60), (330, 200)], size=(320, 180))
    b = write_video(d / "three.mp4", [(24, 40), (60, 200), (40, 90)], size=(320, 180))
    out = tmp_path / "stills"
    code = main(["bench", "stills", str(a.path), str(b.path), "--model", TINY_MODEL,
                 "--repeats", "1", "--brute-stride", "2", "--long-brute-stride", "1",
                 "--out", str(out), "--quiet", "--cache-dir", str(tmp_path / "cache")])  # fmt: skip
    assert code == 0
    report, md = _read(out)
    assert "--brute-stride 2 --long-brute-stride 1" in md  # the command, as run
    assert "## Where the new scheme misses and brute force hits" in md
    keys = {"film", "t", "shot", "returned", "nearest_sampled_dt", "edge_dt", "cos_true_sampled",
            "cos_returned_sampled", "cos_true_brute", "brute_frame_t"}  # fmt: skip
    for miss in report["misses"]:
        assert set(miss) == keys and miss["shot"] != miss["returned"]
        if miss["film"] == "long.mp4":  # brute stride 1 there: the sampled frames are among them
            assert miss["cos_true_brute"] >= miss["cos_true_sampled"] - 1e-3
    pooled = report["scores"]["pooled"]
    assert pooled["stills"] > 5
    for m in ("mean3", "frames", "frames_exact", "brute"):
        assert 0 <= pooled[f"{m}_hit1"] <= pooled[f"{m}_hit5"] <= 1
    assert set(report["scores"]["by_film"]) == {"long.mp4", "three.mp4"}
    assert ">12 s" in report["scores"]["by_length"]  # the 13.75 s take
    ix = report["indexing"]
    assert ix["best"]["frames"]["images"] > ix["best"]["mean3"]["images"]  # the long take
    assert ix["wall_ratio"] > 0 and len(report["sweep"]) == len(SWEEP) + len(DENSITY)
    dense = [r for r in report["sweep"] if "every_nth_frame" in r]
    assert [r["every_nth_frame"] for r in dense] == list(DENSITY)
    assert dense[0]["images"] > dense[-1]["images"] > 0  # sparser series embed fewer frames
    assert "How dense sampling must be" in md
    assert len(report["targets"]) == 3 and "## By film" in md


def test_bench_search_frame_vectors_small(tmp_path, capsys):
    out, work = tmp_path / "frames", tmp_path / "work"
    code = main(["bench", "search", "--points", "600", "--frame-vectors", "--queries", "5",
                 "--out", str(out), "--work-dir", str(work), "--quiet",
                 "--tuning", "m20-ef64"])  # fmt: skip
    assert code == 0
    report, md = _read(out)
    assert (report["tuning"]["m"], report["tuning"]["ef_construct"]) == (20, 64)
    # --reuse queries the same index with the same (regenerated) data: same recall, same build
    again = tmp_path / "again"
    code = main(["bench", "search", "--points", "600", "--frame-vectors", "--queries", "5",
                 "--out", str(again), "--work-dir", str(work), "--reuse", "--quiet"])  # fmt: skip
    assert code == 0
    reused, _ = _read(again)
    assert reused["index"]["optimize_s"] == report["index"]["optimize_s"]
    assert reused["tuning"] == report["tuning"]  # the index keeps the tuning it was built with
    for case, row in report["cases"].items():
        for k, v in row.items():
            assert reused["cases"][case][k]["recall@10"] == v["recall@10"]
    capsys.readouterr()
    assert main(["bench", "search", "--points", "700", "--frame-vectors", "--work-dir",
                 str(work), "--reuse", "--out", str(again), "--quiet"]) == 1  # fmt: skip
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "to reuse" in err[0]
    assert report["index"]["frames"] >= 3 * 600
    for row in report["cases"].values():
        assert set(row) == {"prefetch 64", "prefetch 256", "prefetch 1024", "mean vector only"}
    # 1,024 candidates cover all 600 shots: the best-frame rerank is then exact, also for the
    # ~1 % label filter that matches fewer than 10 shots (recall counts min(10, matching))
    assert report["matching_shots"]["unfiltered"] == 600
    assert min(report["matching_shots"].values()) < 10
    for row in report["cases"].values():
        assert row["prefetch 1024"]["recall@10"] == 1.0
    assert len(report["targets"]) == 2 and "recall@10" in md
    sc = SampleConfig()
    assert report["sampling"]["frame_interval_s"] == sc.frame_interval_s
    assert report["sampling"]["max_frames_per_shot"] == sc.max_frames_per_shot
    assert report["sampling"]["edge_frame_s"] == sc.edge_frame_s


def test_frames_bench_exact_reference():
    """The bench's exact best-frame reference (chunked over a memmap-like array) equals a plain
    per-shot max, and its top list is min(10, matching shots) long, matching shots only."""
    from scenesearch.eval.bench import search_frames as sf

    rng = np.random.default_rng(3)
    counts = rng.integers(1, 7, 25_000)
    frames = rng.standard_normal((int(counts.sum()), 8)).astype(np.float32)
    qs = rng.standard_normal((3, 8)).astype(np.float32)
    best = sf.best_frame_scores(frames, counts, qs)
    owner = np.repeat(np.arange(len(counts)), counts)
    for j, q in enumerate(qs):
        ref = np.full(len(counts), -np.inf, np.float32)
        np.maximum.at(ref, owner, frames @ q)
        np.testing.assert_allclose(best[:, j], ref, rtol=1e-5, atol=1e-5)
    mask = np.zeros(len(counts), bool)
    mask[[5, 70, 900]] = True
    top = sf.exact_top(best[:, 0], mask)
    assert sorted(top.tolist()) == [5, 70, 900]
    assert sf.recall(set(top.tolist()), set(top.tolist())) == 1.0
    assert sf.recall({5}, {5, 70, 900}) == 1 / 3
    assert len(sf.exact_top(best[:, 0], None)) == 10


def test_feature_fidelity_matches_open_clip(clip3):
    """``bench index``'s fidelity check on its own (no ffmpeg needed): our frame path (PyAV at the
    working size + ClipEncoder's tensor preprocessing) and open_clip's PIL preprocessing of the
    full frame give the same features on the 3-shot clip (flat frames: cosine 1 up to rounding),
    and features of different frames are less alike than that."""
    from scenesearch.eval.bench.index_baseline import feature_fidelity
    from scenesearch.indexer.config import ModelConfig
    from scenesearch.indexer.encoder import ClipEncoder

    enc = ClipEncoder(ModelConfig(TINY_MODEL, "random", "cpu"))
    f = feature_fidelity(str(clip3), enc, 4, lambda _msg: None)
    assert f["frames"] == 4
    assert f["cos_min"] >= TARGET_FEATURE_COS
    assert f["cos_between_different_frames_mean"] < f["cos_min"]


def test_bench_tuning_names_a_denser_graph_or_fails_in_one_line():
    """``--tuning mM-efE`` is the product's tuning with another HNSW m / ef_construct (to measure
    a denser graph before it becomes a default); anything else unknown is a ConfigError."""
    from scenesearch.eval.bench.stores import edge_tuning
    from scenesearch.indexer.errors import ConfigError
    from scenesearch.indexer.store.edge import EdgeTuning

    t = edge_tuning("m24-ef200")
    assert (t.m, t.ef_construct, t.dense_int8) == (24, 200, False)
    assert edge_tuning("m24-ef200-int8") == EdgeTuning(m=24, ef_construct=200, dense_int8=True)
    assert t.full_scan_threshold_kb == EdgeTuning().full_scan_threshold_kb
    assert edge_tuning("default") == EdgeTuning()
    for bad in ("m24", "dense", "m1-ef100", "m16-ef2", "m24-ef200-int4"):
        with pytest.raises(ConfigError, match="unknown tuning"):
            edge_tuning(bad)
