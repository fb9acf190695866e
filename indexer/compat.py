"""Import-time compatibility guard for CPU-only torch with a CUDA-built torchvision.

torchvision 0.28.0 is the only release that pins torch 2.13.0, and on PyPI it is a ``+cu130``
build: its compiled extension needs libtorch_cuda, so on the CPU wheel of torch it fails to load
and ``import open_clip`` (via torchvision's fake-op registrations) dies with
``operator torchvision::nms does not exist``. When — and only when — the extension cannot be
loaded, we declare the two op schemas torchvision registers fakes for, so torchvision imports.
Only ``torchvision.ops.nms`` stays unusable, which scenesearch never calls. With a working
extension (any CUDA machine with a matching torchvision) this does nothing.
"""

from __future__ import annotations

import importlib.util
import os

_done = False
_lib = None  # keep the torch.library.Library alive for the life of the process


def ensure_torchvision_importable() -> bool:
    """Declare torchvision's op schemas if its C extension cannot load. Returns True if patched."""
    global _done, _lib
    if _done:
        return _lib is not None
    _done = True
    spec = importlib.util.find_spec("torchvision")
    if spec is None or not spec.origin:
        return False
    import torch

    pkg = os.path.dirname(spec.origin)
    ext = [f for f in os.listdir(pkg) if f.startswith("_C.") and f.endswith((".so", ".pyd"))]
    if not ext:
        return False
    try:
        torch.ops.load_library(os.path.join(pkg, ext[0]))
        return False  # the real extension works; nothing to do
    except OSError:
        pass
    try:
        torch.ops.torchvision.nms  # noqa: B018 - already defined by someone else
        return False
    except (AttributeError, RuntimeError):
        pass
    _lib = torch.library.Library("torchvision", "DEF")
    _lib.define("nms(Tensor dets, Tensor scores, float iou_threshold) -> Tensor")
    _lib.define("qnms(Tensor dets, Tensor scores, float iou_threshold) -> Tensor")
    return True
