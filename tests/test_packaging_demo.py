"""Issue 19's install and demo papercuts: building the package prints no setuptools
deprecation warnings (and ships the data folders); demo.sh, when indexing stops, names both the
environment variable the demo reads (SCENESEARCH_PRETRAINED) and the CLI option (--pretrained);
eval tables print as plain text (no polars dtype row, no cut names)."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import zipfile

import polars as pl
import pytest

from scenesearch.eval.report import Report, text_table
from tests.conftest import REPO


@pytest.mark.slow
def test_the_wheel_builds_without_setuptools_warnings_and_ships_the_data(tmp_path):
    src = tmp_path / "src"
    src.mkdir()
    for name in ("pyproject.toml", "README.md"):
        shutil.copy(REPO / name, src / name)
    for pkg in ("scenesearch", "indexer", "search", "ui", "eval"):
        shutil.copytree(
            REPO / pkg, src / pkg, ignore=shutil.ignore_patterns("__pycache__", "results")
        )
    out = subprocess.run(
        [sys.executable, "-m", "pip", "wheel", str(src), "--no-deps", "--no-build-isolation",
         "-w", str(tmp_path / "dist"), "-v"],
        capture_output=True, text=True, timeout=300, cwd=tmp_path,
    )  # fmt: skip
    log = out.stdout + out.stderr
    assert out.returncode == 0, log[-3000:]
    for bad in ("Warning:", "deprecated", "absent from the `packages`"):
        assert bad not in log, [ln for ln in log.splitlines() if bad in ln][:5]
    (wheel,) = (tmp_path / "dist").glob("scenesearch-*.whl")
    names = set(zipfile.ZipFile(wheel).namelist())
    assert {"scenesearch/indexer/data/movieclip_taxonomy.txt",
            "scenesearch/indexer/data/movieclip_label_map_150.json",
            "scenesearch/eval/data/corpus_genres.csv"} <= names  # fmt: skip
    # one installed name: site-packages gains `scenesearch` (and its dist-info), nothing else
    tops = {n.split("/", 1)[0] for n in names}
    assert {t for t in tops if not t.endswith(".dist-info")} == {"scenesearch"}, tops
    assert "scenesearch/indexer/pipeline.py" in names and "scenesearch/ui/cli.py" in names
    meta = (
        zipfile.ZipFile(wheel)
        .read(next(n for n in names if n.endswith(".dist-info/METADATA")))
        .decode()
    )
    assert "License-Expression: MIT" in meta


def test_demo_names_the_variable_and_the_option_when_indexing_stops(tmp_path):
    """demo.sh with a `scenesearch` that fails as an offline hub download does (exit 1)."""
    repo = tmp_path / "repo"
    (repo / "scripts").mkdir(parents=True)
    shutil.copy(REPO / "scripts" / "demo.sh", repo / "scripts" / "demo.sh")
    corpus = tmp_path / "corpus" / "video"
    corpus.mkdir(parents=True)
    (corpus / "bbb_full_1280x720_24p.mp4").write_bytes(b"")
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    fake = bin_dir / "scenesearch"
    fake.write_text(
        "#!/bin/sh\necho 'scenesearch: error: cannot download ViT-B-32/openai weights: the "
        "model hub is not reachable. Give a local weights file with --pretrained PATH' >&2\n"
        "exit 1\n"
    )
    fake.chmod(0o755)
    env = {**os.environ, "PATH": f"{bin_dir}{os.pathsep}{os.environ['PATH']}",
           "SCENESEARCH_SETUP": "0", "SCENESEARCH_CORPUS": str(corpus.parent),
           "SCENESEARCH_DEMO_INDEX": str(tmp_path / "idx"), "SCENESEARCH_NO_SERVE": "1"}  # fmt: skip
    env.pop("SCENESEARCH_PRETRAINED", None)
    out = subprocess.run(["bash", str(repo / "scripts" / "demo.sh")], capture_output=True,
                         text=True, env=env, timeout=60)  # fmt: skip
    assert out.returncode == 1
    tail = out.stderr.split("cannot download", 1)[1]
    assert "SCENESEARCH_PRETRAINED=random scripts/demo.sh" in tail
    assert "SCENESEARCH_PRETRAINED=/path/to/" in tail and "--pretrained" in tail


def test_eval_tables_print_as_plain_text(tmp_path, capsys):
    df = pl.DataFrame({
        "detector": ["content+threshold (content 27, fade 12, min 0.6 s)", "hash"],
        "tolerance": [1, 1],
        "precision": [0.954545, 1.0],
        "f1": [0.9545454, None],
    })  # fmt: skip
    Report(tmp_path / "r", title="t").table("scores", df, "precision / recall / F1")
    out = capsys.readouterr().out
    lines = out.strip().splitlines()
    assert lines[0] == "precision / recall / F1:"
    assert lines[1].split() == ["detector", "tolerance", "precision", "f1"]
    assert "content+threshold (content 27, fade 12, min 0.6 s)" in out  # never cut
    assert not any(t in out for t in ("str", "i64", "f64", "┌", "╞", "shape:"))
    assert "0.955" in out and "1.000" in out and lines[-1].rstrip().endswith("-")
    assert text_table(pl.DataFrame({"a": list(range(50))}), max_rows=3).endswith(
        "... 47 more rows (all of them are in the CSV)"
    )


def test_the_dockerfile_copies_every_folder_the_package_is_built_from():
    """The image builds from COPYed folders: a folder pyproject maps but the Dockerfile forgets
    would install a package without that part (the image's import would fail at run time)."""
    import tomllib

    cfg = tomllib.loads((REPO / "pyproject.toml").read_text())["tool"]["setuptools"]
    folders = {"scenesearch", *cfg["package-dir"].values()}
    copied = {
        ln.split()[1]
        for ln in (REPO / "Dockerfile").read_text().splitlines()
        if ln.startswith("COPY ")
    }
    assert folders <= copied, folders - copied


def test_bundled_data_is_found_by_the_installed_name(tmp_path):
    """Outside the checkout (no PYTHONPATH, another cwd) only `scenesearch` is importable: the
    bundled taxonomy and label map must be looked up under that name, not the folder names."""
    code = (
        "from scenesearch.indexer.labels import bundled_taxonomy_path\n"
        "from scenesearch.eval.scene_truth import bundled_label_map_path\n"
        "import importlib.util\n"
        "assert importlib.util.find_spec('indexer') is None\n"
        "assert bundled_taxonomy_path().is_file() and bundled_label_map_path().is_file()\n"
    )
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    out = subprocess.run([sys.executable, "-c", code], cwd=tmp_path, env=env,
                         capture_output=True, text=True, timeout=120)  # fmt: skip
    assert out.returncode == 0, out.stderr[-2000:]
