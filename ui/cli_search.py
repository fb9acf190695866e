"""``scenesearch search`` and ``scenesearch serve``: argument parsing and output formatting over
:class:`search.SearchEngine` and the Gradio app."""

from __future__ import annotations

import json
import sys

from scenesearch.indexer.errors import printable
from scenesearch.search.filters import filters_from_input
from scenesearch.search.validate import InputValueError
from scenesearch.ui import remote
from scenesearch.ui.cli_hits import (
    add_search_args,
    after_search,
    check_args,
    cmd_then,
    export,
    is_then,
    print_facet_dict,
    show_pairs,
    then_filters,
)
from scenesearch.ui.common import (
    CLI_NAMES,
    add_index_args,
    open_engine,
    require_index,
    store_config_from_args,
)
from scenesearch.ui.textfmt import fmt_time


def filters_from_args(args):
    """The search options as :class:`search.SearchFilters` (search/filters.py reads them)."""
    return filters_from_input(
        labels=args.label,
        all_labels=args.all_labels,
        top_labels=args.top_labels,
        min_label_score=args.min_label_score,
        genres=args.genre,
        movies=args.movie,
        years=args.year,
        durations=args.duration,
    )


def cmd_search(args) -> int:
    """``scenesearch search``: :func:`search_here_or_there`, its errors in the CLI's words (the
    library names its inputs ``offset``, ``like``...: here they are options)."""
    try:
        return search_here_or_there(args)
    except InputValueError as e:
        raise e.named(CLI_NAMES) from e


def search_here_or_there(args) -> int:
    """Validate everything that needs no model (ranges, the image, the index path), then search
    through a running ``serve`` of the index when there is one (ui.remote: the model is warm
    there), else here — opening the index without its model, so that names and the shot id are
    checked before the model loads (on the first text or image query)."""
    from scenesearch.indexer.imageio import load_rgb

    query = " ".join(args.query).strip() or None
    filters = filters_from_args(args)
    if args.image:
        load_rgb(args.image)  # a missing/broken file: one line, now
    image = args.image  # the engine loads it at its index's frame scale
    cfg = store_config_from_args(args)
    require_index(cfg)
    check_args(args)  # --export path/format, --then combinations: before any search
    url = None if args.no_server else remote.find_server(cfg)
    if url is not None:
        code = _search_there(url, args, query, filters)
        if code is not None:
            return code
    with open_engine(args, load_model=False) as eng:
        if eng.is_empty:
            print(EMPTY_INDEX, file=sys.stderr)
            return 0
        if eng.ranking_note and (query or args.image):
            print(f"note: {eng.ranking_note}", file=sys.stderr)
        if is_then(args):  # "A then B" sequences (ui/cli_hits.py)
            return cmd_then(args, eng, query, image, filters)
        res = eng.search(
            text=query,
            image=image,
            like=args.like,
            filters=filters,
            limit=args.k,
            offset=args.offset,
            per_movie=args.per_movie,
            dedup=args.dedup,
            min_score=args.min_score,
        )
        _print_result(args, res, eng.random_weights)
        after_search(args, eng, res, filters)  # --facets, --export
    return 3 if res.no_good_match else 0


def _search_there(url: str, args, query, filters) -> int | None:
    """The search (with ``--facets``, or ``--then`` pairs) through the running server at
    ``url``, printed as a local one would be; None when the server is gone (or too old to
    answer ``--facets`` / ``--then``): then the search runs here."""
    request = remote.build_request(
        query, args.image, args.like, filters, args.k, args.offset, args.per_movie,
        args.dedup, args.min_score,
    )  # fmt: skip
    remote.add_work(request, args.facets, args.then, args.then_image,
                    then_filters(args, filters) if is_then(args) else None,
                    args.within, args.depth)  # fmt: skip
    try:
        answer = remote.remote_search(url, request)
    except remote.ServerGone:
        return None  # killed or hung: search here (the index may still be locked: that error)
    if answer.get("empty"):
        print(EMPTY_INDEX, file=sys.stderr)
        return 0
    if is_then(args):
        if "pairs" not in answer:
            return None
        random_weights = bool(answer.get("random_weights"))
        return show_pairs(args, None, remote.sequences_from_answer(answer), random_weights)
    if args.facets and "facets" not in answer:
        return None
    res, random_weights = remote.result_from_answer(answer)
    _print_result(args, res, random_weights)
    if args.facets:
        print_facet_dict(answer["facets"], args.json)
    export(args, None, res.hits)  # --export
    return 3 if res.no_good_match else 0


EMPTY_INDEX = "the index is empty — run: scenesearch index --index DIR MOVIES..."


def _print_result(args, res, random_weights: bool) -> None:
    if args.json:
        for h in res.hits:
            print(json.dumps(h.to_dict()))
    else:
        print_table(res, random_weights=random_weights)


def print_table(res, random_weights: bool = False, out=None) -> None:
    out = out or sys.stdout  # looked up at call time: stdout may have been replaced
    if random_weights:
        print("(index built with RANDOM WEIGHTS: scores and labels are meaningless)", file=out)
    if res.no_good_match:
        best = f" (best score {res.best_score:.3f})" if res.best_score is not None else ""
        print(f"no good match{best}", file=out)
        return
    if not res.hits:
        print("no shots match", file=out)
        return
    rows = []
    moments = any(h.match_s is not None for h in res.hits)  # best-frame ranking: say when
    for i, h in enumerate(res.hits, 1):
        score = f"{h.score:.3f}" if h.score is not None else "-"
        labels = ", ".join(f"{t.label} {t.score:.2f}" for t in h.top[:3])
        year = f" ({h.year})" if h.year else ""
        rows.append((str(i), score, printable(f"{h.title}{year}")[:36],
                     f"{fmt_time(h.start_s)}-{fmt_time(h.end_s)}", h.shot_id, labels))  # fmt: skip
        if moments:
            rows[-1] = (*rows[-1][:4], fmt_time(h.match_s) if h.match_s is not None else "-",
                        *rows[-1][4:])  # fmt: skip
    head = ("#", "score", "movie", "time", "shot id", "top labels")
    if moments:
        head = (*head[:4], "match", *head[4:])
    widths = [max(len(r[c]) for r in [head, *rows]) for c in range(len(head))]
    for r in [head, *rows]:
        print("  ".join(v.ljust(w) for v, w in zip(r, widths)).rstrip(), file=out)
    if not res.exhausted:
        print("(more results: use --offset)", file=out)


def cmd_serve(args) -> int:
    from scenesearch.ui.app import serve

    cfg = store_config_from_args(args)
    require_index(cfg)
    return serve(
        cfg,
        host=args.host,
        port=args.port,
        movie_dirs=args.movies or [],
        device=args.device,
        share=False,
    )


def register(sub) -> None:
    p = sub.add_parser(
        "search",
        help="search shots by text, image or similar shot (no query: list shots in time order)",
    )
    p.add_argument("query", nargs="*", help="free text, e.g. a rainy street at night")
    add_index_args(p)
    q = p.add_argument_group("query")
    q.add_argument("--image", metavar="PATH", help="search with a still image (with text: both)")
    q.add_argument("--like", metavar="SHOT_ID", help="shots similar to this shot")
    f = p.add_argument_group("filters (applied inside the vector search)")
    f.add_argument("--label", action="append", metavar="LABEL",
                   help="scene label, repeatable: any of them")  # fmt: skip
    f.add_argument("--all-labels", action="append", metavar="LABEL",
                   help="scene label that must be present, repeatable")  # fmt: skip
    f.add_argument("--top-labels", type=int, metavar="K",
                   help="match labels among the top-K (≤5) instead of the clean set")  # fmt: skip
    f.add_argument("--min-label-score", type=float, metavar="S",
                   help="with top labels: minimum label score")  # fmt: skip
    f.add_argument("--genre", action="append", help="genre, repeatable: any of them")
    f.add_argument("--movie", action="append", help="movie id or title, repeatable")
    f.add_argument("--year", metavar="A-B", help="year or range, e.g. 1990-1999, 2000-")
    f.add_argument("--duration", metavar="A-B", help="shot duration range in seconds, e.g. 2-10")
    r = p.add_argument_group("results")
    r.add_argument("-k", type=int, default=10, help="number of results (10)")
    r.add_argument("--offset", type=int, default=0, help="skip this many results (paging)")
    r.add_argument("--per-movie", type=int, metavar="N", help="at most N shots per movie")
    r.add_argument("--dedup", type=float, metavar="COS",
                   help="collapse shots of one movie with cosine ≥ COS (e.g. 0.95)")  # fmt: skip
    r.add_argument("--min-score", type=float, metavar="S",
                   help="drop hits below S; exit code 3 if none is left")  # fmt: skip
    r.add_argument("--json", action="store_true", help="one JSON object per hit per line")
    p.add_argument("--device", help="auto | cpu | cuda")
    p.add_argument("--no-server", action="store_true",
                   help="search here even when a 'scenesearch serve' of this index is running "
                   "(by default the query goes through it: its model is already loaded)")  # fmt: skip
    add_search_args(p)  # --then/--within, --export, --facets
    p.set_defaults(func=cmd_search)

    s = sub.add_parser("serve", help="the web app (gallery, filters, player)")
    add_index_args(s)
    s.add_argument("--host", default="127.0.0.1", help="bind address (127.0.0.1)")
    s.add_argument("--port", type=int, default=7860, help="port (7860)")
    s.add_argument("--movies", action="append", metavar="DIR",
                   help="extra folder the player may read movies from (the indexed movies' "
                   "folders are allowed automatically); repeatable")  # fmt: skip
    s.add_argument("--device", help="auto | cpu | cuda")
    s.set_defaults(func=cmd_serve)
