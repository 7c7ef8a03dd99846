"""Where the daemon's events and state go: the ``Sink`` seam, stdout, or MQTT from the config."""

from __future__ import annotations

import sys
from typing import Any, Protocol, TextIO

from edge import __version__ as EDGE_VERSION
from edge.daemon.config import Config
from edge.daemon.events import dumps


class Sink(Protocol):
    """What the daemon publishes to (``MqttPublisher`` or ``StdoutSink``; tests use a list)."""

    def start(self) -> None: ...

    def stop(self, timeout: float = 5.0) -> None: ...

    def send_event(self, ev: dict[str, Any]) -> None: ...

    def set_state(self, state: dict[str, Any]) -> None: ...

    def stats(self) -> dict[str, Any]: ...


class StdoutSink:
    """Used when no broker is configured: one JSON line per event on stdout, no state."""

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


def sink_from_config(cfg: Config) -> Sink:
    """MQTT with its outbox when ``mqtt.host`` is set, else stdout (imports paho lazily)."""
    if not cfg.mqtt.host:
        return StdoutSink()
    from edge.daemon.mqtt import MqttPublisher
    from edge.daemon.outbox import Outbox

    o = cfg.outbox
    outbox = Outbox(o.path, o.max_rows, o.memory_max, o.synchronous)
    return MqttPublisher(
        cfg.mqtt, outbox, device_id=cfg.daemon.device_id, name=cfg.daemon.name, version=EDGE_VERSION
    )
