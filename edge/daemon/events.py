"""Event payloads: the decision of a visit and the JSON published for it (docs/MQTT.md)."""

from __future__ import annotations

import datetime as dt
import json
import uuid
from dataclasses import dataclass
from typing import Any

import numpy as np

SCHEMA_VERSION = 2  # 2: visit_id and upgrade (a visit reported unknown can become recognized)
EVENT_TYPES = ("recognized", "unknown")


@dataclass(frozen=True)
class Decision:
    """A decision about a visit: its first (``recognized`` or ``unknown``), or an upgrade."""

    type: str  # "recognized" | "unknown"
    person: str | None
    score: float
    second: float
    threshold: float
    box: tuple[int, int, int, int]
    track_id: int
    visit_id: str
    track_frames: int
    first_seen: float
    decided_at: float
    frame_timestamp: float
    upgrade: bool = False  # a "recognized" that follows this visit's published "unknown"
    snapshot: np.ndarray | None = None  # RGB crop of the decisive face


def iso(ts: float) -> str:
    return dt.datetime.fromtimestamp(ts, dt.UTC).isoformat(timespec="milliseconds")


def build_event(
    d: Decision, *, device_id: str, camera: str, model_id: str, confidence: float | None = None
) -> dict[str, Any]:
    """The JSON object published for a decision. ``confidence``: P(same person) for its
    score under the model's calibration (edge/confidence.py), None when the model has none."""
    x, y, w, h = (int(v) for v in d.box)
    return {
        "schema": SCHEMA_VERSION,
        "id": str(uuid.uuid4()),
        "type": d.type,
        "event_type": d.type,  # for Home Assistant's MQTT event entity
        "person": d.person,
        "visit_id": d.visit_id,
        "upgrade": bool(d.upgrade),
        "score": round(float(d.score), 4),
        "confidence": None if confidence is None else round(float(confidence), 4),
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


def dumps(ev: dict[str, Any]) -> str:
    return json.dumps(ev, separators=(",", ":"), ensure_ascii=False)
