"""Vector store backends behind one interface (:class:`ShotStore`).

``edge``: qdrant-edge-py, a real Qdrant shard in a local folder (the embedded default).
``server``: qdrant-client against a Qdrant server URL (or ``:memory:``, qdrant-client's exact
brute-force local mode, used as the reference in tests).
"""

from __future__ import annotations

from scenesearch.indexer.config import StoreConfig
from scenesearch.indexer.errors import ConfigError
from scenesearch.indexer.store.base import (  # noqa: F401 - re-exported
    SCHEMA_VERSION,
    VECTOR_CLIP,
    VECTOR_FRAMES,
    VECTOR_SCENES,
    CollectionSpec,
    Filter,
    HasId,
    MatchAny,
    Range,
    Rescore,
    SearchParams,
    ShotStore,
    StoredRecord,
    StorePoint,
    TopLabel,
    VectorSpec,
    matches,
)


def open_store(cfg: StoreConfig, *, tuning=None) -> ShotStore:
    """Open (not create) the store an index config names: a server when ``qdrant_url`` is set
    (``:memory:`` for qdrant-client's in-process mode), otherwise the embedded shard under
    ``index_dir``. ``tuning`` (an ``edge.EdgeTuning``, for benchmarks) sets the embedded shard's
    index thresholds when it is created; a server collection ignores it."""
    cluster = {
        "shard_number": getattr(cfg, "shard_number", None),
        "replication_factor": getattr(cfg, "replication_factor", None),
        "write_consistency_factor": getattr(cfg, "write_consistency_factor", None),
    }
    for key, value in cluster.items():
        if value is not None and (not isinstance(value, int) or value < 1):
            raise ConfigError(
                f"--{key.replace('_', '-')} must be a whole number ≥ 1, not {value!r}"
            )
        if value is not None and not cfg.qdrant_url:
            raise ConfigError(
                f"--{key.replace('_', '-')} applies to a Qdrant server collection (--qdrant-url)"
            )
    rf, wcf = cluster["replication_factor"], cluster["write_consistency_factor"]
    if wcf is not None and wcf > (rf or 1):
        raise ConfigError(
            f"--write-consistency-factor {wcf} exceeds the replication factor {rf or 1}: no "
            "write could ever be acknowledged"
        )
    if cfg.qdrant_url:
        from scenesearch.indexer.store.server import ServerStore

        return ServerStore(
            cfg.qdrant_url, api_key=cfg.api_key, collection=cfg.collection, **cluster
        )
    if not cfg.index_dir:
        raise ConfigError("no index folder given (--index DIR)")
    import os

    from scenesearch.indexer.diskspace import OPEN_RESERVE, require_free
    from scenesearch.indexer.store.edge import EdgeStore

    if os.path.isdir(cfg.index_dir):  # opening allocates even to read: see indexer/diskspace.py
        require_free(cfg.index_dir, OPEN_RESERVE, "opening the index")
    return EdgeStore(cfg.index_dir, tuning=tuning)
