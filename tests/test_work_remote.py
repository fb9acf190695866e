"""``scenesearch search --then`` / ``--facets`` / ``--export`` through a running ``serve`` (issue 17
leftover): while ``serve`` holds the embedded index (one process at a time), these went to the
local path and failed with "in use by another process"; now they are answered by the server
(ui/remote.py) with the output, files and exit codes of a local search."""

from __future__ import annotations

import signal
import subprocess
import sys
import time
from pathlib import Path

import opentimelineio as otio
import pytest

from tests.app_fixtures import free_port, index_fixture, run_cli
from tests.conftest import REPO
from tests.test_cli_papercuts import _env

# (index_dir, info): Night Harbour (1994), Sunny Meadow (2008), Deep Orbit (2019).
index = index_fixture("work-remote", pair=True)


def _ranges(path: Path) -> list[tuple[str, int, int]]:
    tl = otio.adapters.read_from_file(str(path))
    return [
        (c.name, c.source_range.start_time.to_frames(), c.source_range.duration.to_frames())
        for c in tl.find_clips()
    ]


@pytest.mark.slow
def test_then_facets_and_export_go_through_a_running_serve(index, capsys, tmp_path):
    idx, _ = index
    thumb = str(Path(idx) / "thumbs" / "deep-orbit" / "0003.jpg")
    queries = [
        ["harbour at night", "--then", "night", "--within", "1000", "--json"],
        ["harbour", "--then", "a field", "--within", "1000", "--then-genre", "comedy", "-k", "3"],
        ["night", "--then-image", thumb, "--within", "1000", "-k", "2", "--json"],
        ["night", "--facets", "--json", "-k", "3"],
        ["night", "--facets", "--genre", "crime"],
        ["night", "--facets", "--min-score", "0.999"],  # exit 3, "no good match"
    ]
    local = [run_cli(capsys, "search", "--index", idx, *q) for q in queries]
    assert all(code in (0, 3) and out for code, out, _ in local), local
    assert len(local[0][1].splitlines()) == 10 and '"then"' in local[0][1]
    assert '"facets"' in local[3][1] and local[5][0] == 3
    exports = ["harbour", "--then", "night", "--within", "1000", "-k", "4", "--export"]
    code, _, err = run_cli(capsys, "search", "--index", idx, *exports, str(tmp_path / "l.otio"))
    assert code == 0 and "exported 8 shots" in err

    port = free_port()
    proc = subprocess.Popen(
        [sys.executable, "-m", "scenesearch.ui.cli", "serve", "--index", idx, "--port", str(port)],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=_env(), cwd=REPO, text=True,
    )  # fmt: skip
    endpoint = Path(idx) / "serve.json"
    try:
        for _ in range(600):  # up to 60 s for the server to start
            if endpoint.is_file() or proc.poll() is not None:
                break
            time.sleep(0.1)
        assert endpoint.is_file(), proc.communicate(timeout=10)
        # the index is locked by the server: the local path cannot run these ...
        code, _, err = run_cli(capsys, "search", "--index", idx, "--no-server", *queries[0])
        assert code == 1 and "in use by another process" in err
        # ... and through the server they print exactly what they printed locally
        for q, (want_code, want, _) in zip(queries, local):
            code, out, err = run_cli(capsys, "search", "--index", idx, *q)
            assert (code, out) == (want_code, want), (q, err)
        code, _, err = run_cli(capsys, "search", "--index", idx, *exports, str(tmp_path / "r.otio"))
        assert code == 0 and "exported 8 shots" in err
        assert _ranges(tmp_path / "r.otio") == _ranges(tmp_path / "l.otio")
        code, _, err = run_cli(capsys, "search", "--index", idx, *exports, str(tmp_path / "r.edl"))
        assert (
            code == 0
            and len(otio.adapters.read_from_file(str(tmp_path / "r.edl")).find_clips()) == 8
        )
        # errors are the local ones, in one line
        code, _, err = run_cli(capsys, "search", "--index", idx, "x", "--then", "y",
                               "--then-label", "bedrom")  # fmt: skip
        assert code == 1 and "did you mean: bedroom" in err and len(err.splitlines()) == 1
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.communicate(timeout=60)
    assert not endpoint.exists()
