"""What ``scenesearch search`` does with its hits beyond listing them — ``--export FILE``
(OTIO / EDL / FCP XML / CSV), ``--facets`` (label, genre and movie counts of every matching shot)
and ``--then QUERY --within S`` ("A then B" sequences) — and ``scenesearch strip MOVIE`` (a PNG
film strip). Thin shells over search/export.py, search/facets.py, search/temporal.py and
ui/strip.py.
"""

from __future__ import annotations

import json
import sys
from dataclasses import replace

from scenesearch.ui.common import add_index_args
from scenesearch.ui.textfmt import fmt_time


def add_search_args(p) -> None:
    """The options this module adds to ``scenesearch search``."""
    t = p.add_argument_group("sequences: shot A, then shot B in the same movie")
    t.add_argument("--then", metavar="QUERY",
                   help="second query: pairs where a shot matching it follows one matching the "
                   "first within --within seconds")  # fmt: skip
    t.add_argument(
        "--then-image", metavar="PATH", help="second step by a still (with --then: both)"
    )
    t.add_argument("--within", type=float, default=10.0, metavar="S",
                   help="most seconds from the end of shot A to the start of shot B (10)")  # fmt: skip
    t.add_argument("--then-label", action="append", metavar="LABEL",
                   help="scene label(s) for the second step only (replaces --label there)")  # fmt: skip
    t.add_argument("--then-genre", action="append", metavar="GENRE",
                   help="genre(s) for the second step only (replaces --genre there)")  # fmt: skip
    t.add_argument("--depth", type=int, default=400, metavar="N",
                   help="candidates per step in the first round (400; deepened ×4 up to 1600 "
                   "until the top is proven)")  # fmt: skip
    o = p.add_argument_group("output")
    o.add_argument("--export", metavar="FILE",
                   help="also write the results to FILE: .otio, .edl (CMX 3600), .xml (FCP 7) "
                   "or .csv")  # fmt: skip
    o.add_argument("--export-format", choices=["otio", "edl", "fcpxml", "csv"],
                   help="export format when the file name does not tell")  # fmt: skip
    o.add_argument("--facets", action="store_true",
                   help="also count scene labels, genres and movies over every matching shot")  # fmt: skip


def _durations(eng) -> dict[str, float]:
    if eng is None:  # hits from a running server: no movie records here
        return {}
    return {m["movie_id"]: float(m.get("duration_s") or 0) for m in eng.movies()}


def export(args, eng, hits) -> None:
    from scenesearch.search.export import export_hits

    if not args.export:
        return
    fmt = export_hits(hits, args.export, args.export_format, durations=_durations(eng))
    print(f"exported {len(hits)} shots to {args.export} ({fmt})", file=sys.stderr)


def check_args(args) -> None:
    """What can be checked before searching: the ``--export`` path and format, ``--then`` with
    ``--like`` (a bad one fails with one line before any output)."""
    from scenesearch.indexer.errors import ConfigError

    if args.export:
        from scenesearch.search.export import check_export_path

        check_export_path(args.export, args.export_format)
    if (args.then or args.then_image) and args.like:
        raise ConfigError("--then cannot be combined with --like: give the first step a query")


def is_then(args) -> bool:
    """An "A then B" sequence search (``--then`` / ``--then-image``)."""
    return bool(args.then or args.then_image)


def then_filters(args, filters):
    """The second step's filters: the shared ones, with ``--then-label`` / ``--then-genre``
    replacing labels / genres there."""
    fb = filters
    if args.then_label:
        fb = replace(fb, labels_any=tuple(args.then_label), labels_all=())
    if args.then_genre:
        fb = replace(fb, genres=tuple(args.then_genre))
    return fb


def after_search(args, eng, res, filters) -> None:
    """--facets and --export for a plain search result."""
    if args.facets:
        print_facets(eng, filters, args.json)
    export(args, eng, res.hits)


def print_facets(eng, filters, as_json: bool) -> None:
    from scenesearch.search.facets import facet_counts

    print_facet_dict(facet_counts(eng, filters).to_dict(), as_json)


def print_facet_dict(f: dict, as_json: bool) -> None:
    """Facet counts in their ``Facets.to_dict()`` form (local, or from a running server)."""
    if as_json:
        print(json.dumps({"facets": f}))
        return
    print(f"\nfacets over all {f['total']} matching shots:")
    for name, rows in (("labels", [(d["label"], d["count"]) for d in f["labels"]]),
                       ("genres", [(d["genre"], d["count"]) for d in f["genres"]]),
                       ("movies", [(d["title"], d["count"]) for d in f["movies"]])):  # fmt: skip
        shown = "  ".join(f"{k} {c}" for k, c in rows[:12])
        more = f"  (+{len(rows) - 12} more)" if len(rows) > 12 else ""
        print(f"  {name}: {shown or '-'}{more}")


def cmd_then(args, eng, query, image, filters) -> int:
    """``search A --then B``: the best pairs, as a table or JSON lines; --export writes each
    pair as two clips (A, then B)."""
    from scenesearch.search.temporal import MAX_DEPTH, Step, find_sequences

    res = find_sequences(
        eng,
        Step(query, image, filters),
        Step(args.then, args.then_image, then_filters(args, filters)),  # image: engine loads it
        within_s=args.within,
        limit=args.k,
        depth=args.depth,
        max_depth=max(args.depth, MAX_DEPTH),
    )
    return show_pairs(args, eng, res, eng.random_weights)


def show_pairs(args, eng, res, random_weights: bool) -> int:
    """Print the pairs (table or JSON lines) and ``--export`` them as two clips each (``eng``:
    None for pairs from a running server)."""
    if args.json:
        for p in res.pairs:
            print(json.dumps(p.to_dict()))
    else:
        print_pairs(res, random_weights)
    export(args, eng, [h for p in res.pairs for h in (p.first, p.then)])
    return 0


def print_pairs(res, random_weights: bool = False, out=None) -> None:
    out = out or sys.stdout
    if random_weights:
        print("(index built with RANDOM WEIGHTS: scores and labels are meaningless)", file=out)
    if not res.pairs:
        print("no sequences match", file=out)
        return
    head = ("#", "score", "movie", "first", "then", "gap", "first shot", "then shot")
    rows = []
    for i, p in enumerate(res.pairs, 1):
        a, b = p.first, p.then
        rows.append((str(i), f"{p.score:.3f}", a.title[:30],
                     f"{fmt_time(a.start_s)}-{fmt_time(a.end_s)}",
                     f"{fmt_time(b.start_s)}-{fmt_time(b.end_s)}", f"{p.gap_s:.1f}s",
                     a.shot_id, b.shot_id))  # fmt: skip
    widths = [max(len(r[c]) for r in [head, *rows]) for c in range(len(head))]
    for r in [head, *rows]:
        print("  ".join(v.ljust(w) for v, w in zip(r, widths)).rstrip(), file=out)
    if not res.exact:
        print(f"(not proven exact at {res.depth} candidates per step: a pair not listed could "
              f"score up to {res.bound:.3f}; raise --depth)", file=out)  # fmt: skip


# ------------------------------------------------------------------------------ strip
def cmd_strip(args) -> int:
    from scenesearch.ui.common import open_engine
    from scenesearch.ui.strip import default_out, movie_strip, strip_png

    with open_engine(args, load_model=bool(args.query)) as eng:
        strip = movie_strip(eng, args.movie)
        highlight: set[str] = set()
        if args.query:
            from scenesearch.search import SearchFilters

            mid = strip.movie["movie_id"]
            res = eng.search(text=args.query, filters=SearchFilters(movies=(mid,)), limit=args.k)
            highlight = {h.shot_id for h in res.hits}
        out = strip_png(strip, args.out or default_out(strip.movie["movie_id"]), highlight,
                        per_row=args.per_row)  # fmt: skip
    n_hits = sum(h.shot_id in highlight for h in strip.shots)
    outlined = f" ({n_hits} hits of the query outlined)" if args.query else ""
    print(f"film strip of {len(strip.shots)} shots{outlined} written to {out}")
    return 0


def register(sub) -> None:
    s = sub.add_parser("strip", help="a movie's film strip as a PNG (shots, label colours, times)")
    s.add_argument("movie", metavar="MOVIE", help="movie id, title or file name")
    add_index_args(s)
    s.add_argument("--out", metavar="PNG", help="output file (default strip-<movie id>.png)")
    s.add_argument("--query", metavar="TEXT", help="outline this query's best shots in the movie")
    s.add_argument("-k", type=int, default=5, help="shots outlined with --query (5)")
    s.add_argument("--per-row", type=int, default=10, help="thumbnails per row (10)")
    s.add_argument("--device", help="auto | cpu | cuda")
    s.set_defaults(func=cmd_strip)
