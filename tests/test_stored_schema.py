"""One definition of what an index stores: the typed records of indexer/stored.py against what a
real indexing run writes (payloads, movie states, the index meta), the Parquet shot-table schema
and what a search hit exposes. Each test fails when a field is added in one place only.

Fixture: one synthetic 2-shot clip (cut at frame 30, 24 fps) indexed with the tiny random model,
keeping frame vectors (the default), so every optional payload field is present."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest

from scenesearch.indexer import shot_table as st
from scenesearch.indexer.catalog import index_meta
from scenesearch.indexer.config import StoreConfig
from scenesearch.indexer.pipeline import Indexer
from scenesearch.indexer.records import LabelScore
from scenesearch.indexer.store import VECTOR_CLIP, VECTOR_FRAMES, VECTOR_SCENES, open_store
from scenesearch.indexer.stored import IndexMeta, MovieRecord, ShotRecord
from scenesearch.search.engine import SearchEngine
from scenesearch.search.hits import Hit
from tests.test_pipeline import make_cfg
from tests.videos import write_video

# ShotRecord fields a Hit does not show, each with the reason; every other field must be on Hit
NOT_ON_HIT = {
    "duration_s": "Hit.duration_s is a property (end_s - start_s)",
    "top_labels": "the names of Hit.top",
    "model": "the index meta's model_id; the engine refuses another model",
    "n_frames_used": "indexing detail",
    "frame_s": "used for best-frame ranking (Hit.match_s)",
}
HIT_ONLY = {"score", "match_s"}  # a hit's facts about the query, not stored


@pytest.fixture(scope="module")
def indexed(tmp_path_factory, tiny_encoder, tiny_labeler):
    """A 2-shot clip indexed for real; returns (index dir, stored points, movie states, meta)."""
    d = tmp_path_factory.mktemp("schema")
    clip = write_video(d / "clip.mp4", [(30, 40), (30, 200)]).path
    cfg = make_cfg(d / "index")
    summary = Indexer(cfg, tiny_encoder, tiny_labeler).run([clip])
    assert summary.count("indexed") == 1 and summary.shots == 2
    with open_store(cfg.store) as s:
        recs = list(s.iter_points(with_vectors=True))
        return str(d / "index"), recs, s.get_movies(), s.get_meta()


def test_the_payload_a_run_writes_has_exactly_the_shot_record_fields(indexed):
    _, recs, _, _ = indexed
    for r in recs:
        assert list(r.payload) == list(ShotRecord.stored_fields())  # same fields, same order
        assert set(r.vectors) == {VECTOR_CLIP, VECTOR_SCENES, VECTOR_FRAMES}
        s = ShotRecord.from_point(r)
        assert not s.extra and not s.absent
        assert s.to_payload() == r.payload  # the record reads back what was written
        assert s.to_point().id == r.id  # the point id follows from the shot id


def test_the_shot_table_schema_types_every_shot_record_field(indexed):
    _, recs, movies, meta = indexed
    assert set(st.PAYLOAD_TYPES) == set(ShotRecord.stored_fields())
    shots = [ShotRecord.from_point(r) for r in recs]
    movie = MovieRecord.from_dict(next(iter(movies.values())))
    table = st.shots_table(shots, meta, movie)
    want = {st.ID_COLUMN, *ShotRecord.stored_fields()} | {
        st.VECTOR_PREFIX + v for v in (VECTOR_CLIP, VECTOR_SCENES, VECTOR_FRAMES)
    }
    assert set(table.column_names) == want
    for name, type_ in st.PAYLOAD_TYPES.items():  # every column typed as declared
        assert table.schema.field(name).type == type_, name


def test_a_shot_table_row_round_trips_to_the_same_record(indexed, tmp_path):
    _, recs, movies, meta = indexed
    shots = sorted((ShotRecord.from_point(r) for r in recs), key=lambda s: s.shot_index)
    movie = MovieRecord.from_dict(next(iter(movies.values())))
    url = st.write_table(st.shots_table(shots, meta, movie), str(tmp_path / "t.parquet"))
    back = st.read_table(url)
    assert MovieRecord.from_dict(back.movie) == movie
    for a, b in zip(shots, sorted(back.shots, key=lambda s: s.shot_index), strict=True):
        assert a == b  # every payload field (vectors are compared below)
        assert a.to_payload() == b.to_payload()
        for name in a.vectors:
            np.testing.assert_allclose(a.vectors[name], b.vectors[name], atol=1e-7)


def test_a_hit_shows_every_shot_record_field_or_says_why_not(indexed, tiny_encoder):
    index_dir, recs, _, _ = indexed
    record_fields = set(ShotRecord.stored_fields())
    hit_fields = {f.name for f in dataclasses.fields(Hit)}
    assert set(NOT_ON_HIT) <= record_fields  # no stale reason
    assert record_fields - set(NOT_ON_HIT) == hit_fields - HIT_ONLY
    with SearchEngine.open(StoreConfig(index_dir=index_dir), encoder=tiny_encoder) as eng:
        r = recs[0]
        hit = eng.shot(r.payload["shot_id"])
    s = ShotRecord.from_point(r)
    for name in hit_fields - HIT_ONLY - {"title", "thumb", "top"}:
        assert getattr(hit, name) == getattr(s, name), name
    assert hit.title == s.title and hit.thumb.endswith(s.thumb)
    assert hit.top == tuple(LabelScore(t.label, t.score) for t in s.top)


def test_the_movie_state_a_run_writes_has_exactly_the_movie_record_fields(indexed):
    _, _, movies, _ = indexed
    (state,) = movies.values()
    assert list(state) == list(MovieRecord.stored_fields())
    assert MovieRecord.from_dict(state).to_dict() == state


def test_the_index_meta_has_exactly_the_index_meta_fields(indexed, tiny_encoder, tiny_labeler):
    _, _, _, meta = indexed
    assert set(meta) == set(IndexMeta.stored_fields())
    m = IndexMeta.from_dict(meta)
    assert not m.extra and not m.absent and m.to_dict() == meta
    built = index_meta(tiny_encoder, tiny_labeler)  # without sampling: those two keys absent
    assert set(IndexMeta.stored_fields()) - set(built) == {"sampling", "frame_vectors"}


def test_records_of_older_indexes_read_and_write_back_unchanged():
    """A payload without the fields later versions added (frame ranges, frame times) and with
    one this version does not know: read tolerantly, written back exactly as it was."""
    old = {"shot_id": "m:0001", "movie_id": "m", "title": "T", "shot_index": 1, "start_s": 1.0,
           "end_s": 2.5, "labels": ["x"], "top": [{"label": "x", "score": 0.5, "rank": 1}],
           "someday": {"a": 1}}  # fmt: skip
    s = ShotRecord.from_payload(old)
    assert s.start_frame is None and s.frame_s is None and s.extra == {"someday": {"a": 1}}
    assert s.top == (LabelScore("x", 0.5),) and s.labels == ("x",)
    assert s.to_payload() == old
    # a record built in code (benchmarks' synthetic shots) writes every field but frame_s
    made = ShotRecord(shot_id="m:0000", movie_id="m").to_payload()
    assert list(made) == [f for f in ShotRecord.stored_fields() if f != "frame_s"]
    state = {"movie_id": "m", "path": "/m.mp4", "status": "done", "shots": 3}
    assert MovieRecord.from_dict(state).to_dict() == state
    meta = {"schema_version": 1, "model_id": "x", "taxonomy": {"sha": "s", "labels": []}}
    assert IndexMeta.from_dict(meta).to_dict() == meta


def test_every_indexed_payload_field_is_a_shot_record_field():
    from scenesearch.indexer.store.base import FLOAT_FIELDS, INTEGER_FIELDS, KEYWORD_FIELDS

    for name in (*KEYWORD_FIELDS, *INTEGER_FIELDS, *FLOAT_FIELDS):
        assert name.split("[")[0] in ShotRecord.stored_fields(), name
