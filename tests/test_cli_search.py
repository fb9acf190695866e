"""``scenesearch search`` through its argv entry point on a real small index (tests/index_fixtures:
3 synthetic movies, 12 shots, tiny random model): table and JSON-lines output, --like, browsing
without a query, filters, exit codes and one-line errors."""

from __future__ import annotations

import json

import pytest
from PIL import Image

from tests.app_fixtures import index_fixture, run_cli

# (index_dir, info): Night Harbour (1994; 4 shots), Sunny Meadow (2008; 3), Deep Orbit (2019; 5).
index = index_fixture("cli", pair=True)


def test_json_lines_have_the_documented_fields(index, capsys):
    idx, info = index
    code, out, _ = run_cli(
        capsys, "search", "--index", idx, "a harbour at night", "-k", "5", "--json"
    )
    assert code == 0
    hits = [json.loads(line) for line in out.splitlines()]
    assert len(hits) == 5
    for h in hits:
        for key in ("shot_id", "movie_id", "title", "start_s", "end_s", "labels", "score"):
            assert key in h
        # best-frame ranking: the matching moment lies inside the shot
        assert h["start_s"] - 1e-3 <= h["match_s"] < h["end_s"]
    scores = [h["score"] for h in hits]
    assert scores == sorted(scores, reverse=True)


def test_table_output_is_readable(index, capsys):
    idx, _ = index
    code, out, _ = run_cli(capsys, "search", "--index", idx, "harbour", "-k", "3")
    lines = out.splitlines()
    assert code == 0
    assert "RANDOM WEIGHTS" in lines[0]
    assert lines[1].split()[:6] == ["#", "score", "movie", "time", "match", "shot"]
    assert len([ln for ln in lines if ln[:1].isdigit()]) == 3
    assert "(more results: use --offset)" in out


def test_like_returns_the_shot_first_and_filters_apply(index, capsys):
    idx, _ = index
    code, out, _ = run_cli(capsys, "search", "--index", idx, "--like", "deep-orbit:0002", "--json")
    first = json.loads(out.splitlines()[0])
    assert code == 0 and first["shot_id"] == "deep-orbit:0002"
    code, out, _ = run_cli(
        capsys,
        "search",
        "--index",
        idx,
        "space",
        "--genre",
        "comedy",
        "--year",
        "2000-2010",
        "--json",
    )
    hits = [json.loads(line) for line in out.splitlines()]
    assert code == 0 and hits and {h["title"] for h in hits} == {"Sunny Meadow"}


def test_no_query_lists_a_movies_shots_in_time_order(index, capsys):
    idx, info = index
    code, out, _ = run_cli(capsys, "search", "--index", idx, "--movie", "Night Harbour", "--json")
    hits = [json.loads(line) for line in out.splitlines()]
    movie = [m for m in info.movies if m.title == "Night Harbour"][0]
    assert code == 0 and [h["shot_id"] for h in hits] == [
        f"night-harbour:{i:04d}" for i in range(movie.n_shots)
    ]
    assert [h["start_s"] for h in hits] == pytest.approx(list(movie.shot_starts), abs=0.05)
    assert all(h["score"] is None for h in hits)


def test_image_query_with_a_frame_of_a_shot_returns_that_shot_first(index, capsys, tmp_path):
    """A shot's own thumbnail (its middle frame) as the query image finds that shot first."""
    idx, _ = index
    from pathlib import Path

    thumb = Path(idx) / "thumbs" / "deep-orbit" / "0003.jpg"
    still = tmp_path / "still.png"
    Image.open(thumb).save(still)
    code, out, _ = run_cli(
        capsys, "search", "--index", idx, "--image", str(still), "--json", "-k", "3"
    )
    assert code == 0 and json.loads(out.splitlines()[0])["shot_id"] == "deep-orbit:0003"


def test_errors_are_one_line_with_exit_codes(index, capsys, tmp_path):
    idx, _ = index
    code, _, err = run_cli(capsys, "search", "--index", idx, "x", "--label", "bedrom")
    assert code == 1 and err.strip() == (
        "scenesearch: error: unknown label 'bedrom'; did you mean: bedroom, room, dorm?"
    )
    code, _, err = run_cli(capsys, "search", "--index", idx, "x", "--year", "19x0")
    assert code == 1 and "bad year range" in err and len(err.strip().splitlines()) == 1
    code, _, err = run_cli(capsys, "search", "--index", idx, "--like", "nonsense")
    assert code == 1 and "not a shot id" in err
    code, out, _ = run_cli(capsys, "search", "--index", idx, "night", "--min-score", "0.999")
    assert code == 3 and "no good match (best score" in out
    # a path that holds no index is an error, not "the index is empty" (issue 19)
    code, _, err = run_cli(capsys, "search", "--index", str(tmp_path / "missing"), "anything")
    assert code == 1 and "no index at" in err and len(err.strip().splitlines()) == 1
