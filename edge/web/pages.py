"""The pages: sign-in, Live, Visits, Unknown faces, People, Recognize.

Server-rendered HTML (Jinja2, autoescaped) with one small script and one stylesheet from
``/static``: no build step, no CDN, forms work without JavaScript, and the layout is a single
column on a phone. Every change is a POST form carrying the session's CSRF token
(:func:`checked_form`) and answers with a redirect (post/redirect/get) and a one-time message.
"""

from __future__ import annotations

import base64
import datetime as dt
from urllib.parse import quote

from starlette.concurrency import run_in_threadpool
from starlette.datastructures import FormData
from starlette.requests import Request
from starlette.responses import RedirectResponse, Response
from starlette.routing import Route

from edge.web import actions
from edge.web.app import WebContext, render
from edge.web.auth import verify_password
from edge.web.errors import Problem
from edge.web.live import LiveFace, annotated_jpeg
from edge.web.sessions import COOKIE, CSRF_FIELD, Session, cookie_options
from edge.web.uploads import form_images, read_form


def _ctx(request: Request) -> WebContext:
    return request.app.state.ctx


def _session(request: Request) -> Session:
    return request.scope["state"]["auth"]


async def checked_form(request: Request) -> FormData:
    """The posted form, once its CSRF field matches the session's (else 403)."""
    form = await read_form(request)
    session = request.scope.get("state", {}).get("auth")
    if not isinstance(session, Session) or not session.csrf_ok(_text(form, CSRF_FIELD)):
        raise Problem(403, "missing or wrong CSRF token: reload the page and try again")
    return form


def _text(form: FormData, key: str) -> str:
    value = form.get(key)
    return value if isinstance(value, str) else ""


def _back(request: Request, to: str, message: str = "") -> Response:
    if message:
        _session(request).flash = message
    return RedirectResponse(to, 303)


def _person_url(name: str) -> str:
    return "/people/" + quote(name.strip(), safe="")


def _when(ts: float) -> str:
    return dt.datetime.fromtimestamp(ts).strftime("%Y-%m-%d %H:%M:%S")


# -- sign-in -------------------------------------------------------------------------------
async def login_page(request: Request) -> Response:
    ctx = _ctx(request)
    session = ctx.sessions.get(request.cookies.get(COOKIE))
    if session is not None and session.signed_in:
        return RedirectResponse("/live", 303)
    return _login_form(request, ctx, session)


def _login_form(
    request: Request, ctx: WebContext, session: Session | None, error: str = "", status: int = 200
) -> Response:
    fresh = session is None
    session = session or ctx.sessions.new()
    request.scope.setdefault("state", {})["auth"] = session
    has_password = ctx.password_hash() is not None
    response = render(
        request, "login.html", status, error=error, has_password=has_password, title="Sign in"
    )
    response.headers["cache-control"] = "no-store"
    if fresh:
        response.set_cookie(COOKIE, session.id, **cookie_options(ctx.secure))
    return response


async def login(request: Request) -> Response:
    ctx = _ctx(request)
    client = request.client.host if request.client else "?"
    session = ctx.sessions.get(request.cookies.get(COOKIE))
    wait = ctx.limiter.wait_s(client)
    if wait > 0:
        response = _login_form(
            request, ctx, session, f"Too many attempts: try again in {wait:.0f} s.", 429
        )
        response.headers["retry-after"] = str(int(wait) + 1)
        return response
    form = await read_form(request)
    if session is None or session.signed_in or not session.csrf_ok(_text(form, CSRF_FIELD)):
        return _login_form(request, ctx, None, "The sign-in page expired: try again.", 403)
    stored = ctx.password_hash()
    if stored is None:
        return _login_form(request, ctx, session, "No password is set.", 403)
    if not await run_in_threadpool(verify_password, _text(form, "password"), stored):
        ctx.limiter.failed(client)
        return _login_form(request, ctx, session, "Wrong password.", 401)
    ctx.limiter.succeeded(client)
    signed_in = ctx.sessions.new(signed_in=True, replacing=session.id)
    response = RedirectResponse("/live", 303)
    response.set_cookie(COOKIE, signed_in.id, **cookie_options(ctx.secure))
    return response


async def logout(request: Request) -> Response:
    await checked_form(request)
    _ctx(request).sessions.drop(_session(request).id)
    response = RedirectResponse("/login", 303)
    response.delete_cookie(COOKIE, path="/")
    return response


# -- live ----------------------------------------------------------------------------------
async def home(request: Request) -> Response:
    return RedirectResponse("/live", 303)


async def live_page(request: Request) -> Response:
    ctx = _ctx(request)
    status = ctx.live.status() if ctx.live is not None else None
    return render(request, "live.html", title="Live", status=status)


async def live_jpeg(request: Request) -> Response:
    ctx = _ctx(request)
    data = await run_in_threadpool(ctx.live.jpeg) if ctx.live is not None else None
    if not data:
        raise Problem(404, "no frame yet")
    return Response(data, media_type="image/jpeg")


# -- visits --------------------------------------------------------------------------------
async def visits_page(request: Request) -> Response:
    ctx = _ctx(request)
    person = request.query_params.get("person") or None
    unknown = request.query_params.get("unknown") == "1"
    visits = await run_in_threadpool(ctx.visits.recent, person, unknown)
    people = [p.name for p in await run_in_threadpool(ctx.library.people)]
    return render(
        request,
        "visits.html",
        title="Visits",
        visits=visits,
        people=people,
        person=person,
        unknown=unknown,
        when=_when,
    )


async def visit_crop(request: Request) -> Response:
    data = await run_in_threadpool(_ctx(request).visits.crop_png, request.path_params["visit"])
    if data is None:
        raise Problem(404, "no such visit (purged or never recorded)")
    return Response(data, media_type="image/png")


async def visit_not(request: Request) -> Response:
    await checked_form(request)
    name = await run_in_threadpool(actions.mark_not, _ctx(request), request.path_params["visit"])
    return _back(request, "/visits", f"Noted: that face is not {name}.")


# -- unknown faces -------------------------------------------------------------------------
async def unknown_page(request: Request) -> Response:
    ctx = _ctx(request)
    groups = await run_in_threadpool(actions.unknown_groups, ctx)
    people = [p.name for p in await run_in_threadpool(ctx.library.people)]
    return render(request, "unknown.html", title="Unknown faces", groups=groups, people=people)


async def unknown_name(request: Request) -> Response:
    form = await checked_form(request)
    ids = [v for v in form.getlist("visit") if isinstance(v, str)]
    name = _text(form, "name")
    count = await run_in_threadpool(actions.name_visits, _ctx(request), ids, name)
    return _back(request, "/unknown", f"{name.strip()}: {count} faces enrolled.")


# -- people --------------------------------------------------------------------------------
async def people_page(request: Request) -> Response:
    library = _ctx(request).library
    people = await run_in_threadpool(library.people)
    return render(
        request, "people.html", title="People", people=people, error=library.gallery_error
    )


async def person_page(request: Request) -> Response:
    ctx = _ctx(request)
    person = await run_in_threadpool(ctx.library.person, request.path_params["name"])
    return render(
        request, "person.html", title=person.name, person=person, has_live=ctx.live is not None
    )


async def photo(request: Request) -> Response:
    p = request.path_params
    data = await run_in_threadpool(_ctx(request).library.photo_png, p["name"], p["photo"])
    return Response(data, media_type="image/png")


async def add_person(request: Request) -> Response:
    form = await checked_form(request)
    return await _enrol(request, form, _text(form, "name"))


async def add_photos(request: Request) -> Response:
    form = await checked_form(request)
    return await _enrol(request, form, request.path_params["name"])


async def _enrol(request: Request, form: FormData, name: str) -> Response:
    ctx = _ctx(request)
    images = await form_images(form, "photos", ctx.cfg.max_upload_pixels)
    report = await run_in_threadpool(ctx.library.enrol_images, name, images)
    name = name.strip()
    return _back(request, _person_url(name), actions.enrol_summary(name, report))


async def capture(request: Request) -> Response:
    await checked_form(request)
    name = request.path_params["name"]
    report = await run_in_threadpool(actions.capture, _ctx(request), name)
    return _back(request, _person_url(name), actions.enrol_summary(name, report))


async def rename(request: Request) -> Response:
    form = await checked_form(request)
    old = request.path_params["name"]
    new = await run_in_threadpool(_ctx(request).library.rename, old, _text(form, "name"))
    return _back(request, _person_url(new), f"Renamed {old} to {new}.")


async def delete_person(request: Request) -> Response:
    await checked_form(request)
    name = request.path_params["name"]
    removed = await run_in_threadpool(_ctx(request).library.delete_person, name)
    return _back(request, "/people", f"Deleted {name} and their {removed} photos.")


async def delete_photo(request: Request) -> Response:
    await checked_form(request)
    p = request.path_params
    library = _ctx(request).library
    await run_in_threadpool(library.delete_photo, p["name"], p["photo"])
    left = {q.name for q in await run_in_threadpool(library.people)}
    return _back(
        request, _person_url(p["name"]) if p["name"] in left else "/people", "Photo deleted."
    )


# -- recognize -----------------------------------------------------------------------------
async def recognize_page(request: Request) -> Response:
    return render(request, "recognize.html", title="Recognize", faces=None, picture="")


async def recognize(request: Request) -> Response:
    ctx = _ctx(request)
    form = await checked_form(request)
    label, image = (await form_images(form, "photo", ctx.cfg.max_upload_pixels))[0]
    faces = await run_in_threadpool(ctx.library.recognize, image)
    boxes = [LiveFace(tuple(f["box"]), f["name"], f["score"]) for f in faces]
    jpeg = await run_in_threadpool(annotated_jpeg, image, boxes, 800)
    picture = "data:image/jpeg;base64," + base64.b64encode(jpeg).decode()
    return render(
        request, "recognize.html", title="Recognize", faces=faces, picture=picture, label=label
    )


def routes() -> list[Route]:
    return [
        Route("/", home),
        Route("/login", login_page, methods=["GET"]),
        Route("/login", login, methods=["POST"]),
        Route("/logout", logout, methods=["POST"]),
        Route("/live", live_page),
        Route("/live.jpg", live_jpeg),
        Route("/visits", visits_page),
        Route("/visits/{visit}/crop.png", visit_crop),
        Route("/visits/{visit}/not", visit_not, methods=["POST"]),
        Route("/unknown", unknown_page),
        Route("/unknown/name", unknown_name, methods=["POST"]),
        Route("/people", people_page, methods=["GET"]),
        Route("/people", add_person, methods=["POST"]),
        Route("/people/{name}", person_page),
        Route("/people/{name}/photos", add_photos, methods=["POST"]),
        Route("/people/{name}/photos/{photo}.png", photo),
        Route("/people/{name}/photos/{photo}/delete", delete_photo, methods=["POST"]),
        Route("/people/{name}/capture", capture, methods=["POST"]),
        Route("/people/{name}/rename", rename, methods=["POST"]),
        Route("/people/{name}/delete", delete_person, methods=["POST"]),
        Route("/recognize", recognize_page, methods=["GET"]),
        Route("/recognize", recognize, methods=["POST"]),
    ]
