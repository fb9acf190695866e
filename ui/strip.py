"""A movie's film strip: its shots in time order as thumbnails, each with a colour band for its top
scene label (one colour per label, with a legend), its start time, and a proportional timeline
bar whose segment borders are the shot boundaries. Shots that are hits of the current query are
outlined.

Two renderings of the same data: :func:`strip_png` (PIL; ``scenesearch strip MOVIE --out
strip.png``) for reports, and :func:`strip_html` for the web app, where each shot carries
``data-shot`` (clicking it plays the shot).
"""

from __future__ import annotations

import html
import os
from collections import Counter
from collections.abc import Collection, Sequence
from dataclasses import dataclass

from scenesearch.search.engine import Hit, SearchEngine, SearchFilters
from scenesearch.ui.textfmt import fmt_time

MAX_COLOURS = 12  # the most frequent top labels get a colour; the rest share "other"
OTHER = "other"
# matplotlib's tab20 without its greys (those mean "other"), dark/light pairs interleaved so
# neighbouring labels differ clearly
PALETTE = (
    "#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b", "#e377c2", "#bcbd22",
    "#17becf", "#aec7e8", "#ffbb78", "#98df8a",
)  # fmt: skip
OTHER_COLOUR = "#9e9e9e"
HIT_COLOUR = "#ffd400"


@dataclass
class Strip:
    """A movie and its shots in time order, with a colour per top label."""

    movie: dict
    shots: list[Hit]
    colours: dict[str, str]  # label -> colour, most frequent first ("other" last if used)

    def top(self, h: Hit) -> str:
        return h.top[0].label if h.top else OTHER

    def colour(self, h: Hit) -> str:
        return self.colours.get(self.top(h), OTHER_COLOUR)

    @property
    def duration_s(self) -> float:
        return max((h.end_s for h in self.shots), default=0.0)


def movie_strip(engine: SearchEngine, movie: str) -> Strip:
    """All shots of ``movie`` (id, title or file name) in time order, coloured by top label."""
    movie_id = engine.resolve_movie(movie)
    rec = next((m for m in engine.movies() if m["movie_id"] == movie_id), {"movie_id": movie_id})
    n = int(rec.get("shots") or 0) or 100_000
    shots = engine.search(filters=SearchFilters(movies=(movie_id,)), limit=n).hits
    shots.sort(key=lambda h: h.start_s)
    freq = Counter(h.top[0].label if h.top else OTHER for h in shots)
    ranked = [lab for lab, _ in sorted(freq.items(), key=lambda kv: (-kv[1], kv[0]))]
    colours = {lab: PALETTE[i] for i, lab in enumerate(ranked[:MAX_COLOURS]) if lab != OTHER}
    if len(ranked) > len(colours):
        colours[OTHER] = OTHER_COLOUR
    return Strip(rec, shots, colours)


def _title(strip: Strip) -> str:
    m = strip.movie
    year = f" ({m['year']})" if m.get("year") else ""
    return f"{m.get('title') or m['movie_id']}{year} · {len(strip.shots)} shots · " \
        f"{fmt_time(strip.duration_s)}"  # fmt: skip


# ------------------------------------------------------------------------------ PNG
def strip_png(strip: Strip, out: str, highlight: Collection[str] = (), per_row: int = 10,
              thumb_w: int = 192) -> str:  # fmt: skip
    """Draw the strip to ``out`` (PNG): title, timeline bar, rows of thumbnails with label bands
    and start times, legend. Returns ``out``."""
    from PIL import Image, ImageDraw, ImageFont

    from scenesearch.indexer.errors import InputError

    if not strip.shots:
        raise InputError(f"movie {strip.movie.get('movie_id')} has no shots in the index")
    font = ImageFont.load_default(size=14)
    small = ImageFont.load_default(size=12)
    pad, gap, band, text_h = 16, 6, 8, 18
    thumb_h = thumb_w * 9 // 16
    cell_h = thumb_h + band + text_h + gap
    per_row = max(1, min(per_row, len(strip.shots)))
    width = pad * 2 + per_row * thumb_w + (per_row - 1) * gap
    rows = -(-len(strip.shots) // per_row)
    legend_rows = -(-len(strip.colours) // 4)
    bar_y, bar_h = pad + 28, 22
    grid_y = bar_y + bar_h + 24
    height = grid_y + rows * cell_h + 12 + legend_rows * 22 + pad
    img = Image.new("RGB", (width, height), "white")
    d = ImageDraw.Draw(img)
    n_hits = sum(h.shot_id in highlight for h in strip.shots)
    note = f" · {n_hits} hit{'' if n_hits == 1 else 's'} of the query outlined" if n_hits else ""
    d.text((pad, pad), _title(strip) + note, fill="black", font=font)  # the outline's meaning

    # timeline bar: one segment per shot, width ∝ duration, dark borders = shot boundaries
    total = strip.duration_s or 1.0
    span = width - 2 * pad
    for h in strip.shots:
        x0 = pad + round(h.start_s / total * span)
        x1 = max(x0 + 1, pad + round(h.end_s / total * span))
        d.rectangle((x0, bar_y, x1, bar_y + bar_h), fill=strip.colour(h))
        d.line((x0, bar_y, x0, bar_y + bar_h), fill="#222222")
        if h.shot_id in highlight:
            d.rectangle((x0, bar_y - 4, x1, bar_y - 1), fill="#000000")
    d.rectangle((pad, bar_y, pad + span, bar_y + bar_h), outline="#222222")
    for k in range(5):  # 5 time ticks
        t = total * k / 4
        x = pad + round(t / total * span)
        label = fmt_time(t)
        tw = d.textlength(label, font=small)
        d.text((min(max(pad, x - tw / 2), width - pad - tw), bar_y + bar_h + 3), label,
               fill="#333333", font=small)  # fmt: skip

    blank = Image.new("RGB", (thumb_w, thumb_h), "#333333")
    for n, h in enumerate(strip.shots):
        r, c = divmod(n, per_row)
        x, y = pad + c * (thumb_w + gap), grid_y + r * cell_h
        try:
            with Image.open(h.thumb) as t:
                tile = t.convert("RGB").resize((thumb_w, thumb_h))
        except (OSError, ValueError):
            tile = blank
        img.paste(tile, (x, y))
        d.rectangle((x, y + thumb_h, x + thumb_w - 1, y + thumb_h + band), fill=strip.colour(h))
        if h.shot_id in highlight:
            d.rectangle((x - 3, y - 3, x + thumb_w + 2, y + thumb_h + band + 2),
                        outline=HIT_COLOUR, width=4)  # fmt: skip
        d.text((x + 2, y + thumb_h + band + 2),
               f"#{h.shot_index}  {fmt_time(h.start_s)} - {fmt_time(h.end_s)}", fill="black",
               font=small)  # fmt: skip

    ly = grid_y + rows * cell_h + 12
    col_w = (width - 2 * pad) // 4
    for n, (lab, colour) in enumerate(strip.colours.items()):
        r, c = divmod(n, 4)
        x, y = pad + c * col_w, ly + r * 22
        d.rectangle((x, y + 2, x + 14, y + 16), fill=colour)
        d.text((x + 20, y + 1), lab, fill="black", font=small)
    try:
        img.save(out, format="PNG")
    except (OSError, ValueError) as e:
        raise InputError(f"cannot write {out}: {getattr(e, 'strerror', None) or e}") from e
    return out


# ------------------------------------------------------------------------------ HTML
def strip_html(strip: Strip | None, highlight: Collection[str] = (), url=None) -> str:
    """The strip as HTML for the web app (``url(hit)`` makes a thumbnail URL)."""
    if strip is None:
        return '<div class="ss-strip-empty">Pick a movie to see its shots in time order.</div>'
    esc = html.escape
    total = strip.duration_s or 1.0
    segs, tiles = [], []
    for h in strip.shots:
        hit = " ss-hit" if h.shot_id in highlight else ""
        left, w = 100 * h.start_s / total, max(100 * h.duration_s / total, 0.15)
        tip = esc(f"#{h.shot_index} {fmt_time(h.start_s)}–{fmt_time(h.end_s)} · {strip.top(h)}")
        segs.append(
            f'<div class="ss-seg{hit}" data-shot="{esc(h.shot_id)}" title="{tip}" '
            f'style="left:{left:.3f}%;width:{w:.3f}%;background:{strip.colour(h)}"></div>'
        )
        src = esc(url(h)) if url and h.thumb else ""
        tiles.append(
            f'<figure class="ss-tile{hit}" data-shot="{esc(h.shot_id)}" title="{tip}">'
            f'<img src="{src}" alt="shot {h.shot_index}" loading="lazy">'
            f'<div class="ss-band" style="background:{strip.colour(h)}"></div>'
            f"<figcaption>#{h.shot_index} · {fmt_time(h.start_s)}–{fmt_time(h.end_s)}"
            f"<br><span>{esc(strip.top(h))}</span></figcaption></figure>"
        )
    legend = "".join(
        f'<span class="ss-key"><i style="background:{c}"></i>{esc(lab)}</span>'
        for lab, c in strip.colours.items()
    )
    n_hits = sum(h.shot_id in highlight for h in strip.shots)
    plural = "" if n_hits == 1 else "s"
    hits_note = f" · <b>{n_hits}</b> hit{plural} of the query outlined" if n_hits else ""
    ticks = "".join(
        f'<span style="left:{25 * k}%">{fmt_time(total * k / 4)}</span>' for k in range(5)
    )
    return (
        f'<div class="ss-strip"><div class="ss-strip-title">{esc(_title(strip))}{hits_note}'
        f' — click a shot to play it</div><div class="ss-bar">{"".join(segs)}</div>'
        f'<div class="ss-ticks">{ticks}</div><div class="ss-tiles">{"".join(tiles)}</div>'
        f'<div class="ss-legend">top label: {legend}</div></div>'
    )


STRIP_CSS = """
.ss-strip-empty { padding: 18px; color: var(--body-text-color-subdued); }
.ss-strip-title { font-weight: 600; margin: 4px 0 8px; }
.ss-bar { position: relative; height: 22px; border: 1px solid #222; border-radius: 3px;
  overflow: hidden; }
.ss-seg { position: absolute; top: 0; bottom: 0; border-left: 1px solid #222; cursor: pointer; }
.ss-seg.ss-hit { box-shadow: inset 0 -6px 0 #000; }
.ss-ticks { position: relative; height: 18px; font-size: 0.75rem; color: #555; }
.ss-ticks span { position: absolute; transform: translateX(-50%); }
.ss-ticks span:first-child { transform: none; }
.ss-ticks span:last-child { transform: translateX(-100%); }
.ss-tiles { display: flex; gap: 6px; overflow-x: auto; padding: 6px 2px 8px; }
.ss-tile { flex: 0 0 150px; margin: 0; cursor: pointer; border: 3px solid transparent;
  border-radius: 4px; }
.ss-tile.ss-hit { border-color: #ffd400; }
.ss-tile:hover { border-color: #888; }
.ss-tile img { width: 100%; aspect-ratio: 16 / 9; object-fit: cover; display: block; }
.ss-band { height: 8px; }
.ss-tile figcaption { font-size: 0.75rem; line-height: 1.25; padding: 2px 1px; }
.ss-tile figcaption span { color: var(--body-text-color-subdued); }
.ss-legend { font-size: 0.8rem; display: flex; flex-wrap: wrap; gap: 4px 12px; }
.ss-key i { display: inline-block; width: 12px; height: 12px; margin-right: 4px;
  vertical-align: -1px; border-radius: 2px; }
"""


def hits_in_movie(hits: Sequence[dict], movie_id: str) -> set[str]:
    """Shot ids of the current result (hit dicts) that belong to ``movie_id``."""
    return {h["shot_id"] for h in hits if h.get("movie_id") == movie_id}


def default_out(movie_id: str) -> str:
    return os.path.abspath(f"strip-{movie_id}.png")
