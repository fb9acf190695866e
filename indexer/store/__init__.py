"""Vector store backends behind one interface (:class:`ShotStore`).

``edge``: qdrant-edge-py, a real Qdrant shard in a local folder (the embedded default).
``server``: qdrant-client against a Qdrant server URL (or ``:memory:``, qdrant-client's exact
brute-force local mode, used as the reference in tests).
"""

from __future__ import annotations

from indexer.config import StoreConfig
from indexer.errors import ConfigError
from indexer.store.base import (  # noqa: F401 - re-exported
    SCHEMA_VERSION,
    VECTOR_CLIP,
    VECTOR_SCENES,
    CollectionSpec,
    Filter,
    HasId,
    MatchAny,
    Range,
    SearchParams,
    ShotStore,
    StoredRecord,
    StorePoint,
    TopLabel,
    VectorSpec,
    matches,
)

BACKENDS = ("edge", "server")


def open_store(cfg: StoreConfig) -> ShotStore:
    """Open (not create) the store an index config names: a server when ``qdrant_url`` is set
    (``:memory:`` for qdrant-client's in-process mode), otherwise the embedded shard under
    ``index_dir``."""
    if cfg.qdrant_url:
        from indexer.store.server import ServerStore

        return ServerStore(cfg.qdrant_url, api_key=cfg.api_key, collection=cfg.collection)
    if not cfg.index_dir:
        raise ConfigError("no index folder given (--index DIR)")
    import os

    from indexer.diskspace import OPEN_RESERVE, require_free
    from indexer.store.edge import EdgeStore

    if os.path.isdir(cfg.index_dir):  # opening allocates even to read: see indexer/diskspace.py
        require_free(cfg.index_dir, OPEN_RESERVE, "opening the index")
    return EdgeStore(cfg.index_dir)
