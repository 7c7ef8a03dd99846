"""MQTT publisher that owns a paho-mqtt 2.x client (Frigate style: wrap, don't subclass).

Delivery guarantee: events go through the SQLite :class:`~edge.daemon.outbox.Outbox`.
Exactly one event is in flight at a time (QoS 1); the row is deleted only when its PUBACK
arrives (``on_publish``), then the next row is sent. One-in-flight keeps order trivially
and costs one round trip per event -- irrelevant at door-camera event rates. After a
disconnect the in-flight row is re-sent on reconnect, so a subscriber may see an event
twice (QoS 1 is at-least-once); consumers de-duplicate by the event ``id``.

Availability: a retained last will ``offline``; ``online`` (retained) on every connect;
``offline`` published explicitly on clean shutdown (the broker does not send the will on
a clean DISCONNECT).
"""

from __future__ import annotations

import collections
import json
import logging
import ssl
import threading
import time
from typing import Any

import paho.mqtt.client as mqtt

from edge.daemon.config import MqttConfig
from edge.daemon.discovery import Topics, discovery_payload
from edge.daemon.events import dumps
from edge.daemon.outbox import Outbox

log = logging.getLogger(__name__)

RESEND_AFTER_S = 10.0


class MqttPublisher:
    def __init__(
        self,
        cfg: MqttConfig,
        outbox: Outbox,
        *,
        device_id: str,
        name: str = "Doorface",
        version: str = "0",
    ) -> None:
        self.cfg = cfg
        self.outbox = outbox
        self.device_id = device_id
        self.name = name
        self.version = version
        self.topics = Topics(cfg.prefix, device_id, cfg.discovery_prefix)
        self.connected = False
        self.published = 0
        self.connects = 0
        self.disconnects = 0
        self.last_error = ""
        self._lock = threading.RLock()
        self._inflight: tuple[int, int, float] | None = None  # (seq, mid, sent_at)
        self._mids: dict[int, int] = {}
        # paho calls on_publish while holding its own out-message mutex, and _kick holds
        # self._lock while calling publish(): callbacks therefore never take self._lock;
        # they hand PUBACKs and reconnects to the pump thread through these.
        self._acked: collections.deque[int] = collections.deque()
        self._reset = threading.Event()
        self._wake = threading.Event()
        self._stop = threading.Event()
        self._state: dict[str, Any] | None = None
        self._pump_thread: threading.Thread | None = None
        client_id = cfg.client_id or f"doorface-{device_id}"
        c = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id=client_id)
        c.on_connect = self._on_connect
        c.on_disconnect = self._on_disconnect
        c.on_publish = self._on_publish
        c.on_message = self._on_message
        c.reconnect_delay_set(min_delay=1, max_delay=cfg.reconnect_max_s)
        c.will_set(self.topics.availability, "offline", qos=1, retain=True)
        if cfg.username:
            c.username_pw_set(cfg.username, cfg.password())
        if cfg.tls:
            ctx = ssl.create_default_context(cafile=cfg.ca_file or None)
            if cfg.cert_file:
                ctx.load_cert_chain(cfg.cert_file, cfg.key_file)
            if cfg.tls_insecure:
                ctx.check_hostname = False
                ctx.verify_mode = ssl.CERT_NONE
            c.tls_set_context(ctx)
        self.client = c

    # -- lifecycle ---------------------------------------------------------------------
    def start(self) -> None:
        """Connect in the background; an unreachable broker at start is retried forever."""
        self.client.connect_async(self.cfg.host, self.cfg.port, keepalive=self.cfg.keepalive)
        self.client.loop_start()
        self._pump_thread = threading.Thread(target=self._pump, name="mqtt-pump", daemon=True)
        self._pump_thread.start()

    def stop(self, timeout: float = 5.0) -> None:
        """Flush the outbox (up to ``timeout``), publish ``offline``, disconnect."""
        deadline = time.monotonic() + timeout
        while self.connected and len(self.outbox) and time.monotonic() < deadline:
            self._wake.set()
            time.sleep(0.02)
        self._stop.set()
        self._wake.set()
        if self._pump_thread:
            self._pump_thread.join(timeout=2)
        if self.connected:
            try:
                info = self.client.publish(self.topics.availability, "offline", qos=1, retain=True)
                info.wait_for_publish(timeout=max(0.5, deadline - time.monotonic()))
            except (RuntimeError, ValueError) as e:
                log.warning("could not publish offline: %s", e)
        self.client.disconnect()
        self.client.loop_stop()

    # -- public API --------------------------------------------------------------------
    def send_event(self, ev: dict[str, Any]) -> None:
        """Persist then publish (asynchronously, in order)."""
        self.outbox.put(ev["id"], self.topics.events, dumps(ev))
        self._wake.set()

    def set_state(self, state: dict[str, Any]) -> None:
        """Retained state (last person, present); best effort, only the latest matters."""
        self._state = state
        if self.connected:
            self.client.publish(self.topics.state, dumps(state), qos=1, retain=True)

    def stats(self) -> dict[str, Any]:
        return {
            "connected": self.connected,
            "published": self.published,
            "outbox": len(self.outbox),
            "outbox_dropped": self.outbox.dropped,
            "outbox_write_errors": self.outbox.write_errors,
            "connects": self.connects,
            "disconnects": self.disconnects,
            "last_error": self.last_error,
        }

    # -- delivery ----------------------------------------------------------------------
    def _pump(self) -> None:
        while not self._stop.is_set():
            self._wake.wait(timeout=1.0)
            self._wake.clear()
            try:
                self._kick()
            except Exception:  # never let the delivery thread die silently
                log.exception("delivery error")

    def _kick(self) -> None:
        with self._lock:
            if self._reset.is_set():
                self._reset.clear()
                self._inflight = None  # re-send whatever was in flight
                self._mids.clear()
                self._acked.clear()
            while self._acked:
                mid = self._acked.popleft()
                seq = self._mids.pop(mid, None)
                if seq is None:
                    continue
                self.published += 1
                self.outbox.ack(seq)
                if self._inflight is not None and self._inflight[0] == seq:
                    self._inflight = None
            if not self.connected:
                return
            if self._inflight is not None:
                seq, mid, sent = self._inflight
                if time.monotonic() - sent < RESEND_AFTER_S:
                    return
                log.warning(
                    "no PUBACK for event seq %d after %.0fs; re-sending", seq, RESEND_AFTER_S
                )
            rows = self.outbox.peek(1)
            if not rows:
                self._inflight = None
                return
            seq, _eid, topic, payload = rows[0]
            info = self.client.publish(topic, payload, qos=1)
            if info.rc != mqtt.MQTT_ERR_SUCCESS:
                self.last_error = mqtt.error_string(info.rc)
                self._inflight = None
                return
            self._mids[info.mid] = seq
            self._inflight = (seq, info.mid, time.monotonic())

    # -- paho callbacks (network thread) -----------------------------------------------
    def _on_connect(self, client, userdata, flags, reason_code, properties) -> None:
        if reason_code.is_failure:
            self.last_error = str(reason_code)
            log.error(
                "MQTT connect to %s:%d refused: %s", self.cfg.host, self.cfg.port, reason_code
            )
            return
        self._reset.set()
        self.connected = True
        self.connects += 1
        log.info("MQTT connected to %s:%d", self.cfg.host, self.cfg.port)
        client.publish(self.topics.availability, "online", qos=1, retain=True)
        if self.cfg.discovery:
            client.subscribe(self.topics.ha_status, qos=1)
            self._send_discovery()
        state = self._state
        if state is not None:
            client.publish(self.topics.state, dumps(state), qos=1, retain=True)
        self._wake.set()

    def _on_disconnect(self, client, userdata, flags, reason_code, properties) -> None:
        was = self.connected
        self.connected = False
        if was:
            self.disconnects += 1
        if was and not self._stop.is_set():  # a refused connect keeps its own reason
            self.last_error = str(reason_code)
            log.warning("MQTT disconnected (%s); reconnecting with backoff", reason_code)

    def _on_publish(self, client, userdata, mid, reason_code, properties) -> None:
        self._acked.append(mid)
        self._wake.set()

    def _on_message(self, client, userdata, msg) -> None:
        if msg.topic == self.topics.ha_status and msg.payload == b"online":
            log.info("Home Assistant came online: re-sending discovery")
            self._send_discovery()
            state = self._state
            if state is not None:
                client.publish(self.topics.state, dumps(state), qos=1, retain=True)

    def _send_discovery(self) -> None:
        payload = discovery_payload(self.topics, self.device_id, self.name, self.version)
        self.client.publish(self.topics.discovery, json.dumps(payload), qos=1, retain=True)
