"""MQTT delivery against a real mosquitto: schema, availability, discovery, outages, TLS."""

from __future__ import annotations

import json
import subprocess
import time

import pytest

from edge.daemon.discovery import Topics
from edge.daemon.mqtt import MqttPublisher
from edge.daemon.outbox import Outbox

from .conftest import Broker
from .helpers import make_event, mqtt_cfg, validate_event

pytestmark = pytest.mark.mqtt


@pytest.fixture
def publisher_factory(tmp_path):
    made: list[MqttPublisher] = []

    def make(cfg, name="outbox.sqlite") -> MqttPublisher:
        p = MqttPublisher(cfg, Outbox(tmp_path / name), device_id="door1", version="test")
        made.append(p)
        p.start()
        return p

    yield make
    for p in made:
        p.stop(timeout=1)
        p.outbox.close()


def wait(pred, timeout=10.0, what="condition"):
    """Poll pred until true; what may be a callable for a late message."""
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        if pred():
            return
        time.sleep(0.02)
    raise AssertionError(f"timed out waiting for {what}")


def test_events_have_documented_schema_and_qos1(broker, recorder, publisher_factory):
    topics = Topics("doorface", "door1")
    rec = recorder(broker.port, [topics.events])
    pub = publisher_factory(mqtt_cfg(broker.port))
    sent = [make_event(0, "alice"), make_event(1, None)]
    for ev in sent:
        pub.send_event(ev)
    got = rec.wait_count(topics.events, 2)
    assert [e["id"] for e in got] == [e["id"] for e in sent]
    for ev in got:
        validate_event(ev)
    assert got[0]["person"] == "alice" and got[1]["type"] == "unknown"
    wait(lambda: len(pub.outbox) == 0, what="outbox drained after PUBACK")
    assert pub.published == 2


def test_availability_online_retained_and_offline_on_clean_stop(broker, recorder, tmp_path):
    topics = Topics("doorface", "door1")
    early = recorder(broker.port, [topics.availability])
    pub = MqttPublisher(mqtt_cfg(broker.port), Outbox(tmp_path / "o.sqlite"), device_id="door1")
    pub.start()
    wait(lambda: pub.connected, what="connect")
    # the broker holds "online" once a subscriber has had it (CONNACK comes before it is sent)
    early.wait_for(lambda m: m[0] == topics.availability and m[1] == b"online")
    late = recorder(broker.port, [topics.availability])  # subscribes after: sees retained
    msgs = late.wait_for(lambda m: m[0] == topics.availability)
    assert msgs[0][1] == b"online" and msgs[0][2] is True
    pub.stop(timeout=2)
    late.wait_for(lambda m: m[1] == b"offline")
    after = recorder(broker.port, [topics.availability])
    assert after.wait_for(lambda m: m[0] == topics.availability)[0][1:] == (b"offline", True)


def test_discovery_retained_and_resent_when_ha_comes_online(broker, recorder, publisher_factory):
    topics = Topics("doorface", "door1")
    pub = publisher_factory(mqtt_cfg(broker.port))
    wait(lambda: pub.connected, what="connect")
    # a first subscriber may see the publish itself (live, not retained) if it subscribes
    # before the publisher has sent it; once it has, a later subscriber gets the retained copy
    recorder(broker.port, [topics.discovery]).wait_for(lambda m: m[0] == topics.discovery)
    rec = recorder(broker.port, [topics.discovery])
    (_topic, payload, retained) = rec.wait_for(lambda m: m[0] == topics.discovery)[0]
    assert retained
    cfg = json.loads(payload)
    assert cfg["availability_topic"] == topics.availability
    platforms = sorted(c["p"] for c in cfg["cmps"].values())
    assert platforms == ["binary_sensor", "event", "sensor"]
    event = next(c for c in cfg["cmps"].values() if c["p"] == "event")
    assert event["event_types"] == ["recognized", "unknown"]
    assert event["state_topic"] == topics.events
    assert cfg["dev"]["ids"] == ["door1"]
    n = len(rec.messages)
    rec.client.publish(topics.ha_status, "online", qos=1)
    wait(lambda: len(rec.messages) > n, what="discovery re-sent")
    topic2, payload2, retained2 = rec.messages[-1]
    assert topic2 == topics.discovery and json.loads(payload2) == cfg
    assert retained2 is False  # a live re-send, not the retained copy


def test_outage_exactly_once_with_persistent_subscriber(tmp_path, publisher_factory):
    """Kill the broker (SIGKILL) in the middle of a stream of events and restart it: every
    event arrives exactly once after de-duplication by id, in order. The subscriber keeps a
    persistent session (clean_session=False) and the broker persists it, so messages
    published while the subscriber itself was reconnecting are queued for it."""
    import paho.mqtt.client as mqtt

    broker = Broker(tmp_path)
    store = tmp_path / "store"
    store.mkdir()
    broker.conf.write_text(
        broker.conf.read_text().replace(
            "persistence false",
            # save on every change, so even a SIGKILLed broker keeps the subscriber's session
            f"persistence true\nautosave_on_changes true\nautosave_interval 1\n"
            f"persistence_location {store}/",
        )
    )
    broker.start()
    got: list[dict] = []
    sub = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id="ha-like", clean_session=False)
    sub.on_connect = lambda c, u, f, rc, p: c.subscribe("doorface/door1/events", qos=1)
    sub.on_message = lambda c, u, m: got.append(json.loads(m.payload))
    sub.connect("127.0.0.1", broker.port)
    sub.loop_start()
    try:
        pub = publisher_factory(mqtt_cfg(broker.port))
        wait(lambda: pub.connected, what="connect")
        time.sleep(0.3)
        events = [make_event(i) for i in range(60)]
        for ev in events[:20]:
            pub.send_event(ev)
        wait(lambda: len(got) >= 5, what="first events")
        broker.stop(9)
        for ev in events[20:40]:
            pub.send_event(ev)
        time.sleep(1.0)
        broker.start()
        for ev in events[40:]:
            pub.send_event(ev)
        wait(
            lambda: len({e["id"] for e in got}) >= 60,
            timeout=20,
            what=f"all 60 events (got {len(got)}, outbox {len(pub.outbox)}, published {pub.published}, connected {pub.connected})",
        )
        dedup: list[str] = []
        for e in got:
            if e["id"] not in dedup:
                dedup.append(e["id"])
        assert dedup == [e["id"] for e in events]
    finally:
        sub.disconnect()
        sub.loop_stop()
        broker.stop()


def test_unreachable_broker_at_start_then_delivers(tmp_path, recorder, publisher_factory):
    broker = Broker(tmp_path)  # not started yet
    pub = publisher_factory(mqtt_cfg(broker.port))
    pub.send_event(make_event(0))
    time.sleep(1.5)
    assert not pub.connected and len(pub.outbox) == 1
    broker.start()
    try:
        rec = recorder(broker.port, ["doorface/door1/events"])
        # The event may have been delivered before the recorder subscribed; either way
        # the outbox must drain once the broker is up.
        wait(lambda: len(pub.outbox) == 0, timeout=40, what="delivered after broker came up")
        assert pub.published == 1
        pub.send_event(make_event(1))
        rec.wait_for(lambda m: json.loads(m[1])["track_id"] == 1)
        wait(lambda: pub.published == 2, what="second PUBACK")
    finally:
        broker.stop()


def test_wrong_password_is_reported_and_nothing_lost(tmp_path, make_broker):
    pw = tmp_path / "passwd"
    subprocess.run(["mosquitto_passwd", "-c", "-b", str(pw), "door", "right"], check=True)
    pw.chmod(0o600)
    broker = make_broker(f"allow_anonymous false\npassword_file {pw}\n")
    secret = tmp_path / "secret"
    secret.write_text("wrong\n")
    pub = MqttPublisher(
        mqtt_cfg(broker.port, username="door", password_file=str(secret)),
        Outbox(tmp_path / "o.sqlite"),
        device_id="door1",
    )
    pub.start()
    try:
        pub.send_event(make_event(0))
        wait(lambda: pub.last_error != "", what="connect refused")
        assert "authori" in pub.last_error.lower() or "password" in pub.last_error.lower()
        assert not pub.connected and len(pub.outbox) == 1
    finally:
        pub.stop(timeout=0.5)
        pub.outbox.close()


def _make_certs(d) -> dict:
    def run(*args):
        subprocess.run(["openssl", *args], check=True, capture_output=True)

    run(
        "req",
        "-x509",
        "-newkey",
        "rsa:2048",
        "-nodes",
        "-days",
        "2",
        "-subj",
        "/CN=test-ca",
        "-keyout",
        f"{d}/ca.key",
        "-out",
        f"{d}/ca.crt",
    )
    (d / "ext.cnf").write_text("subjectAltName=DNS:localhost,IP:127.0.0.1\n")
    for name in ("server", "client"):
        run(
            "req",
            "-newkey",
            "rsa:2048",
            "-nodes",
            "-subj",
            f"/CN={name}",
            "-keyout",
            f"{d}/{name}.key",
            "-out",
            f"{d}/{name}.csr",
        )
        run(
            "x509",
            "-req",
            "-in",
            f"{d}/{name}.csr",
            "-CA",
            f"{d}/ca.crt",
            "-CAkey",
            f"{d}/ca.key",
            "-CAcreateserial",
            "-days",
            "2",
            "-extfile",
            f"{d}/ext.cnf",
            "-out",
            f"{d}/{name}.crt",
        )
    return {
        k: str(d / k) for k in ("ca.crt", "server.crt", "server.key", "client.crt", "client.key")
    }


@pytest.mark.slow
def test_tls_with_client_certificate_and_password_file(tmp_path, make_broker, recorder):
    certs = _make_certs(tmp_path)
    pw = tmp_path / "passwd"
    subprocess.run(["mosquitto_passwd", "-c", "-b", str(pw), "door", "s3cret"], check=True)
    pw.chmod(0o600)
    broker = make_broker(
        f"allow_anonymous false\npassword_file {pw}\n"
        f"cafile {certs['ca.crt']}\ncertfile {certs['server.crt']}\nkeyfile {certs['server.key']}\n"
        "require_certificate true\n"
    )
    secret = tmp_path / "mqtt_password"
    secret.write_text("s3cret\n")
    cfg = mqtt_cfg(
        broker.port,
        username="door",
        password_file=str(secret),
        tls=True,
        ca_file=certs["ca.crt"],
        cert_file=certs["client.crt"],
        key_file=certs["client.key"],
    )
    cfg.host = "localhost"
    pub = MqttPublisher(cfg, Outbox(tmp_path / "o.sqlite"), device_id="door1")
    pub.start()
    try:
        wait(lambda: pub.connected, timeout=15, what=f"TLS connect ({pub.last_error})")
        import paho.mqtt.client as mqtt

        got: list[dict] = []
        sub = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id="tls-sub")
        sub.username_pw_set("door", "s3cret")
        sub.tls_set(
            ca_certs=certs["ca.crt"], certfile=certs["client.crt"], keyfile=certs["client.key"]
        )
        sub.on_connect = lambda c, u, f, rc, p: c.subscribe("doorface/door1/events", qos=1)
        sub.on_message = lambda c, u, m: got.append(json.loads(m.payload))
        sub.connect("localhost", broker.port)
        sub.loop_start()
        time.sleep(0.5)
        ev = make_event(7)
        pub.send_event(ev)
        wait(lambda: got, what="event over TLS")
        validate_event(got[0])
        assert got[0]["id"] == ev["id"]
        sub.disconnect()
        sub.loop_stop()
    finally:
        pub.stop(timeout=1)
        pub.outbox.close()
