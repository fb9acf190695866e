"""scenesearch: shot-level search over movies.

The project keeps one top-level folder per stage of work (``indexer/``, ``search/``, ``ui/``,
``eval/``); installed, they are this package's sub-packages (``scenesearch.indexer`` …, mapped in
``pyproject.toml`` with setuptools' ``package-dir``), so site-packages gains one name only.

Run from a source checkout without installing (``PYTHONPATH=.``), this file is found first; the
lines below then add the checkout's root to the package path so ``scenesearch.indexer`` resolves
to ``./indexer``. Installed (wheel or editable), the root holds no ``pyproject.toml`` beside
``indexer/`` and nothing is added.
"""

import os as _os

__version__ = "0.1.0"

_root = _os.path.dirname(_os.path.dirname(_os.path.abspath(__file__)))
if _os.path.isfile(_os.path.join(_root, "pyproject.toml")) and _os.path.isdir(
    _os.path.join(_root, "indexer")
):
    __path__.append(_root)  # noqa: F821 (the package's own __path__)
