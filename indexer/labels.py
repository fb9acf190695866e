"""MovieCLIP weak scene labels ("CLIPScene scores"), exactly as the paper's code computes them.

For a taxonomy of L labels, prompt ``"a photo of a {label}, a type of background location"``:
text features T [L, D] L2-normalised; for each frame with L2-normalised image feature f,
``p = softmax(100 · f · Tᵀ)``; a shot's score vector is the mean of its frames' p; its labels are
the top 5 with scores, and its *clean* labels are top-1 if ≥ 0.4 plus ranks 2–5 if ≥ 0.1.
The label text matrix is cached on disk per (model, weights, taxonomy, prompt).
"""

from __future__ import annotations

import hashlib
import logging
import os
from dataclasses import dataclass
from importlib import resources
from pathlib import Path

import numpy as np

from scenesearch.indexer.config import LabelConfig, default_cache_dir
from scenesearch.indexer.errors import ConfigError
from scenesearch.indexer.records import LabelScore, ShotLabels

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Taxonomy:
    labels: tuple[str, ...]
    source: str  # "movieclip-179" or the user's file path
    sha: str  # sha256[:12] of the label list, recorded in the index

    def index(self, label: str) -> int:
        return self.labels.index(label)


def bundled_taxonomy_path() -> Path:
    return Path(str(resources.files("scenesearch.indexer") / "data" / "movieclip_taxonomy.txt"))


def load_taxonomy(path: str | None = None) -> Taxonomy:
    """Read a label file (one label per line, blank lines and ``#`` comments ignored).
    ``None`` → MovieCLIP's 179-label taxonomy shipped with the package."""
    p = Path(path) if path else bundled_taxonomy_path()
    if not p.is_file():
        raise ConfigError(f"taxonomy file not found: {p}")
    labels = [ln.strip() for ln in p.read_text(encoding="utf-8").splitlines()]
    labels = [ln for ln in labels if ln and not ln.startswith("#")]
    if not labels:
        raise ConfigError(f"taxonomy file has no labels: {p}")
    dup = sorted({x for x in labels if labels.count(x) > 1})
    if dup:
        raise ConfigError(f"taxonomy file repeats labels: {', '.join(dup[:5])}")
    sha = hashlib.sha256("\n".join(labels).encode()).hexdigest()[:12]
    return Taxonomy(tuple(labels), "movieclip-179" if path is None else str(p), sha)


def softmax(x: np.ndarray, axis: int = -1) -> np.ndarray:
    x = x - x.max(axis=axis, keepdims=True)
    e = np.exp(x)
    return e / e.sum(axis=axis, keepdims=True)


def frame_scores(frame_feats: np.ndarray, text_matrix: np.ndarray, logit_scale: float = 100.0):
    """Per-frame label distribution: softmax(logit_scale · f · Tᵀ) for L2-normalised f and T."""
    return softmax(
        logit_scale * (frame_feats.astype(np.float64) @ text_matrix.T.astype(np.float64))
    )


def top_labels(scores: np.ndarray, labels: tuple[str, ...], k: int = 5) -> tuple[LabelScore, ...]:
    """The k highest-scoring labels, best first (ties broken by taxonomy order)."""
    order = np.argsort(-scores, kind="stable")[:k]
    return tuple(LabelScore(labels[i], float(scores[i])) for i in order)


def clean_labels(
    top: tuple[LabelScore, ...], top1: float = 0.4, rest: float = 0.1
) -> tuple[str, ...]:
    """MovieCLIP's clean multi-label set: top-1 if score ≥ top1, and ranks 2.. kept if ≥ rest.
    If top-1 fails its threshold the shot has no clean labels."""
    if not top or top[0].score < top1:
        return ()
    return (top[0].label,) + tuple(ls.label for ls in top[1:] if ls.score >= rest)


class SceneLabeler:
    """Weak-labels shots from their frame embeddings with a taxonomy and prompt."""

    def __init__(self, encoder, cfg: LabelConfig | None = None, cache_dir: str | None = None):
        self.cfg = cfg or LabelConfig()
        if "{label}" not in self.cfg.prompt:
            raise ConfigError(f"label prompt must contain {{label}}: {self.cfg.prompt!r}")
        self.taxonomy = load_taxonomy(self.cfg.taxonomy)
        self.encoder = encoder
        self.cache_dir = cache_dir or os.path.join(default_cache_dir(), "label-matrices")
        self.text_matrix = self._label_matrix()

    @property
    def labels(self) -> tuple[str, ...]:
        return self.taxonomy.labels

    def cache_key(self) -> str:
        spec = self.encoder.spec
        parts = [spec.model_id, spec.config_path or "", self.taxonomy.sha, self.cfg.prompt, "v1"]
        if spec.config_path:  # a user config JSON: its content defines the model
            parts.append(Path(spec.config_path).read_text())
        return hashlib.sha256("\x1f".join(parts).encode()).hexdigest()[:20]

    def _label_matrix(self) -> np.ndarray:
        path = Path(self.cache_dir) / f"{self.cache_key()}.npy"
        if path.is_file():
            try:
                m = np.load(path)
                if m.shape == (len(self.labels), self.encoder.spec.embed_dim):
                    return m
            except (OSError, ValueError):
                log.warning("ignoring unreadable label-matrix cache %s", path)
        prompts = [self.cfg.prompt.format(label=lb) for lb in self.labels]
        m = self.encoder.encode_text(prompts)
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            tmp = path.with_name(path.name + f".{os.getpid()}.tmp.npy")
            np.save(tmp, m)
            os.replace(tmp, path)
        except OSError as e:  # a read-only cache is not fatal
            log.warning("cannot write label-matrix cache %s: %s", path, e)
        return m

    def frame_scores(self, frame_feats: np.ndarray) -> np.ndarray:
        return frame_scores(frame_feats, self.text_matrix, self.cfg.logit_scale)

    def label_shot(self, frame_feats: np.ndarray) -> ShotLabels:
        """Labels of one shot from its frames' L2-normalised embeddings [k, D]."""
        scores = self.frame_scores(frame_feats).mean(axis=0)
        return self.labels_from_scores(scores)

    def labels_from_scores(self, scores: np.ndarray) -> ShotLabels:
        top = top_labels(scores, self.labels, self.cfg.top_k)
        clean = clean_labels(top, self.cfg.clean_top1, self.cfg.clean_rest)
        return ShotLabels(scores.astype(np.float32), top, clean)
