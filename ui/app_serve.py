"""Serving the web app: :func:`launch_app` (our theme and CSS, the media routes, the only file
access the page needs, nothing fetched from outside hosts) and :func:`serve`, which the CLI
calls: open the index (or wait while it is being indexed), launch, write the endpoint file for
``scenesearch search``, clean up on Ctrl-C or SIGTERM."""

from __future__ import annotations

import logging
import os
import signal
import time
from collections.abc import Sequence

import gradio as gr
from starlette.middleware import Middleware

from scenesearch.indexer.config import StoreConfig, env_defaults, resolve_device
from scenesearch.indexer.errors import ConfigError, IndexBusyError
from scenesearch.search import SearchEngine
from scenesearch.ui.app_handlers import EngineSlot, SearchApp, allowed_folders
from scenesearch.ui.app_page import build_app
from scenesearch.ui.app_view import CSS, one_line
from scenesearch.ui.app_work import CSS as WORK_CSS
from scenesearch.ui.media import MediaGuard
from scenesearch.ui.player import PLAYER_JS
from scenesearch.ui.remote import remove_endpoint, write_endpoint

log = logging.getLogger(__name__)

MAX_UPLOAD = "20mb"  # an image query upload (Gradio's parser refuses more, before it is stored)
FONT = ["system-ui", "-apple-system", "Segoe UI", "Roboto", "sans-serif"]
FONT_MONO = ["ui-monospace", "SFMono-Regular", "Menlo", "Consolas", "monospace"]


# ------------------------------------------------------------------------------ serve
def theme() -> gr.themes.Base:
    """Gradio's default look with system font stacks: nothing is fetched from font CDNs."""
    return gr.themes.Default(font=FONT, font_mono=FONT_MONO)


def launch_app(
    demo: gr.Blocks,
    host: str = "127.0.0.1",
    port: int | None = None,
    *,
    share: bool = False,
    prevent_thread_lock: bool = False,
    quiet: bool = False,
):
    """Launch a page from :func:`build_app` with the only file access it needs (see
    :func:`allowed_folders`), our theme and CSS, and nothing that calls outside hosts."""
    app: SearchApp = demo.scenesearch
    os.environ["GRADIO_ANALYTICS_ENABLED"] = "False"  # no version check / telemetry calls
    guard = Middleware(MediaGuard, movie_file=app.movie_file, thumb_file=app.thumb_file)
    return demo.launch(
        head=PLAYER_JS,
        app_kwargs={"middleware": [guard]},  # movies and thumbnails by id only: ui/media.py
        max_file_size=MAX_UPLOAD,  # Gradio answers a larger upload with 413 and a message
        server_name=host,
        server_port=port,
        share=share,
        allowed_paths=allowed_folders(app.slot.engine, app.movie_dirs, app.slot.index_dir),
        theme=theme(),
        css=CSS + WORK_CSS,
        show_error=False,  # unexpected exceptions stay in the server log; gr.Error still shows
        footer_links=["api", "settings"],
        ssr_mode=False,  # no Node server: one process, one port
        mcp_server=False,
        pwa=False,
        prevent_thread_lock=prevent_thread_lock,
        quiet=quiet,
    )


def open_slot(store_cfg: StoreConfig, device: str = "cpu") -> EngineSlot:
    """Open the index for the app, or, when another process is indexing it (the embedded store
    admits one process at a time), an empty slot that says so and can retry later."""
    from scenesearch.indexer.catalog import is_being_indexed

    embedded = not store_cfg.qdrant_url
    index_dir = store_cfg.index_dir

    def opener() -> SearchEngine:
        return SearchEngine.open(store_cfg, device=device)

    def busy() -> bool:
        # a server backend serves readers while indexing runs; only the embedded one is exclusive
        return embedded and bool(index_dir) and is_being_indexed(index_dir)

    slot = EngineSlot(None, opener, busy_check=busy, index_dir=index_dir)
    if busy():
        slot.busy_message = f"{index_dir} is being indexed by a running 'scenesearch index'"
    else:
        try:
            slot.engine = opener()
        except IndexBusyError as e:
            slot.busy_message = str(e)
    return slot


def serve(
    store_cfg: StoreConfig,
    host: str = "127.0.0.1",
    port: int = 7860,
    movie_dirs: Sequence[str] = (),
    device: str | None = None,
    share: bool = False,
) -> int:
    """Open the index, build the page and serve it until interrupted. Returns an exit code.

    An index being indexed elsewhere does not stop the server: the page says so and offers
    Retry.
    """
    slot = open_slot(store_cfg, resolve_device(device or env_defaults()["device"] or "auto"))
    if slot.engine is None:
        log.warning("index busy: %s; serving the page with a Retry button", slot.busy_message)
    demo = build_app(slot, movie_dirs)
    try:
        # quiet: Gradio's banner ends with "To create a public link, set share=True", which means
        # nothing to a CLI user; we print the one line that matters
        _, url, _ = launch_app(demo, host, port, share=share, prevent_thread_lock=True, quiet=True)
    except OSError as e:  # port taken, address not available: one line from the CLI
        if slot.engine is not None:
            slot.engine.close()
        raise ConfigError(f"cannot serve on {host}:{port}: {one_line(e)}") from e
    local = url.replace("://0.0.0.0:", "://127.0.0.1:").replace("://[::]:", "://127.0.0.1:")
    endpoint = write_endpoint(store_cfg, local)  # `scenesearch search` goes through this server
    print(f"scenesearch: web app on {url} (Ctrl-C to stop)", flush=True)
    previous = signal.signal(signal.SIGTERM, _interrupt)  # a kill runs the clean-up below too
    try:
        while demo.is_running:
            time.sleep(0.2)
    except KeyboardInterrupt:
        pass
    finally:
        signal.signal(signal.SIGTERM, previous)
        if endpoint is not None:
            remove_endpoint(store_cfg)
        demo.close()
        if slot.engine is not None:
            slot.engine.close()
    return 0


def _interrupt(signum, frame):
    raise KeyboardInterrupt
