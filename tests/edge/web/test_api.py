"""The HTTP API and the pages' guards against a real server on a free port."""

from __future__ import annotations

import http.client
import re
import struct
import threading
import zlib
from pathlib import Path

import cv2
import numpy as np
import pytest
import requests
from starlette.routing import Mount, Route

from edge.gallery import Gallery
from edge.web.auth import write_password

from .conftest import PASSWORD, Web, csrf_of, jpeg, web_config

DUMMY = {"name": "Alice", "photo": "0123456789abcdef", "visit": "v1"}


def all_routes(web: Web) -> list[tuple[str, str]]:
    """(method, path) of every route of the app, parameters filled with dummies."""
    out = []

    def walk(routes, prefix: str) -> None:
        for r in routes:
            if isinstance(r, Mount) and r.path != "/static":
                walk(r.routes, prefix + r.path)
            elif isinstance(r, Route):
                path = prefix + r.path
                for key, value in DUMMY.items():
                    path = path.replace("{" + key + "}", value)
                out.extend((m, path) for m in sorted(r.methods or ["GET"]) if m != "HEAD")

    walk(web.server.server.config.app.routes, "")
    return out


def test_every_route_refuses_without_auth(web: Web):
    routes = all_routes(web)
    assert len(routes) >= 35
    for method, path in routes:
        if path == "/login":
            continue
        for headers in ({}, {"Authorization": "Bearer wrong-token"}):
            r = requests.request(method, web.url + path, headers=headers, allow_redirects=False)
            if path.startswith("/api/"):
                assert r.status_code == 401, (method, path, r.status_code)
                assert "error" in r.json()
            else:
                assert r.status_code == 303, (method, path, r.status_code)
                assert r.headers["location"] == "/login"
    # the API token opens the API only, never the pages
    r = requests.get(web.url + "/people", headers=web.auth, allow_redirects=False)
    assert r.status_code == 303


def test_changes_need_the_csrf_token_and_a_same_origin(web: Web, faces):
    s = web.signed_in()
    photo = {"photos": ("a.jpg", jpeg(faces["eileen"][0]), "image/jpeg")}
    for method, path in all_routes(web):
        if method == "GET" or path == "/login":
            continue
        r = s.request(method, web.url + path, data={"name": "Eve"}, files=photo)
        assert r.status_code == 403, (method, path, r.status_code, r.text[:200])
    csrf = csrf_of(s.get(web.url + "/people").text)
    form = {"csrf": csrf, "name": "Eve"}
    r = s.post(
        web.url + "/people", data=form, files=photo, headers={"Origin": "http://evil.example"}
    )
    assert r.status_code == 403 and "cross-site" in r.text
    r = s.post(
        web.url + "/people", data=form, files=photo, headers={"Sec-Fetch-Site": "cross-site"}
    )
    assert r.status_code == 403
    r = s.post(
        web.url + "/api/people",
        data={"name": "Eve"},
        files=photo,
        headers={"X-CSRF-Token": "not-the-token"},
    )
    assert r.status_code == 403
    assert not Path(web.cfg.recognition.gallery).exists(), "a refused change wrote the gallery"
    # with the token, the same requests go through
    r = s.post(
        web.url + "/api/people", data={"name": "Eve"}, files=photo, headers={"X-CSRF-Token": csrf}
    )
    assert r.status_code == 201, r.text


def raw_get(web: Web, path: str, headers: dict[str, str]) -> tuple[int, bytes]:
    """GET exactly ``path`` (no client-side normalisation of ``..``)."""
    conn = http.client.HTTPConnection(web.server.host, web.server.port, timeout=10)
    try:
        conn.request("GET", path, headers=headers)
        r = conn.getresponse()
        return r.status, r.read()
    finally:
        conn.close()


def test_path_traversal_is_refused(web: Web):
    s = web.signed_in()
    cookie = "; ".join(f"{k}={v}" for k, v in s.cookies.items())
    probes = [
        "/static/../app.py",
        "/static/../../daemon/config.py",
        "/static/%2e%2e/app.py",
        "/static/..%2fapp.py",
        "/static/%2e%2e%2f%2e%2e%2fdaemon%2fconfig.py",
        "/static//etc/passwd",
        "/static/%2fetc%2fpasswd",
        "/people/..%2f..%2fetc/photos/abc.png",
        "/visits/..%2f..%2fetc%2fpasswd/crop.png",
        "/api/people/..%2F..%2Fetc%2Fpasswd/photos/x.png",
        "/api/events/..%2f..%2fvisits.sqlite/crop.png",
    ]
    for path in probes:
        for headers in ({"Cookie": cookie}, web.auth):
            status, body = raw_get(web, path, headers)
            assert status in (400, 401, 303, 404), (path, status)
            assert b"root:" not in body and b"import " not in body and b"SQLite" not in body
    status, body = raw_get(web, "/static/app.css", {})
    assert status == 200 and b"doorface" in body


def test_api_flow(web: Web, faces):
    api, auth = web.url + "/api", web.auth
    photos = [
        ("photos", (f"e{i}.jpg", jpeg(f), "image/jpeg")) for i, f in enumerate(faces["eileen"][:3])
    ]
    r = requests.post(api + "/people", headers=auth, data={"name": "Eileen"}, files=photos)
    assert r.status_code == 201 and r.json()["enrolled"] == 3, r.text
    people = requests.get(api + "/people", headers=auth).json()["people"]
    assert [(p["name"], p["photos"]) for p in people] == [("Eileen", 3)]

    r = requests.post(
        api + "/recognize",
        headers={**auth, "Content-Type": "image/jpeg"},
        data=jpeg(faces["eileen"][3]),
    )
    assert r.status_code == 200, r.text
    (face,) = r.json()["faces"]
    assert face["name"] == "Eileen" and face["score"] > 0.6 and len(face["box"]) == 4
    assert "confidence" in face
    r = requests.post(
        api + "/recognize", headers=auth, files={"image": ("g.jpg", jpeg(faces["grace"][0]))}
    )
    assert [f["name"] for f in r.json()["faces"]] == [None]

    # unknown visits of Grace, grouped, then named
    visits = [web.record_visit(f, None, 0.2) for f in faces["grace"][:3]]
    groups = requests.get(api + "/unknown", headers=auth).json()["groups"]
    assert [sorted(g["visits"]) for g in groups] == [sorted(visits)]
    r = requests.post(api + "/unknown/name", headers=auth, json={"visits": visits, "name": "Grace"})
    assert r.status_code == 200 and r.json()["enrolled"] == 3, r.text
    assert requests.get(api + "/unknown", headers=auth).json()["groups"] == []
    r = requests.post(
        api + "/recognize", headers=auth, files={"image": ("g.jpg", jpeg(faces["grace"][3]))}
    )
    assert [f["name"] for f in r.json()["faces"]] == ["Grace"]

    # events: filter by person and unknown
    named = web.record_visit(faces["eileen"][0], "Eileen", 0.9)
    events = requests.get(api + "/events", headers=auth).json()["events"]
    assert {e["visit_id"] for e in events} == {*visits, named}
    only = requests.get(api + "/events?person=Eileen", headers=auth).json()["events"]
    assert [e["visit_id"] for e in only] == [named]
    unknown = requests.get(api + "/events?unknown=1", headers=auth).json()["events"]
    assert {e["visit_id"] for e in unknown} == set(visits)
    assert all(e["named"] == "Grace" for e in unknown)
    crop = requests.get(api + f"/events/{named}/crop.png", headers=auth)
    assert crop.status_code == 200 and crop.content[:4] == b"\x89PNG"

    # "not Eileen" keeps a negative example
    r = requests.post(api + f"/events/{named}/not", headers=auth)
    assert r.status_code == 200 and r.json()["not_person"] == "Eileen"
    person = requests.get(api + "/people/Eileen", headers=auth).json()
    assert person["negatives"] == 1
    gallery = Gallery.load(web.cfg.recognition.gallery)
    assert gallery.negative_names.tolist() == ["Eileen"]

    # rename, photos, delete
    r = requests.post(api + "/people/Eileen/rename", headers=auth, json={"name": "Eileen C"})
    assert r.status_code == 200, r.text
    person = requests.get(api + "/people/Eileen C", headers=auth).json()
    pid = person["photo_ids"][0]
    png = requests.get(api + f"/people/Eileen C/photos/{pid}.png", headers=auth)
    assert png.status_code == 200 and png.content[:4] == b"\x89PNG"
    assert requests.delete(api + f"/people/Eileen C/photos/{pid}", headers=auth).status_code == 200
    assert requests.get(api + "/people/Eileen C", headers=auth).json()["photos"] == 2
    r = requests.post(api + "/people/Eileen C/photos", headers=auth, files=[photos[0]])
    assert r.status_code == 200 and r.json()["enrolled"] == 1
    r = requests.delete(api + "/people/Eileen C", headers=auth)
    assert r.status_code == 200 and r.json()["photos"] == 3
    gallery = Gallery.load(web.cfg.recognition.gallery)
    assert gallery.people == ["Grace"] and len(gallery.negative_names) == 0
    assert requests.get(api + "/people/Eileen C", headers=auth).status_code == 404
    status = requests.get(api + "/status", headers=auth).json()
    assert status["people"] == 1 and status["gallery_error"] == ""


def _png_header(width: int, height: int) -> bytes:
    """A tiny PNG that declares ``width`` x ``height`` (a decompression bomb's header)."""
    ihdr = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    chunk = b"IHDR" + ihdr
    return (
        b"\x89PNG\r\n\x1a\n"
        + struct.pack(">I", len(ihdr))
        + chunk
        + struct.pack(">I", zlib.crc32(chunk))
        + b"\0" * 64
    )


@pytest.fixture
def small_web(tmp_path):
    from edge.web.server import WebServer

    cfg = web_config(tmp_path, max_upload_bytes=1_000_000, max_upload_pixels=4_000_000)
    write_password(cfg.web.password_file, PASSWORD)
    server = WebServer(cfg, live=True)
    server.start()
    try:
        yield Web(server, cfg, server.url, server.ctx.token)
    finally:
        server.stop()


def test_bad_input_gets_a_clear_4xx_and_writes_nothing(small_web: Web, faces):
    web, api, auth = small_web, small_web.url + "/api", small_web.auth
    good = jpeg(faces["eileen"][0])
    r = requests.post(
        api + "/people", headers=auth, data={"name": "Eileen"}, files={"photos": ("a.jpg", good)}
    )
    assert r.status_code == 201
    gallery = Path(web.cfg.recognition.gallery)
    before = gallery.read_bytes()

    def refused(status: int, r: requests.Response) -> None:
        assert r.status_code == status, (r.status_code, r.text[:300])
        assert r.json()["error"]
        assert gallery.read_bytes() == before

    def upload(*files, name="Mallory"):
        return requests.post(
            api + "/people",
            headers=auth,
            data={"name": name},
            files=[("photos", f) for f in files],
        )

    big = b"\xff\xd8" + b"\0" * 1_200_000 + b"\xff\xd9"
    refused(413, upload(("big.jpg", big)))
    refused(
        413,
        requests.post(api + "/recognize", headers=auth, data=iter([big[:600_000], big[600_000:]])),
    )
    bomb = _png_header(50_000, 50_000)
    refused(413, upload(("bomb.png", bomb)))
    refused(
        413,
        requests.post(api + "/recognize", headers={**auth, "Content-Type": "image/png"}, data=bomb),
    )
    refused(415, upload(("notes.jpg", b"this is not an image at all")))
    refused(415, upload(("half.jpg", good[: len(good) // 2])))
    refused(415, upload(("good.jpg", good), ("bad.jpg", b"PK\x03\x04 a zip, not an image")))
    refused(400, upload(("a.jpg", good), name="../../etc"))
    refused(400, upload(("a.jpg", good), name="x" * 65))
    tiny = jpeg(np.zeros((8, 8, 3), np.uint8))
    refused(400, upload(*[(f"{i}.jpg", tiny) for i in range(21)]))
    refused(400, requests.post(api + "/people", headers=auth, data={"name": "NoFile"}))
    blank = jpeg(np.full((300, 300, 3), 128, np.uint8))
    refused(422, upload(("blank.jpg", blank)))
    rename = api + "/people/Eileen/rename"
    refused(
        400,
        requests.post(rename, headers={**auth, "Content-Type": "application/json"}, data=b"{oops"),
    )
    refused(400, requests.post(rename, headers=auth, json=["Eve"]))
    refused(400, requests.post(rename, headers=auth, json={"name": 42}))
    refused(415, requests.post(rename, headers=auth, data={"name": "Eve"}))
    refused(413, requests.post(rename, headers=auth, json={"name": "E" * 70_000}))
    refused(404, requests.post(api + "/people/Nobody/rename", headers=auth, json={"name": "Eve"}))
    refused(404, requests.post(api + "/events/no-such-visit/not", headers=auth))
    refused(400, requests.get(api + "/events?limit=lots", headers=auth))
    # the server is still there and still right
    r = requests.post(api + "/recognize", headers=auth, files={"image": ("a.jpg", good)})
    assert [f["name"] for f in r.json()["faces"]] == ["Eileen"]


def test_sign_in_is_rate_limited_and_csrf_checked(web: Web):
    s = requests.Session()
    page = s.get(web.url + "/login")
    cookie = page.headers["set-cookie"].lower()
    assert "httponly" in cookie and "samesite=strict" in cookie and "secure" not in cookie
    csrf = csrf_of(page.text)
    r = s.post(web.url + "/login", data={"password": PASSWORD}, allow_redirects=False)
    assert r.status_code == 403 and s.cookies.get("doorface_session")
    assert csrf_of(r.text) != csrf  # a new sign-in page, with a new session
    csrf = csrf_of(r.text)
    for _ in range(5):
        r = s.post(
            web.url + "/login", data={"csrf": csrf, "password": "guess"}, allow_redirects=False
        )
        assert r.status_code == 401 and "Wrong password" in r.text
    r = s.post(web.url + "/login", data={"csrf": csrf, "password": PASSWORD}, allow_redirects=False)
    assert r.status_code == 429 and int(r.headers["retry-after"]) > 0
    assert (
        requests.get(web.url + "/people", cookies=s.cookies, allow_redirects=False).status_code
        == 303
    )


def test_sign_out_and_password_change_end_sessions(web: Web):
    s = web.signed_in()
    assert s.get(web.url + "/people", allow_redirects=False).status_code == 200
    old = s.cookies.get("doorface_session")
    csrf = csrf_of(s.get(web.url + "/people").text)
    r = s.post(web.url + "/logout", data={"csrf": csrf}, allow_redirects=False)
    assert r.status_code == 303
    r = requests.get(web.url + "/people", cookies={"doorface_session": old}, allow_redirects=False)
    assert r.status_code == 303
    s = web.signed_in()
    write_password(web.cfg.web.password_file, "another-password")
    assert s.get(web.url + "/people", allow_redirects=False).status_code == 303


def test_pages_render_and_carry_security_headers(web: Web, faces):
    web.record_visit(faces["grace"][0], None, 0.3)
    s = web.signed_in()
    for page in ("/live", "/visits", "/visits?unknown=1", "/unknown", "/people", "/recognize"):
        r = s.get(web.url + page)
        assert r.status_code == 200, page
        assert "default-src 'self'" in r.headers["content-security-policy"]
        assert r.headers["cache-control"] == "no-store"
        assert r.headers["x-frame-options"] == "DENY"
        assert re.search(r'name="viewport"', r.text)
        assert "http://" not in r.text and "https://" not in r.text, f"{page} links off the device"
    assert s.get(web.url + "/live.jpg").status_code == 404  # no frame yet


def test_capture_from_the_live_camera(web: Web, faces):
    import time
    from types import SimpleNamespace

    api, auth = web.url + "/api", web.auth
    r = requests.post(api + "/people/Eileen/capture", headers=auth)
    assert r.status_code == 409 and "camera" in r.json()["error"]
    frame = np.full((480, 640, 3), 90, np.uint8)
    frame[40:340, 150:450] = cv2.resize(faces["eileen"][0][16:216, 124:324], (300, 300))
    web.server.recorder.frame(SimpleNamespace(image=frame, timestamp=time.time()), [])
    r = requests.post(api + "/people/Eileen/capture", headers=auth)
    assert r.status_code == 200 and r.json()["enrolled"] == 1, r.text
    live = web.signed_in().get(web.url + "/live.jpg")
    assert live.status_code == 200 and live.content[:2] == b"\xff\xd8"
    web.server.recorder.frame(SimpleNamespace(image=frame, timestamp=time.time() - 60), [])
    assert requests.post(api + "/people/Eileen/capture", headers=auth).status_code == 409
    assert requests.get(api + "/people/Eileen", headers=auth).json()["photos"] == 1


def test_a_visit_is_named_once_and_only_an_unknown_one(web: Web, faces, caplog):
    api, auth = web.url + "/api", web.auth
    gallery = Path(web.cfg.recognition.gallery)
    stranger = web.record_visit(faces["grace"][0], None, 0.2)
    known = web.record_visit(faces["grace"][1], "Grace", 0.9)
    r = requests.post(
        api + "/unknown/name", headers=auth, json={"visits": [stranger], "name": "Wade"}
    )
    assert r.status_code == 200 and r.json()["enrolled"] == 1, r.text
    before = gallery.read_bytes()
    for visits, status, why in [
        ([stranger], 409, "already named 'Wade'"),  # one face never becomes two people
        ([known], 409, "recognised, not unknown"),
        (["\ud800"], 400, "visit ids"),  # a lone surrogate (was a 500 from sqlite)
        (["x" * 65], 400, "visit ids"),
        ([], 400, "at least one"),
    ]:
        r = requests.post(
            api + "/unknown/name", headers=auth, json={"visits": visits, "name": "Other"}
        )
        assert r.status_code == status and why in r.json()["error"], (visits, r.text)
    assert gallery.read_bytes() == before
    for name in (".", ".."):  # a browser would resolve /people/.. before asking
        r = requests.post(api + "/people/Wade/rename", headers=auth, json={"name": name})
        assert r.status_code == 400 and "'.'" in r.json()["error"], r.text
    assert Gallery.load(gallery).people == ["Wade"]


def test_a_client_gone_mid_body_is_one_log_line(web: Web, caplog):
    caplog.set_level("INFO")
    host, port = web.url.removeprefix("http://").split(":")
    for path, kind in [
        ("/api/recognize", "image/jpeg"),
        ("/login", "application/x-www-form-urlencoded"),
    ]:
        conn = http.client.HTTPConnection(host, int(port), timeout=5)
        conn.putrequest("POST", path)
        conn.putheader("Authorization", f"Bearer {web.token}")
        conn.putheader("Content-Type", kind)
        conn.putheader("Content-Length", "100")
        conn.endheaders(b"abc")
        conn.close()
    for _ in range(100):
        if sum("disconnected mid-request" in r.getMessage() for r in caplog.records) == 2:
            break
        threading.Event().wait(0.05)
    assert sum("disconnected mid-request" in r.getMessage() for r in caplog.records) == 2
    assert not [r for r in caplog.records if r.exc_info], "a traceback was logged"
    assert requests.get(web.url + "/api/status", headers=web.auth).status_code == 200
