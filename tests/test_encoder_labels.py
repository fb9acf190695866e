"""Encoder and MovieCLIP labelling: checked against a direct re-computation of the paper's formula
with open_clip's own preprocessing, plus the label-matrix cache and error messages."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from PIL import Image

from scenesearch.indexer.config import ModelConfig
from scenesearch.indexer.encoder import ClipEncoder
from scenesearch.indexer.errors import ConfigError, ModelError
from scenesearch.indexer.labels import SceneLabeler, clean_labels, load_taxonomy, top_labels
from scenesearch.indexer.records import LabelScore
from tests.conftest import TINY_MODEL


def _frames(n=4, h=144, w=256, seed=0):
    """n smooth random RGB frames (low-frequency noise, like real images after scaling)."""
    rng = np.random.default_rng(seed)
    small = rng.integers(0, 256, (n, 9, 16, 3), dtype=np.uint8)
    return np.stack([np.asarray(Image.fromarray(s).resize((w, h), Image.BICUBIC)) for s in small])


def test_taxonomy_is_movieclips_179_labels():
    tax = load_taxonomy()
    assert len(tax.labels) == 179
    assert tax.labels[:3] == ("booth", "desert", "courtyard")
    assert "interrogation room" in tax.labels and "phone booth" in tax.labels


def test_custom_taxonomy_and_errors(tmp_path):
    f = tmp_path / "labels.txt"
    f.write_text("# my labels\nbeach\n\nforest\n")
    assert load_taxonomy(str(f)).labels == ("beach", "forest")
    f.write_text("beach\nbeach\n")
    with pytest.raises(ConfigError, match="repeats labels: beach"):
        load_taxonomy(str(f))
    with pytest.raises(ConfigError, match="not found"):
        load_taxonomy(str(tmp_path / "nope.txt"))


def test_clean_labels_thresholds():
    top = (LabelScore("a", 0.5), LabelScore("b", 0.2), LabelScore("c", 0.1), LabelScore("d", 0.09))
    assert clean_labels(top) == ("a", "b", "c")  # ranks 2-5 kept at >= 0.1 (inclusive)
    top_low = (LabelScore("a", 0.39), LabelScore("b", 0.3))
    assert clean_labels(top_low) == ()  # top-1 below 0.4: no clean labels at all
    scores = np.array([0.1, 0.5, 0.3, 0.1])
    assert [t.label for t in top_labels(scores, ("w", "x", "y", "z"), k=3)] == ["x", "y", "w"]


def test_labels_equal_direct_movieclip_formula(tiny_encoder, tiny_labeler):
    """Shot scores = mean over frames of softmax(100 · f · Tᵀ), recomputed here from scratch with
    open_clip's tokenizer and model, must equal the labeler's output."""
    frames = _frames()
    feats = tiny_encoder.encode_frames(frames)
    got = tiny_labeler.label_shot(feats)

    model, tok = tiny_encoder.model, tiny_encoder.tokenizer
    prompts = [f"a photo of a {lb}, a type of background location" for lb in load_taxonomy().labels]
    with torch.no_grad():
        t = model.encode_text(tok(prompts).to(tiny_encoder.device)).double().cpu()
        t = t / t.norm(dim=-1, keepdim=True)
        f = torch.from_numpy(feats).double()
        expect = torch.softmax(100.0 * f @ t.T, dim=-1).mean(0).numpy()
    np.testing.assert_allclose(got.scores, expect, rtol=1e-4, atol=1e-6)
    order = np.argsort(-expect)[:5]
    assert [t.label for t in got.top] == [tiny_labeler.labels[i] for i in order]
    assert got.clean == clean_labels(got.top, 0.4, 0.1)
    assert abs(got.scores.sum() - 1.0) < 1e-4


def test_label_matrix_is_cached(tiny_encoder, tmp_path, monkeypatch):
    first = SceneLabeler(tiny_encoder, cache_dir=str(tmp_path))
    assert len(list(tmp_path.glob("*.npy"))) == 1

    def boom(*a, **k):
        raise AssertionError("label prompts re-encoded despite the cache")

    monkeypatch.setattr(tiny_encoder, "encode_text", boom)
    second = SceneLabeler(tiny_encoder, cache_dir=str(tmp_path))
    np.testing.assert_array_equal(first.text_matrix, second.text_matrix)
    monkeypatch.undo()
    from scenesearch.indexer.config import LabelConfig

    other = SceneLabeler(tiny_encoder, LabelConfig(prompt="{label}"), cache_dir=str(tmp_path))
    assert other.cache_key() != first.cache_key()
    assert len(list(tmp_path.glob("*.npy"))) == 2


def test_random_weights_are_deterministic(tiny_encoder):
    again = ClipEncoder(ModelConfig(TINY_MODEL, "random", tiny_encoder.device, "fp32"))
    fr = _frames(2)
    np.testing.assert_array_equal(again.encode_frames(fr), tiny_encoder.encode_frames(fr))
    assert again.spec.model_id == "tiny-clip/random" and again.spec.is_random


def test_embeddings_are_unit_norm_and_batching_invariant(tiny_encoder):
    fr = _frames(5)
    a = tiny_encoder.encode_frames(fr, batch_size=2)
    b = tiny_encoder.encode_frames(fr, batch_size=5)
    np.testing.assert_allclose(np.linalg.norm(a, axis=1), 1.0, atol=1e-5)
    np.testing.assert_allclose(a, b, atol=1e-5)
    g = tiny_encoder.encode_frame_groups([fr[:2], _frames(3, 100, 300, seed=1)])
    np.testing.assert_allclose(g[0], a[:2], atol=1e-5)
    assert g[1].shape == (3, 32)


def test_tensor_preprocessing_matches_open_clip_pil(tiny_encoder):
    """Our path (frame scaled to the 256-px working size, then tensor resize/crop/normalise)
    gives features with cosine >= 0.99 to open_clip's own PIL preprocessing of the full frame."""
    import open_clip

    full = _frames(3, 720, 1280, seed=2)
    _, _, pil_pre = open_clip.create_model_and_transforms(TINY_MODEL.rsplit("/", 1)[1][:-5])
    with torch.no_grad():
        ref = tiny_encoder.model.encode_image(
            torch.stack([pil_pre(Image.fromarray(f)) for f in full]).to(tiny_encoder.device)
        )
        ref = torch.nn.functional.normalize(ref, dim=-1).cpu().numpy()
    from scenesearch.indexer.imageio import load_rgb

    ours = tiny_encoder.encode_frames(np.stack([load_rgb(f) for f in full]))
    cos = (ours * ref).sum(1)
    assert cos.min() >= 0.99, cos


def test_image_query_inputs(tiny_encoder, tmp_path):
    fr = _frames(1, 360, 640)[0]
    p = tmp_path / "still.png"
    Image.fromarray(fr).save(p)
    a = tiny_encoder.encode_images([str(p), p.read_bytes(), fr, Image.fromarray(fr)])
    np.testing.assert_allclose(a, np.repeat(a[:1], 4, 0), atol=1e-5)
    from scenesearch.indexer.errors import InputError

    (tmp_path / "bad.png").write_bytes(b"not an image")
    with pytest.raises(InputError, match="not a readable image"):
        tiny_encoder.encode_images([str(tmp_path / "bad.png")])


def test_model_errors_are_one_line(tmp_path, monkeypatch):
    with pytest.raises(ConfigError, match="unknown model 'ViT-B-33'.*did you mean"):
        ClipEncoder(ModelConfig("ViT-B-33", "random"))
    with pytest.raises(ModelError, match="weights file not found"):
        ClipEncoder(ModelConfig(TINY_MODEL, str(tmp_path / "missing.pt")))
    with pytest.raises(ConfigError, match="unknown pretrained tag 'nope'"):
        ClipEncoder(ModelConfig("ViT-B-32", "nope"))
    bad = tmp_path / "bad.pt"
    bad.write_bytes(b"garbage")
    with pytest.raises(ModelError, match="cannot load weights file"):
        ClipEncoder(ModelConfig(TINY_MODEL, str(bad)))


def test_hub_tag_offline_says_how_to_proceed(monkeypatch):
    """No network here: asking for hub weights must fail with the way out, in one message."""
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    with pytest.raises(ModelError, match=r"--pretrained PATH.*--pretrained random"):
        ClipEncoder(ModelConfig("RN50", "openai"))


def test_precision_auto_follows_the_hardware(monkeypatch):
    import scenesearch.indexer.encoder as enc

    monkeypatch.setattr(enc, "cpu_has_native_bf16", lambda: False)
    assert enc.resolve_precision("cpu", "auto") == "fp32"
    assert enc.resolve_precision("cuda", "auto") == "bf16"
    assert enc.resolve_precision("cpu", "fp32") == "fp32"
    monkeypatch.setattr(enc, "cpu_has_native_bf16", lambda: True)
    assert enc.resolve_precision("cpu", "auto") == "bf16"
    assert enc.resolve_precision("cpu", "fp32") == "fp32"
    with pytest.raises(ConfigError, match="fp16 runs on CUDA only"):
        ClipEncoder(ModelConfig(TINY_MODEL, "random", "cpu", "fp16"))


def test_cpu_bf16_image_tower_stays_close_to_fp32(tiny_encoder):
    """bf16 weights for the image tower on CPU: features within cosine 0.99 of fp32 for frames
    and images, the text tower untouched (same text features, so the same label matrix)."""
    if tiny_encoder.device != "cpu":
        pytest.skip("CPU precision path")
    bf = ClipEncoder(ModelConfig(TINY_MODEL, "random", "cpu", "bf16"))
    assert bf.precision_used == "bf16"
    assert next(bf.model.visual.parameters()).dtype == torch.bfloat16
    assert next(bf.model.transformer.parameters()).dtype == torch.float32
    fr = _frames(6)
    a, b = tiny_encoder.encode_frames(fr), bf.encode_frames(fr, batch_size=4)
    assert b.dtype == np.float32 and np.allclose(np.linalg.norm(b, axis=1), 1, atol=1e-5)
    assert np.sum(a * b, axis=1).min() >= 0.99
    ga = tiny_encoder.encode_frame_groups([fr[:2], fr[2:]])
    gb = bf.encode_frame_groups([fr[:2], fr[2:]])
    assert all(np.sum(x * y, axis=1).min() >= 0.99 for x, y in zip(ga, gb))
    assert np.sum(tiny_encoder.encode_images([fr[0]]) * bf.encode_images([fr[0]])) >= 0.99
    t = ["a beach at night", "a kitchen"]
    np.testing.assert_array_equal(tiny_encoder.encode_text(t), bf.encode_text(t))
