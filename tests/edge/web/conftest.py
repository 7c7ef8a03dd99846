"""A real web server (uvicorn on a free loopback port) with the shipped model, and helpers.

Faces come from packages, never from ../shared: scikit-image's astronaut (Eileen Collins) and
matplotlib's Grace Hopper (as `edge demo` uses them), with `edge.demo.variants` for several
photos of each. Visits are recorded through the daemon's own hook
(:meth:`edge.web.recorder.VisitRecorder.record`) with the decisive crop the daemon would send.
"""

from __future__ import annotations

import re
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np
import pytest
import requests

from edge.daemon.config import Config, parse
from edge.web.auth import write_password
from edge.web.server import WebServer

PASSWORD = "door-bell-42"


@dataclass
class Web:
    server: WebServer
    cfg: Config
    url: str
    token: str

    @property
    def auth(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.token}"}

    def signed_in(self) -> requests.Session:
        """A browser-like session signed in through the sign-in form."""
        s = requests.Session()
        page = s.get(self.url + "/login")
        r = s.post(
            self.url + "/login",
            data={"csrf": csrf_of(page.text), "password": PASSWORD},
            allow_redirects=False,
        )
        assert r.status_code == 303, r.text
        return s

    def record_visit(self, image: np.ndarray, person: str | None, score: float) -> str:
        """Record a visit as the daemon does: the event, and the aligned crop of the image's
        largest face. Returns its visit_id."""
        return record_visit(self.server, image, person, score)


def csrf_of(html: str) -> str:
    return re.search(r'name="csrf" value="([^"]+)"', html).group(1)


def web_config(tmp: Path, **web: object) -> Config:
    values = {
        "enabled": True,
        "listen": "127.0.0.1:0",
        "password_file": str(tmp / "web_password"),
        "token_file": str(tmp / "web_token"),
        "visits": str(tmp / "visits.sqlite"),
        **web,
    }
    return parse(
        {"recognition": {"gallery": str(tmp / "gallery.npz"), "threads": 1}, "web": values},
        "test",
    )


@pytest.fixture
def web(tmp_path) -> Iterator[Web]:
    cfg = web_config(tmp_path)
    write_password(cfg.web.password_file, PASSWORD)
    server = WebServer(cfg, live=True)
    server.start()
    try:
        yield Web(server, cfg, server.url, server.ctx.token)
    finally:
        server.stop()


@pytest.fixture(scope="session")
def faces() -> dict[str, list[np.ndarray]]:
    """Several BGR photos each of 'eileen' and 'grace' (real faces shipped in packages)."""
    from edge.demo import packaged_faces, variants

    astronaut, strangers = packaged_faces()
    return {"eileen": variants(astronaut, 4, seed=1), "grace": variants(strangers[0], 4, seed=2)}


def jpeg(image: np.ndarray) -> bytes:
    ok, buf = cv2.imencode(".jpg", image, [cv2.IMWRITE_JPEG_QUALITY, 92])
    assert ok
    return buf.tobytes()


def record_visit(server: WebServer, image: np.ndarray, person: str | None, score: float) -> str:
    from edge.preprocess import face_crop

    library = server.ctx.library
    embedder = library.recognizer.embedder
    crop = face_crop(
        image, library.recognizer.detector, embedder.input_size, embedder.preprocessing
    )
    visit = str(uuid.uuid4())
    ev = {
        "id": str(uuid.uuid4()),
        "visit_id": visit,
        "type": "recognized" if person else "unknown",
        "person": person,
        "score": score,
        "confidence": library.recognizer.matcher.confidence_of(score),  # as the daemon sends it
        "timestamp": _now_iso(),
        "camera": "front_door",
        "model_id": library.model_id,
    }
    server.recorder.record(ev, crop.crop)
    return visit


def _now_iso() -> str:
    import datetime as dt

    return dt.datetime.now(dt.UTC).isoformat(timespec="milliseconds")
