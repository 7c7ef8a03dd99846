"""Event payloads (schema documented in docs/MQTT.md) and the stdout sink."""

from __future__ import annotations

import datetime as dt
import json
import sys
import uuid
from dataclasses import dataclass, field
from typing import Any, TextIO

SCHEMA_VERSION = 1
EVENT_TYPES = ("recognized", "unknown")


@dataclass
class Decision:
    """A decided visit: one per track (subject to cooldown)."""

    type: str  # "recognized" | "unknown"
    person: str | None
    score: float
    second: float
    threshold: float
    box: tuple[int, int, int, int]
    track_id: int
    track_frames: int
    first_seen: float
    decided_at: float
    frame_timestamp: float
    snapshot: Any = None  # RGB crop (numpy) or None
    extra: dict[str, Any] = field(default_factory=dict)


def iso(ts: float) -> str:
    return dt.datetime.fromtimestamp(ts, dt.UTC).isoformat(timespec="milliseconds")


def build_event(
    d: Decision, *, device_id: str, camera: str, model_id: str, snapshot_b64: str | None = None
) -> dict[str, Any]:
    """The JSON object published for a decision."""
    x, y, w, h = (int(v) for v in d.box)
    ev: dict[str, Any] = {
        "schema": SCHEMA_VERSION,
        "id": str(uuid.uuid4()),
        "type": d.type,
        "event_type": d.type,  # for Home Assistant's MQTT event entity
        "person": d.person,
        "score": round(float(d.score), 4),
        "second": round(float(d.second), 4),
        "threshold": round(float(d.threshold), 4),
        "device": device_id,
        "camera": camera,
        "timestamp": iso(d.decided_at),
        "frame_timestamp": iso(d.frame_timestamp),
        "first_seen": iso(d.first_seen),
        "box": {"x": x, "y": y, "w": w, "h": h},
        "track_id": int(d.track_id),
        "track_frames": int(d.track_frames),
        "model_id": model_id,
    }
    if snapshot_b64 is not None:
        ev["snapshot_jpeg_b64"] = snapshot_b64
    ev.update(d.extra)
    return ev


def dumps(ev: dict[str, Any]) -> str:
    return json.dumps(ev, separators=(",", ":"), ensure_ascii=False)


class StdoutSink:
    """Used when no broker is configured: one JSON line per event on stdout."""

    def __init__(self, stream: TextIO | None = None) -> None:
        self.stream = stream or sys.stdout

    def send_event(self, ev: dict[str, Any]) -> None:
        self.stream.write(dumps(ev) + "\n")
        self.stream.flush()

    def set_state(self, state: dict[str, Any]) -> None:
        pass

    def start(self) -> None:
        pass

    def stop(self, timeout: float = 5.0) -> None:
        pass

    def stats(self) -> dict[str, Any]:
        return {}
