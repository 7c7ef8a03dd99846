"""Start-up: the commands, the refusal to serve other machines without a password, TLS."""

from __future__ import annotations

import shutil
import socket
import subprocess
import sys
from pathlib import Path

import pytest
import requests

from edge.errors import ConfigError
from edge.web.auth import write_password
from edge.web.server import WebServer, check_web

from .conftest import PASSWORD, csrf_of, web_config

ROOT = Path(__file__).resolve().parents[3]


def _edge(*args: str, stdin: str = "") -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "edge.cli", *args],
        input=stdin,
        capture_output=True,
        text=True,
        cwd=ROOT,
        timeout=120,
    )


def _config_file(tmp_path: Path, listen: str) -> Path:
    cfg = tmp_path / "config.toml"
    cfg.write_text(
        f'[recognition]\ngallery = "{tmp_path / "gallery.npz"}"\n'
        f'[web]\nenabled = true\nlisten = "{listen}"\n'
        f'password_file = "{tmp_path / "pw"}"\ntoken_file = "{tmp_path / "token"}"\n'
        f'visits = "{tmp_path / "visits.sqlite"}"\n'
    )
    return cfg


def test_other_machines_are_refused_without_a_password(tmp_path):
    cfg = web_config(tmp_path, listen="0.0.0.0:8080")
    with pytest.raises(ConfigError, match=r"web\.listen: 0\.0\.0\.0:8080 is reachable"):
        check_web(cfg.web)
    check_web(web_config(tmp_path, listen="127.0.0.1:8080").web)  # loopback: fine
    check_web(web_config(tmp_path, listen="[::1]:8080").web)
    write_password(cfg.web.password_file, PASSWORD)
    check_web(cfg.web)
    with pytest.raises(ConfigError, match="web.tls_cert: file not found"):
        check_web(web_config(tmp_path, tls_cert="/nope.pem", tls_key="/nope.key").web)


def test_commands_set_the_password_print_the_token_and_refuse_in_one_line(tmp_path):
    cfg = _config_file(tmp_path, "0.0.0.0:8080")
    r = _edge("check-config", str(cfg))
    assert r.returncode == 2 and r.stderr.count("\n") == 1, r.stderr
    assert r.stderr.startswith("error: config.toml: web.listen: 0.0.0.0:8080 is reachable")
    r = _edge("web-password", "--config", str(cfg), "--stdin", stdin="short\n")
    assert r.returncode == 2 and "at least 8" in r.stderr
    r = _edge("web-password", "--config", str(cfg), "--stdin", stdin=PASSWORD + "\n")
    assert r.returncode == 0, r.stderr
    assert _edge("check-config", str(cfg)).returncode == 0
    token = _edge("web-token", "--config", str(cfg)).stdout.strip()
    assert len(token) >= 40 and (tmp_path / "token").read_text().strip() == token
    assert _edge("web-token", "--config", str(cfg), "--new").stdout.strip() != token


def test_password_and_token_commands_refuse_bad_input_in_one_line(tmp_path):
    cfg = _config_file(tmp_path, "127.0.0.1:8080")
    command = [sys.executable, "-m", "edge.cli", "web-password", "--config", str(cfg)]
    runs = {
        "not UTF-8": subprocess.run(
            [*command, "--stdin"], input=b"\xff\xfe\xfd\xfc12345678\n", capture_output=True
        ),
        # no terminal (a new session has none) and standard input at its end
        "no input": subprocess.run(
            command, stdin=subprocess.DEVNULL, capture_output=True, start_new_session=True
        ),
    }
    for problem, r in runs.items():
        lines = r.stderr.decode().strip().splitlines()
        assert (
            r.returncode == 2 and f"error: web password: {problem}" in lines[-1]
        )  # the prompt first
        assert "Traceback" not in r.stderr.decode()
    assert not (tmp_path / "pw").exists()
    cfg.write_text(cfg.read_text().replace(str(tmp_path / "token"), str(tmp_path)))
    r = _edge("web-token", "--config", str(cfg), "--new")
    assert r.returncode == 2 and r.stderr.startswith("error: web.token_file: cannot write")
    assert r.stderr.count("\n") == 1, r.stderr


def test_a_port_in_use_is_a_one_line_error(tmp_path):
    taken = socket.socket()
    taken.bind(("127.0.0.1", 0))
    taken.listen(1)
    try:
        cfg = web_config(tmp_path, listen=f"127.0.0.1:{taken.getsockname()[1]}")
        with pytest.raises(ConfigError, match="web.listen: cannot listen on"):
            WebServer(cfg, live=False)
    finally:
        taken.close()


@pytest.mark.skipif(shutil.which("openssl") is None, reason="needs openssl (scripts/test.sh)")
def test_tls_serves_https_with_a_secure_cookie(tmp_path):
    cert, key = tmp_path / "cert.pem", tmp_path / "key.pem"
    subprocess.run(
        [
            *("openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1"),
            *("-subj", "/CN=localhost", "-addext", "subjectAltName=DNS:localhost"),
            *("-keyout", str(key), "-out", str(cert)),
        ],
        check=True,
        capture_output=True,
    )
    cfg = web_config(tmp_path, tls_cert=str(cert), tls_key=str(key))
    write_password(cfg.web.password_file, PASSWORD)
    server = WebServer(cfg, live=False)
    server.start()
    try:
        assert server.url.startswith("https://")
        s = requests.Session()
        s.verify = str(cert)
        s.trust_env = False  # REQUESTS_CA_BUNDLE would win over s.verify
        page = s.get(server.url.replace("127.0.0.1", "localhost") + "/login")
        assert "secure" in page.headers["set-cookie"].lower()
        r = s.post(
            server.url.replace("127.0.0.1", "localhost") + "/login",
            data={"csrf": csrf_of(page.text), "password": PASSWORD},
            allow_redirects=False,
        )
        assert r.status_code == 303 and "secure" in r.headers["set-cookie"].lower()
        with pytest.raises(requests.exceptions.ConnectionError):
            requests.get(server.url.replace("https", "http") + "/login", timeout=5)
    finally:
        server.stop()


def test_edge_web_serves_without_a_camera(tmp_path):
    """`edge web` in a subprocess: the pages work, Live says there is no camera."""
    probe = socket.socket()
    probe.bind(("127.0.0.1", 0))
    port = probe.getsockname()[1]
    probe.close()
    cfg = _config_file(tmp_path, f"127.0.0.1:{port}")
    assert (
        _edge("web-password", "--config", str(cfg), "--stdin", stdin=PASSWORD + "\n").returncode
        == 0
    )
    proc = subprocess.Popen(
        [sys.executable, "-m", "edge.cli", "web", "--config", str(cfg)],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        line = proc.stdout.readline()
        assert f"127.0.0.1:{port}" in line, proc.stderr.read() if proc.poll() is not None else line
        token = (tmp_path / "token").read_text().strip()
        r = requests.get(
            f"http://127.0.0.1:{port}/api/status", headers={"Authorization": f"Bearer {token}"}
        )
        assert r.json()["camera"] is None and r.json()["people"] == 0
    finally:
        proc.terminate()
        assert proc.wait(30) == 0


@pytest.mark.parametrize(
    ("web", "message"),
    [
        ('listen = "8080"', "test: web.listen: must be host:port, got '8080'"),
        ('listen = "127.0.0.1:99999"', "test: web.listen: must be host:port"),
        ("retention_days = 0", "test: web.retention_days: must be > 0"),
        ("max_upload_bytes = 0", "test: web.max_upload_bytes: must be 1.."),
        ("max_upload_pixels = 50000000", "test: web.max_upload_pixels: must be 1..40000000"),
        ('tls_cert = "c.pem"', "test: web.tls_cert: tls_cert and tls_key must be set together"),
        ('visits = ""', "test: web.visits: must not be empty"),
        ("session_hours = -1", "test: web.session_hours: must be > 0"),
        ("enable = true", "test: web.enable: unknown key"),
    ],
)
def test_web_config_errors_name_the_key(web, message):
    import tomllib

    from edge.daemon.config import parse

    with pytest.raises(ConfigError) as e:
        parse(tomllib.loads(f"[web]\n{web}\n"), "test")
    assert str(e.value).startswith(message), str(e.value)


def _half_request(port: int) -> socket.socket:
    """A connection that starts a request and never finishes its headers (a slowloris)."""
    s = socket.create_connection(("127.0.0.1", port), timeout=5)
    s.sendall(b"GET /login HTTP/1.1\r\nHost: x\r\n")
    return s


def _whole_response(s: socket.socket) -> bytes:
    data = b""
    while b"\r\n\r\n" not in data:
        data += s.recv(4096)
    head = data.split(b"\r\n\r\n", 1)[0].lower()
    length = int(head.split(b"content-length:", 1)[1].split(b"\r\n", 1)[0])
    while len(data) < len(head) + 4 + length:
        data += s.recv(4096)
    return data


def _closed_by_server(s: socket.socket, within_s: float) -> bool:
    s.settimeout(within_s)
    try:
        return s.recv(1) == b""
    except TimeoutError:
        return False
    except ConnectionResetError:
        return True


def test_slow_clients_cannot_lock_everyone_out(tmp_path, monkeypatch):
    """uvicorn alone waited forever for headers and answered 503 to everyone once 64
    connections were open: unfinished headers now time out, and one address holds at most
    CONNECTIONS_PER_CLIENT connections."""
    import edge.web.server as server_module

    monkeypatch.setattr(server_module, "HEADER_TIMEOUT_S", 1.0)
    monkeypatch.setattr(server_module, "CONNECTIONS_PER_CLIENT", 4)
    cfg = web_config(tmp_path)
    write_password(cfg.web.password_file, PASSWORD)
    server = WebServer(cfg, live=False)
    server.start()
    slow: list[socket.socket] = []
    try:
        slow = [_half_request(server.port) for _ in range(6)]
        # beyond 4 at once from one address: closed straight away
        assert sum(_closed_by_server(s, 0.5) for s in slow[4:]) == 2
        # the 4 that got in are cut when their headers are late, not left open
        assert all(_closed_by_server(s, 3.0) for s in slow[:4])
        # a finished request is not cut, and the next one on the connection is timed afresh
        keep = socket.create_connection(("127.0.0.1", server.port), timeout=5)
        keep.sendall(b"GET /login HTTP/1.1\r\nHost: x\r\n\r\n")
        assert _whole_response(keep).startswith(b"HTTP/1.1 200")
        keep.sendall(b"GET /login HTTP/1.1\r\n")
        assert _closed_by_server(keep, 3.0)
        keep.close()
        assert requests.get(server.url + "/login", timeout=5).status_code == 200
    finally:
        for s in slow:
            s.close()
        server.stop()


def test_a_body_may_come_slowly_but_not_stop(tmp_path, monkeypatch):
    """A request body that stops arriving is closed after BODY_IDLE_S without a byte; one that
    keeps coming, however slowly, is answered (uploads over weak Wi-Fi)."""
    import time

    import edge.web.server as server_module

    monkeypatch.setattr(server_module, "BODY_IDLE_S", 1.0)
    cfg = web_config(tmp_path)
    write_password(cfg.web.password_file, PASSWORD)
    server = WebServer(cfg, live=False)
    server.start()
    body = b"password=" + b"x" * 31
    head = (
        b"POST /login HTTP/1.1\r\nHost: x\r\n"
        b"Content-Type: application/x-www-form-urlencoded\r\n"
        b"Content-Length: %d\r\n\r\n" % len(body)
    )
    try:
        stalled = socket.create_connection(("127.0.0.1", server.port), timeout=5)
        stalled.sendall(head + body[:10])
        assert _closed_by_server(stalled, 3.0)
        stalled.close()
        slow = socket.create_connection(("127.0.0.1", server.port), timeout=5)
        slow.sendall(head)
        for i in range(0, len(body), 10):  # 4 pieces, 0.6 s apart: 1.8 s in all
            time.sleep(0.6)
            slow.sendall(body[i : i + 10])
        assert _whole_response(slow).startswith(b"HTTP/1.1 ")
        slow.close()
    finally:
        server.stop()
