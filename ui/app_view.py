"""What the web app shows: the page's CSS, gallery captions, the player (an HTML5 video that
plays one shot, by id through ui/media.py), the shot's details, message banners."""

from __future__ import annotations

import html
import os
from pathlib import Path
from urllib.parse import quote

from scenesearch.ui.media import movie_url, thumb_url
from scenesearch.ui.textfmt import fmt_time

# Containers Chromium/Firefox play natively (with common codecs); others get a hint.
PLAYABLE_EXT = {".mp4", ".m4v", ".webm", ".mov", ".ogv"}

CSS = """
#ss-gallery .grid-container { gap: 12px; }
/* 16:9 tiles with the caption under the picture, wrapped and fully opaque (Gradio's default is a
   square tile with a half-transparent one-line overlay that cuts our captions off) */
#ss-gallery .thumbnail-item { aspect-ratio: auto; height: auto; display: flex;
  flex-direction: column; }
#ss-gallery .thumbnail-item img { aspect-ratio: 16 / 9; width: 100%; height: auto;
  object-fit: cover; }
#ss-gallery .caption-label { position: static; opacity: 1; max-width: 100%; white-space: normal;
  border: 0; border-radius: 0; font-size: 0.85rem; line-height: 1.3; padding: 4px 6px; }
#ss-side { position: sticky; top: 8px; align-self: flex-start; }
#ss-player video { width: 100%; aspect-ratio: 16 / 9; background: #000; border-radius: 6px; }
/* the native timeline spans the whole film: hidden in favour of the shot's own bar (PLAYER_JS) */
#ss-player video::-webkit-media-controls-timeline,
#ss-player video::-webkit-media-controls-current-time-display,
#ss-player video::-webkit-media-controls-time-remaining-display { display: none; }
.ss-shotbar { display: flex; align-items: center; gap: 8px; margin: 4px 0 8px; }
.ss-shotbar input[type=range] { flex: 1; }
.ss-shotbar output { font-family: ui-monospace, monospace; font-size: 0.85rem;
  white-space: nowrap; }
.ss-banner { padding: 10px 14px; border-radius: 6px; margin: 4px 0; }
.ss-info { background: var(--background-fill-secondary); }
.ss-warn { background: #fff4d6; color: #5c4400; }
.ss-error { background: #fde2e1; color: #6b1510; }
.ss-empty-player { padding: 40px 12px; text-align: center; color: var(--body-text-color-subdued);
  border: 1px dashed var(--border-color-primary); border-radius: 6px; }
"""


# ------------------------------------------------------------------------------ formatting
def caption(hit: dict) -> str:
    """Gallery caption: ``Title (year) · 0:12.5–0:17.0 · label, label · 0.312``."""
    title = hit["title"] + (f" ({hit['year']})" if hit.get("year") else "")
    labels = ", ".join(t["label"] for t in hit.get("top", [])[:2])
    parts = [title, f"{fmt_time(hit['start_s'])}–{fmt_time(hit['end_s'])}"]
    if hit.get("match_s") is not None:  # the best-matching frame's moment
        parts.append(f"match {fmt_time(hit['match_s'])}")
    if labels:
        parts.append(labels)
    if hit.get("score") is not None:
        parts.append(f"{hit['score']:.3f}")
    return " · ".join(parts)


def file_url(path: str) -> str:
    """URL of a local file on Gradio's file route, relative to the page (works under a root
    path/proxy prefix too). Only Gradio's own upload/cache files are served there (ui/media.py)."""
    return "gradio_api/file=" + quote(path)


def player_html(hit: dict | None, playable: str | None = None) -> str:
    """An HTML5 video that starts at the shot and stops at its end (media fragment)."""
    if hit is None:
        return '<div class="ss-empty-player">Click a shot to play it from its start.</div>'
    if playable is None:
        thumb = (
            f'<img src="{html.escape(thumb_url(hit["shot_id"]))}" alt="shot thumbnail" '
            'style="width:100%;aspect-ratio:16/9;object-fit:cover">'
            if hit.get("thumb")
            else ""
        )
        return (
            f'<div class="ss-banner ss-warn">The movie file is not available at '
            f"<code>{html.escape(hit.get('path') or '?')}</code>. If it moved, start the app "
            "with <code>--movies FOLDER</code> pointing at its new folder.</div>" + thumb
        )
    start, end = float(hit["start_s"]), float(hit["end_s"])
    src = f"{movie_url(hit['movie_id'])}#t={start:.3f},{end:.3f}"
    hint = ""
    if Path(playable).suffix.lower() not in PLAYABLE_EXT:
        hint = (
            '<div class="ss-banner ss-info">Browsers may not play '
            f"<code>{html.escape(Path(playable).suffix)}</code> files; if the player stays "
            "black, open the file in a desktop player at the timestamp below.</div>"
        )
    jump = ""
    if hit.get("match_s") is not None:  # the shot plays from its start; offer its best moment
        m = float(hit["match_s"])
        jump = (
            f'<button id="ss-jump" class="ss-jump" data-match="{m:.3f}" onclick="const v='
            f"document.getElementById('ss-video'); v.currentTime={m:.3f}; v.play();\">"
            f"Jump to the matching moment ({fmt_time(m)})</button>"
        )
    # with sound; PLAYER_JS starts it (muted only if the browser refuses) and drives the bar
    shot = html.escape(hit["shot_id"])
    return (
        f'<video id="ss-video" src="{html.escape(src)}" controls autoplay playsinline preload="auto" '
        f'data-shot="{shot}" data-start="{start:.3f}" data-end="{end:.3f}"></video>'
        f'<div class="ss-shotbar"><input type="range" id="ss-scrub" aria-label="position in the '
        f'shot" min="{start:.3f}" max="{end:.3f}" step="any" value="{start:.3f}" '
        f'data-shot="{shot}"><output id="ss-scrub-t">0:00.0 / {fmt_time(end - start)}</output>'
        f"</div>{jump}{hint}"
    )


def details_markdown(hit: dict | None) -> str:
    if hit is None:
        return ""
    esc = _md_escape
    title = esc(hit["title"]) + (f" ({hit['year']})" if hit.get("year") else "")
    genres = ", ".join(esc(g) for g in hit.get("genres") or []) or "—"
    dur = hit["end_s"] - hit["start_s"]
    score = f" · score **{hit['score']:.3f}**" if hit.get("score") is not None else ""
    lines = [
        f"### {title}",
        f"Genres: {genres} · file `{os.path.basename(hit.get('path') or '') or '?'}`",
        "",
        f"Shot {hit['shot_index']} · **{fmt_time(hit['start_s'])} – {fmt_time(hit['end_s'])}** "
        f"({dur:.1f} s){score}"
        + (
            f" · best match at **{fmt_time(hit['match_s'])}**"
            if hit.get("match_s") is not None
            else ""
        ),
        "",
        "| scene label (top 5) | score |",
        "|---|---:|",
    ]
    clean = set(hit.get("labels") or [])
    for t in hit.get("top") or []:
        mark = " ✓" if t["label"] in clean else ""
        lines.append(f"| {esc(t['label'])}{mark} | {t['score']:.3f} |")
    if clean:
        lines += ["", "✓ = confident label (MovieCLIP's clean set)"]
    return "\n".join(lines)


def _md_escape(s: str) -> str:
    return "".join("\\" + c if c in "\\`*_{}[]<>()#+-.!|" else c for c in str(s))


def timestamp_text(hit: dict) -> str:
    return (
        f"{fmt_time(hit['start_s'])}–{fmt_time(hit['end_s'])} "
        f"({hit['start_s']:.3f}–{hit['end_s']:.3f} s)"
    )


def banner(text: str, kind: str = "info") -> str:
    """A message box; ``text`` is HTML-escaped except for the ``<code>`` we add ourselves."""
    return f'<div class="ss-banner ss-{kind}">{text}</div>'


def one_line(e: BaseException) -> str:
    """An error's message as one line (its first), or its type's name."""
    return (str(e).strip().splitlines() or [type(e).__name__])[0]
