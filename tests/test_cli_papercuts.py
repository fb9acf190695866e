"""The command line's first-hour papercuts (issue 19), each checked through ``main(argv)`` or a
real subprocess on the small real index of tests/index_fixtures: a missing index path is an error;
piping into ``head`` is quiet; genre and movie names get suggestions and a title prefix/substring
is accepted; bad input is reported before the model loads; ``search`` goes through a running
``serve`` of the index (which holds the embedded index's only lock); ``index`` into an existing
index reuses its model; an index without clean labels says so."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from scenesearch.indexer.config import LabelConfig, StoreConfig
from scenesearch.search import SearchEngine, SearchFilters
from tests.app_fixtures import free_port, index_fixture, run_cli
from tests.conftest import REPO
from tests.index_fixtures import build_test_index

# (index_dir, info): Night Harbour (1994), Sunny Meadow (2008), Deep Orbit (2019).
index = index_fixture("papercuts", pair=True)


def _env() -> dict:
    env = dict(os.environ)
    env["PYTHONPATH"] = str(REPO) + os.pathsep + env.get("PYTHONPATH", "")
    return env


def start_serve(idx: str, port: int) -> tuple[subprocess.Popen, Path]:
    """``scenesearch serve`` on ``idx`` as a subprocess, once its endpoint file exists (the
    caller stops it); returns the process and that file."""
    proc = subprocess.Popen(
        [sys.executable, "-m", "scenesearch.ui.cli", "serve", "--index", idx, "--port", str(port)],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=_env(), cwd=REPO, text=True,
    )  # fmt: skip
    endpoint = Path(idx) / "serve.json"
    for _ in range(600):  # up to 60 s for the server to start
        if endpoint.is_file() or proc.poll() is not None:
            break
        time.sleep(0.1)
    if not endpoint.is_file():
        proc.kill()
        raise AssertionError(f"serve did not start: {proc.communicate(timeout=10)}")
    return proc, endpoint


# ------------------------------------------------------------------------------ 5. missing index
@pytest.mark.parametrize("cmd", [["search", "x"], ["info"], ["remove", "m"], ["serve"]])
def test_a_missing_index_path_is_an_error(cmd, tmp_path, capsys):
    missing = tmp_path / "no" / "such" / "index"
    code, out, err = run_cli(capsys, cmd[0], "--index", str(missing), *cmd[1:])
    assert code == 1 and not out
    assert err.startswith(f"scenesearch: error: no index at {missing}") and err.count("\n") == 1
    assert not missing.exists()  # and nothing was created there
    (tmp_path / "plain").mkdir()
    code, _, err = run_cli(capsys, cmd[0], "--index", str(tmp_path / "plain"), *cmd[1:])
    assert code == 1 and "holds no scenesearch index" in err


# ------------------------------------------------------------------------------ 6. broken pipe
@pytest.mark.slow
@pytest.mark.parametrize(
    "argv", [["search", "--movie", "Deep Orbit", "--json", "-k", "100"], ["info"]]
)
def test_a_reader_that_goes_away_is_not_a_traceback(index, argv):
    """`scenesearch … | head -1`: the reader closes the pipe before (or while) we write."""
    idx, _ = index
    proc = subprocess.Popen(
        [sys.executable, "-m", "scenesearch.ui.cli", argv[0], "--index", idx, *argv[1:]],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=_env(), cwd=REPO,
    )  # fmt: skip
    proc.stdout.close()  # like head -1 after its line: every later write hits a closed pipe
    err = proc.stderr.read().decode()
    code = proc.wait(timeout=120)
    assert "Traceback" not in err and "BrokenPipe" not in err, err
    assert err == "" and code == 141


# ------------------------------------------------------------------------------ 7. names
def test_movie_titles_by_unique_prefix_or_substring(index, capsys):
    idx, _ = index
    for ref in ("night", "NIGHT HARB", "orbit", "Meadow"):
        code, out, err = run_cli(
            capsys, "search", "--index", idx, "--movie", ref, "--json", "-k", "1"
        )
        assert code == 0, err
        assert len({json.loads(x)["movie_id"] for x in out.splitlines()}) == 1
    code, out, _ = run_cli(
        capsys, "search", "--index", idx, "--movie", "orbit", "--json", "-k", "1"
    )
    assert json.loads(out)["title"] == "Deep Orbit"
    code, _, err = run_cli(capsys, "search", "--index", idx, "--movie", "e", "x")
    assert code == 1 and "is ambiguous" in err and "'Deep Orbit'" in err
    code, _, err = run_cli(capsys, "search", "--index", idx, "--movie", "Deep Orbitt", "x")
    assert code == 1 and "did you mean: Deep Orbit?" in err


def test_unknown_genre_and_movie_names_get_suggestions(index, capsys):
    idx, _ = index
    code, _, err = run_cli(capsys, "search", "--index", idx, "--genre", "scifi", "x")
    assert code == 1 and "unknown genre 'scifi'; did you mean: sci-fi?" in err
    code, _, err = run_cli(capsys, "search", "--index", idx, "--genre", "western", "x")
    assert code == 1 and err.strip().endswith(
        "known genres: comedy, crime, drama, family, sci-fi, thriller"
    )
    code, _, err = run_cli(capsys, "search", "--index", idx, "--movie", "Casablanca", "x")
    assert code == 1 and "known movies: Deep Orbit, Night Harbour, Sunny Meadow" in err


# ------------------------------------------------------------------------------ 8. before the model
@pytest.fixture
def count_model_loads(monkeypatch):
    import scenesearch.indexer.encoder

    loads = []
    real = scenesearch.indexer.encoder.ClipEncoder

    class Counting(real):
        def __init__(self, *a, **kw):
            loads.append(a)
            super().__init__(*a, **kw)

    monkeypatch.setattr(scenesearch.indexer.encoder, "ClipEncoder", Counting)
    return loads


def test_bad_input_is_reported_before_the_model_loads(index, capsys, tmp_path, count_model_loads):
    idx, _ = index
    bad = [
        ["x", "--label", "bedrom"],
        ["x", "--genre", "western"],
        ["x", "--movie", "Casablanca"],
        ["--image", str(tmp_path / "missing.jpg")],
        ["x", "--year", "19x0"],
    ]
    for argv in bad:
        code, _, err = run_cli(capsys, "search", "--index", idx, "--no-server", *argv)
        assert code == 1 and err.startswith("scenesearch: error:"), (argv, err)
    assert count_model_loads == []
    # the check can fail: a good query does load it
    code, _, _ = run_cli(capsys, "search", "--index", idx, "--no-server", "harbour", "-k", "1")
    assert code == 0 and len(count_model_loads) == 1


# ------------------------------------------------------------------------------ 8/9. via serve
@pytest.mark.slow
def test_search_goes_through_a_running_serve(index, capsys, tmp_path):
    """While `serve` holds the embedded index (one process at a time), `search` on the same
    index is answered by the server, with the same hits a local search gives; after the server
    stops, its endpoint file is gone and search runs locally again."""
    idx, _ = index
    queries = [
        ["harbour at night", "-k", "4", "--json"],
        ["--like", "deep-orbit:0002", "--per-movie", "1", "--json"],
        ["night", "--genre", "crime", "--year", "1990-2000", "--json"],
        ["--image", str(Path(idx) / "thumbs" / "deep-orbit" / "0003.jpg"), "-k", "2", "--json"],
    ]
    local = [run_cli(capsys, "search", "--index", idx, *q) for q in queries]
    assert all(code == 0 and out for code, out, _ in local)
    port = free_port()
    proc, endpoint = start_serve(idx, port)
    try:
        rec = json.loads(endpoint.read_text())
        assert rec["pid"] == proc.pid and rec["url"] == f"http://127.0.0.1:{port}/"
        # the index is locked by the server: a local search cannot open it ...
        code, _, err = run_cli(capsys, "search", "--index", idx, "--no-server", "x")
        assert code == 1 and "in use by another process" in err
        # ... and search goes through the server, with the same answers
        for q, (_, want, _) in zip(queries, local):
            code, out, err = run_cli(capsys, "search", "--index", idx, *q)
            assert code == 0, err
            assert [json.loads(x) for x in out.splitlines()] == [
                json.loads(x) for x in want.splitlines()
            ]
        # the table, errors and exit codes are those of a local search
        code, out, _ = run_cli(capsys, "search", "--index", idx, "harbour", "-k", "2")
        assert code == 0 and "RANDOM WEIGHTS" in out and "score" in out
        code, _, err = run_cli(capsys, "search", "--index", idx, "x", "--label", "bedrom")
        assert code == 1 and "did you mean: bedroom" in err
        code, out, _ = run_cli(capsys, "search", "--index", idx, "night", "--min-score", "0.999")
        assert code == 3 and "no good match" in out
    finally:
        proc.send_signal(signal.SIGTERM)
        out, err = proc.communicate(timeout=60)
    assert f"web app on http://127.0.0.1:{port}" in out
    assert "share=True" not in out + err  # Gradio's public-link hint is not printed
    assert not endpoint.exists()
    code, out, _ = run_cli(capsys, "search", "--index", idx, *queries[0])
    assert code == 0 and out == local[0][1]


def test_a_stale_endpoint_file_is_ignored(index, capsys):
    idx, _ = index
    endpoint = Path(idx) / "serve.json"
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    endpoint.write_text(json.dumps({
        "url": "http://127.0.0.1:9/", "pid": dead.pid, "index_dir": os.path.realpath(idx),
        "qdrant_url": "", "collection": "",
    }))  # fmt: skip
    try:
        code, out, _ = run_cli(capsys, "search", "--index", idx, "--movie", "night", "--json")
        assert code == 0 and len(out.splitlines()) == 4
        # a live pid whose server does not answer: searched locally too
        endpoint.write_text(endpoint.read_text().replace(str(dead.pid), str(os.getpid())))
        code, out, _ = run_cli(capsys, "search", "--index", idx, "--movie", "night", "--json")
        assert code == 0 and len(out.splitlines()) == 4
    finally:
        endpoint.unlink()


# ------------------------------------------------------------------------------ 10. model reuse
def test_index_into_an_existing_index_reuses_its_model(
    tmp_path, tiny_encoder, tiny_labeler, capsys
):
    """The fixture index was built with the tiny model and random weights; adding to it without
    --model/--pretrained must not fall back to ViT-B-32/openai (a hub download, offline here)."""
    idx, info = build_test_index(tmp_path, encoder=tiny_encoder, labeler=tiny_labeler)
    code, out, err = run_cli(capsys, "index", "--index", idx, "--manifest", info.manifest,
                         "--workers", "-1", "--no-progress")  # fmt: skip
    assert code == 0, err
    assert "using its model tiny-clip/random" in err
    assert "0 indexed, 3 already done" in out
    # a conflicting choice is refused by the index's own check, in one line
    code, _, err = run_cli(capsys, "index", "--index", idx, "--manifest", info.manifest,
                       "--pretrained", "random", "--model", "ViT-B-32", "--no-progress")  # fmt: skip
    assert code == 1 and "index was built with model 'tiny-clip/random'" in err


# ------------------------------------------------------------------------------ 11. no clean labels
@pytest.fixture(scope="module")
def unlabelled(tmp_path_factory, tiny_encoder):
    """The fixture movies indexed with clean-label thresholds no score reaches: no shot has a
    clean label (what random weights give with the real model)."""
    from scenesearch.indexer.labels import SceneLabeler

    labeler = SceneLabeler(
        tiny_encoder, LabelConfig(clean_top1=1.01, clean_rest=1.01),
        cache_dir=str(tmp_path_factory.mktemp("labels")),
    )  # fmt: skip
    idx, _ = build_test_index(tmp_path_factory.mktemp("unlabelled"), encoder=tiny_encoder,
                              labeler=labeler)  # fmt: skip
    return idx


def test_no_clean_labels_is_said_in_one_line(unlabelled, capsys, tiny_encoder):
    idx = unlabelled
    eng = SearchEngine.open(StoreConfig(index_dir=idx), encoder=tiny_encoder)
    try:
        label = next(iter(eng.label_counts("top")))
        assert eng.label_counts("clean") == {}
        with pytest.raises(Exception, match="no shot in this index has a confident"):
            eng.search("x", filters=SearchFilters(labels_any=(label,)))
        # the top-5 mode still works
        res = eng.search("x", filters=SearchFilters(labels_any=(label,), label_source="top"))
        assert res.hits
        # the page: the same one line, and the picker's counts
        from scenesearch.ui.app import EngineSlot, SearchApp

        app = SearchApp(EngineSlot(eng))
        hits, msg = app.run_search("x", None, [label], "any", "clean")
        assert hits == [] and "no shot in this index has a confident (clean) label" in msg
        assert "--top-labels 5" in msg and "any of its top 5" in msg
        clean = dict((v, k) for k, v in app.label_choices("clean"))
        top = dict((v, k) for k, v in app.label_choices("top"))
        assert clean[label] == f"{label} (0)"
        assert top[label] == f"{label} ({eng.label_counts('top')[label]})" != clean[label]
    finally:
        eng.close()
    code, _, err = run_cli(capsys, "search", "--index", idx, "x", "--label", label)
    assert code == 1 and err.count("\n") == 1 and "--top-labels 5" in err
    code, out, _ = run_cli(capsys, "info", "--index", idx, "--top", "3")
    assert code == 0 and "no clean labels: no shot's label scores reach" in out
    assert (
        len([ln for ln in out.splitlines() if ln.startswith("  ") and ln.split()[0].isdigit()]) >= 1
    )
