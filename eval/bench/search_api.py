"""``bench search --concurrency-s S``: the web app's JSON API under concurrent clients on loopback."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

from scenesearch.eval.bench.common import (
    percentiles,
)
from scenesearch.eval.bench.search_data import TEXT_QUERIES


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def concurrency_test(index_dir: str, seconds: float, clients: int, label: str, genre: str,
                     log) -> dict[str, Any]:  # fmt: skip
    """Serve the index with the web app on loopback and hit its JSON API from ``clients``
    threads for ``seconds`` (a mix of plain, label-filtered and genre-filtered text queries)."""
    import urllib.request

    from gradio_client import Client

    port = free_port()
    env = dict(os.environ, GRADIO_ANALYTICS_ENABLED="False", SCENESEARCH_DEVICE="cpu")
    server_log = open(Path(index_dir).parent / "serve.log", "w")  # noqa: SIM115
    proc = subprocess.Popen(
        [sys.executable, "-m", "scenesearch.ui.cli", "serve", "--index", index_dir, "--host", "127.0.0.1",
         "--port", str(port)],
        cwd=str(Path(__file__).resolve().parents[2]), env=env, stdout=server_log,
        stderr=subprocess.STDOUT,
    )  # fmt: skip
    url = f"http://127.0.0.1:{port}/"
    try:
        t0 = time.perf_counter()
        while True:
            try:
                urllib.request.urlopen(url, timeout=2).read(100)
                break
            except OSError:
                if proc.poll() is not None or time.perf_counter() - t0 > 300:
                    raise RuntimeError(
                        f"the web app did not start (see {server_log.name})"
                    ) from None
                time.sleep(1)
        log(f"[concurrency] app up after {time.perf_counter() - t0:.1f} s; {clients} clients "
            f"for {seconds:g} s")  # fmt: skip
        lat: list[float] = []
        errors: list[str] = []
        counts = [0] * clients
        lock = threading.Lock()
        stop_at = time.perf_counter() + seconds

        def worker(w: int) -> None:
            c = Client(url, verbose=False)
            i = 0
            while time.perf_counter() < stop_at:
                q = TEXT_QUERIES[(w + i) % len(TEXT_QUERIES)]
                labs = [label] if i % 3 == 1 else []
                gens = [genre] if i % 3 == 2 else []
                t = time.perf_counter()
                try:
                    hits = c.predict(q, labs, gens, [], "", "", 10, None, "", "clean",
                                     api_name="/search")  # fmt: skip
                    ok = isinstance(hits, list) and len(hits) == 10
                    err = None if ok else f"short result list ({len(hits)})"
                except Exception as e:  # counted, never raised: the test reports errors
                    err = f"{type(e).__name__}: {str(e)[:120]}"
                dt = (time.perf_counter() - t) * 1000
                with lock:
                    if err:
                        errors.append(err)
                    else:
                        lat.append(dt)
                        counts[w] += 1
                i += 1

        threads = [threading.Thread(target=worker, args=(w,)) for w in range(clients)]
        t1 = time.perf_counter()
        for t in threads:
            t.start()
        for t in threads:
            t.join(timeout=seconds + 120)
        wall = time.perf_counter() - t1
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            proc.kill()
        server_log.close()
    return {
        "clients": clients,
        "seconds": round(wall, 1),
        "requests_ok": len(lat),
        "errors": len(errors),
        "error_examples": sorted(set(errors))[:5],
        "throughput_qps": round(len(lat) / wall, 2) if wall else 0.0,
        "latency": percentiles(lat),
        "mix": "text queries via gradio_client /search; 1/3 plain, 1/3 narrow label filter, "
        "1/3 broad genre filter; k=10",
    }
