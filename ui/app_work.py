"""The web app's "work with the hits" parts, wired into ``ui.app.build_app`` with small hooks:

- **"then" query**: a second description and a window in seconds turn a search into "A then B"
  sequences (search/temporal.py); each gallery item is a pair, played from A's start to B's end;
- **facet chips**: after every search, the counts of scene labels, genres and movies over ALL
  matching shots (search/facets.py); clicking a chip adds that filter and searches again;
- **film strip**: pick a movie (or "Film strip of this movie" for the shot playing) to see its
  shots in time order with label colours, boundaries and times (ui/strip.py); hits of the current
  query are outlined; clicking a shot plays it;
- **export**: the current results as OTIO, EDL, FCP 7 XML or CSV (search/export.py), downloaded
  from the page.
"""

from __future__ import annotations

import html
import logging
import os
import tempfile

import gradio as gr

from scenesearch.indexer.errors import IndexBusyError, ScenesearchError
from scenesearch.search.export import export_hits
from scenesearch.search.facets import facet_counts
from scenesearch.search.hits import hit_from_dict
from scenesearch.search.temporal import Step, find_sequences
from scenesearch.search.validate import named
from scenesearch.ui.app_handlers import PAGE_NAMES, build_filters
from scenesearch.ui.app_view import banner, caption
from scenesearch.ui.media import thumb_url
from scenesearch.ui.strip import STRIP_CSS, hits_in_movie, movie_strip, strip_html
from scenesearch.ui.textfmt import fmt_time

log = logging.getLogger(__name__)

CHIPS_SHOWN = 14  # per facet group
CSS = (
    STRIP_CSS
    + """
.ss-facets { display: flex; flex-direction: column; gap: 4px; font-size: 0.85rem; }
.ss-facet-row { display: flex; flex-wrap: wrap; align-items: center; gap: 4px 6px; }
.ss-facet-row b { min-width: 92px; }
.ss-chip { border: 1px solid var(--border-color-primary); border-radius: 999px;
  padding: 1px 9px; background: var(--background-fill-secondary); cursor: pointer;
  font: inherit; color: inherit; }
.ss-chip:hover { border-color: var(--color-accent); }
.ss-chip em { font-style: normal; color: var(--body-text-color-subdued); margin-left: 3px; }
.ss-chip.ss-on { background: var(--color-accent-soft); border-color: var(--color-accent); }
"""
)
# a click anywhere in the component: the closest element carrying data-shot / data-facet
# (the player is brought into view: browsers do not autoplay a muted video that is off-screen)
STRIP_JS = (
    "element.addEventListener('click', (e) => { const t = e.target.closest('[data-shot]');"
    " if (!t) return; trigger('click', {shot: t.dataset.shot});"
    " const p = document.querySelector('#ss-player'); if (p) p.scrollIntoView({block: 'center'});"
    " });"
)
CHIPS_JS = (
    "element.addEventListener('click', (e) => { const t = e.target.closest('[data-facet]');"
    " if (t) trigger('click', {facet: t.dataset.facet, value: t.dataset.value}); });"
)
EXPORT_FORMATS = [
    ("OpenTimelineIO (.otio)", "otio"),
    ("CMX 3600 EDL (.edl)", "edl"),
    ("Final Cut Pro 7 XML (.xml: Premiere, Resolve)", "fcpxml"),
    ("CSV (.csv)", "csv"),
]
EXT = {"otio": ".otio", "edl": ".edl", "fcpxml": ".xml", "csv": ".csv"}


def pair_item(p) -> dict:
    """A sequence pair as a gallery item: A's hit dict spanning A's start to B's end, with both
    shots kept under ``first`` / ``then`` (for the details and the export)."""
    a, b = p.first.to_dict(), p.then.to_dict()
    return {**a, "end_s": b["end_s"], "score": p.score, "gap_s": p.gap_s, "first": a, "then": b}


def pair_caption(d: dict) -> str:
    a, b = d["first"], d["then"]
    la = a["top"][0]["label"] if a.get("top") else "?"
    lb = b["top"][0]["label"] if b.get("top") else "?"
    return (
        f"{a['title']} · {fmt_time(a['start_s'])} {la} → {fmt_time(b['start_s'])} {lb} · "
        f"gap {d['gap_s']:.1f} s · {d['score']:.3f}"
    )


def facets_html(f, active: dict[str, list[str]] | None = None) -> str:
    """Facet chips (``data-facet``/``data-value``): scene labels, genres, movies."""
    if f is None or not f.total:
        return ""
    active = active or {}
    esc = html.escape

    def row(title: str, kind: str, items: list[tuple[str, str, int]]) -> str:
        chips = "".join(
            f'<button class="ss-chip{" ss-on" if v in active.get(kind, []) else ""}" '
            f'data-facet="{kind}" data-value="{esc(v)}" title="add filter: {esc(shown)}">'
            f"{esc(shown)} <em>{n}</em></button>"
            for v, shown, n in items[:CHIPS_SHOWN]
        )
        more = f"<em>+{len(items) - CHIPS_SHOWN} more</em>" if len(items) > CHIPS_SHOWN else ""
        return f'<div class="ss-facet-row"><b>{title}</b>{chips}{more}</div>' if items else ""

    return (
        f'<div class="ss-facets" id="ss-facet-chips"><div>Among all <b>{f.total}</b> matching '
        "shots (click to filter):</div>"
        + row("Scene labels", "labels", [(k, k, n) for k, n in f.labels])
        + row("Genres", "genres", [(k, k, n) for k, n in f.genres])
        + row("Movies", "movies", [(m, t, n) for m, t, n in f.movies])
        + "</div>"
    )


def gallery_items(items: list[dict]) -> list[tuple[str, str]]:
    """Gallery (thumbnail, caption) for hit dicts and sequence pairs alike."""
    return [(d["thumb"], pair_caption(d) if "then" in d else caption(d))
            for d in items if d.get("thumb")]  # fmt: skip


def _within(v) -> float:
    """The window field (empty: the default 10 s)."""
    return 10.0 if v is None or v == "" else float(v)


class WorkPanel:
    """Builds and wires the components (see the module docstring) for one page."""

    def __init__(self, app):
        self.app = app  # ui.app.SearchApp

    # -- layout pieces (called inside build_app's Blocks, where they should appear) ---------
    def render_then(self) -> None:
        with gr.Row():
            self.then = gr.Textbox(
                label="…then, in the same movie (optional): describe the next shot",
                placeholder="e.g. a car crash — finds shot A followed by shot B",
                elem_id="ss-then", scale=4,
            )  # fmt: skip
            self.within = gr.Number(value=10, minimum=0, label="within (s)", scale=1,
                                    elem_id="ss-within")  # fmt: skip

    def render_facets(self) -> None:
        self.chips = gr.HTML("", elem_id="ss-facets", js_on_load=CHIPS_JS)

    def render_strip_and_export(self, movies0) -> None:
        with gr.Accordion("Film strip of a movie", open=True, elem_id="ss-strip-box"):
            with gr.Row():
                self.strip_movie = gr.Dropdown(movies0, value=None, label="Movie",
                                               elem_id="ss-strip-movie", scale=3)  # fmt: skip
                self.strip_here = gr.Button("Film strip of the shot playing", scale=1,
                                            elem_id="ss-strip-here")  # fmt: skip
            self.strip = gr.HTML(strip_html(None), elem_id="ss-strip", js_on_load=STRIP_JS)
        with gr.Accordion("Export these results", open=False, elem_id="ss-export-box"):
            with gr.Row():
                self.fmt = gr.Dropdown(EXPORT_FORMATS, value="otio", label="Format", scale=3,
                                       elem_id="ss-export-format")  # fmt: skip
                self.export_btn = gr.Button("Export", scale=1, elem_id="ss-export")
            self.export_file = gr.File(
                label="Download", interactive=False, elem_id="ss-export-file"
            )
            self.export_msg = gr.HTML("", elem_id="ss-export-msg")

    # -- handlers ------------------------------------------------------------------------
    def sequences(self, q, img, then, within, labels, label_mode, label_source, genres, movies,
                  *rest) -> tuple[list[dict], str]:  # fmt: skip
        """A "then" search: (gallery item dicts, status HTML)."""
        try:
            eng = self.app.slot.get()
            filters = build_filters(labels, label_mode, label_source, genres, movies, *rest[:4])
            k = max(1, min(int(rest[4] or 24), 200))
            q = (q or "").strip() or None
            if q is None and img is None:
                return [], banner("Describe the first shot (or upload a still) to search for "
                                  "“…then …” sequences.", "warn")  # fmt: skip
            res = find_sequences(eng, Step(q, img, filters), Step(then.strip(), None, filters),
                                 within_s=_within(within), limit=k)  # fmt: skip
        except (ScenesearchError, ValueError) as e:
            e = named(e, PAGE_NAMES)
            msg = html.escape(str(e).splitlines()[0] if str(e) else type(e).__name__)
            gr.Warning(msg)
            return [], banner(msg, "error")
        items = [pair_item(p) for p in res.pairs]
        if not items:
            return [], banner("No sequences: no shot matching the second description follows "
                              "one matching the first within that many seconds.", "warn")  # fmt: skip
        proof = "" if res.exact else f" (not proven exact at depth {res.depth})"
        return items, banner(f"{len(items)} sequences “A, then B within {_within(within):g} s” — "
                             f"each plays from A's start to B's end.{proof}")  # fmt: skip

    def facets(self, labels, label_mode, label_source, genres, movies, *rest) -> str:
        try:
            eng = self.app.slot.get()
            if eng.is_empty:
                return ""
            flt = build_filters(labels, label_mode, label_source, genres, movies, *rest[:4])
            f = facet_counts(eng, flt)
        except (ScenesearchError, ValueError, IndexBusyError):
            return ""  # the search itself shows the error
        ids = list(movies or [])
        return facets_html(f, {"labels": list(labels or []), "genres": list(genres or []),
                               "movies": ids})  # fmt: skip

    @staticmethod
    def add_chip(labels, genres, movies, evt: gr.EventData):
        kind, value = getattr(evt, "facet", None), getattr(evt, "value", None)
        cur = {"labels": list(labels or []), "genres": list(genres or []),
               "movies": list(movies or [])}  # fmt: skip
        if kind in cur and value and value not in cur[kind]:
            cur[kind].append(value)
        return cur["labels"], cur["genres"], cur["movies"]

    def show_strip(self, movie_id, hits) -> str:
        if not movie_id:
            return strip_html(None)
        try:
            strip = movie_strip(self.app.slot.get(), movie_id)
        except ScenesearchError as e:
            return f'<div class="ss-banner ss-error">{html.escape(str(e))}</div>'
        marked = set()
        for h in hits or []:
            marked |= hits_in_movie([h.get("first", h), *([h["then"]] if "then" in h else [])],
                                    movie_id)  # fmt: skip
        return strip_html(strip, marked, url=lambda h: thumb_url(h.shot_id))

    def play_shot(self, evt: gr.EventData):
        shot = getattr(evt, "shot", None)
        try:
            hit = self.app.slot.get().shot(shot).to_dict() if shot else None
        except ScenesearchError:
            hit = None
        if hit is None:
            return (gr.skip(),) * 6
        return (*self.app.show(hit), hit, gr.Button(interactive=True))

    def export(self, hits, fmt):
        items = [h for d in hits or [] for h in ([d["first"], d["then"]] if "then" in d else [d])]
        if not items:
            return None, '<div class="ss-banner ss-warn">Nothing to export: search first.</div>'
        out = os.path.join(tempfile.mkdtemp(prefix="scenesearch-export-"),
                           "scenesearch-selects" + EXT.get(fmt, ".otio"))  # fmt: skip
        try:
            eng = self.app.slot.get()
            durations = {m["movie_id"]: float(m.get("duration_s") or 0) for m in eng.movies()}
            export_hits([hit_from_dict(d) for d in items], out, fmt, durations=durations)
        except ScenesearchError as e:
            return None, f'<div class="ss-banner ss-error">{html.escape(str(e))}</div>'
        n = len(items)
        return (
            out,
            f'<div class="ss-banner ss-info">{n} shots exported as {html.escape(fmt)}.</div>',
        )

    # -- wiring ------------------------------------------------------------------------
    def wire(self, *, filters_in, labels, genres, movies, hits_state, search_events, rerun,
             shown, current) -> None:  # fmt: skip
        """Attach the handlers. ``search_events``: the page's search events (facets and the strip
        follow each); ``rerun()``: re-attach the page's search to a ``.then``; ``shown``: the
        player outputs (player, details, shot id, stamp, current, like button)."""
        private = {"api_visibility": "private"}
        chip = self.chips.click(self.add_chip, [labels, genres, movies], [labels, genres, movies],
                                **private)  # fmt: skip
        for ev in [*search_events, rerun(chip)]:
            ev.then(self.facets, filters_in, self.chips, **private)
            ev.then(self.show_strip, [self.strip_movie, hits_state], self.strip, **private)
        self.strip_movie.change(self.show_strip, [self.strip_movie, hits_state], self.strip,
                                **private)  # fmt: skip
        self.strip.click(self.play_shot, None, shown, **private)
        self.strip_here.click(lambda h: (h or {}).get("movie_id"), current, self.strip_movie,
                              **private)  # fmt: skip
        self.export_btn.click(self.export, [hits_state, self.fmt],
                              [self.export_file, self.export_msg], **private)  # fmt: skip
