"""The Markdown report of ``scenesearch bench stills`` (see eval/bench/stills.py)."""

from __future__ import annotations

from scenesearch.eval.bench.common import RANDOM_WEIGHTS_NOTE, machine_md, md_table, target_rows


def markdown(report: dict) -> str:
    c, ix, sc = report["config"], report["indexing"], report["scores"]
    heads = ["", "stills", "mean of 3 @1", "new @1", "new (exact rescore) @1", "brute force @1",
             "mean of 3 @5", "new @5", "brute force @5"]  # fmt: skip

    def row(name, d):
        return [name, d["stills"], d["mean3_hit1"], d["frames_hit1"], d.get("frames_exact_hit1"),
                d["brute_hit1"], d["mean3_hit5"], d["frames_hit5"], d["brute_hit5"]]  # fmt: skip

    stride, long_stride = c["brute_stride"], c.get("long_brute_stride") or c["brute_stride"]

    def nth(n: int) -> str:
        return "every decoded frame" if n == 1 else f"every {n}th decoded frame"

    brute_what = nth(stride) + (
        f" ({nth(long_stride)} of {report['indexing']['long_film']})"
        if long_stride != stride
        else ""
    )
    cmd = f"scenesearch bench stills --brute-stride {stride}" + (
        f" --long-brute-stride {long_stride}" if long_stride != stride else ""
    )
    if c.get("long_still_every_s"):
        cmd += f" --long-still-every {c['long_still_every_s']:g}"
    if c["repeats"] != 2:
        cmd += f" --repeats {c['repeats']}"
    if not c.get("exact_rescore", True):
        cmd += " --no-exact-rescore"
    lat = report["query_latency"]
    parts = [
        "# Stills benchmark: find the shot a screenshot came from",
        "",
        f"Started {report['started']}, finished {report['finished']}. Command: "
        f"`{cmd}`. Model {c['model']} with "
        f"`--pretrained {c['pretrained']}`. {RANDOM_WEIGHTS_NOTE}",
        "",
        "**The machine was shared with other jobs while this ran** (see the load average "
        "below): absolute times are noisy; the ratios compare schemes measured "
        "in this same run, the long film's indexing timed alternately, best of "
        f"{c['repeats']} runs per scheme.",
        "",
        f"A still every {c['still_every_s']:g} s of each film"
        + (
            f" ({c['long_still_every_s']:g} s in {report['indexing']['long_film']}, to fit the "
            "time the shared machine left)"
            if c.get("long_still_every_s")
            else ""
        )
        + ", decoded at full size, scaled to "
        f"{c['still_width']} px wide and saved as JPEG q={c['still_quality']}, is an image "
        "query restricted to its film; a hit is the shot containing the still's frame. "
        "Methods: **mean of 3** — the index as built before (one vector per shot, the mean of 3 "
        "frames); **new** — the new default (duration-aware frames; the 256 nearest shots by "
        "mean vector rescored by their best frame, MAX_SIM, in the store); **new (exact "
        "rescore)** — the same index with every shot of the film scored by MAX_SIM (checks the "
        f"prefetch); **brute force** — the best of {brute_what}'s embeddings per shot, exact "
        "(the upper bound).",
        "",
        "## Targets",
        md_table(["target", "measured", "", "note"], target_rows(report["targets"])),
        "",
        "## Pooled and by shot length",
        md_table(
            heads,
            [row("pooled", sc["pooled"])]
            + [row(f"shots {k}", v) for k, v in sc["by_length"].items()],
        ),
        "",
        "## By film",
        md_table(heads, [row(k, v) for k, v in sc["by_film"].items()]),
        "",
        "## Indexing, index size, queries",
        md_table(
            ["", "mean of 3 (before)", "new default"],
            [
                [
                    f"{ix['long_film']} wall s (best of {c['repeats']})",
                    ix["best"]["mean3"]["wall_s"],
                    ix["best"]["frames"]["wall_s"],
                ],
                [
                    f"{ix['long_film']} images embedded",
                    ix["best"]["mean3"]["images"],
                    ix["best"]["frames"]["images"],
                ],
                [
                    "other films: wall s / images",
                    *(
                        f"{ix['other_films'][s]['wall_s']} / {ix['other_films'][s]['images']}"
                        if ix["other_films"]
                        else "—"
                        for s in ("mean3", "frames")
                    ),
                ],
                ["index shard on disk (MiB)", ix["disk_mib"]["mean3"], ix["disk_mib"]["frames"]],
                [
                    "resident memory of the opened index (MiB, after 50 queries)",
                    ix["memory_mib"]["mean3"]["after_queries_mib"],
                    ix["memory_mib"]["frames"]["after_queries_mib"],
                ],
                [
                    "query p50 / p95 ms (store search + match time, film filter)",
                    f"{lat['mean3']['p50_ms']} / {lat['mean3']['p95_ms']}",
                    f"{lat['frames']['p50_ms']} / {lat['frames']['p95_ms']}",
                ],
            ],
        ),  # fmt: skip
        "",
        f"Wall time ratio new / before: **{ix['wall_ratio']:.2f}×** (runs: "
        + "; ".join(
            f"{s}: " + ", ".join(str(r["wall_s"]) for r in runs) for s, runs in ix["runs"].items()
        )
        + ")."  # fmt: skip
        + (
            f" match_s of correct top hits is {report['match_s_error'].get('p50_ms', 0) / 1000:.2f}"
            f" s (median) / {report['match_s_error'].get('p95_ms', 0) / 1000:.2f} s (p95) from "
            "the still's time."
            if report["match_s_error"]
            else ""
        ),
        "",
        "## Where the new scheme misses and brute force hits",
        "Per still: the true shot, the shot returned first, the still's distance (s) from the "
        "true shot's nearest sampled frame and from the shot's nearest edge, and cosines with "
        "the best sampled frame of the true and the returned shot and with the best of every "
        "frame of the true shot (brute force, at the time given).",
        md_table(
            [
                "film",
                "still s",
                "true shot s",
                "returned shot s",
                "nearest sampled Δs",
                "edge Δs",
                "cos true (sampled)",
                "cos returned (sampled)",
                "cos true (brute)",
                "brute frame s",
            ],
            [
                [
                    m["film"],
                    m["t"],
                    "–".join(map(str, m["shot"])),
                    "–".join(map(str, m["returned"])),
                    m["nearest_sampled_dt"],
                    m["edge_dt"],
                    m["cos_true_sampled"],
                    m["cos_returned_sampled"],
                    m["cos_true_brute"],
                    m["brute_frame_t"],
                ]
                for m in report.get("misses", [])
            ],
        )  # fmt: skip
        if report.get("misses")
        else "None.",
        "",
        "## Sampling settings (offline sweep, to choose the default)",
        "Scored from the brute-force embeddings with the same shots and stills: each setting's "
        "frames are picked at the exact slice centres (the indexer's streaming reservoir picks "
        "within half a stride of them in shots longer than its buffer), never at a still's own "
        "frame (brute force has it; the indexer would only by chance).",
        md_table(
            [
                "frame interval s",
                "cap",
                "edge frames s",
                "images embedded",
                "hit@1 mean vector",
                "hit@1 best frame",
                "hit@1 best frame, shots > 12 s",
            ],
            [
                [
                    s["frame_interval_s"] or "— (k=3)",
                    s["max_frames_per_shot"],
                    s.get("edge_frame_s") or "—",
                    s["images"],
                    s["hit1_mean_vector"],
                    s["hit1_best_frame"],
                    s["hit1_best_frame_long"],
                ]
                for s in report["sweep"]
                if "every_nth_frame" not in s
            ],
        ),  # fmt: skip
        "",
        *_density(report),
        machine_md(report["machine"]),
    ]
    return "\n".join(parts)


def _density(report: dict) -> list[str]:
    """The sweep's density series: every n-th brute-force frame of each shot, no cap."""
    rows = [s for s in report["sweep"] if "every_nth_frame" in s]
    if not rows:
        return []
    stride = report["config"].get("brute_stride") or 1
    return [
        f"How dense sampling must be: every n-th brute-force frame of each shot (n × {stride} "
        "decoded frames apart, no cap); like the settings above, never a still's own frame.",
        "",
        md_table(
            [
                "every n-th",
                "decoded frames apart",
                "images embedded",
                "hit@1 best frame",
                "hit@1 best frame, shots > 12 s",
            ],
            [
                [
                    s["every_nth_frame"],
                    s["every_nth_frame"] * stride,
                    s["images"],
                    s["hit1_best_frame"],
                    s["hit1_best_frame_long"],
                ]
                for s in rows
            ],
        ),  # fmt: skip
        "",
    ]
