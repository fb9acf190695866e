"""The index meta records the full model spec and search restores the encoder from it.

Fixtures: the tiny random OpenCLIP model (conftest), one seeded 640×360 RGB still, and small
embedded indexes holding only a meta (a search engine loads its model from the meta alone).
Expected: a spec survives to_meta → from_meta unchanged; an older meta (no precision, no
preprocessing, no frame scale) reads as what such indexes were built with — precision "auto",
frames at short side 256; image queries are scaled to the index's recorded frame scale.
"""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest

from scenesearch.indexer.catalog import index_meta
from scenesearch.indexer.config import DecodeConfig, ModelConfig
from scenesearch.indexer.encoder import ClipEncoder
from scenesearch.indexer.errors import IndexMismatchError, ModelError
from scenesearch.indexer.imageio import load_rgb
from scenesearch.indexer.model_spec import LEGACY_FRAME_SHORT_SIDE, LEGACY_PRECISION, ModelSpec
from scenesearch.indexer.store import VECTOR_CLIP, CollectionSpec, VectorSpec
from scenesearch.indexer.store.edge import EdgeStore
from scenesearch.search import SearchEngine

# The model keys every index meta had before the full spec was recorded.
OLD_KEYS = ("model", "pretrained", "model_id", "embed_dim", "model_config_path", "weights_path")


@pytest.fixture(scope="module")
def still() -> np.ndarray:
    """A 640×360 RGB still of seeded noise: scaling it to different sizes changes its pixels."""
    return np.random.default_rng(0).integers(0, 256, (360, 640, 3), dtype=np.uint8)


def _engine(tmp_path, meta: dict) -> SearchEngine:
    """An engine on an embedded index holding only ``meta`` (it loads its model from it)."""
    store = EdgeStore(str(tmp_path / "ix"))
    store.create(CollectionSpec([VectorSpec(VECTOR_CLIP, int(meta["embed_dim"]))]))
    store.set_meta(meta)
    return SearchEngine(store, str(tmp_path / "ix"), device="cpu")


def test_the_meta_records_the_full_model_spec(tiny_encoder, tiny_labeler):
    meta = index_meta(tiny_encoder, tiny_labeler)
    spec = tiny_encoder.spec
    assert meta["precision"] == "fp32" and meta["precision_used"] == "fp32"
    assert meta["image_size"] == tiny_encoder.image_size == spec.image_size
    assert meta["image_mean"] == list(spec.image_mean) and len(meta["image_std"]) == 3
    assert meta["frame_short_side"] == DecodeConfig().short_side
    assert ModelSpec.from_meta(meta) == spec


def test_an_older_meta_reads_with_the_old_defaults(tiny_encoder):
    old = {k: v for k, v in tiny_encoder.spec.to_meta().items() if k in OLD_KEYS}
    spec = ModelSpec.from_meta(old)
    assert spec.precision == LEGACY_PRECISION == "auto"
    assert spec.frame_short_side == LEGACY_FRAME_SHORT_SIDE == 256
    assert spec.image_size is None and spec.precision_used is None
    cfg = spec.config("cpu")
    assert (cfg.name, cfg.pretrained, cfg.device, cfg.precision) == (
        tiny_encoder.spec.config_path,
        "random",
        "cpu",
        "auto",
    )
    assert spec.mismatch(tiny_encoder.spec) is None


def test_search_opens_an_older_index_and_scales_images_to_256(tmp_path, tiny_encoder, still):
    old = {k: v for k, v in tiny_encoder.spec.to_meta().items() if k in OLD_KEYS}
    with _engine(tmp_path, old) as eng:
        enc = eng.encoder  # loaded from the meta alone
        assert enc.spec.model_id == tiny_encoder.spec.model_id and enc.precision == "auto"
        got = eng.query_vector(image=still)
        want = enc.encode_frames(load_rgb(still, 256)[None])[0]
        np.testing.assert_allclose(got, want, atol=1e-6)


def test_image_queries_are_scaled_as_the_index_frames_were(tmp_path, tiny_encoder, still):
    meta = dataclasses.replace(tiny_encoder.spec, frame_short_side=96).to_meta()
    with _engine(tmp_path, meta) as eng:
        enc = eng.encoder
        assert enc.spec.frame_short_side == 96 and enc.precision == "fp32"
        got = eng.query_vector(image=still)
        at_96 = enc.encode_frames(load_rgb(still, 96)[None])[0]
        at_256 = enc.encode_frames(load_rgb(still, 256)[None])[0]
        np.testing.assert_allclose(got, at_96, atol=1e-6)
        assert not np.allclose(got, at_256, atol=1e-3)  # the scale really matters here


def test_a_handed_in_encoder_still_gets_the_index_scale(tmp_path, tiny_encoder, still):
    meta = dataclasses.replace(tiny_encoder.spec, frame_short_side=96).to_meta()
    store = EdgeStore(str(tmp_path / "ix"))
    store.create(CollectionSpec([VectorSpec(VECTOR_CLIP, int(meta["embed_dim"]))]))
    store.set_meta(meta)
    with SearchEngine(store, str(tmp_path / "ix"), encoder=tiny_encoder) as eng:
        got = eng.query_vector(image=still)
    want = tiny_encoder.encode_frames(load_rgb(still, 96)[None])[0]
    np.testing.assert_allclose(got, want, atol=1e-6)


def test_a_changed_preprocessing_or_a_lost_weights_file_is_refused(tmp_path, tiny_encoder):
    spec = dataclasses.replace(tiny_encoder.spec, image_size=tiny_encoder.image_size + 8)
    assert "image_size" in spec.mismatch(tiny_encoder.spec)
    with _engine(tmp_path, spec.to_meta()) as eng, pytest.raises(IndexMismatchError):
        eng.encoder  # noqa: B018
    gone = dataclasses.replace(
        tiny_encoder.spec, pretrained="file:w.pt@0123456789ab", weights_path=str(tmp_path / "w.pt")
    )
    with pytest.raises(ModelError, match="no longer at"):
        gone.config("cpu")


def test_fp16_indexes_are_queried_at_auto_precision_off_cuda(tiny_encoder):
    spec = dataclasses.replace(tiny_encoder.spec, precision="fp16")
    assert spec.config("cpu").precision == "auto"
    assert spec.config("cuda").precision == "fp16"


def test_the_encoder_takes_a_model_config(tiny_encoder):
    enc = ClipEncoder(ModelConfig(tiny_encoder.spec.config_path, "random", "cpu", "fp32"),
                      frame_short_side=128)  # fmt: skip
    assert enc.spec.model_id == tiny_encoder.spec.model_id
    assert enc.spec.frame_short_side == 128 and enc.cfg.batch_size == ModelConfig.batch_size
