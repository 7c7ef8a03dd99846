"""Home Assistant MQTT device-based discovery (``<discovery_prefix>/device/<id>/config``).

One retained message declares the device with three components: an ``event`` entity
(event types ``recognized`` / ``unknown``), a "last person" sensor and a "person present"
binary sensor. All share the availability topic, so HA shows them unavailable when the
daemon dies (last will) or stops (explicit ``offline``).
"""

from __future__ import annotations

from typing import Any

from edge.daemon.events import EVENT_TYPES


class Topics:
    def __init__(self, prefix: str, device_id: str, discovery_prefix: str = "homeassistant"):
        base = f"{prefix.rstrip('/')}/{device_id}"
        self.base = base
        self.events = f"{base}/events"
        self.availability = f"{base}/availability"
        self.state = f"{base}/state"
        self.discovery = f"{discovery_prefix}/device/{device_id}/config"
        self.ha_status = f"{discovery_prefix}/status"


def discovery_payload(topics: Topics, device_id: str, name: str, version: str) -> dict[str, Any]:
    uid = device_id
    return {
        "dev": {
            "ids": [uid],
            "name": name,
            "mf": "doorface",
            "mdl": "doorface edge",
            "sw": version,
        },
        "o": {"name": "doorface", "sw": version},
        "availability_topic": topics.availability,
        "payload_available": "online",
        "payload_not_available": "offline",
        "qos": 1,
        "cmps": {
            f"{uid}_face": {
                "p": "event",
                "name": "Face",
                "unique_id": f"{uid}_face",
                "state_topic": topics.events,
                "event_types": list(EVENT_TYPES),
                "icon": "mdi:face-recognition",
            },
            f"{uid}_last_person": {
                "p": "sensor",
                "name": "Last person",
                "unique_id": f"{uid}_last_person",
                "state_topic": topics.state,
                "value_template": "{{ value_json.last_person }}",
                "json_attributes_topic": topics.state,
                "icon": "mdi:account",
            },
            f"{uid}_present": {
                "p": "binary_sensor",
                "name": "Person present",
                "unique_id": f"{uid}_present",
                "device_class": "occupancy",
                "state_topic": topics.state,
                "value_template": "{{ value_json.present }}",
                "payload_on": "ON",
                "payload_off": "OFF",
            },
        },
    }
