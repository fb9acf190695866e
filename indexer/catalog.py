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
from collections.abc import Iterator, Sequence
from datetime import datetime, timezone
from pathlib import Path

from scenesearch.indexer import __version__
from scenesearch.indexer.config import SampleConfig, StoreConfig
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
    VectorSpec,
    open_store,
)
from scenesearch.indexer.stored import IndexMeta, MovieRecord, ShotRecord
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
    return IndexMeta(
        **sampled,
        schema_version=SCHEMA_VERSION,
        **spec.to_meta(),  # model, weights, precision, preprocessing, frame scale
        taxonomy={"source": tax.source, "sha": tax.sha, "labels": list(tax.labels)},
        prompt=labeler.cfg.prompt,
        logit_scale=labeler.cfg.logit_scale,
        top_k=labeler.cfg.top_k,
        created=datetime.now(timezone.utc).isoformat(timespec="seconds"),
        scenesearch_version=__version__,
        absent=frozenset() if sampled else frozenset({"sampling", "frame_vectors"}),
    ).to_dict()


def check_meta(found: dict, wanted: dict) -> None:
    """Refuse to add to (or query) an index built with another model, taxonomy or prompt
    (``found``: the index's meta; ``wanted``: this run's, both as stored)."""
    f, w = IndexMeta.from_dict(found), IndexMeta.from_dict(wanted)
    if f.schema_version != w.schema_version:
        raise IndexMismatchError(
            f"index schema v{f.schema_version} ≠ this scenesearch's v{SCHEMA_VERSION}; "
            "re-index into a new folder"
        )
    for key, what in (("model_id", "model"), ("embed_dim", "embedding size"), ("prompt", "prompt")):
        if getattr(f, key) != getattr(w, key):
            raise IndexMismatchError(
                f"index was built with {what} {getattr(f, key)!r}, not {getattr(w, key)!r}; use "
                "the same options or a new --index folder"
            )
    if "top_k" not in f.absent and f.top_k != w.top_k:  # older indexes do not record it
        raise IndexMismatchError(
            f"index keeps the top {f.top_k} labels per shot, not {w.top_k}; use the "
            "same label settings or a new --index folder"
        )
    if f.taxonomy["sha"] != w.taxonomy["sha"]:
        raise IndexMismatchError(
            f"index was built with taxonomy {f.taxonomy['source']!r} "
            f"({len(f.taxonomy['labels'])} labels), not {w.taxonomy['source']!r}"
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


def store_movie(store: ShotStore, record: MovieRecord, shots: Sequence[ShotRecord]) -> None:
    """Write one movie as a unit: its old points deleted, its shots' points upserted and flushed,
    and only then its state record (``status`` done) — a run killed at any moment never leaves
    duplicates, and a movie marked done has all its points."""
    movie_id = record.movie_id
    points = [s.to_point() for s in shots]
    # replace, never duplicate: drop whatever an interrupted or older run left for this movie
    store.delete(Filter(must=(MatchAny("movie_id", (movie_id,)),)))
    for i in range(0, len(points), UPSERT_BATCH):
        store.upsert(points[i : i + UPSERT_BATCH])
    store.flush()
    store.put_movie(record.to_dict())


def remove_movie(store: ShotStore, index_dir: str, movie_id: str) -> None:
    """Delete a movie's points, its state record and its thumbnails (under ``index_dir``)."""
    store.delete(Filter(must=(MatchAny("movie_id", (movie_id,)),)))
    store.delete_movie_record(movie_id)
    store.flush()
    shutil.rmtree(thumbs_dir(index_dir, movie_id), ignore_errors=True)


SAMPLING_KEYS = ("frame_interval_s", "max_frames_per_shot", "edge_frame_s")


def adopt_sampling(found: dict, meta: dict, sample: SampleConfig | None, where: str) -> None:
    """An index samples every movie's frames the same way: when the index ``found`` records a
    duration-aware sampling other than this run's ``sample`` (a SampleConfig, changed in place),
    new movies are sampled as the index was (one warning), so one index never mixes samplings.
    An index that records no sampling (built before sampling was recorded) is left alone."""
    rec = found.get("sampling")
    if not rec or sample is None:
        return
    old = {k: rec.get(k) or None for k in SAMPLING_KEYS}  # no edge key: built without them
    new = {k: getattr(sample, k) or None for k in SAMPLING_KEYS}
    if old == new:
        return
    desc = ", ".join(f"{k}={v}" for k, v in old.items())
    log.warning("index %s samples frames with %s: new movies are sampled the same way "
                "(re-index into a new folder to change it)", where, desc)  # fmt: skip
    sample.frame_interval_s = old["frame_interval_s"]
    sample.max_frames_per_shot = old["max_frames_per_shot"] or sample.max_frames_per_shot
    sample.edge_frame_s = old["edge_frame_s"] or 0.0
    meta["sampling"] = dict(rec)


def open_index_store(
    cfg: StoreConfig, meta: dict, dims: list[VectorSpec], sample: SampleConfig | None = None
) -> ShotStore:
    """Open the store ``cfg`` names for writing: create it (vectors ``dims``, metadata ``meta``)
    when new, else check that it was built with the same model, taxonomy and prompt, and sample
    new movies the way it records (``sample``, a SampleConfig, adopts it: :func:`adopt_sampling`)."""
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
            adopt_sampling(found, meta, sample, cfg.index_dir or cfg.qdrant_url)
    except BaseException:
        store.close()
        raise
    return store


# ------------------------------------------------------------------------------ other commands
def resolve_movies(store: ShotStore, refs: list[str]) -> tuple[list[MovieRecord], list[str]]:
    """Match user references (movie id, title, file path or file name) to movie records;
    returns (the records found, the references that match none)."""
    states = [MovieRecord.from_dict(s) for s in store.get_movies().values()]
    found: list[MovieRecord] = []
    missing: list[str] = []
    for ref in refs:
        rp = str(Path(ref).expanduser().resolve()) if os.path.exists(ref) else None
        hits = [
            s
            for s in states
            if ref in (s.movie_id, s.title, Path(s.path or "").name) or (rp and s.path == rp)
        ]
        if hits:
            found.extend(h for h in hits if h not in found)
        else:
            missing.append(ref)
    return found, missing


def index_info(store: ShotStore) -> dict:
    """What an index holds: counts, model, taxonomy, label histogram (clean labels)."""
    stored = store.get_meta() if store.exists() else None
    if not stored:
        return {"movies": 0, "shots": 0, "model": None, "pretrained": None, "labels": {}}
    meta = IndexMeta.from_dict(stored)
    movies = store.get_movies()
    labels = store.facet("labels", limit=len(meta.taxonomy["labels"]))
    return {
        "movies": sum(1 for m in movies.values() if MovieRecord.from_dict(m).status == "done"),
        "shots": store.count(),
        "model": meta.model,
        "pretrained": meta.pretrained,
        "model_id": meta.model_id,
        "random_weights": meta.pretrained == "random",
        "taxonomy": meta.taxonomy["source"],
        "n_labels": len(meta.taxonomy["labels"]),
        "prompt": meta.prompt,
        "labels": dict(sorted(labels.items(), key=lambda kv: (-kv[1], kv[0]))),
        "movie_list": [
            {
                k: m.get(k)
                for k in ("movie_id", "title", "year", "shots", "duration_s", "path", "truncated")
            }
            for m in sorted(movies.values(), key=lambda m: str(m.get("title")))
        ],
    }
