"""What a request may carry: body size, form shape, JSON size, and images decoded safely.

Limits come before work: a body over ``web.max_upload_bytes`` is refused from its
``Content-Length`` (413) or, without one, as soon as the bytes read pass the limit; a form has
at most :data:`MAX_FILES` files and :data:`MAX_FIELDS` fields; JSON bodies at most
:data:`MAX_JSON_BYTES`. Every uploaded image goes through :func:`edge.image.decode_image`, the
path ``edge`` reads files by: the pixel count is read from the header and refused over
``web.max_upload_pixels`` before any pixel is decoded (a decompression bomb costs a header
read), then truncated and undecodable data are refused. A file's name is used in messages
only, never as a path.
"""

from __future__ import annotations

import json
from typing import Any

import numpy as np
from starlette.concurrency import run_in_threadpool
from starlette.datastructures import FormData, UploadFile
from starlette.requests import Request
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from edge.image import decode_image
from edge.web.errors import Problem

MAX_FILES = 20
MAX_FIELDS = 60
MAX_FIELD_BYTES = 16 * 1024
MAX_JSON_BYTES = 64 * 1024


class BodyTooLarge(Exception):
    """Raised from ``receive`` when a body without Content-Length passes the limit."""


class BodyLimit:
    """ASGI middleware: 413 for a request body over ``max_bytes``."""

    def __init__(self, app: ASGIApp, max_bytes: int) -> None:
        self.app = app
        self.max_bytes = max_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        length = dict(scope["headers"]).get(b"content-length")
        if length is not None and (not length.isdigit() or int(length) > self.max_bytes):
            await _refuse(send, 413, f"request body over {self.max_bytes} bytes")
            return
        seen = 0

        async def counted() -> Message:
            nonlocal seen
            message = await receive()
            seen += len(message.get("body", b""))
            if seen > self.max_bytes:
                raise BodyTooLarge()
            return message

        await self.app(scope, counted, send)


async def _refuse(send: Send, status: int, message: str) -> None:
    body = json.dumps({"error": message}).encode()
    headers = [(b"content-type", b"application/json"), (b"content-length", b"%d" % len(body))]
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": body})


async def read_form(request: Request) -> FormData:
    """The request's form (multipart or urlencoded) within the form limits; 400 otherwise."""
    return await request.form(
        max_files=MAX_FILES, max_fields=MAX_FIELDS, max_part_size=MAX_FIELD_BYTES
    )


async def read_json(request: Request) -> dict[str, Any]:
    """A JSON object body: 415 for another type, 413 over MAX_JSON_BYTES, 400 if malformed."""
    kind = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if kind != "application/json":
        raise Problem(415, "send Content-Type: application/json")
    chunks, size = [], 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > MAX_JSON_BYTES:
            raise Problem(413, f"JSON body over {MAX_JSON_BYTES} bytes")
        chunks.append(chunk)
    try:
        data = json.loads(b"".join(chunks))
    except (ValueError, UnicodeDecodeError):
        raise Problem(400, "malformed JSON") from None
    if not isinstance(data, dict):
        raise Problem(400, "the JSON body must be an object")
    return data


async def form_images(form: FormData, field: str, max_pixels: int) -> list[tuple[str, np.ndarray]]:
    """Every file of ``field``, decoded as (label, BGR image); 400 if none was sent. One
    unreadable or oversized file refuses the request (nothing is written)."""
    files = [f for f in form.getlist(field) if isinstance(f, UploadFile) and f.filename]
    if not files:
        raise Problem(400, f"no image file in field {field!r}")
    images = []
    for upload in files:
        label = safe_label(upload.filename or "upload")
        data = await upload.read()
        images.append((label, await decode_upload(data, label, max_pixels)))
    return images


async def decode_upload(data: bytes, label: str, max_pixels: int) -> np.ndarray:
    """BGR pixels of uploaded bytes (ImageError / ImageTooLargeError as :func:`decode_image`)."""
    return await run_in_threadpool(decode_image, data, label, max_pixels=max_pixels)


def safe_label(filename: str) -> str:
    """A file name fit for a message: its last path part, printable, at most 80 characters."""
    name = filename.replace("\\", "/").rsplit("/", 1)[-1]
    name = "".join(c for c in name if c.isprintable())[:80]
    return name or "upload"
