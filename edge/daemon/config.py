"""Typed TOML configuration for the daemon.

Every section is a dataclass; values are checked against the field's type so that an
unknown key or a wrong type gives one line naming the key, e.g.
``config.toml: mqtt.port: must be an integer, got 'abc'``. Defaults live here and are
documented in ``edge/config.example.toml``.
"""

from __future__ import annotations

import dataclasses
import os
import tomllib
import typing
from dataclasses import dataclass, field
from pathlib import Path

from edge.errors import ConfigError


@dataclass
class CameraConfig:
    source: str = "picamera"
    name: str = "front_door"
    fps: float = 0.0  # files/videos only: play at this rate (0 = every frame, no drops)
    exit_on_end: bool = False  # files/videos: exit when they end instead of re-opening
    retry_initial_s: float = 1.0
    retry_max_s: float = 30.0


@dataclass
class RecognitionConfig:
    model: str = ""  # empty = the model shipped in edge/models
    gallery: str = "/var/lib/doorface/gallery.npz"
    detector: str = "auto"
    detector_model: str = ""  # YuNet .onnx (or $DOORFACE_YUNET_MODEL)
    detect_width: int = -1  # detect on a copy at most this wide; -1 = detector default
    threads: int = 2
    threshold: float = -1.0  # < 0 = the threshold from the model manifest
    margin: float = 0.05
    max_faces: int = 5


@dataclass
class TrackingConfig:
    iou: float = 0.3
    max_missed_frames: int = 8
    min_face_px: int = 40
    min_sharpness: float = 20.0
    confirm_frames: int = 3
    unknown_frames: int = 5
    instant_above: float = 0.10


@dataclass
class CooldownConfig:
    person_s: float = 60.0
    unknown_s: float = 30.0


@dataclass
class SnapshotConfig:
    enabled: bool = False
    directory: str = "/var/lib/doorface/snapshots"
    in_event: bool = False
    max_bytes: int = 65536
    max_side: int = 320
    keep: int = 500


@dataclass
class MqttConfig:
    host: str = ""  # empty = no broker: events go to stdout as JSON lines
    port: int = 1883
    client_id: str = ""
    prefix: str = "doorface"
    keepalive: int = 30
    reconnect_max_s: int = 30  # reconnect backoff: 1 s doubling up to this
    username: str = ""
    password_file: str = ""
    password_env: str = ""
    tls: bool = False
    ca_file: str = ""
    cert_file: str = ""
    key_file: str = ""
    tls_insecure: bool = False
    discovery: bool = True
    discovery_prefix: str = "homeassistant"
    present_off_s: float = 10.0

    def password(self) -> str | None:
        """Read the secret from ``password_file`` or ``password_env``; never from the config."""
        if self.password_file:
            path = Path(os.path.expandvars(self.password_file))
            try:
                return path.read_text().strip()
            except OSError as e:
                raise ConfigError(f"mqtt.password_file: cannot read {path}: {e.strerror}") from e
        if self.password_env:
            value = os.environ.get(self.password_env)
            if value is None:
                raise ConfigError(
                    f"mqtt.password_env: environment variable {self.password_env} is not set"
                )
            return value
        return None


@dataclass
class OutboxConfig:
    path: str = "/var/lib/doorface/outbox.sqlite"
    max_rows: int = 10000
    memory_max: int = 1000
    synchronous: str = "FULL"


@dataclass
class DaemonConfig:
    device_id: str = "doorface"
    name: str = "Doorface"
    log_level: str = "INFO"
    watchdog: bool = True


@dataclass
class Config:
    daemon: DaemonConfig = field(default_factory=DaemonConfig)
    camera: CameraConfig = field(default_factory=CameraConfig)
    recognition: RecognitionConfig = field(default_factory=RecognitionConfig)
    tracking: TrackingConfig = field(default_factory=TrackingConfig)
    cooldown: CooldownConfig = field(default_factory=CooldownConfig)
    snapshot: SnapshotConfig = field(default_factory=SnapshotConfig)
    mqtt: MqttConfig = field(default_factory=MqttConfig)
    outbox: OutboxConfig = field(default_factory=OutboxConfig)


_KIND = {int: "an integer", float: "a number", str: "a string", bool: "true or false"}


def _coerce(key: str, value: object, typ: object) -> object:
    if isinstance(typ, type) and dataclasses.is_dataclass(typ):
        if not isinstance(value, dict):
            raise ConfigError(f"{key}: must be a table, got {value!r}")
        return _build(typ, value, key + ".")
    if typ is bool:
        if not isinstance(value, bool):
            raise ConfigError(f"{key}: must be true or false, got {value!r}")
        return value
    if typ is int:
        if isinstance(value, bool) or not isinstance(value, int):
            raise ConfigError(f"{key}: must be an integer, got {value!r}")
        return value
    if typ is float:
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise ConfigError(f"{key}: must be a number, got {value!r}")
        return float(value)
    if typ is str:
        if not isinstance(value, str):
            raise ConfigError(f"{key}: must be a string, got {value!r}")
        return value
    raise ConfigError(f"{key}: unsupported type")  # pragma: no cover


def _build(cls: type, data: dict, prefix: str) -> object:
    hints = typing.get_type_hints(cls)
    names = {f.name for f in dataclasses.fields(cls)}
    for key in data:
        if key not in names:
            raise ConfigError(f"{prefix}{key}: unknown key")
    kwargs = {k: _coerce(prefix + k, v, hints[k]) for k, v in data.items()}
    return cls(**kwargs)


def _check(cfg: Config) -> None:
    def positive(key: str, v: float, allow_zero: bool = False) -> None:
        if v < 0 or (v == 0 and not allow_zero):
            raise ConfigError(f"{key}: must be {'>= 0' if allow_zero else '> 0'}, got {v!r}")

    positive("mqtt.port", cfg.mqtt.port)
    if cfg.mqtt.port > 65535:
        raise ConfigError(f"mqtt.port: must be <= 65535, got {cfg.mqtt.port}")
    positive("mqtt.keepalive", cfg.mqtt.keepalive)
    positive("mqtt.reconnect_max_s", cfg.mqtt.reconnect_max_s)
    positive("outbox.max_rows", cfg.outbox.max_rows)
    positive("outbox.memory_max", cfg.outbox.memory_max)
    positive("tracking.confirm_frames", cfg.tracking.confirm_frames)
    positive("tracking.unknown_frames", cfg.tracking.unknown_frames)
    positive("tracking.max_missed_frames", cfg.tracking.max_missed_frames, True)
    positive("cooldown.person_s", cfg.cooldown.person_s, True)
    positive("cooldown.unknown_s", cfg.cooldown.unknown_s, True)
    positive("recognition.threads", cfg.recognition.threads)
    positive("recognition.max_faces", cfg.recognition.max_faces)
    positive("snapshot.max_bytes", cfg.snapshot.max_bytes)
    positive("camera.retry_initial_s", cfg.camera.retry_initial_s)
    if not 0 < cfg.tracking.iou < 1:
        raise ConfigError(f"tracking.iou: must be between 0 and 1, got {cfg.tracking.iou}")
    if cfg.outbox.synchronous.upper() not in ("FULL", "NORMAL", "EXTRA"):
        raise ConfigError(
            f"outbox.synchronous: must be FULL, NORMAL or EXTRA, got {cfg.outbox.synchronous!r}"
        )
    if cfg.daemon.log_level.upper() not in ("DEBUG", "INFO", "WARNING", "ERROR"):
        raise ConfigError(
            f"daemon.log_level: must be DEBUG/INFO/WARNING/ERROR, got {cfg.daemon.log_level!r}"
        )
    did = cfg.daemon.device_id
    if not did or any(c in did for c in "/+# "):
        raise ConfigError(
            f"daemon.device_id: must be non-empty without '/', '+', '#', spaces, got {did!r}"
        )
    if cfg.mqtt.password_file and cfg.mqtt.password_env:
        raise ConfigError("mqtt.password_file: set password_file or password_env, not both")
    if bool(cfg.mqtt.cert_file) != bool(cfg.mqtt.key_file):
        raise ConfigError("mqtt.cert_file: cert_file and key_file must be set together")


def parse(data: dict, name: str = "config") -> Config:
    """Build a validated Config from parsed TOML; errors are prefixed with ``name: ``."""
    try:
        cfg = _build(Config, data, "")
        _check(cfg)  # type: ignore[arg-type]
    except ConfigError as e:
        raise ConfigError(f"{name}: {e}") from None
    return cfg  # type: ignore[return-value]


def load(path: str | os.PathLike) -> Config:
    """Read and validate a TOML config file."""
    p = Path(path)
    try:
        raw = p.read_bytes()
    except OSError as e:
        raise ConfigError(f"{p}: cannot read: {e.strerror}") from e
    try:
        data = tomllib.loads(raw.decode("utf-8"))
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as e:
        raise ConfigError(f"{p.name}: invalid TOML: {e}") from None
    return parse(data, p.name)


__all__ = ["Config", "load", "parse"]
