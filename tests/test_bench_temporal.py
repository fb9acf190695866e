"""``scenesearch bench temporal`` end to end on a tiny store (timings are not asserted): the
report has every case, and on 3,000 shots the default depths find ≥ 90 % of the brute force's
top 10 (not always all: the candidate lists come from the HNSW graph, approximate; the unit tests
in test_temporal.py check exactness with exact candidate lists)."""

from __future__ import annotations

import json

import pytest

from scenesearch.ui.cli import main


@pytest.fixture(autouse=True)
def _private_bench_lock(monkeypatch, tmp_path):
    monkeypatch.setenv("SCENESEARCH_BENCH_LOCK", str(tmp_path / "bench.lock"))


def test_bench_temporal_small(tmp_path, capsys):
    out = tmp_path / "report"
    code = main(["bench", "temporal", "--points", "3000", "--queries", "5", "--tuning",
                 "bench-small", "--warmup", "7", "--out", str(out), "--quiet"])  # fmt: skip
    assert code == 0
    r = json.loads((out / "report.json").read_text())
    assert set(r["cases"]) == {"no_filter", "genre_both_steps", "window_30s"}
    assert r["warmup"]["query_pairs_per_case"] == 7 and set(r["warmup"]) > set(r["cases"])
    assert "7 other query pairs" in (out / "report.md").read_text()
    for c in r["cases"].values():
        assert c["n"] == 5 and c["recall_at_10"] >= 0.9
        assert c["brute_force"]["n"] == 5 and c["cpu"]["n"] == 5
    assert 0.05 < r["cases"]["genre_both_steps"]["filter_fraction"] < 0.6
    assert "Sequence queries" in (out / "report.md").read_text()
    assert "MET" in capsys.readouterr().out


def test_bench_temporal_bad_input(tmp_path, capsys):
    assert main(["bench", "temporal", "--points", "10", "--out", str(tmp_path)]) == 1
    assert "at least 100" in capsys.readouterr().err


def test_bench_temporal_keep_and_reuse(tmp_path, capsys):
    """--keep-index leaves the index and its data; --reuse queries it without a build and finds
    the same sequences; a mismatching --reuse is one line."""
    work, a, b = tmp_path / "work", tmp_path / "a", tmp_path / "b"
    common = ["bench", "temporal", "--points", "2000", "--queries", "4", "--tuning", "bench-small",
              "--work-dir", str(work), "--warmup", "3", "--quiet"]  # fmt: skip
    assert main([*common, "--keep-index", "--out", str(a)]) == 0
    assert (work / "index").is_dir() and (work / "data.npz").is_file()
    assert main([*common, "--reuse", "--out", str(b)]) == 0
    ra, rb = (json.loads((d / "report.json").read_text()) for d in (a, b))
    assert rb["build"]["reused"] and "reused index" in (b / "report.md").read_text()
    assert rb["build"]["wall_s"] == ra["build"]["wall_s"]
    for name, case in ra["cases"].items():
        assert rb["cases"][name]["recall_at_10"] == case["recall_at_10"]
    capsys.readouterr()
    bad = ["bench", "temporal", "--points", "3000", "--work-dir", str(work), "--reuse",
           "--out", str(tmp_path / "c"), "--quiet"]  # fmt: skip
    assert main(bad) == 1
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "2,000 shots" in err
    assert main([*bad[:4], "--work-dir", str(tmp_path / "none"), *bad[6:]]) == 1
    assert "--keep-index first" in capsys.readouterr().err
