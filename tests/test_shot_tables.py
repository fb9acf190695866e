"""Parquet shot tables: export → load reproduces an index (embedded store, fsspec URLs), bad
tables are refused with one line, npy export, Qdrant cluster options, Ray stays optional."""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from scenesearch.indexer import shot_table as st
from scenesearch.indexer.config import StoreConfig
from scenesearch.indexer.errors import ConfigError, InputError
from scenesearch.indexer.store import StorePoint, open_store
from scenesearch.ui.cli import main
from tests.index_fixtures import build_test_index


@pytest.fixture(scope="module")
def built(tmp_path_factory, tiny_encoder, tiny_labeler):
    return build_test_index(tmp_path_factory.mktemp("tables"), encoder=tiny_encoder,
                            labeler=tiny_labeler)[1]  # fmt: skip


def snapshot(index_dir: str, qdrant_url: str | None = None) -> dict:
    """Everything an index holds: points (payload + vectors), movie records, metadata."""
    with open_store(StoreConfig(index_dir=index_dir, qdrant_url=qdrant_url)) as s:
        points = {r.id: r for r in s.iter_points(with_vectors=True)}
        return {"points": points, "movies": s.get_movies(), "meta": s.get_meta()}


def assert_same_index(a: dict, b: dict) -> None:
    assert set(a["points"]) == set(b["points"]) and a["points"]
    for pid, ra in a["points"].items():
        rb = b["points"][pid]
        assert ra.payload == rb.payload
        assert set(ra.vectors) == set(rb.vectors)
        for name, v in ra.vectors.items():
            np.testing.assert_array_equal(v, rb.vectors[name])
    assert a["movies"] == b["movies"]
    drop = {"created"}
    assert {k: v for k, v in a["meta"].items() if k not in drop} == {
        k: v for k, v in b["meta"].items() if k not in drop
    }


def test_export_then_load_reproduces_the_index(built, tmp_path, capsys):
    out, fresh = tmp_path / "export", tmp_path / "fresh"
    assert main(["export", "--index", built.index_dir, "--out", str(out)]) == 0
    tables = sorted(p.name for p in (out / "shots").iterdir())
    assert tables == sorted(f"{m.movie_id}.parquet" for m in built.movies)
    n_thumbs = len(list((out / "thumbs").rglob("*.jpg")))
    assert n_thumbs == built.n_shots
    assert main(["load", str(out), "--index", str(fresh)]) == 0
    said = capsys.readouterr().out
    assert f"3 movies, {built.n_shots} shots" in said
    assert_same_index(snapshot(built.index_dir), snapshot(str(fresh)))
    # the thumbnails the payloads name are there, byte for byte
    for m in built.movies:
        for j in (Path(built.index_dir) / "thumbs" / m.movie_id).iterdir():
            assert (fresh / "thumbs" / m.movie_id / j.name).read_bytes() == j.read_bytes()
    # loading again changes nothing (idempotent): same points, no duplicates
    assert main(["load", str(out / "shots" / f"{built.movies[0].movie_id}.parquet"),
                 "--index", str(fresh)]) == 0  # fmt: skip
    assert_same_index(snapshot(built.index_dir), snapshot(str(fresh)))


def test_table_metadata_and_schema(built, tmp_path):
    out = tmp_path / "export"
    assert main(["export", "--index", built.index_dir, "--out", str(out), "--no-thumbs"]) == 0
    m = built.movies[0]
    pf = pq.ParquetFile(out / "shots" / f"{m.movie_id}.parquet")
    md = pf.schema_arrow.metadata
    info, meta, movie = (json.loads(md[k]) for k in (st.KEY_TABLE, st.KEY_META, st.KEY_MOVIE))
    assert info["format"] == st.FORMAT and info["points"] == m.n_shots
    assert info["vectors"]["clip"] == {"dim": 32, "multi": False}
    assert info["vectors"]["scenes"] == {"dim": 179, "multi": False}
    assert meta["model_id"] == snapshot(built.index_dir)["meta"]["model_id"]
    assert movie["movie_id"] == m.movie_id and movie["status"] == "done"
    schema = pf.schema_arrow
    assert schema.field("vector_clip").type == pa.list_(pa.float32(), 32)
    assert schema.field("year").type == pa.int32()
    assert schema.field("top").type.value_type.field("label").type == pa.string()
    t = pf.read()
    assert t.column("shot_index").to_pylist() == list(range(m.n_shots))
    assert not (out / "thumbs").exists()


def test_tables_go_through_fsspec_urls(built, tmp_path):
    url = "memory://scenesearch-test/export"
    assert main(["export", "--index", built.index_dir, "--out", url]) == 0
    fs, path = st.url_to_fs(url)
    assert len(fs.glob(path + "/shots/*.parquet")) == 3
    assert not [p for p in fs.find(path) if ".tmp" in p]  # no temporary names left behind
    fresh = tmp_path / "fresh"
    assert main(["load", url + "/shots", "--index", str(fresh)]) == 0
    assert_same_index(snapshot(built.index_dir), snapshot(str(fresh)))
    fs.rm(path, recursive=True)


def test_load_into_a_server_store(built, tmp_path, monkeypatch):
    """``:memory:`` is qdrant-client's local mode: the server code path, no server needed."""
    from scenesearch.indexer import catalog
    from scenesearch.indexer.transfer import export_index, load_tables

    out = str(tmp_path / "export")
    with open_store(StoreConfig(index_dir=built.index_dir)) as s:
        export_index(s, built.index_dir, out)
    opened = []

    def keep_open(cfg):  # an in-memory store vanishes on close: keep it to read it back
        store = open_store(cfg)
        store.close = lambda: None
        opened.append(store)
        return store

    monkeypatch.setattr(catalog, "open_store", keep_open)
    cfg = StoreConfig(index_dir=str(tmp_path / "thumbs-only"), qdrant_url=":memory:")
    res = load_tables(cfg, [out])
    assert res.points == built.n_shots and res.movies == 3
    got = {r.id: r for r in opened[0].iter_points(with_vectors=True)}
    want = snapshot(built.index_dir)["points"]
    assert {k: r.payload for k, r in got.items()} == {k: r.payload for k, r in want.items()}
    for k, r in want.items():
        np.testing.assert_allclose(got[k].vectors["clip"], r.vectors["clip"], atol=1e-6)
    assert opened[0].get_movies() == snapshot(built.index_dir)["movies"]


def write_bad(tmp_path: Path, built) -> dict[str, Path]:
    """A truncated table, a foreign Parquet file and a table from another model."""
    out = tmp_path / "export"
    assert main(["export", "--index", built.index_dir, "--out", str(out), "--no-thumbs"]) == 0
    good = out / "shots" / f"{built.movies[0].movie_id}.parquet"
    data = good.read_bytes()
    bad = tmp_path / "bad"
    bad.mkdir()
    (bad / "truncated.parquet").write_bytes(data[: len(data) // 2])
    pq.write_table(pa.table({"a": [1, 2, 3]}), bad / "foreign.parquet")
    t = pq.read_table(good)
    md = dict(t.schema.metadata)
    meta = json.loads(md[st.KEY_META])
    meta["model_id"] = "ViT-L-14/laion2b"
    md[st.KEY_META] = json.dumps(meta).encode()
    pq.write_table(t.replace_schema_metadata(md), bad / "other_model.parquet")
    return {"good": good, **{p.stem: p for p in bad.iterdir()}}


def test_bad_tables_are_refused_with_one_line(built, tmp_path, capsys):
    files = write_bad(tmp_path, built)
    cases = {
        "truncated": "truncated or damaged",
        "foreign": "not a scenesearch shot table",
    }
    for name, why in cases.items():
        fresh = tmp_path / f"fresh-{name}"
        # the good table first: nothing at all is written when any table is bad
        assert main(["load", str(files["good"]), str(files[name]), "--index", str(fresh)]) == 1
        err = capsys.readouterr().err.strip()
        assert len(err.splitlines()) == 1 and why in err and name in err, err
        assert not (fresh / "shard").exists()
    # a table from another model does not go into this index
    assert main(["load", str(files["other_model"]), "--index", built.index_dir]) == 1
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "does not fit" in err and "ViT-L-14" in err, err
    with pytest.raises(InputError, match="no such"):
        st.read_info(str(tmp_path / "missing.parquet"))


def test_multivectors_and_new_payload_fields_round_trip(tmp_path):
    """Whatever named vectors a point carries (a multivector too) and payload fields a later
    version adds come back as they went in."""
    rng = np.random.default_rng(0)
    points = [
        StorePoint(
            f"00000000-0000-0000-0000-00000000000{i}",
            {
                "clip": rng.normal(size=8).astype(np.float32),
                "frames": rng.normal(size=(i + 1, 8)).astype(np.float32),
            },
            {
                "shot_index": i,
                "year": None,
                "genres": [],
                "match_s": [0.5 * i, 1.0],
                "extra": {"a": i},
            },
        )  # fmt: skip
        for i in range(4)
    ]
    url = str(tmp_path / "shots" / "m.parquet")
    st.write_table(st.points_table(points, {"model_id": "x"}, {"movie_id": "m"}), url)
    t = st.read_table(url)
    assert t.vectors == {"clip": {"dim": 8, "multi": False}, "frames": {"dim": 8, "multi": True}}
    for a, b in zip(points, t.points):
        assert a.id == b.id and a.payload == b.payload
        for name in a.vectors:
            np.testing.assert_array_equal(a.vectors[name], b.vectors[name])
    assert [len(p.vectors["frames"]) for p in t.points] == [1, 2, 3, 4]
    assert os.listdir(tmp_path / "shots") == ["m.parquet"]  # no temporary file left


def test_npy_export_is_clip_retrieval_shaped(built, tmp_path):
    out = tmp_path / "npy"
    assert main(["export", "--index", built.index_dir, "--out", str(out), "--format", "npy"]) == 0
    emb = np.load(out / "img_emb" / "img_emb_0.npy")
    scenes = np.load(out / "scenes_emb" / "scenes_emb_0.npy")
    meta = pq.read_table(out / "metadata" / "metadata_0.parquet").to_pylist()
    assert emb.shape == (built.n_shots, 32) and emb.dtype == np.float32
    assert scenes.shape == (built.n_shots, 179) and len(meta) == built.n_shots
    points = snapshot(built.index_dir)["points"]
    for row, v, s in zip(meta, emb, scenes):  # row k describes embedding k
        p = points[row["point_id"]]
        np.testing.assert_array_equal(v, p.vectors["clip"])
        np.testing.assert_array_equal(s, p.vectors["scenes"])
        assert row["image_path"] == p.payload["thumb"] == row["thumb"]


def test_export_of_an_empty_index_says_so(tmp_path, capsys):
    assert main(["export", "--index", str(tmp_path / "none"), "--out", str(tmp_path / "o")]) == 1
    assert "empty" in capsys.readouterr().err


# ------------------------------------------------------------------------------ cluster options
def test_cluster_options_reach_collection_creation():
    from scenesearch.indexer.store import CollectionSpec, VectorSpec

    cfg = StoreConfig(qdrant_url=":memory:", shard_number=6, replication_factor=2,
                      write_consistency_factor=2)  # fmt: skip
    store = open_store(cfg)
    calls = []
    real = store._client.create_collection

    def spy(name, **kw):
        calls.append((name, kw))
        return real(name, **kw)

    store._client.create_collection = spy
    store.create(CollectionSpec([VectorSpec("clip", 4)]))
    shots = [kw for name, kw in calls if name == "shots"]
    assert len(shots) == 1
    assert (shots[0]["shard_number"], shots[0]["replication_factor"],
            shots[0]["write_consistency_factor"]) == (6, 2, 2)  # fmt: skip
    store.close()


@pytest.mark.parametrize(
    "kw, why",
    [
        ({"shard_number": 3}, "Qdrant server"),
        ({"qdrant_url": ":memory:", "shard_number": 0}, "≥ 1"),
        ({"qdrant_url": ":memory:", "write_consistency_factor": 2}, "exceeds"),
        ({"qdrant_url": ":memory:", "replication_factor": 2, "write_consistency_factor": 3},
         "exceeds"),
    ],
)  # fmt: skip
def test_bad_cluster_options_are_refused(tmp_path, kw, why):
    with pytest.raises(ConfigError, match=why):
        open_store(StoreConfig(index_dir=str(tmp_path), **kw))


def test_cluster_flags_on_the_cli(built, tmp_path, capsys):
    out = tmp_path / "export"
    assert main(["export", "--index", built.index_dir, "--out", str(out), "--no-thumbs"]) == 0
    rc = main(["load", str(out), "--index", str(tmp_path / "i"), "--shard-number", "3"])
    assert rc == 1
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "--shard-number applies to a Qdrant server" in err, err
    assert not (tmp_path / "i" / "shard").exists()


# ------------------------------------------------------------------------------ ray optional
def test_ray_missing_fails_with_one_line(tmp_path, monkeypatch, capsys):
    monkeypatch.setitem(sys.modules, "ray", None)  # import ray → ImportError
    rc = main(["index", "--ray", "--index", str(tmp_path / "i"), str(tmp_path)])
    assert rc == 1
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "pip install 'scenesearch[ray]'" in err, err
