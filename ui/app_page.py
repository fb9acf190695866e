"""The web app's page: the Gradio layout and its wiring (:func:`build_app`); the behaviour is in
ui/app_handlers.py, the "work with the hits" parts in ui/app_work.py, the JSON API in
ui/app_api.py."""

from __future__ import annotations

from collections.abc import Sequence

import gradio as gr

from scenesearch.indexer.imageio import MAX_IMAGE_BYTES
from scenesearch.search import SearchEngine
from scenesearch.ui.app_api import add_api
from scenesearch.ui.app_handlers import DEFAULT_K, MAX_K, EngineSlot, SearchApp, allowed_folders
from scenesearch.ui.app_view import player_html
from scenesearch.ui.app_work import WorkPanel, gallery_items


def _undecoded_upload(payload) -> str | bytes | None:
    """The uploaded still as its file path (or the bytes of a pasted data URL), NOT decoded:
    Gradio's own preprocessing opens it with PIL, so a non-image or a decompression bomb failed
    there with a bare "Error" toast, and a 445 KB PNG of 144 megapixels cost ≈ 1 GB of server
    memory per round. The engine decodes it through indexer.imageio.load_rgb, which checks the
    byte size and the declared pixel count first and says what is wrong."""
    if payload is None:
        return None
    url = getattr(payload, "url", None) or ""
    if url.startswith("data:"):
        import base64
        import binascii

        head, _, data = url.partition(",")
        if len(data) > MAX_IMAGE_BYTES * 4 // 3 + 4:
            raise gr.Error(f"image too large: at most {MAX_IMAGE_BYTES >> 20} MB")
        try:
            return base64.b64decode(data, validate=True) if ";base64" in head else None
        except binascii.Error:
            raise gr.Error("not a readable image (bad data URL)") from None
    return getattr(payload, "path", None)


# ------------------------------------------------------------------------------ the page
def _number_box(label: str, placeholder: str, elem_id: str) -> gr.Textbox:
    return gr.Textbox(label=label, placeholder=placeholder, elem_id=elem_id, lines=1, max_lines=1)


def build_app(
    engine: SearchEngine | EngineSlot | None,
    movie_dirs: Sequence[str] = (),
) -> gr.Blocks:
    """The Gradio page over ``engine`` (an open engine, or an :class:`EngineSlot` that may be
    waiting for a busy index). Nothing is launched here; see :func:`serve`."""
    slot = engine if isinstance(engine, EngineSlot) else EngineSlot(engine)
    app = SearchApp(slot, movie_dirs)
    work = WorkPanel(app)  # "then" queries, facet chips, film strip, export (ui/app_work.py)
    labels0, genres0, movies0 = app.choices()

    with gr.Blocks(title="scenesearch", analytics_enabled=False) as demo:
        demo.scenesearch = app  # tests and serve() reach the handlers through the Blocks
        gr.Markdown("## scenesearch — find the shot, see it, play it")
        index_info = gr.HTML(app.status(), elem_id="ss-index")
        with gr.Row(visible=slot.engine is None) as busy_row:
            retry_btn = gr.Button("Retry", variant="secondary", scale=0, elem_id="ss-retry")
        with gr.Row(equal_height=False):
            with gr.Column(scale=3):
                query = gr.Textbox(
                    label="Describe the shot",
                    placeholder="e.g. a rainy street at night, two people talking in a car",
                    elem_id="ss-query",
                    lines=1,
                )
                work.render_then()
                with gr.Row():
                    labels = gr.Dropdown(
                        labels0,
                        value=[],
                        multiselect=True,
                        filterable=True,
                        label="Scene labels (type to filter)",
                        elem_id="ss-labels",
                        scale=3,
                    )
                    label_mode = gr.Radio(
                        [("any of them", "any"), ("all of them", "all")],
                        value="any",
                        label="Shots with",
                        scale=1,
                    )
                    label_source = gr.Radio(
                        [("confident labels", "clean"), ("any of its top 5", "top")],
                        value="clean",
                        label="Label match",
                        scale=1,
                    )
            with gr.Column(scale=1, min_width=220):
                image = gr.Image(
                    label="Search with a still (with text: both)",
                    type="filepath",
                    image_mode=None,
                    sources=["upload", "clipboard"],
                    height=190,
                    elem_id="ss-image",
                )
                image.preprocess = _undecoded_upload  # we decode, with limits (see there)
        with gr.Accordion("More filters: genre, movie, year, shot length, score", open=False):
            with gr.Row():
                genres = gr.Dropdown(
                    genres0, value=[], multiselect=True, label="Genres (any of)", scale=2,
                    elem_id="ss-genres",
                )  # fmt: skip
                movies = gr.Dropdown(
                    movies0, value=[], multiselect=True, label="Movies (any of)", scale=3,
                    elem_id="ss-movies",
                )  # fmt: skip
            # Text boxes, not gr.Number: Gradio's number field shows and submits 0 when empty,
            # which a year minimum then rejects (issue 19); empty here means "no limit".
            with gr.Row():
                year_min = _number_box("Year from", "e.g. 1990", "ss-year-min")
                year_max = _number_box("Year to", "e.g. 2005", "ss-year-max")
                dur_min = _number_box("Shot length from (s)", "e.g. 2", "ss-dur-min")
                dur_max = _number_box("Shot length to (s)", "e.g. 10", "ss-dur-max")
                min_score = _number_box("Minimum score", "none, or e.g. 0.25", "ss-min-score")
        with gr.Row(equal_height=True):
            search_btn = gr.Button("Search", variant="primary", elem_id="ss-search", scale=3)
            # outside "More filters": the results line tells users to raise it
            k = gr.Slider(1, MAX_K, value=DEFAULT_K, step=1, label="Number of results",
                          elem_id="ss-k", scale=2)  # fmt: skip
            clear_btn = gr.Button("Clear filters", variant="secondary", scale=1)
        message = gr.HTML("", elem_id="ss-message")
        work.render_facets()
        hits_state = gr.State([])
        current = gr.State(None)
        with gr.Row(equal_height=False):
            with gr.Column(scale=3):
                gallery = gr.Gallery(
                    label="Shots",
                    columns=3,
                    height="auto",
                    allow_preview=False,
                    object_fit="cover",
                    elem_id="ss-gallery",
                    interactive=False,
                )
            # the player column stays in view while a long gallery scrolls (sticky, in CSS)
            with gr.Column(scale=2, elem_id="ss-side"):
                player = gr.HTML(player_html(None), elem_id="ss-player")
                details = gr.Markdown(elem_id="ss-details")
                with gr.Row():
                    shot_id = gr.Textbox(
                        label="Shot id", buttons=["copy"], interactive=False, elem_id="ss-shot-id"
                    )
                    stamp = gr.Textbox(
                        label="Timestamp", buttons=["copy"], interactive=False, elem_id="ss-stamp"
                    )
                like_btn = gr.Button("More like this", elem_id="ss-like", interactive=False)
        work.render_strip_and_export(movies0)

        filters_in = [
            labels, label_mode, label_source, genres, movies,
            year_min, year_max, dur_min, dur_max, k, min_score,
        ]  # fmt: skip

        def do_search(q, img, then_q, within, *f):
            if (then_q or "").strip():  # "A then B" sequences
                hits, msg = work.sequences(q, img, then_q, within, *f)
            else:
                hits, msg = app.run_search(q, img, *f)
            return gr.Gallery(gallery_items(hits), selected_index=None), hits, msg

        def do_like(hit, *f):
            if not hit:
                return gr.skip(), gr.skip(), gr.skip(), gr.skip(), gr.skip()
            hits, msg = app.run_search(None, None, *f, like=hit["shot_id"])
            # the page now shows "shots like this one": the old query and image go, and the
            # gallery marks the shot the player shows (usually the first), or none
            ids = [h["shot_id"] for h in hits if h.get("thumb")]
            sel = ids.index(hit["shot_id"]) if hit["shot_id"] in ids else None
            return gr.Gallery(app.gallery_items(hits), selected_index=sel), hits, msg, "", None

        def do_select(hits, evt: gr.SelectData):
            i = evt.index if isinstance(evt.index, int) else (evt.index or [0])[0]
            hit = hits[i] if hits and 0 <= i < len(hits) else None
            return (*app.show(hit), hit, gr.Button(interactive=hit is not None))

        def do_retry(source):
            ok = app.retry()
            if ok:
                # the movies' folders were unknown while the index was locked: allow them now
                # (Gradio reads this list on every file request)
                for d in allowed_folders(slot.engine, app.movie_dirs, slot.index_dir):
                    if d not in demo.allowed_paths:
                        demo.allowed_paths.append(d)
            lab, gen, mov = app.choices(source)
            return (
                app.status(),
                gr.Row(visible=not ok),
                gr.Dropdown(choices=lab),
                gr.Dropdown(choices=gen),
                gr.Dropdown(choices=mov),
                gr.Dropdown(choices=mov),  # the film strip's movie list
                gr.Timer(active=not ok),
            )

        search_out = [gallery, hits_state, message]
        common = {"api_visibility": "private", "show_progress": "minimal"}
        search_in = [query, image, work.then, work.within, *filters_in]
        searches = [
            search_btn.click(do_search, search_in, search_out, **common),
            query.submit(do_search, search_in, search_out, **common),
            work.then.submit(do_search, search_in, search_out, **common),
            like_btn.click(do_like, [current, *filters_in], [*search_out, query, image], **common),
        ]
        work.wire(
            filters_in=filters_in, labels=labels, genres=genres, movies=movies,
            hits_state=hits_state, search_events=searches,
            rerun=lambda ev: ev.then(do_search, search_in, search_out, **common),
            shown=[player, details, shot_id, stamp, current, like_btn], current=current,
        )  # fmt: skip
        gallery.select(
            do_select, [hits_state], [player, details, shot_id, stamp, current, like_btn],
            api_visibility="private",
        )  # fmt: skip
        # while the index is busy the page re-checks by itself (the timer stops once it opens);
        # the handlers and the JSON API re-check on each request too (EngineSlot.get)
        recheck = gr.Timer(5, active=slot.engine is None)
        retry_out = [index_info, busy_row, labels, genres, movies, work.strip_movie, recheck]
        retry_btn.click(do_retry, [label_source], retry_out, api_visibility="private")
        recheck.tick(
            do_retry, [label_source], retry_out, api_visibility="private",
            show_progress="hidden",
        )  # fmt: skip
        label_source.change(
            lambda src: gr.Dropdown(choices=app.label_choices(src)), [label_source], [labels],
            api_visibility="private",
        )  # fmt: skip
        clear_btn.click(
            lambda: ([], "any", "clean", [], [], "", "", "", "", DEFAULT_K, ""),
            None,
            filters_in,
            api_visibility="private",
        )

        add_api(slot)  # the JSON API: /search, /sequences, /search_cli (ui/app_api.py)
    return demo
