"""OpenCLIP encoding and normalisation — the one place that turns pixels or text into vectors.

The indexer and the search engine both use :class:`ClipEncoder`, so a query is embedded exactly as
the shots were. Preprocessing of decoded frames is done with tensor ops (on the GPU when there is
one) instead of per-image PIL: frames arrive already scaled by PyAV to a small working size, then
are resized (bicubic, antialiased) so the short side equals the model's input size, centre-cropped
and normalised with the model's mean/std — the same steps as open_clip's own ``Resize(shortest) →
CenterCrop → Normalize`` transform.
"""

from __future__ import annotations

import contextlib
import hashlib
import logging
import os
import time
from pathlib import Path

import numpy as np

from scenesearch.indexer.compat import ensure_torchvision_importable
from scenesearch.indexer.config import DecodeConfig, ModelConfig, resolve_device
from scenesearch.indexer.errors import ConfigError, ModelError
from scenesearch.indexer.model_spec import ModelSpec

log = logging.getLogger(__name__)

RANDOM_SEED = 0  # "random" weights are seeded so the indexer and the search engine agree


def _file_sha(path: str) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        while chunk := f.read(1 << 20):
            h.update(chunk)
    return h.hexdigest()[:12]


def _import_open_clip():
    ensure_torchvision_importable()
    import open_clip

    return open_clip


def register_model_config(path: str) -> str:
    """Register an open_clip model-config JSON file; returns the model name (the file stem)."""
    open_clip = _import_open_clip()
    p = Path(path)
    if not p.is_file():
        raise ConfigError(f"model config not found: {path}")
    open_clip.add_model_config(str(p))
    return p.stem


def resolve_model_name(name: str) -> tuple[str, str | None]:
    """A model is a registered open_clip name or a path to a model-config JSON."""
    open_clip = _import_open_clip()
    if name.endswith(".json") or os.sep in name:
        return register_model_config(name), str(Path(name).resolve())
    if name not in open_clip.list_models():
        import difflib

        close = difflib.get_close_matches(name, open_clip.list_models(), n=5, cutoff=0.5)
        hint = f"; did you mean: {', '.join(close)}" if close else ""
        raise ConfigError(
            f"unknown model {name!r}{hint} (see open_clip.list_models(), or pass a model-config JSON)"
        )
    return name, None


def _hub_reachable(timeout: float = 2.0) -> bool:
    """Can we open a TCP connection to the model hub? (Without this check an offline machine
    spends ~50 s in huggingface_hub's retries before failing.)"""
    import socket
    from urllib.parse import urlparse

    if os.environ.get("HF_HUB_OFFLINE", "").lower() in ("1", "true", "yes"):
        return False
    url = urlparse(os.environ.get("HF_ENDPOINT") or "https://huggingface.co")
    try:
        with socket.create_connection((url.hostname, url.port or 443), timeout=timeout):
            return True
    except OSError:
        return False


def _force_hub_offline() -> None:
    """Make huggingface_hub use its local cache only, for this process."""
    os.environ["HF_HUB_OFFLINE"] = "1"
    try:
        from huggingface_hub import constants

        constants.HF_HUB_OFFLINE = True
    except (ImportError, AttributeError):
        pass


@contextlib.contextmanager
def _quiet_hub():
    """Hide huggingface_hub's per-retry warnings and open_clip's root-logger error: a failure
    is reported once, by our ModelError."""
    loggers = [logging.getLogger("huggingface_hub"), logging.getLogger()]
    levels = [lg.level for lg in loggers]
    for lg in loggers:
        lg.setLevel(logging.CRITICAL)
    try:
        yield
    finally:
        for lg, lvl in zip(loggers, levels):
            lg.setLevel(lvl)


def cpu_has_native_bf16() -> bool:
    """True when the CPU multiplies bf16 natively (AVX512-BF16 or AMX), where bf16 weights run
    the image tower ~1.8x faster than fp32; elsewhere bf16 is emulated and slower."""
    import torch

    try:
        return bool(torch.cpu._is_avx512_bf16_supported() or torch.cpu._is_amx_tile_supported())
    except (AttributeError, RuntimeError):  # older torch: no probe, stay on fp32
        return False


def resolve_precision(device: str, precision: str) -> str:
    """``auto`` → ``bf16`` on CUDA and on CPUs with native bf16, else ``fp32``."""
    if precision != "auto":
        return precision
    if device.startswith("cuda") or cpu_has_native_bf16():
        return "bf16"
    return "fp32"


def autocast_context(device: str, precision: str):
    """bf16/fp16 autocast on CUDA; on CPU a no-op context (there the image tower's weights are
    cast instead: autocast's per-op casts cost more than they save on a CPU)."""
    import torch

    if not device.startswith("cuda"):
        return contextlib.nullcontext()
    precision = resolve_precision(device, precision)
    if precision == "bf16":
        return torch.autocast("cuda", dtype=torch.bfloat16)
    if precision == "fp16":
        return torch.autocast("cuda", dtype=torch.float16)
    return contextlib.nullcontext()


class ClipEncoder:
    """An OpenCLIP model ready to embed frames, images and text, L2-normalised, as float32 numpy.

    ``cfg.pretrained`` is a hub tag (downloaded by open_clip), a local weights file, or
    ``"random"`` (seeded random weights — plumbing demos and benchmarks only; results are
    meaningless). ``frame_short_side`` is the short side of the frames it will be fed (the
    decoder's working size): image queries are scaled to it, and the index meta records it.
    """

    def __init__(self, cfg: ModelConfig | None = None, *, frame_short_side: int | None = None):
        import torch

        cfg = cfg or ModelConfig()
        name, pretrained, precision = cfg.name, cfg.pretrained, cfg.precision
        self.cfg = cfg
        self.device = device = resolve_device(cfg.device)
        self.precision = precision
        self.precision_used = resolve_precision(device, precision)
        if self.precision_used == "fp16" and not device.startswith("cuda"):
            raise ConfigError("fp16 runs on CUDA only; use --precision bf16 or fp32 on CPU")
        open_clip = _import_open_clip()
        model_name, config_path = resolve_model_name(name)
        weights_path = None
        offline = False
        if pretrained == "random":
            tag, load = "random", None
        elif os.path.isfile(pretrained):
            weights_path = str(Path(pretrained).resolve())
            tag, load = f"file:{Path(pretrained).name}@{_file_sha(pretrained)}", weights_path
        elif os.sep in pretrained or pretrained.endswith((".pt", ".bin", ".safetensors", ".pth")):
            raise ModelError(f"weights file not found: {pretrained}")
        else:
            known = open_clip.list_pretrained_tags_by_model(model_name)
            if known and pretrained not in known:
                raise ConfigError(
                    f"unknown pretrained tag {pretrained!r} for {model_name}; "
                    f"available: {', '.join(known)}, a local file path, or 'random'"
                )
            tag, load = pretrained, pretrained
        try:
            if load is None:
                state = torch.random.get_rng_state()
                torch.manual_seed(RANDOM_SEED)
                logging.getLogger("root").disabled = True  # open_clip warns "initialized randomly"
                try:
                    model = open_clip.create_model(model_name, pretrained=None, device="cpu")
                finally:
                    logging.getLogger("root").disabled = False
                    torch.random.set_rng_state(state)
            else:
                offline = weights_path is None and not _hub_reachable()
                if offline:
                    _force_hub_offline()  # cached weights still load; missing ones fail at once
                with _quiet_hub():
                    model = open_clip.create_model(
                        model_name, pretrained=load, device="cpu", cache_dir=cfg.cache_dir
                    )
        except Exception as e:  # open_clip raises many types: HTTP errors, RuntimeError, KeyError
            if weights_path:
                raise ModelError(f"cannot load weights file {pretrained}: {e}") from e
            if load is not None and offline:
                raise ModelError(
                    f"cannot download {model_name}/{pretrained} weights: the model hub is not "
                    "reachable and they are not in the local cache. Pass a local weights file "
                    "with --pretrained PATH, or --pretrained random for a plumbing demo."
                ) from e
            raise ModelError(
                f"cannot load pretrained weights {model_name}/{pretrained} ({type(e).__name__}: "
                f"{str(e).splitlines()[0][:160] if str(e) else ''}). Offline? Pass a local weights "
                "file with --pretrained PATH, or --pretrained random for a plumbing demo."
            ) from e
        model.eval().requires_grad_(False)
        self.model = model.to(device)
        # On CPU, "bf16" means bf16 weights for the image tower (measured on an AVX512-BF16 CPU,
        # ViT-B-32, batch 32: 29.8 vs 52.8 ms/image, feature cosine to fp32 >= 0.9999; autocast
        # was slower than fp32 there). The text tower stays fp32: one query at a time is cheap,
        # and the label text matrix is then the same as with fp32.
        self.image_dtype = torch.float32  # what preprocess() hands the image tower
        if not device.startswith("cuda") and self.precision_used == "bf16":
            self.model.visual.to(torch.bfloat16)
            self.image_dtype = torch.bfloat16
        self.tokenizer = open_clip.get_tokenizer(model_name)
        pp = model.visual.preprocess_cfg
        size = pp["size"]
        self.image_size = int(size[0] if isinstance(size, (tuple, list)) else size)
        self.mean = torch.tensor(pp["mean"], device=device).view(1, 3, 1, 1)
        self.std = torch.tensor(pp["std"], device=device).view(1, 3, 1, 1)
        with torch.no_grad():
            dim = int(self.model.encode_text(self.tokenizer(["x"]).to(device)).shape[-1])
        self.spec = ModelSpec(
            model_name, tag, dim, config_path, weights_path, precision, self.precision_used,
            image_size=self.image_size,
            image_mean=tuple(float(x) for x in pp["mean"]),
            image_std=tuple(float(x) for x in pp["std"]),
            frame_short_side=int(frame_short_side or DecodeConfig.short_side),
        )  # fmt: skip
        # Seconds spent in preprocess() (benchmarks split it from the forward pass; on CUDA it is
        # launch time unless the caller synchronises).
        self.preprocess_s = 0.0

    # ------------------------------------------------------------------ images
    def preprocess(self, frames) -> torch.Tensor:  # noqa: F821
        """uint8 [N,H,W,3] RGB (numpy or tensor, any size) → normalised float [N,3,S,S] on device.

        Resize so the short side is S (bicubic, antialias), centre crop S×S, scale to [0,1],
        normalise with the model's mean/std. Same-size batches only (frames of one movie).
        """
        import torch
        import torch.nn.functional as F

        t0 = time.perf_counter()
        if isinstance(frames, np.ndarray) and not frames.flags.writeable:
            frames = frames.copy()  # torch refuses to share read-only numpy memory
        x = torch.as_tensor(frames)
        if x.ndim == 3:
            x = x[None]
        if x.device.type == "cpu" and str(self.device).startswith("cuda"):
            x = x.pin_memory()  # page-locked, so the uint8 upload below is asynchronous
        x = x.to(self.device, non_blocking=True).permute(0, 3, 1, 2)
        # On CPU, resize the uint8 pixels (torch's vectorised uint8 antialias kernel, rounding
        # like PIL does): ~5x less CPU than resizing in float (0.28 -> 0.05 CPU s per 64 frames
        # of 455x256). CUDA's antialias kernels take floats only.
        if x.dtype != torch.uint8 or x.device.type != "cpu":
            x = x.float()
        h, w = x.shape[-2:]
        s = self.image_size
        if min(h, w) != s:
            scale = s / min(h, w)
            nh, nw = max(s, round(h * scale)), max(s, round(w * scale))
            x = F.interpolate(x, size=(nh, nw), mode="bicubic", antialias=True, align_corners=False)
            h, w = nh, nw
        top, left = (h - s) // 2, (w - s) // 2
        x = x[:, :, top : top + s, left : left + s].float()
        x = (x / 255.0).clamp_(0.0, 1.0)
        x = (x - self.mean) / self.std
        if self.image_dtype is not torch.float32:
            x = x.to(self.image_dtype)
        self.preprocess_s += time.perf_counter() - t0
        return x

    def encode_frames(self, frames, batch_size: int | None = None) -> np.ndarray:
        """Embed uint8 RGB frames (all the same size) → L2-normalised float32 [N, D], in
        batches of ``batch_size`` (default: the config's)."""
        import torch

        batch_size = batch_size or self.cfg.batch_size
        frames = np.asarray(frames) if not hasattr(frames, "device") else frames
        n = len(frames)
        out = np.empty((n, self.spec.embed_dim), dtype=np.float32)
        with torch.inference_mode(), autocast_context(self.device, self.precision_used):
            for i in range(0, n, batch_size):
                x = self.preprocess(frames[i : i + batch_size])
                f = self.model.encode_image(x).float()
                f = torch.nn.functional.normalize(f, dim=-1)
                out[i : i + len(f)] = f.cpu().numpy()
        return out

    def encode_frame_groups(self, groups: list[np.ndarray]) -> list[np.ndarray]:
        """Embed several same-size frame stacks (e.g. from different movies) in ONE forward pass:
        each stack is preprocessed to S×S on its own, then the batch is concatenated."""
        import torch

        if not groups:
            return []
        with torch.inference_mode(), autocast_context(self.device, self.precision_used):
            x = torch.cat([self.preprocess(g) for g in groups])
            f = torch.nn.functional.normalize(self.model.encode_image(x).float(), dim=-1)
            f = f.cpu().numpy()
        sizes = np.cumsum([len(g) for g in groups])[:-1]
        return np.split(f, sizes)

    def encode_images(self, images: list, short_side: int | None = None) -> np.ndarray:
        """Embed images of any sizes (PIL images, paths, bytes or uint8 arrays) → [N, D].

        Each image is first scaled like a decoded frame — short side ``short_side`` (default:
        the ``frame_short_side`` this encoder was made for; search passes its index's) — so
        image queries go through the same pixel path as the indexed shots.
        """
        from scenesearch.indexer.imageio import load_rgb

        side = short_side or self.spec.frame_short_side
        feats = [self.encode_frames(load_rgb(im, side)[None]) for im in images]
        return np.concatenate(feats) if feats else np.empty((0, self.spec.embed_dim), np.float32)

    # ------------------------------------------------------------------ text
    def encode_text(self, texts: list[str], batch_size: int = 256) -> np.ndarray:
        """Embed strings → L2-normalised float32 [N, D]."""
        import torch

        out = []
        with torch.inference_mode(), autocast_context(self.device, self.precision_used):
            for i in range(0, len(texts), batch_size):
                tok = self.tokenizer(list(texts[i : i + batch_size])).to(self.device)
                f = self.model.encode_text(tok).float()
                out.append(torch.nn.functional.normalize(f, dim=-1).cpu().numpy())
        return np.concatenate(out) if out else np.empty((0, self.spec.embed_dim), np.float32)
