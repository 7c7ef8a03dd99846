"""Shared test helpers: synthetic decisions/events and the documented event schema."""

from __future__ import annotations

import datetime as dt
import time
import uuid

from edge.daemon.config import MqttConfig
from edge.daemon.events import Decision, build_event

# docs/MQTT.md, "Event payload": key -> allowed types
EVENT_SCHEMA: dict[str, tuple[type, ...]] = {
    "schema": (int,),
    "id": (str,),
    "type": (str,),
    "event_type": (str,),
    "person": (str, type(None)),
    "visit_id": (str,),
    "upgrade": (bool,),
    "score": (float, int),
    "confidence": (float, int, type(None)),
    "second": (float, int),
    "threshold": (float, int),
    "device": (str,),
    "camera": (str,),
    "timestamp": (str,),
    "frame_timestamp": (str,),
    "first_seen": (str,),
    "box": (dict,),
    "track_id": (int,),
    "track_frames": (int,),
    "model_id": (str,),
}


def validate_event(ev: dict) -> None:
    for key, types in EVENT_SCHEMA.items():
        assert key in ev, f"missing {key}"
        assert isinstance(ev[key], types), f"{key}: {type(ev[key]).__name__}"
    uuid.UUID(ev["id"])
    uuid.UUID(ev["visit_id"])
    assert ev["schema"] == 2
    assert ev["type"] in ("recognized", "unknown")
    assert ev["event_type"] == ev["type"]
    assert (ev["person"] is None) == (ev["type"] == "unknown")
    assert not (ev["upgrade"] and ev["type"] == "unknown")
    for k in ("timestamp", "frame_timestamp", "first_seen"):
        assert dt.datetime.fromisoformat(ev[k]).tzinfo is not None
    assert set(ev["box"]) == {"x", "y", "w", "h"}
    assert all(isinstance(v, int) for v in ev["box"].values())


def make_event(i: int = 0, person: str | None = "alice") -> dict:
    """A schema-valid event whose ``track_id`` is ``i`` (tests find events by it)."""
    now = time.time()
    d = Decision(
        type="recognized" if person else "unknown",
        person=person,
        score=0.81,
        second=0.2,
        threshold=0.5,
        box=(10, 20, 100, 120),
        track_id=i,
        visit_id=str(uuid.uuid4()),
        track_frames=3,
        first_seen=now - 0.2,
        decided_at=now,
        frame_timestamp=now - 0.05,
    )
    return build_event(d, device_id="door1", camera="front", model_id="test-model")


def mqtt_cfg(port: int, **kw) -> MqttConfig:
    return MqttConfig(host="127.0.0.1", port=port, keepalive=5, reconnect_max_s=1, **kw)
