"""What an index records about its model, without loading one: :class:`ModelSpec`.

The encoder (:mod:`indexer.encoder`) fills a spec when it loads a model; the indexer writes it
into the index meta (:meth:`ModelSpec.to_meta`); search reads it back (:meth:`ModelSpec.from_meta`,
older metas included), loads the same model with :meth:`ModelSpec.config` and checks the result
with :meth:`ModelSpec.mismatch`. Nothing here imports torch or open_clip.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Any

from scenesearch.indexer.config import DecodeConfig, ModelConfig
from scenesearch.indexer.errors import ModelError

# How ClipEncoder.preprocess turns a frame into the model's input (recorded in the index meta).
PREPROCESS = "resize short side to image_size (bicubic, antialias), centre crop, mean/std"
# What indexes written before the meta recorded the full model spec were built and queried with:
# image queries were scaled to a short side of 256 (DecodeConfig's default then), and search
# loaded the model with the default precision.
LEGACY_FRAME_SHORT_SIDE = 256
LEGACY_PRECISION = "auto"


@dataclass(frozen=True)
class ModelSpec:
    """Everything that makes an index's vectors what they are: the model, its weights, the
    precision and preprocessing of its image tower, and the scale of the frames it was fed.

    Recorded in the index meta (:meth:`to_meta`), read back with :meth:`from_meta` (older metas
    get the values those indexes were built with), and turned into the :class:`ModelConfig`
    that loads the same model again (:meth:`config`).
    """

    name: str  # open_clip model name
    pretrained: str  # hub tag, "random", or "file:<basename>@<sha256[:12]>"
    embed_dim: int
    config_path: str | None = None  # a user model-config JSON, if the name came from one
    weights_path: str | None = None  # absolute path of a local weights file, if any
    precision: str = ModelConfig.precision  # as asked for ("auto" resolves on each machine)
    precision_used: str | None = None  # what it resolved to where the index was built
    image_size: int | None = None  # the model's input side (None: not recorded)
    image_mean: tuple[float, ...] | None = None  # the model's normalisation
    image_std: tuple[float, ...] | None = None
    frame_short_side: int = DecodeConfig.short_side  # short side of the frames it embeds

    @property
    def model_id(self) -> str:
        return f"{self.name}/{self.pretrained}"

    @property
    def is_random(self) -> bool:
        return self.pretrained == "random"

    def to_meta(self) -> dict[str, Any]:
        """The index meta's model fields."""
        return {
            "model": self.name,
            "pretrained": self.pretrained,
            "model_id": self.model_id,
            "embed_dim": self.embed_dim,
            "model_config_path": self.config_path,
            "weights_path": self.weights_path,
            "precision": self.precision,
            "precision_used": self.precision_used,
            "image_size": self.image_size,
            "image_mean": None if self.image_mean is None else list(self.image_mean),
            "image_std": None if self.image_std is None else list(self.image_std),
            "image_preprocess": PREPROCESS,
            "frame_short_side": self.frame_short_side,
        }

    @classmethod
    def from_meta(cls, meta: dict[str, Any]) -> ModelSpec:
        """The spec an index meta records; fields an older meta lacks get the values that index
        was built and searched with (LEGACY_*), or None where nothing was known."""

        def floats(key: str) -> tuple[float, ...] | None:
            return None if meta.get(key) is None else tuple(float(x) for x in meta[key])

        return cls(
            name=meta["model"],
            pretrained=meta["pretrained"],
            embed_dim=int(meta["embed_dim"]),
            config_path=meta.get("model_config_path"),
            weights_path=meta.get("weights_path"),
            precision=meta.get("precision") or LEGACY_PRECISION,
            precision_used=meta.get("precision_used"),
            image_size=meta.get("image_size"),
            image_mean=floats("image_mean"),
            image_std=floats("image_std"),
            frame_short_side=int(meta.get("frame_short_side") or LEGACY_FRAME_SHORT_SIDE),
        )

    def config(self, device: str) -> ModelConfig:
        """The ModelConfig that loads this model again on ``device`` (a recorded weights file
        must still be where it was: ModelError otherwise). fp16 runs on CUDA only: elsewhere an
        fp16 index is queried at the device's automatic precision."""
        weights = self.pretrained
        if weights.startswith("file:"):
            weights = self.weights_path or ""
            if not os.path.isfile(weights):
                raise ModelError(
                    f"the index was built with weights file {self.pretrained[5:]}, which is no "
                    f"longer at {self.weights_path}"
                )
        precision = self.precision
        if precision == "fp16" and not device.startswith("cuda"):
            precision = "auto"
        return ModelConfig(self.config_path or self.name, weights, device, precision)

    def mismatch(self, loaded: ModelSpec) -> str | None:
        """Why ``loaded`` (a model loaded from :meth:`config`) would not embed like the model
        this spec records, or None when it would: another model or weights, or another input
        size or normalisation (e.g. a changed open_clip model config)."""
        if loaded.model_id != self.model_id:
            return (
                f"the model loaded ({loaded.model_id}) differs from the index's ({self.model_id})"
            )
        for key in ("image_size", "image_mean", "image_std"):
            want, got = getattr(self, key), getattr(loaded, key)
            if want is not None and got is not None and want != got:
                return f"the model loaded has {key} {got}, the index was built with {want}"
        return None
