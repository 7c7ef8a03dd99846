"""Fixtures for the daemon tests: a real mosquitto on a free loopback port, an MQTT recorder."""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import signal
import socket
import subprocess
import threading
import time
from pathlib import Path

import pytest

MOSQUITTO = shutil.which("mosquitto") or "/usr/sbin/mosquitto"


def free_port() -> int:
    """A free port *below* the ephemeral range: a client reconnecting to a stopped broker on
    an ephemeral port can TCP self-connect to it and steal the port from the restarted broker."""
    import random

    for _ in range(200):
        port = random.randint(20000, 32000)
        with socket.socket() as s:
            try:
                s.bind(("127.0.0.1", port))
            except OSError:
                continue
            return port
    raise RuntimeError("no free port")


def wait_port(port: int, timeout: float = 10.0, proc: subprocess.Popen | None = None) -> None:
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        if proc is not None and proc.poll() is not None:
            break
        with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), 0.2):
            return
        time.sleep(0.05)
    raise TimeoutError(f"mosquitto did not listen on {port}")


class Broker:
    """A mosquitto process; ``stop``/``start`` keep the same port (to test reconnects)."""

    def __init__(self, workdir: Path, extra: str = "", port: int | None = None) -> None:
        self.port = port or free_port()
        self.workdir = workdir
        self.conf = workdir / f"mosquitto-{self.port}.conf"
        # mosquitto started as root drops to user "mosquitto", which cannot read tmp_path
        as_root = "user root\n" if os.geteuid() == 0 else ""
        self.conf.write_text(
            f"listener {self.port} 127.0.0.1\npersistence false\n{as_root}"
            + (extra or "allow_anonymous true\n")
        )
        self.log = workdir / f"mosquitto-{self.port}.log"
        self.proc: subprocess.Popen | None = None

    def start(self) -> Broker:
        if not Path(MOSQUITTO).exists():
            pytest.skip("mosquitto is not installed")
        self.proc = subprocess.Popen(
            [MOSQUITTO, "-c", str(self.conf)],
            stdout=self.log.open("ab"),
            stderr=subprocess.STDOUT,
        )
        try:
            wait_port(self.port, proc=self.proc)
        except TimeoutError as e:
            self.stop()
            raise TimeoutError(f"{e}: {self.log.read_text()[-500:]}") from None
        return self

    def stop(self, sig: int = signal.SIGTERM) -> None:
        if self.proc and self.proc.poll() is None:
            self.proc.send_signal(sig)
            try:
                self.proc.wait(5)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(5)
        self.proc = None


@pytest.fixture
def broker(tmp_path):
    b = Broker(tmp_path).start()
    yield b
    b.stop()


@pytest.fixture
def make_broker(tmp_path):
    made: list[Broker] = []

    def make(extra: str = "") -> Broker:
        b = Broker(tmp_path, extra)
        made.append(b)
        return b.start()

    yield make
    for b in made:
        b.stop()


class Recorder:
    """A real paho subscriber that records (topic, payload, retain) tuples."""

    def __init__(self, port: int, topics: list[str], **tls) -> None:
        import paho.mqtt.client as mqtt

        self.messages: list[tuple[str, bytes, bool]] = []
        self._cond = threading.Condition()
        self._subscribed = threading.Event()
        c = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id=f"rec-{time.monotonic_ns()}")
        self.client = c
        self.topics = topics

        def on_connect(client, userdata, flags, rc, props):
            client.subscribe([(t, 1) for t in topics])

        def on_subscribe(client, userdata, mid, rcs, props):
            self._subscribed.set()

        def on_message(client, userdata, msg):
            with self._cond:
                self.messages.append((msg.topic, bytes(msg.payload), bool(msg.retain)))
                self._cond.notify_all()

        c.on_connect = on_connect
        c.on_subscribe = on_subscribe
        c.on_message = on_message
        if tls.get("username"):
            c.username_pw_set(tls["username"], tls.get("password"))
        if tls.get("ca_file"):
            c.tls_set(ca_certs=tls["ca_file"])
        c.connect("127.0.0.1" if not tls.get("ca_file") else "localhost", port)
        c.loop_start()
        assert self._subscribed.wait(10), "recorder did not subscribe"

    def wait_for(self, pred, timeout: float = 10.0) -> list[tuple[str, bytes, bool]]:
        end = time.monotonic() + timeout
        with self._cond:
            while True:
                got = [m for m in self.messages if pred(m)]
                if got:
                    return got
                left = end - time.monotonic()
                if left <= 0:
                    raise AssertionError(
                        f"no matching message in {timeout}s; got {[m[0] for m in self.messages]}"
                    )
                self._cond.wait(left)

    def wait_count(self, topic: str, n: int, timeout: float = 30.0) -> list[dict]:
        end = time.monotonic() + timeout
        with self._cond:
            while True:
                got = [json.loads(p) for t, p, _ in self.messages if t == topic]
                if len(got) >= n:
                    return got
                left = end - time.monotonic()
                if left <= 0:
                    raise AssertionError(f"{len(got)}/{n} messages on {topic} after {timeout}s")
                self._cond.wait(left)

    def close(self) -> None:
        self.client.disconnect()
        self.client.loop_stop()


@pytest.fixture
def recorder():
    made: list[Recorder] = []

    def make(port: int, topics: list[str], **tls) -> Recorder:
        r = Recorder(port, topics, **tls)
        made.append(r)
        return r

    yield make
    for r in made:
        r.close()


@pytest.fixture(scope="module")
def door_video(tmp_path_factory, tiny_model):
    """The astronaut walks in (25 frames), leaves (15 empty), comes back (25); his gallery."""
    from .door import make_door_video

    return make_door_video(tmp_path_factory.mktemp("door"), tiny_model)
