"""What the web app serves from disk: the indexed movie files and the index's thumbnails, by id.

``/media/movie/<movie_id>`` answers with that movie's own file (its indexed path, or the file of
the same name that ``--movies`` folders hold), ``/media/thumb/<shot_id>`` with that shot's JPEG
from the index's ``thumbs/`` folder — nothing else: no other file of a movie's folder, whatever
its name or subfolder (a ``secret.txt`` or a planted ``page.html`` next to a movie → 404).
Gradio's own ``/gradio_api/file=`` route is narrowed to Gradio's upload and cache folders (the
gallery's copies of thumbnails and the user's uploads). Every file answered carries
``X-Content-Type-Options: nosniff``, a ``Content-Security-Policy`` that runs no script (and
``sandbox``), and a ``Content-Disposition``: ``inline`` for images, video and audio, else
``attachment`` with ``application/octet-stream`` — an HTML or SVG file never renders in the app's
origin.

:class:`MediaGuard` is an ASGI middleware, installed through ``launch(app_kwargs=...)``.
"""

from __future__ import annotations

import mimetypes
import os
from collections.abc import Callable
from pathlib import Path

from starlette.concurrency import run_in_threadpool
from starlette.responses import FileResponse, PlainTextResponse

MOVIE_ROUTE = "/media/movie/"
THUMB_ROUTE = "/media/thumb/"
GRADIO_FILE_ROUTE = "/gradio_api/file="
CSP = "default-src 'none'; img-src 'self'; media-src 'self'; sandbox"
SECURITY_HEADERS = {
    "X-Content-Type-Options": "nosniff",
    "Content-Security-Policy": CSP,
    "Cross-Origin-Resource-Policy": "same-origin",
}
INLINE_TYPES = ("image/jpeg", "image/png", "image/webp", "image/gif", "video/", "audio/")


def media_type(path: str) -> tuple[str, str]:
    """(Content-Type, disposition) for a served file: media inline, anything else a download."""
    mime, _ = mimetypes.guess_type(path)
    if mime and mime.startswith(INLINE_TYPES):
        return mime, "inline"
    ext = Path(path).suffix.lower()
    if ext in (".mkv", ".webm", ".avi", ".m4v", ".ts", ".mts"):  # not in every mimetypes table
        return "video/" + {".mkv": "x-matroska", ".avi": "x-msvideo", ".ts": "mp2t",
                           ".mts": "mp2t", ".m4v": "mp4"}.get(ext, ext[1:]), "inline"  # fmt: skip
    return "application/octet-stream", "attachment"


def movie_url(movie_id: str) -> str:
    """The player's URL of a movie, relative to the page (works under a proxy prefix)."""
    from urllib.parse import quote

    return MOVIE_ROUTE.lstrip("/") + quote(movie_id, safe="")


def thumb_url(shot_id: str) -> str:
    """A thumbnail's URL by shot id, relative to the page."""
    from urllib.parse import quote

    return THUMB_ROUTE.lstrip("/") + quote(shot_id, safe="")


def _inside(path: str, folders: list[str]) -> bool:
    real = os.path.realpath(path)
    return any(real == f or real.startswith(f.rstrip(os.sep) + os.sep) for f in folders)


def gradio_folders() -> list[str]:
    """Gradio's own upload and cache folders (real paths)."""
    from gradio import utils

    return [os.path.realpath(utils.get_upload_folder()),
            os.path.realpath(str(utils.get_cache_folder()))]  # fmt: skip


class MediaGuard:
    """ASGI middleware: serves the two media routes and guards Gradio's file route (module
    docstring). ``movie_file(movie_id)`` / ``thumb_file(shot_id)`` return the file to serve or
    None; they are called in a worker thread (they may read the index)."""

    def __init__(
        self,
        app,
        movie_file: Callable[[str], str | None],
        thumb_file: Callable[[str], str | None],
    ):
        self.app = app
        self.movie_file = movie_file
        self.thumb_file = thumb_file

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        path = scope.get("path", "")
        root = scope.get("root_path", "")
        if root and path.startswith(root):
            path = path[len(root) :]
        for route, find in ((MOVIE_ROUTE, self.movie_file), (THUMB_ROUTE, self.thumb_file)):
            if path.startswith(route):
                if scope["method"] not in ("GET", "HEAD"):
                    return await PlainTextResponse("method not allowed", 405)(scope, receive, send)
                key = path[len(route) :]
                file = await run_in_threadpool(_safe_call, find, key)
                if not file:
                    return await _not_found(scope, receive, send)
                mime, disp = media_type(file)
                resp = FileResponse(file, media_type=mime, headers=SECURITY_HEADERS,
                                    content_disposition_type=disp,
                                    filename=os.path.basename(file))  # fmt: skip
                return await resp(scope, receive, send)
        if path.startswith(GRADIO_FILE_ROUTE):
            target = path[len(GRADIO_FILE_ROUTE) :]
            if "://" in target or not _inside(target, gradio_folders()):
                return await _not_found(scope, receive, send)
            mime, disp = media_type(target)
            return await self.app(scope, receive, _with_headers(send, mime, disp))
        return await self.app(scope, receive, send)


def _safe_call(find, key: str) -> str | None:
    try:
        return find(key)
    except Exception:  # a malformed id, a closed index: not found, never a 500 with a trace
        return None


async def _not_found(scope, receive, send):
    await PlainTextResponse("not found", 404, headers=SECURITY_HEADERS)(scope, receive, send)


def _with_headers(send, mime: str, disp: str):
    """Wrap ``send`` so the response gets our security headers and a safe content type."""

    async def wrapped(message):
        if message["type"] == "http.response.start" and message.get("status", 500) < 400:
            drop = {b"content-type", b"content-disposition", b"x-content-type-options",
                    b"content-security-policy"}  # fmt: skip
            headers = [(k, v) for k, v in message.get("headers", []) if k.lower() not in drop]
            headers.append((b"content-type", mime.encode()))
            headers.append((b"content-disposition", disp.encode()))
            headers += [(k.lower().encode(), v.encode()) for k, v in SECURITY_HEADERS.items()]
            message = {**message, "headers": headers}
        await send(message)

    return wrapped
