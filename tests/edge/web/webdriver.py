"""A minimal W3C WebDriver client for Debian's chromium + chromium-driver (no Selenium).

Plain HTTP to a chromedriver we start on a free loopback port: enough to open pages, find
elements by CSS, type, click, attach files, accept a confirm() dialog and take screenshots.
Nothing is downloaded: the browser and the driver come from apt (scripts/test.sh).
"""

from __future__ import annotations

import base64
import contextlib
import json
import shutil
import socket
import subprocess
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

ELEMENT = "element-6066-11e4-a52e-4f735466cecf"
CHROME_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--disable-dev-shm-usage",
    "--force-device-scale-factor=1",
]


def find_browser() -> tuple[str, str] | None:
    """(chromium, chromedriver) paths, or None when either is missing."""
    browser = shutil.which("chromium") or shutil.which("chromium-browser")
    driver = shutil.which("chromedriver") or (
        "/usr/bin/chromedriver" if Path("/usr/bin/chromedriver").exists() else None
    )
    return (browser, driver) if browser and driver else None


class WebDriverError(RuntimeError):
    pass


class Browser:
    def __init__(self, browser: str, driver: str, profile: Path, width: int, height: int):
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            port = s.getsockname()[1]
        self.base = f"http://127.0.0.1:{port}"
        self.log = open(profile.parent / "chromedriver.log", "w")  # noqa: SIM115
        self.proc = subprocess.Popen(
            [driver, f"--port={port}"], stdout=self.log, stderr=subprocess.STDOUT
        )
        self._wait_ready()
        caps = {
            "browserName": "chrome",
            "goog:chromeOptions": {
                "binary": browser,
                "args": [
                    *CHROME_ARGS,
                    f"--user-data-dir={profile}",
                    f"--window-size={width},{height}",
                ],
                # a phone's viewport (a desktop window cannot be narrower than 500 px)
                "mobileEmulation": {
                    "deviceMetrics": {"width": width, "height": height, "pixelRatio": 1.0}
                },
            },
        }
        value = self._call(
            "POST", "/session", {"capabilities": {"alwaysMatch": caps}}, session=False
        )
        self.session = value["sessionId"]

    def _wait_ready(self) -> None:
        end = time.time() + 30
        while time.time() < end:
            try:
                if self._call("GET", "/status", session=False).get("ready"):
                    return
            except (urllib.error.URLError, ConnectionError, WebDriverError):
                pass
            time.sleep(0.2)
        raise WebDriverError("chromedriver did not start")

    def _call(self, method: str, path: str, body: Any = None, session: bool = True) -> Any:
        url = self.base + (f"/session/{self.session}" if session else "") + path
        data = None if body is None and method == "GET" else json.dumps(body or {}).encode()
        request = urllib.request.Request(
            url, data=data, method=method, headers={"Content-Type": "application/json"}
        )
        try:
            with urllib.request.urlopen(request, timeout=60) as r:
                return json.loads(r.read())["value"]
        except urllib.error.HTTPError as e:
            raise WebDriverError(f"{method} {path}: {e.read()[:500]!r}") from None

    # -- the few commands the tests use ---------------------------------------------------
    def get(self, url: str) -> None:
        self._call("POST", "/url", {"url": url})

    @property
    def url(self) -> str:
        return self._call("GET", "/url")

    def find(self, css: str, timeout: float = 10.0) -> str:
        end = time.time() + timeout
        while True:
            try:
                return self._call("POST", "/element", {"using": "css selector", "value": css})[
                    ELEMENT
                ]
            except WebDriverError:
                if time.time() > end:
                    raise
                time.sleep(0.2)

    def find_all(self, css: str) -> list[str]:
        found = self._call("POST", "/elements", {"using": "css selector", "value": css})
        return [e[ELEMENT] for e in found]

    def text(self, element: str) -> str:
        return self._call("GET", f"/element/{element}/text")

    def type(self, element: str, text: str) -> None:
        self._call("POST", f"/element/{element}/value", {"text": text})

    def click(self, element: str) -> None:
        self._call("POST", f"/element/{element}/click")

    def attach(self, element: str, files: list[Path]) -> None:
        """Files for an <input type=file> (several at once when it is ``multiple``)."""
        self.type(element, "\n".join(str(f) for f in files))

    def accept_alert(self, timeout: float = 5.0) -> str:
        end = time.time() + timeout
        while True:
            try:
                text = self._call("GET", "/alert/text")
                self._call("POST", "/alert/accept")
                return text
            except WebDriverError:
                if time.time() > end:
                    raise
                time.sleep(0.1)

    def wait_text(self, css: str, needle: str, timeout: float = 20.0) -> str:
        end = time.time() + timeout
        while True:
            try:
                text = self.text(self.find(css, timeout=1.0))
                if needle in text:
                    return text
            except WebDriverError:
                pass
            if time.time() > end:
                page = self._call("GET", "/source")
                raise WebDriverError(
                    f"{css!r} never showed {needle!r} at {self.url}: {page[-1500:]}"
                )
            time.sleep(0.2)

    def screenshot(self, path: Path) -> None:
        path.write_bytes(base64.b64decode(self._call("GET", "/screenshot")))

    def quit(self) -> None:
        with contextlib.suppress(WebDriverError, urllib.error.URLError, ConnectionError):
            self._call("DELETE", "")
        self.proc.terminate()
        try:
            self.proc.wait(10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
        self.log.close()
