"""The catalog of an index: what it holds and how it may be changed, without a model.

Index metadata (how an index was built, checked whenever it is reopened), the indexing lock the
web app reads, opening an index's store for writing, writing one movie as a unit, movie lookup by
user reference and the ``info`` summary. Nothing here loads the encoder, so the CLI's ``remove``
and ``info`` and the web app use it directly.
"""

from __future__ import annotations

import contextlib
import fcntl
import logging
import os
import shutil
from collections.abc import Iterator
from datetime import datetime, timezone
from pathlib import Path

from scenesearch.indexer import __version__
from scenesearch.indexer.config import StoreConfig
from scenesearch.indexer.errors import (
    IndexBusyError,
    IndexMismatchError,
)
from scenesearch.indexer.store import (
    SCHEMA_VERSION,
    CollectionSpec,
    Filter,
    MatchAny,
    ShotStore,
    StorePoint,
    VectorSpec,
    open_store,
)
from scenesearch.indexer.thumbnails import thumbs_dir

log = logging.getLogger(__name__)

UPSERT_BATCH = 256


# ------------------------------------------------------------------------------ index metadata
def index_meta(encoder, labeler, sample=None) -> dict:
    """What an index records about how it was built (checked whenever it is reopened); with
    ``sample`` (a SampleConfig) also the frame sampling and whether frame vectors are kept."""
    from scenesearch.indexer.sampling import sampling_meta  # lazy: decoders and detectors

    sampled = sampling_meta(sample) if sample is not None else {}
    spec = encoder.spec
    tax = labeler.taxonomy
    return {
        **sampled,
        "schema_version": SCHEMA_VERSION,
        "model": spec.name,
        "pretrained": spec.pretrained,
        "model_id": spec.model_id,
        "embed_dim": spec.embed_dim,
        "model_config_path": spec.config_path,
        "weights_path": spec.weights_path,
        "taxonomy": {"source": tax.source, "sha": tax.sha, "labels": list(tax.labels)},
        "prompt": labeler.cfg.prompt,
        "logit_scale": labeler.cfg.logit_scale,
        # how many (label, score) pairs each shot keeps: with it, "any of the top k" filters can
        # use the flat top_labels keyword list (see SearchEngine.build_filter)
        "top_k": labeler.cfg.top_k,
        "created": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "scenesearch_version": __version__,
    }


def check_meta(found: dict, wanted: dict) -> None:
    """Refuse to add to (or query) an index built with another model, taxonomy or prompt."""
    if found.get("schema_version") != wanted["schema_version"]:
        raise IndexMismatchError(
            f"index schema v{found.get('schema_version')} ≠ this scenesearch's v{SCHEMA_VERSION}; "
            "re-index into a new folder"
        )
    for key, what in (("model_id", "model"), ("embed_dim", "embedding size"), ("prompt", "prompt")):
        if found.get(key) != wanted[key]:
            raise IndexMismatchError(
                f"index was built with {what} {found.get(key)!r}, not {wanted[key]!r}; use the "
                "same options or a new --index folder"
            )
    if "top_k" in found and found["top_k"] != wanted["top_k"]:
        raise IndexMismatchError(
            f"index keeps the top {found['top_k']} labels per shot, not {wanted['top_k']}; use the "
            "same label settings or a new --index folder"
        )
    if found["taxonomy"]["sha"] != wanted["taxonomy"]["sha"]:
        raise IndexMismatchError(
            f"index was built with taxonomy {found['taxonomy']['source']!r} "
            f"({len(found['taxonomy']['labels'])} labels), not {wanted['taxonomy']['source']!r}"
        )


# ------------------------------------------------------------------------------ locking
@contextlib.contextmanager
def indexing_lock(index_dir: str) -> Iterator[None]:
    """Exclusive ``.indexing.lock`` in the index folder while a run writes (the web app reads it
    to say "being indexed elsewhere"); a second indexer fails at once with IndexBusyError."""
    Path(index_dir).mkdir(parents=True, exist_ok=True)
    path = os.path.join(index_dir, ".indexing.lock")
    f = open(path, "a+")  # noqa: SIM115 - held open for the whole run, closed below
    try:
        fcntl.flock(f, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError as e:
        f.close()
        raise IndexBusyError(f"index {index_dir} is being indexed by another process") from e
    try:
        f.seek(0)
        f.truncate()
        f.write(f"{os.getpid()}\n")
        f.flush()
        yield
    finally:
        fcntl.flock(f, fcntl.LOCK_UN)
        f.close()


def is_being_indexed(index_dir: str) -> bool:
    """True while another process holds the indexing lock of ``index_dir``."""
    path = os.path.join(index_dir, ".indexing.lock")
    if not os.path.exists(path):
        return False
    with open(path, "a+") as f:
        try:
            fcntl.flock(f, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            return True
        fcntl.flock(f, fcntl.LOCK_UN)
    return False


def store_movie(store: ShotStore, record: dict, points: list[StorePoint]) -> None:
    """Write one movie as a unit: its old points deleted, the new ones upserted and flushed, and
    only then its state record (``status`` done) — a run killed at any moment never leaves
    duplicates, and a movie marked done has all its points."""
    movie_id = record["movie_id"]
    # replace, never duplicate: drop whatever an interrupted or older run left for this movie
    store.delete(Filter(must=(MatchAny("movie_id", (movie_id,)),)))
    for i in range(0, len(points), UPSERT_BATCH):
        store.upsert(points[i : i + UPSERT_BATCH])
    store.flush()
    store.put_movie(record)


def remove_movie(store: ShotStore, index_dir: str, movie_id: str) -> None:
    """Delete a movie's points, its state record and its thumbnails (under ``index_dir``)."""
    store.delete(Filter(must=(MatchAny("movie_id", (movie_id,)),)))
    store.delete_movie_record(movie_id)
    store.flush()
    shutil.rmtree(thumbs_dir(index_dir, movie_id), ignore_errors=True)


def open_index_store(cfg: StoreConfig, meta: dict, dims: list[VectorSpec]) -> ShotStore:
    """Open the store ``cfg`` names for writing: create it (vectors ``dims``, metadata ``meta``)
    when new, else check that it was built with the same model, taxonomy and prompt."""
    store = open_store(cfg)
    try:
        found = store.get_meta() if store.exists() else None
        if found is None:
            store.create(CollectionSpec(dims))
            store.set_meta(meta)
        else:
            check_meta(found, meta)
            if found.get("frame_vectors") != meta.get("frame_vectors"):
                # An index keeps one layout: every shot has frame vectors or none does.
                log.warning("index %s %s per-frame vectors: new shots are stored the same way",
                            cfg.index_dir or cfg.qdrant_url,
                            "has" if found.get("frame_vectors") else "was built without")  # fmt: skip
            meta["frame_vectors"] = found.get("frame_vectors")
    except BaseException:
        store.close()
        raise
    return store


# ------------------------------------------------------------------------------ other commands
def resolve_movies(store: ShotStore, refs: list[str]) -> tuple[list[dict], list[str]]:
    """Match user references (movie id, title, file path or file name) to movie records."""
    states = store.get_movies()
    found, missing = [], []
    for ref in refs:
        rp = str(Path(ref).expanduser().resolve()) if os.path.exists(ref) else None
        hits = [
            s
            for s in states.values()
            if ref in (s["movie_id"], s.get("title"), Path(s.get("path", "")).name)
            or (rp and s.get("path") == rp)
        ]
        if hits:
            found.extend(h for h in hits if h not in found)
        else:
            missing.append(ref)
    return found, missing


def index_info(store: ShotStore) -> dict:
    """What an index holds: counts, model, taxonomy, label histogram (clean labels)."""
    meta = store.get_meta() if store.exists() else None
    if not meta:
        return {"movies": 0, "shots": 0, "model": None, "pretrained": None, "labels": {}}
    movies = store.get_movies()
    labels = store.facet("labels", limit=len(meta["taxonomy"]["labels"]))
    return {
        "movies": sum(1 for m in movies.values() if m.get("status") == "done"),
        "shots": store.count(),
        "model": meta["model"],
        "pretrained": meta["pretrained"],
        "model_id": meta["model_id"],
        "random_weights": meta["pretrained"] == "random",
        "taxonomy": meta["taxonomy"]["source"],
        "n_labels": len(meta["taxonomy"]["labels"]),
        "prompt": meta["prompt"],
        "labels": dict(sorted(labels.items(), key=lambda kv: (-kv[1], kv[0]))),
        "movie_list": [
            {
                k: m.get(k)
                for k in ("movie_id", "title", "year", "shots", "duration_s", "path", "truncated")
            }
            for m in sorted(movies.values(), key=lambda m: str(m.get("title")))
        ],
    }
