"""The JSON HTTP API under ``/api`` (docs/API.md): recognise, people, events, unknown faces.

Clients send ``Authorization: Bearer <token>`` (the token file); the pages' session also works,
with ``X-CSRF-Token`` on changes (checked by :class:`edge.web.app.Guard`). Errors are
``{"error": "<one line>"}`` with a 4xx status. Images come as multipart form files, or for
``POST /api/recognize`` also as the raw request body (``Content-Type: image/jpeg``, ...).
"""

from __future__ import annotations

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from edge.web import actions
from edge.web.app import WebContext
from edge.web.errors import Problem
from edge.web.uploads import decode_upload, form_images, read_form, read_json

MULTIPART = "multipart/form-data"


def _ctx(request: Request) -> WebContext:
    return request.app.state.ctx


def _person_json(p) -> dict:
    return {
        "name": p.name,
        "photos": len(p.photos),
        "photo_ids": p.photos,
        "negatives": p.negatives,
    }


async def recognize(request: Request) -> Response:
    ctx = _ctx(request)
    limit = ctx.cfg.max_upload_pixels
    if request.headers.get("content-type", "").startswith(MULTIPART):
        _, image = (await form_images(await read_form(request), "image", limit))[0]
    else:
        image = await decode_upload(await request.body(), "request body", limit)
    faces = await run_in_threadpool(ctx.library.recognize, image)
    return JSONResponse({"width": image.shape[1], "height": image.shape[0], "faces": faces})


async def people(request: Request) -> Response:
    found = await run_in_threadpool(_ctx(request).library.people)
    return JSONResponse({"people": [_person_json(p) for p in found]})


async def person(request: Request) -> Response:
    p = await run_in_threadpool(_ctx(request).library.person, request.path_params["name"])
    return JSONResponse(_person_json(p))


async def create_person(request: Request) -> Response:
    form = await read_form(request)
    name = form.get("name")
    if not isinstance(name, str):
        raise Problem(400, "send the person's name in the form field 'name'")
    return await _enrol(request, form, name, 201)


async def add_photos(request: Request) -> Response:
    return await _enrol(request, await read_form(request), request.path_params["name"], 200)


async def _enrol(request: Request, form, name: str, status: int) -> Response:
    ctx = _ctx(request)
    images = await form_images(form, "photos", ctx.cfg.max_upload_pixels)
    report = await run_in_threadpool(ctx.library.enrol_images, name, images)
    body = {"name": name.strip(), "enrolled": report.used, "skipped": report.skipped}
    return JSONResponse(body, status)


async def capture(request: Request) -> Response:
    name = request.path_params["name"]
    report = await run_in_threadpool(actions.capture, _ctx(request), name)
    return JSONResponse({"name": name, "enrolled": report.used, "skipped": report.skipped})


async def rename(request: Request) -> Response:
    data = await read_json(request)
    new = data.get("name")
    if not isinstance(new, str):
        raise Problem(400, 'send {"name": "<new name>"}')
    old = request.path_params["name"]
    new = await run_in_threadpool(_ctx(request).library.rename, old, new)
    return JSONResponse({"name": new, "was": old})


async def delete_person(request: Request) -> Response:
    name = request.path_params["name"]
    removed = await run_in_threadpool(_ctx(request).library.delete_person, name)
    return JSONResponse({"deleted": name, "photos": removed})


async def delete_photo(request: Request) -> Response:
    p = request.path_params
    await run_in_threadpool(_ctx(request).library.delete_photo, p["name"], p["photo"])
    return JSONResponse({"deleted": p["photo"], "name": p["name"]})


async def photo(request: Request) -> Response:
    p = request.path_params
    data = await run_in_threadpool(_ctx(request).library.photo_png, p["name"], p["photo"])
    return Response(data, media_type="image/png")


async def events(request: Request) -> Response:
    q = request.query_params
    try:
        limit = int(q.get("limit", "100"))
    except ValueError:
        raise Problem(400, "limit must be an integer") from None
    unknown = q.get("unknown", "").lower() in ("1", "true")
    found = await run_in_threadpool(
        _ctx(request).visits.recent, q.get("person") or None, unknown, limit
    )
    return JSONResponse({"events": [v.to_json() for v in found]})


async def event_crop(request: Request) -> Response:
    data = await run_in_threadpool(_ctx(request).visits.crop_png, request.path_params["visit"])
    if data is None:
        raise Problem(404, "no such visit (purged or never recorded)")
    return Response(data, media_type="image/png")


async def event_not(request: Request) -> Response:
    visit = request.path_params["visit"]
    name = await run_in_threadpool(actions.mark_not, _ctx(request), visit)
    return JSONResponse({"visit_id": visit, "not_person": name})


async def unknown(request: Request) -> Response:
    groups = await run_in_threadpool(actions.unknown_groups, _ctx(request))
    return JSONResponse({"groups": [{"visits": g.visit_ids} for g in groups]})


async def unknown_name(request: Request) -> Response:
    data = await read_json(request)
    ids, name = data.get("visits"), data.get("name")
    if not isinstance(name, str) or not isinstance(ids, list):
        raise Problem(400, 'send {"visits": ["<visit id>", ...], "name": "<name>"}')
    count = await run_in_threadpool(actions.name_visits, _ctx(request), ids, name)
    return JSONResponse({"name": name.strip(), "enrolled": count})


async def status(request: Request) -> Response:
    ctx = _ctx(request)
    found = await run_in_threadpool(ctx.library.people)
    return JSONResponse(
        {
            "camera": ctx.live.status() if ctx.live is not None else None,
            "people": len(found),
            "model_id": ctx.library.model_id,
            "gallery_error": ctx.library.gallery_error,
        }
    )


def routes() -> list[Route]:
    return [
        Route("/recognize", recognize, methods=["POST"]),
        Route("/people", people, methods=["GET"]),
        Route("/people", create_person, methods=["POST"]),
        Route("/people/{name}", person, methods=["GET"]),
        Route("/people/{name}", delete_person, methods=["DELETE"]),
        Route("/people/{name}/rename", rename, methods=["POST"]),
        Route("/people/{name}/photos", add_photos, methods=["POST"]),
        Route("/people/{name}/capture", capture, methods=["POST"]),
        Route("/people/{name}/photos/{photo}.png", photo, methods=["GET"]),
        Route("/people/{name}/photos/{photo}", delete_photo, methods=["DELETE"]),
        Route("/events", events, methods=["GET"]),
        Route("/events/{visit}/crop.png", event_crop, methods=["GET"]),
        Route("/events/{visit}/not", event_not, methods=["POST"]),
        Route("/unknown", unknown, methods=["GET"]),
        Route("/unknown/name", unknown_name, methods=["POST"]),
        Route("/status", status, methods=["GET"]),
    ]
