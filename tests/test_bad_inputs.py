"""Red-team findings on the indexer (issue 13), each reproduced here and kept fixed: extreme
aspect ratios, a photo named .mp4, truncated files, identical inputs and duplicate manifest ids,
bad manifest rows, file names with newlines and escape sequences, decode workers orphaned by
``kill -9``, and a full disk. Every file is written by the test in ``tmp_path``."""

from __future__ import annotations

import csv
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from scenesearch.indexer.errors import printable
from scenesearch.indexer.pipeline import Indexer
from scenesearch.indexer.store import open_store
from tests.conftest import REPO, TINY_MODEL
from tests.test_pipeline import make_cfg
from tests.videos import Segment, write_truncated_video, write_video, write_zero_byte

SEGS = [(30, 40), (30, 210)]  # 2 shots, 60 frames at 24 fps


def run(tmp_path, paths, manifest=None, enc=None, lab=None, **kw):
    idx = tmp_path / "idx"
    return idx, Indexer(make_cfg(idx, **kw), enc, lab).run([str(p) for p in paths], manifest)


def states(idx) -> dict:
    with open_store(make_cfg(idx).store) as st:
        return st.get_movies()


def by_name(summary) -> dict:
    return {Path(m.path).name: m for m in summary.movies}


# ------------------------------------------------------------------------------ 1. aspect ratio
def test_extreme_aspect_ratio_gets_a_bounded_thumbnail_and_the_batch_lands(
    tmp_path, tiny_encoder, tiny_labeler
):
    """A 4×1024 video made a 400×102,400 thumbnail (beyond JPEG's 65,500 px): the error escaped
    the per-movie handling, nothing of the batch was indexed and no run log was written."""
    tall = write_video(tmp_path / "tall.mp4", SEGS, size=(4, 1024)).path
    wide = write_video(tmp_path / "wide.mp4", SEGS, size=(1024, 4)).path
    normal = write_video(tmp_path / "normal.mp4", SEGS).path
    idx, s = run(tmp_path, [tall, wide, normal], enc=tiny_encoder, lab=tiny_labeler)
    assert {n: m.status for n, m in by_name(s).items()} == dict.fromkeys(
        ["tall.mp4", "wide.mp4", "normal.mp4"], "indexed"
    )
    for jpg in (idx / "thumbs").rglob("*.jpg"):
        w, h = Image.open(jpg).size
        assert max(w, h) <= 1600 and min(w, h) >= 1, (jpg, w, h)
    assert list((idx / "runs").glob("*.json"))


def test_a_movie_that_cannot_be_written_fails_alone_and_the_run_log_is_written(
    tmp_path, tiny_encoder, tiny_labeler, monkeypatch
):
    """Any error while writing one movie (here: the thumbnail writer raising for one of them)
    fails that movie with a reason; the others are indexed and the run log is written."""
    import scenesearch.indexer.thumbnails as thumbnails

    real = thumbnails.write_jpeg

    def flaky(rgb, path, *a, **k):
        if f"/{cursed_id}/" in str(path):
            raise ValueError("encoder exploded")
        return real(rgb, path, *a, **k)

    cursed = write_video(tmp_path / "cursed.mp4", [(30, 60), (30, 200)]).path
    good = write_video(tmp_path / "good.mp4", SEGS).path
    from scenesearch.indexer.inputs import make_movie

    cursed_id = make_movie(cursed).movie_id
    monkeypatch.setattr(thumbnails, "write_jpeg", flaky)
    idx, s = run(tmp_path, [cursed, good], enc=tiny_encoder, lab=tiny_labeler)
    got = by_name(s)
    assert got["good.mp4"].status == "indexed"
    assert got["cursed.mp4"].status == "failed" and "encoder exploded" in got["cursed.mp4"].reason
    logs = list((idx / "runs").glob("*.json"))
    assert logs and json.loads(logs[0].read_text())["failed"] == 1
    assert not (idx / "thumbs" / cursed_id).exists()  # nothing half-written left behind
    assert cursed_id not in states(idx)


# ------------------------------------------------------------------------------ 2. photo as .mp4
def test_a_jpeg_named_mp4_is_not_a_video(tmp_path, tiny_encoder, tiny_labeler):
    photo = tmp_path / "holiday.mp4"
    Image.fromarray(np.full((90, 160, 3), 120, np.uint8)).save(photo, "JPEG")
    png = tmp_path / "logo.mkv"
    Image.fromarray(np.full((90, 160, 3), 20, np.uint8)).save(png, "PNG")
    _, s = run(tmp_path, [photo, png], enc=tiny_encoder, lab=tiny_labeler)
    got = by_name(s)
    assert got["holiday.mp4"].status == "failed"
    assert "not a video (it is a JPEG image)" in got["holiday.mp4"].reason
    assert "not a video (it is a PNG image)" in got["logo.mkv"].reason
    lines = [x for x in s.lines() if x.startswith("FAILED")]
    assert len(lines) == 2 and all("not a video" in x for x in lines)


# ------------------------------------------------------------------------------ 3. truncated
def test_truncated_files_are_indexed_as_far_as_readable_and_say_so(
    tmp_path, tiny_encoder, tiny_labeler
):
    """A faststart MP4 cut at 50 % (3.0 of 6.2 s decode) and an MKV cut at 50 % (2.0 of 4 s):
    what can be read is indexed, and the summary, the run log and the movie's state say
    "truncated"; a whole file is not flagged."""
    mp4 = tmp_path / "cut.mp4"
    write_truncated_video(mp4, 149, keep=0.5, fmt="mp4-faststart")
    mkv = tmp_path / "cut.mkv"
    write_truncated_video(mkv, 96, keep=0.5, fmt="matroska")
    whole = write_video(tmp_path / "whole.mkv", SEGS, container_format="matroska").path
    idx, s = run(tmp_path, [mp4, mkv, whole], enc=tiny_encoder, lab=tiny_labeler)
    got = by_name(s)
    for name in ("cut.mp4", "cut.mkv"):
        assert got[name].status == "indexed" and got[name].shots >= 1
        assert got[name].truncated and "truncated" in got[name].reason
    assert not got["whole.mkv"].truncated
    assert "(2 truncated)" in s.lines()[0]
    assert sum(x.startswith("TRUNCATED") for x in s.lines()) == 2
    st = {Path(m["path"]).name: m for m in states(idx).values()}
    assert st["cut.mp4"]["truncated"] and st["cut.mp4"]["declared_s"] > 6.0
    assert st["cut.mp4"]["duration_s"] < 3.5
    assert st["cut.mkv"]["truncated"] and not st["whole.mkv"]["truncated"]
    log = json.loads(next((idx / "runs").glob("*.json")).read_text())
    assert log["truncated"] == 2


def test_cli_exit_code_and_info_for_a_truncated_file(tmp_path, capsys):
    from scenesearch.ui.cli import main

    mkv = tmp_path / "cut.mkv"
    write_truncated_video(mkv, 96, keep=0.5, fmt="matroska")
    idx = tmp_path / "idx"
    args = ["--index", str(idx), "--model", TINY_MODEL, "--pretrained", "random", "--workers",
            "-1", "--no-progress"]  # fmt: skip
    assert main(["index", *args, str(mkv)]) == 2
    assert "TRUNCATED" in capsys.readouterr().out
    assert main(["info", "--index", str(idx)]) == 0
    assert "TRUNCATED file" in capsys.readouterr().out


# ------------------------------------------------------------------------------ 4. duplicates
def test_identical_inputs_the_second_fails_and_stays_failed(tmp_path, tiny_encoder, tiny_labeler):
    """Two copies of one movie (and two zero-byte files): the second of each is an input error,
    never "already done"; a rerun says so again."""
    a = write_video(tmp_path / "a.mp4", SEGS).path
    b = tmp_path / "b_copy.mp4"
    b.write_bytes(a.read_bytes())
    z1, z2 = write_zero_byte(tmp_path / "z1.mp4"), write_zero_byte(tmp_path / "z2.mp4")
    for _ in range(2):
        _, s = run(tmp_path, [tmp_path], enc=tiny_encoder, lab=tiny_labeler)
        got = by_name(s)
        assert got["b_copy.mp4"].status == "failed"
        assert "same content as another input" in got["b_copy.mp4"].reason
        assert str(a) in got["b_copy.mp4"].reason
        assert got["z1.mp4"].status == got["z2.mp4"].status == "failed"
        assert s.count("skipped") + s.count("indexed") == 1  # only a.mp4
    assert z1 and z2


def test_duplicate_manifest_id_is_an_error_of_that_row(
    tmp_path, tiny_encoder, tiny_labeler, capsys
):
    from scenesearch.ui.cli import main

    a = write_video(tmp_path / "a.mp4", SEGS).path
    b = write_video(tmp_path / "b.mp4", [(30, 200), (30, 30)]).path
    man = tmp_path / "m.csv"
    man.write_text(f"path,title,id\n{a},A,same\n{b},B,same\n")
    args = ["--index", str(tmp_path / "idx"), "--model", TINY_MODEL, "--pretrained", "random",
            "--workers", "-1", "--no-progress", "--manifest", str(man)]  # fmt: skip
    for _ in range(2):  # later runs keep saying it, never "already done"
        assert main(["index", *args]) == 2
        out = capsys.readouterr().out
        assert "duplicate id 'same' (line 2 has it)" in out and f"FAILED {b}" in out
    assert [m["title"] for m in states(tmp_path / "idx").values()] == ["A"]


# ------------------------------------------------------------------------------ 5. manifest rows
@pytest.mark.parametrize("year", ["19x5", "1e20", "-5", "99999", "1.5"])
def test_one_bad_manifest_row_fails_alone(tmp_path, tiny_encoder, tiny_labeler, year):
    a = write_video(tmp_path / "a.mp4", SEGS).path
    b = write_video(tmp_path / "b.mp4", [(30, 200), (30, 30)]).path
    man = tmp_path / "m.csv"
    with open(man, "w", newline="") as f:
        w = csv.writer(f)
        w.writerows([["path", "title", "year"], [a, "Good", "1995.0"], [b, "Bad", year],
                      ["", "no path", ""]])  # fmt: skip
    idx, s = run(tmp_path, [], str(man), tiny_encoder, tiny_labeler)
    got = {m.path: m for m in s.movies}
    assert got[str(a)].status == "indexed"
    assert got[str(b)].status == "failed" and "line 3" in got[str(b)].reason
    assert "year" in got[str(b)].reason
    assert any("line 4: empty path" in (m.reason or "") for m in s.failed)
    assert [m["year"] for m in states(idx).values()] == [1995]


# ------------------------------------------------------------------------------ 6. names
def test_newlines_and_escape_sequences_in_names_are_escaped(tmp_path, tiny_encoder, tiny_labeler):
    evil = tmp_path / "x.mp4\nFAILED passwd: forged\x1b[2J\x1b]0;pwned\x07.mp4"
    evil.write_text("not a video")
    good = write_video(tmp_path / "caf\u00e9 \u6620\u753b.mp4", SEGS).path
    _, s = run(tmp_path, [evil, good], enc=tiny_encoder, lab=tiny_labeler)
    lines = s.lines()
    failed = [x for x in lines if x.startswith("FAILED")]
    assert len(failed) == 1 and "\\nFAILED passwd" in failed[0]
    assert not any(c in "\n\x1b\x07" for x in lines for c in x)
    assert printable("caf\u00e9 \u6620\u753b") == "caf\u00e9 \u6620\u753b"  # letters stay
    assert printable("a\u202eb\\c\td") == "a\\u202eb\\\\c\\td"


def errors(stderr: str) -> list[str]:
    """stderr lines except the "note: --pretrained random ..." notice."""
    return [x for x in stderr.splitlines() if not x.startswith("note: --pretrained random")]


def test_cli_error_line_escapes_the_name(tmp_path, capsys):
    from scenesearch.ui.cli import main

    args = ["index", "--index", str(tmp_path / "idx"), "--model", TINY_MODEL, "--pretrained",
            "random", "--no-progress", "--manifest", "a\n\x1b[31mb.csv"]  # fmt: skip
    assert main(args) == 1
    err = errors(capsys.readouterr().err)
    assert len(err) == 1 and "manifest not found" in err[0] and "a\\n\\x1b[31mb.csv" in err[0]
    assert "\x1b" not in err[0]


# ------------------------------------------------------------------------------ 7. orphans
def _children(pid: int) -> list[int]:
    import psutil

    try:
        return [c.pid for c in psutil.Process(pid).children(recursive=True)]
    except psutil.NoSuchProcess:
        return []


def _alive(pid: int) -> bool:
    import psutil

    try:
        return psutil.Process(pid).status() != psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return False


@pytest.mark.slow
def test_decode_workers_exit_when_the_indexer_is_killed(tmp_path):
    """kill -9 of the indexer alone (not its process group): its decode workers end by
    themselves within a few seconds (they lived on for 80 s+ as ≈ 190 MB orphans)."""
    src = tmp_path / "src"
    src.mkdir()
    for i in range(3):
        segs = [Segment(240, 40 + 60 * (j % 3), seed=i * 10 + j) for j in range(6)]
        write_video(src / f"m{i}.mp4", segs, size=(640, 360))
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    cmd = [sys.executable, "-m", "scenesearch.ui.cli", "index", "--index", str(tmp_path / "idx"), "--model",
           TINY_MODEL, "--pretrained", "random", "--no-progress", "--workers", "2", str(src)]  # fmt: skip
    proc = subprocess.Popen(cmd, cwd=REPO, env=env, stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL)  # fmt: skip
    try:
        deadline, workers = time.time() + 120, []
        while time.time() < deadline and proc.poll() is None:
            workers = [p for p in _children(proc.pid) if _is_worker(p)]
            if len(workers) == 2:
                break
            time.sleep(0.1)
        assert len(workers) == 2, "the decode workers did not start"
        time.sleep(1.0)  # let them get to work
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait(timeout=10)
        deadline = time.time() + 10
        while time.time() < deadline and any(_alive(p) for p in workers):
            time.sleep(0.1)
        assert not any(_alive(p) for p in workers), "decode workers outlived the indexer"
    finally:
        if proc.poll() is None:
            proc.kill()
        for p in _children(proc.pid):
            os.kill(p, signal.SIGKILL)


def _is_worker(pid: int) -> bool:
    import psutil

    try:
        cmd = " ".join(psutil.Process(pid).cmdline())
    except psutil.Error:
        return False
    return "multiprocessing" in cmd and "resource_tracker" not in cmd


# ------------------------------------------------------------------------------ 8. disk full
@pytest.fixture
def small_disk(tmp_path):
    """A 64 MiB tmpfs mounted at tmp_path/disk (root only; unmounted afterwards): room for a
    small index's files, not for what the embedded store maps when it opens one."""
    if os.geteuid() != 0:
        pytest.skip("mounting a tmpfs needs root")
    d = tmp_path / "disk"
    d.mkdir()
    r = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=64m", "tmpfs", str(d)],
                       capture_output=True, text=True)  # fmt: skip
    if r.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here: {r.stderr.strip()}")
    yield d
    subprocess.run(["umount", "-l", str(d)], check=False)


def _cli(*args: str) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    return subprocess.run([sys.executable, "-m", "scenesearch.ui.cli", *args], cwd=REPO, env=env,
                          capture_output=True, text=True, timeout=300)  # fmt: skip


@pytest.mark.slow
def test_full_disk_fails_with_one_line_for_index_info_and_search(tmp_path, small_disk):
    """On a 64 MiB disk: `index` refuses before writing (it used to die with "Bus error", exit
    135); an index copied there opens for neither `info` nor `search` — one line each naming
    the folder and the space needed — and nothing is written into it."""
    movie = write_video(tmp_path / "a.mp4", SEGS).path
    idx = small_disk / "idx"
    base = ["--model", TINY_MODEL, "--pretrained", "random", "--no-progress", "--workers", "-1"]
    r = _cli("index", "--index", str(idx), *base, str(movie))
    assert r.returncode == 1, r
    err = errors(r.stderr)
    assert len(err) == 1 and "not enough free space" in err[0]
    assert str(idx) in err[0] and "MiB needed" in err[0]
    # a finished index, copied onto the small disk (its files are small until the store maps them)
    good = tmp_path / "good"
    assert _cli("index", "--index", str(good), *base, str(movie)).returncode == 0
    subprocess.run(["cp", "-r", "--sparse=always", str(good), str(idx)], check=True)
    before = {p: p.stat().st_size for p in idx.rglob("*") if p.is_file()}
    for args in (["info"], ["search", "dark"], ["search", "--like", "x:0001"]):
        r = _cli(*args, "--index", str(idx))
        assert r.returncode == 1 and r.returncode != 135, r
        assert r.stderr.count("\n") == 1 and "not enough free space" in r.stderr, r.stderr
        assert "Traceback" not in r.stderr and "Bus error" not in r.stderr
    after = {p: p.stat().st_size for p in idx.rglob("*") if p.is_file()}
    assert after == before  # read-only commands wrote nothing


def test_disk_filling_up_during_a_run_stops_it_with_one_line(
    tmp_path, tiny_encoder, tiny_labeler, monkeypatch
):
    """Fault injection: the disk is fine at the start and full when the second movie is about
    to be written — the run stops with one line, the first movie stays done, the run log (if it
    fits) records why, and a rerun after freeing space finishes the rest."""
    import scenesearch.indexer.diskspace as ds
    from scenesearch.indexer.diskspace import DiskFullError

    a = write_video(tmp_path / "a.mp4", SEGS).path
    b = write_video(tmp_path / "b.mp4", [(30, 200), (30, 30)]).path
    real, real_write, written = ds.free_bytes, Indexer._write_movie, []

    def write_then_fill(self, *args, **kw):  # the disk fills up once the first movie is written
        real_write(self, *args, **kw)
        written.append(1)

    monkeypatch.setattr(Indexer, "_write_movie", write_then_fill)
    monkeypatch.setattr(ds, "free_bytes", lambda p: 5 << 20 if written else real(p))
    idx = tmp_path / "idx"
    with pytest.raises(DiskFullError, match=r"5 MiB free, about 256 MiB needed"):
        Indexer(make_cfg(idx), tiny_encoder, tiny_labeler).run([str(a), str(b)])
    monkeypatch.undo()
    assert [m["title"] for m in states(idx).values()] == ["a"]
    log = json.loads(next((idx / "runs").glob("*.json")).read_text())
    assert "not enough free space" in log["stopped"]
    _, s = run(tmp_path, [a, b], enc=tiny_encoder, lab=tiny_labeler)
    assert s.count("indexed") == 1 and s.count("skipped") == 1
