"""What one ``scenesearch search`` costs: a cold command (Python start, imports, opening the
index, loading the index's model, one query) against the same command answered by a running
``scenesearch serve`` of the index (ui/remote.py), measured in one run on one index.

    python scripts/cli_query_cost.py --index demo-index --runs 5 \
        --out eval/results/cli-query-cost

Writes report.json and report.md (with the machine description) into --out.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import socket
import statistics
import subprocess
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from scenesearch.eval.bench.common import (  # noqa: E402
    exclusive_bench,
    machine_info,
    machine_md,
    md_table,
    now_iso,
    write_report,  # noqa: E402
)


def _cli(*argv: str) -> float:
    t0 = time.perf_counter()
    subprocess.run([sys.executable, "-m", "scenesearch.ui.cli", *argv], check=True, cwd=REPO,
                   stdout=subprocess.DEVNULL, env=_env())  # fmt: skip
    return time.perf_counter() - t0


def _env() -> dict:
    return {**os.environ, "PYTHONPATH": str(REPO) + os.pathsep + os.environ.get("PYTHONPATH", "")}


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--index", required=True)
    p.add_argument("--query", default="a forest with trees and a river")
    p.add_argument("--runs", type=int, default=5)
    p.add_argument("--out", default=str(REPO / "eval" / "results" / "cli-query-cost"))
    args = p.parse_args()
    from scenesearch.indexer.config import StoreConfig
    from scenesearch.search.engine import SearchFilters
    from scenesearch.ui import remote

    meta = json.loads((Path(args.index) / "index.json").read_text())
    q = ["search", "--index", args.index, args.query, "-k", "5"]
    with exclusive_bench(print):
        machine = machine_info()
        cold = [_cli(*q, "--no-server") for _ in range(args.runs)]
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            port = s.getsockname()[1]
        t0 = time.perf_counter()
        server = subprocess.Popen(
            [sys.executable, "-m", "scenesearch.ui.cli", "serve", "--index", args.index, "--port", str(port)],
            cwd=REPO, env=_env(), stdout=subprocess.DEVNULL,
        )  # fmt: skip
        cfg = StoreConfig(index_dir=args.index)
        try:
            while remote.find_server(cfg) is None:
                if server.poll() is not None or time.perf_counter() - t0 > 180:
                    raise SystemExit("serve did not start")
                time.sleep(0.1)
            startup = time.perf_counter() - t0
            url = remote.find_server(cfg)
            req = remote.build_request(args.query, None, None, SearchFilters(), 5)
            remote.remote_search(url, req)  # first query: warms the text tower's caches
            warm = [_cli(*q) for _ in range(args.runs)]
            rt = []
            for _ in range(args.runs * 4):
                t1 = time.perf_counter()
                remote.remote_search(url, req)
                rt.append(time.perf_counter() - t1)
        finally:
            server.send_signal(signal.SIGTERM)
            server.wait(timeout=60)
    med = statistics.median
    report = {
        "created": now_iso(),
        "machine": machine,
        "index": {"path": str(args.index), "model_id": meta["model_id"]},
        "query": args.query,
        "runs": args.runs,
        "cold_cli_s": cold,
        "serve_startup_s": startup,
        "cli_through_serve_s": warm,
        "request_round_trip_s": rt,
        "median": {
            "cold_cli_s": med(cold),
            "cli_through_serve_s": med(warm),
            "request_round_trip_s": med(rt),
        },  # fmt: skip
    }
    rows = [
        ["`scenesearch search --no-server` (cold: start, imports, open, model, query)",
         med(cold), min(cold), max(cold)],
        ["`scenesearch search` through a running `serve`", med(warm), min(warm), max(warm)],
        ["the JSON request alone (client already running)", med(rt), min(rt), max(rt)],
    ]  # fmt: skip
    md = "\n\n".join([
        "# Per-query cost of `scenesearch search`: cold vs through `serve`",
        f"Index `{args.index}` ({meta['model_id']}), query {args.query!r}, -k 5; "
        f"{args.runs} runs of each command, {4 * args.runs} requests; both sides in one run. "
        f"The server took {startup:.1f} s to start (once). Created {report['created']}.",
        md_table(["what", "median s", "min s", "max s"], rows),
        f"Command: `python scripts/cli_query_cost.py --index {args.index} --runs {args.runs}`",
        machine_md(machine),
    ])  # fmt: skip
    out = write_report(args.out, report, md)
    print((out / "report.md").read_text())
    return 0


if __name__ == "__main__":
    sys.exit(main())
