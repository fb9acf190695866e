"""``scenesearch search`` through a running ``scenesearch serve``: the warm query path.

A cold ``scenesearch search`` pays for starting Python, importing torch and open_clip and loading
the index's model before its first (and only) query; the embedded index also admits one process
at a time, so while ``serve`` holds it a second process cannot open it at all. So ``serve`` writes
an endpoint file, ``serve.json``, into the index folder (its URL, pid and the index it serves) and
removes it when it stops; ``search`` reads it, and when that server is alive and serves the same
index, sends the query to it (Gradio's HTTP API, endpoint ``/search_cli``: one JSON request, one
JSON answer) instead of opening the index itself. A stale file (the server was killed) or a server
that does not answer within a second is ignored and the search runs locally. ``--no-server``
forces the local path.

Server side, :func:`handle_request` runs one request against the app's open engine; the answer
carries the hits and the result flags (mode, no good match, exhausted) so the CLI prints exactly
what a local search would. ``--facets`` adds the facet counts to the answer; ``--then`` asks
for "A then B" pairs instead of hits (:func:`add_work`). Errors come back as
``{"error": "one line"}``.
"""

from __future__ import annotations

import base64
import json
import os
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

from scenesearch.indexer.config import StoreConfig
from scenesearch.indexer.errors import ConfigError, InputError, ScenesearchError
from scenesearch.indexer.imageio import MAX_IMAGE_BYTES
from scenesearch.search.facets import facet_counts
from scenesearch.search.filters import SearchFilters
from scenesearch.search.hits import SearchResult, hit_from_dict
from scenesearch.search.temporal import (
    DEFAULT_DEPTH,
    DEFAULT_WITHIN_S,
    MAX_DEPTH,
    SequenceResult,
    ShotPair,
    Step,
    find_sequences,
)
from scenesearch.search.validate import named
from scenesearch.ui.common import CLI_NAMES

ENDPOINT_FILE = "serve.json"
API_NAME = "search_cli"
PROBE_TIMEOUT_S = 1.0  # a server that does not answer this fast is treated as absent
QUERY_TIMEOUT_S = 120.0


class ServerGone(Exception):
    """The server named by the endpoint file did not answer: search locally instead."""


# ------------------------------------------------------------------------------ endpoint file
def endpoint_path(index_dir: str) -> Path:
    return Path(index_dir) / ENDPOINT_FILE


def _identity(cfg: StoreConfig) -> dict[str, Any]:
    """What makes two configs the same index: the folder, and the server collection if any."""
    return {
        "index_dir": os.path.realpath(cfg.index_dir) if cfg.index_dir else "",
        "qdrant_url": cfg.qdrant_url or "",
        "collection": cfg.collection if cfg.qdrant_url else "",
    }


def write_endpoint(cfg: StoreConfig, url: str) -> Path | None:
    """Record that this process serves ``cfg``'s index at ``url`` (atomically). Returns the file,
    or None when the index folder cannot take it (the app works without it)."""
    if not cfg.index_dir or not os.path.isdir(cfg.index_dir):
        return None
    path = endpoint_path(cfg.index_dir)
    rec = {"url": url, "pid": os.getpid(), "started": time.time(), **_identity(cfg)}
    tmp = path.with_suffix(f".{os.getpid()}.tmp")
    try:
        tmp.write_text(json.dumps(rec))
        os.replace(tmp, path)
    except OSError:
        return None
    return path


def remove_endpoint(cfg: StoreConfig) -> None:
    """Remove the endpoint file if this process wrote it (never another server's)."""
    if not cfg.index_dir:
        return
    path = endpoint_path(cfg.index_dir)
    try:
        if json.loads(path.read_text()).get("pid") == os.getpid():
            path.unlink()
    except (OSError, ValueError):
        pass


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # exists, owned by someone else
        return True
    return True


def find_server(cfg: StoreConfig) -> str | None:
    """The URL of a live ``serve`` of this index, from its endpoint file; None without one."""
    if not cfg.index_dir:
        return None
    try:
        rec = json.loads(endpoint_path(cfg.index_dir).read_text())
    except (OSError, ValueError):
        return None
    if not isinstance(rec, dict) or not isinstance(rec.get("pid"), int):
        return None
    if any(rec.get(k) != v for k, v in _identity(cfg).items()) or not _pid_alive(rec["pid"]):
        return None
    url = str(rec.get("url") or "")
    return url if url.startswith("http://") else None


# ------------------------------------------------------------------------------ client
def build_request(
    text: str | None,
    image_path: str | None,
    like: str | None,
    filters,
    limit: int,
    offset: int = 0,
    per_movie: int | None = None,
    dedup: float | None = None,
    min_score: float | None = None,
) -> dict[str, Any]:
    """The JSON request for :func:`handle_request` (an image is sent as its file's bytes).
    :func:`add_work` adds ``--facets`` and ``--then`` to it."""
    return {
        "text": text,
        "image_b64": _image_b64(image_path),
        "like": like,
        "filters": filters.to_dict(),
        "limit": limit,
        "offset": offset,
        "per_movie": per_movie,
        "dedup": dedup,
        "min_score": min_score,
    }


def _image_b64(image_path: str | None) -> str | None:
    if not image_path:
        return None
    size = os.path.getsize(image_path)
    if size > MAX_IMAGE_BYTES:
        raise InputError(
            f"image {image_path} is {size / 2**20:.0f} MiB; at most {MAX_IMAGE_BYTES >> 20} MiB"
        )
    return base64.b64encode(Path(image_path).read_bytes()).decode("ascii")


def add_work(
    request: dict[str, Any],
    facets: bool = False,
    then: str | None = None,
    then_image: str | None = None,
    then_filters=None,
    within: float = DEFAULT_WITHIN_S,
    depth: int = DEFAULT_DEPTH,
) -> dict[str, Any]:
    """``request`` asking also for the facet counts, or (``then`` / ``then_image`` given) for
    "A then B" sequences instead of hits; the answer then carries ``facets`` / ``pairs``."""
    if facets:
        request["facets"] = True
    if then or then_image:
        request["then"] = {
            "text": then,
            "image_b64": _image_b64(then_image),
            "filters": then_filters.to_dict() if then_filters is not None else None,
            "within": within,
            "depth": depth,
        }
    return request


def _http(url: str, data: bytes | None, timeout: float) -> bytes:
    req = urllib.request.Request(url, data=data, method="POST" if data is not None else "GET")
    if data is not None:
        req.add_header("Content-Type", "application/json")
    with urllib.request.urlopen(req, timeout=timeout) as r:  # noqa: S310 - our own 127.0.0.1 URL
        return r.read()


def remote_search(url: str, request: dict[str, Any]) -> dict[str, Any]:
    """Run ``request`` on the server at ``url`` (Gradio's two-step HTTP call: post, then read
    the event stream). Raises :class:`ServerGone` when it does not answer, ScenesearchError for
    an error it reports."""
    base = url.rstrip("/") + f"/gradio_api/call/{API_NAME}"
    try:
        posted = _http(base, json.dumps({"data": [request]}).encode(), PROBE_TIMEOUT_S)
        event_id = json.loads(posted)["event_id"]
        stream = _http(f"{base}/{event_id}", None, QUERY_TIMEOUT_S).decode()
    except (urllib.error.URLError, OSError, ValueError, KeyError) as e:
        raise ServerGone(str(e)) from e
    event, data = None, None
    for line in stream.splitlines():
        if line.startswith("event:"):
            event = line[6:].strip()
        elif line.startswith("data:") and event in ("complete", "error"):
            data = line[5:].strip()
    if event != "complete" or data is None:
        raise ScenesearchError(f"the running server at {url} could not run the search: {data}")
    answer = json.loads(data)[0]
    if not isinstance(answer, dict):
        raise ScenesearchError(f"unexpected answer from {url}")
    if answer.get("error"):
        raise ConfigError(answer["error"])
    return answer


def api_hit(d: dict) -> dict:
    """A hit dict for the JSON API (this route and the app's): ``path`` is renamed
    ``movie_path``, because gradio_client takes any dict with a ``path`` key for a file to
    download (it would fetch the whole movie)."""
    out = {k: v for k, v in d.items() if k != "path"}
    out["movie_path"] = d.get("path", "")
    return out


def hits_from_answer(answer: dict[str, Any]):
    """The answer's hits as :class:`search.Hit` objects (unknown keys ignored)."""
    return [
        hit_from_dict({**d, "path": d.get("movie_path", d.get("path", ""))})
        for d in answer.get("hits") or []
    ]


def sequences_from_answer(answer: dict[str, Any]):
    """The answer's "A then B" pairs as a :class:`search.temporal.SequenceResult` of
    :class:`~search.temporal.ShotPair` (as a local ``find_sequences`` returns)."""
    pairs = []
    for p in answer.get("pairs") or []:
        first, then = hits_from_answer({"hits": [p["first"], p["then"]]})
        pairs.append(ShotPair(first, then, float(p["score"]), float(p["gap_s"])))
    return SequenceResult(
        pairs, bool(answer.get("exact", True)), int(answer.get("depth") or 0), answer.get("bound")
    )


def result_from_answer(answer: dict[str, Any]):
    """(SearchResult, random_weights) from a server answer."""
    res = SearchResult(
        hits_from_answer(answer),
        answer.get("mode", "text"),
        no_good_match=bool(answer.get("no_good_match")),
        best_score=answer.get("best_score"),
        exhausted=bool(answer.get("exhausted", True)),
    )
    return res, bool(answer.get("random_weights"))


# ------------------------------------------------------------------------------ server
def handle_request(engine, request: dict[str, Any]) -> dict[str, Any]:
    """Run one CLI request on an open :class:`search.SearchEngine`; errors become
    ``{"error": "one line"}``."""
    try:
        if not isinstance(request, dict):
            raise ConfigError("the request must be a JSON object")
        flt = SearchFilters.from_dict(request.get("filters") or {})
        image = _image(request)
        if request.get("then"):
            return _sequences(engine, request, flt, image)
        res = engine.search(
            text=request.get("text") or None,
            image=image,
            like=request.get("like") or None,
            filters=flt,
            limit=int(request.get("limit") or 10),
            offset=int(request.get("offset") or 0),
            per_movie=request.get("per_movie"),
            dedup=request.get("dedup"),
            min_score=request.get("min_score"),
        )
        facets = facet_counts(engine, flt).to_dict() if request.get("facets") else None
    except (ScenesearchError, ValueError, TypeError) as e:
        return _error(e)
    answer = {
        "hits": [api_hit(h.to_dict()) for h in res.hits],
        "mode": res.mode,
        "no_good_match": res.no_good_match,
        "best_score": res.best_score,
        "exhausted": res.exhausted,
        "random_weights": engine.random_weights,
        "empty": engine.is_empty,
    }
    if facets is not None:
        answer["facets"] = facets
    return answer


def _error(e: Exception) -> dict[str, str]:
    e = named(e, CLI_NAMES)  # the CLI's route: its words
    return {"error": (str(e).strip().splitlines() or [type(e).__name__])[0]}


def _image(step: dict[str, Any]) -> bytes | None:
    if not step.get("image_b64"):
        return None
    image = base64.b64decode(step["image_b64"], validate=True)
    if len(image) > MAX_IMAGE_BYTES:
        raise InputError(f"image too large: at most {MAX_IMAGE_BYTES >> 20} MiB")
    return image


def _sequences(engine, request: dict[str, Any], flt: SearchFilters, image) -> dict[str, Any]:
    """The ``then`` part of a request: "A then B" pairs (search/temporal.py), as the CLI's
    ``--then`` runs them locally."""
    then = request["then"]
    if not isinstance(then, dict):
        raise ConfigError("'then' must be a JSON object")
    fb = SearchFilters.from_dict(then["filters"]) if then.get("filters") is not None else flt
    depth = int(then.get("depth") or DEFAULT_DEPTH)
    res = find_sequences(
        engine,
        Step(request.get("text") or None, image, flt),
        Step(then.get("text") or None, _image(then), fb),
        within_s=float(then.get("within", DEFAULT_WITHIN_S)),
        limit=int(request.get("limit") or 10),
        depth=depth,
        max_depth=max(depth, MAX_DEPTH),
    )
    pairs = [
        {
            "score": p.score,
            "gap_s": p.gap_s,
            "first": api_hit(p.first.to_dict()),
            "then": api_hit(p.then.to_dict()),
        }  # fmt: skip
        for p in res.pairs
    ]
    return {
        "pairs": pairs,
        "exact": res.exact,
        "depth": res.depth,
        "bound": res.bound,
        "random_weights": engine.random_weights,
        "empty": engine.is_empty,
    }
