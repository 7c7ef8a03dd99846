"""Typed TOML configuration for the daemon.

Every section is a dataclass; values are checked against the field's type so that an
unknown key or a wrong type gives one line naming the key, e.g.
``config.toml: mqtt.port: must be an integer, got 'abc'``. Defaults live here and are
documented in ``edge/config.example.toml``.
"""

from __future__ import annotations

import dataclasses
import math
import os
import tomllib
import typing
from dataclasses import dataclass, field
from pathlib import Path

from edge.detectors.settings import DetectorSettings
from edge.embedder import MAX_THREADS, RECOGNITION_EXPOSURE, RECOGNITION_FLIP, RECOGNITION_ZOOM
from edge.errors import ConfigError
from edge.files import FileError, FileTooLargeError, read_regular


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
    threads: int = 2
    threshold: float = -1.0  # < 0 = the threshold from the model manifest
    margin: float = 0.05
    max_faces: int = 5
    flip: bool = RECOGNITION_FLIP  # embed each face and its mirror image (edge/embedder.py)
    exposure: bool = RECOGNITION_EXPOSURE  # brighten under-exposed faces (edge/exposure.py)
    zoom: bool = RECOGNITION_ZOOM  # each view also zoomed in: 2x the embedding time (embedder.py)


@dataclass
class TrackingConfig:
    iou: float = 0.3
    max_missed_frames: int = 8
    min_face_px: int = 40
    min_sharpness: float = 20.0
    confirm_frames: int = 3  # 2 named 3 strangers of 312 with refined landmarks (BENCHMARKS.md)
    unknown_frames: int = 5
    instant_above: float = 0.10
    decision: str = "aggregate"  # "aggregate" | "vote" (edge/daemon/strategies.py, measured there)
    unknown_after_s: float = 0.0  # a track this old at least before "unknown"
    upgrade: bool = True  # a visit reported "unknown" may still become "recognized"
    present_off_s: float = 10.0  # "person present" turns OFF after this long without a face


@dataclass
class MotionConfig:
    """The motion gate in front of face detection (``edge/daemon/motion.py``)."""

    enabled: bool = True
    threshold: float = 0.003  # fraction of the 64 px grey copy's pixels that must change
    detect_every_s: float = 2.0  # detect anyway this often (a face too faint for the gate)
    idle_stride: int = 2  # idle doorway: read every Nth camera frame only (1 = every frame)


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
class WebConfig:
    """The face library web app and HTTP API (``edge/web``), served by ``edge run``/``edge web``."""

    enabled: bool = False
    listen: str = "127.0.0.1:8080"  # host:port; a non-loopback host needs a password set
    password_file: str = "/var/lib/doorface/web_password"  # scrypt hash, `edge web-password`
    token_file: str = "/var/lib/doorface/web_token"  # API bearer token, made on first start
    visits: str = "/var/lib/doorface/visits.sqlite"  # visits with their face crops
    retention_days: float = 7.0  # visit crops and unknown faces are deleted after this
    tls_cert: str = ""  # PEM certificate and key: serve HTTPS (cookies then get Secure)
    tls_key: str = ""
    max_upload_bytes: int = 20_000_000  # one request's body
    max_upload_pixels: int = 16_000_000  # one uploaded image (checked before decoding)
    session_hours: float = 12.0  # a sign-in lasts this long without use

    def address(self) -> tuple[str, int]:
        """(host, port) of ``listen``: ``127.0.0.1:8080``, ``0.0.0.0:443``, ``[::]:8080`` (port 0:
        any free one)."""
        host, sep, port = self.listen.rpartition(":")
        host = host[1:-1] if host.startswith("[") and host.endswith("]") else host
        if not sep or not host or not port.isdigit() or not 0 <= int(port) < 65536:
            raise ConfigError(f"web.listen: must be host:port, got {self.listen!r}")
        return host, int(port)


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
    detector: DetectorSettings = field(default_factory=DetectorSettings)  # edge.detectors.settings
    recognition: RecognitionConfig = field(default_factory=RecognitionConfig)
    tracking: TrackingConfig = field(default_factory=TrackingConfig)
    motion: MotionConfig = field(default_factory=MotionConfig)
    cooldown: CooldownConfig = field(default_factory=CooldownConfig)
    snapshot: SnapshotConfig = field(default_factory=SnapshotConfig)
    mqtt: MqttConfig = field(default_factory=MqttConfig)
    outbox: OutboxConfig = field(default_factory=OutboxConfig)
    web: WebConfig = field(default_factory=WebConfig)


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
        if not math.isfinite(value):  # TOML has nan and inf: a nan threshold named strangers
            raise ConfigError(f"{key}: must be a finite number, got {value!r}")
        return float(value)
    if typ is str:
        if not isinstance(value, str):
            raise ConfigError(f"{key}: must be a string, got {value!r}")
        return value
    raise ConfigError(f"{key}: unsupported type")  # pragma: no cover


DECISIONS = ("aggregate", "vote")
MAX_CONFIG_BYTES = 1 << 20  # a config file larger than this is not one
MOVED = {  # old key -> where it lives now
    "mqtt.present_off_s": "tracking.present_off_s",
    "recognition.detector": "detector.backend",
    "recognition.detector_model": "detector.model",
    "recognition.detect_width": "detector.detect_width",
}


def _build(cls: type, data: dict, prefix: str) -> object:
    hints = typing.get_type_hints(cls)
    names = {f.name for f in dataclasses.fields(cls)}
    for key in data:
        if prefix + key in MOVED:
            raise ConfigError(f"{prefix}{key}: moved to {MOVED[prefix + key]}")
        if key not in names:
            raise ConfigError(f"{prefix}{key}: unknown key")
    kwargs = {k: _coerce(prefix + k, v, hints[k]) for k, v in data.items()}
    return cls(**kwargs)


#: The numeric settings' ranges, checked in one place: key -> (lowest, whether the lowest
#: itself is allowed, highest or None). Ranges between two settings, and open intervals such as
#: ``tracking.iou``, are checked in :func:`_check`.
RANGES: dict[str, tuple[float, bool, float | None]] = {
    "mqtt.port": (0, False, 65535),
    "mqtt.keepalive": (0, False, None),
    "mqtt.reconnect_max_s": (0, False, None),
    "outbox.max_rows": (0, False, None),
    "outbox.memory_max": (0, False, None),
    "tracking.confirm_frames": (0, False, None),
    "tracking.unknown_frames": (0, False, None),
    "tracking.max_missed_frames": (0, True, None),
    "tracking.unknown_after_s": (0, True, None),
    "tracking.present_off_s": (0, True, None),
    "tracking.min_face_px": (0, True, None),
    "tracking.min_sharpness": (0, True, None),
    "cooldown.person_s": (0, True, None),
    "cooldown.unknown_s": (0, True, None),
    "recognition.threads": (0, False, MAX_THREADS),
    "recognition.max_faces": (0, False, None),
    "recognition.margin": (0, True, None),
    "snapshot.max_bytes": (0, False, None),
    "snapshot.max_side": (0, False, None),
    "snapshot.keep": (0, False, None),
    "camera.fps": (0, True, None),
    "camera.retry_initial_s": (0, False, None),
    "motion.detect_every_s": (0, False, None),
    "motion.idle_stride": (1, True, None),
}


def _check_ranges(cfg: Config) -> None:
    for key, (low, low_allowed, high) in RANGES.items():
        section, name = key.split(".")
        v = getattr(getattr(cfg, section), name)
        if v < low or (v == low and not low_allowed):
            raise ConfigError(f"{key}: must be {'>=' if low_allowed else '>'} {low}, got {v!r}")
        if high is not None and v > high:
            raise ConfigError(f"{key}: must be <= {high}, got {v!r}")


def _check(cfg: Config) -> None:
    cfg.detector.validate()
    _check_ranges(cfg)
    if cfg.tracking.decision not in DECISIONS:
        raise ConfigError(
            f"tracking.decision: must be one of {', '.join(DECISIONS)}, "
            f"got {cfg.tracking.decision!r}"
        )
    if not cfg.camera.retry_max_s >= cfg.camera.retry_initial_s:
        raise ConfigError(
            f"camera.retry_max_s: must be >= camera.retry_initial_s "
            f"({cfg.camera.retry_initial_s!r}), got {cfg.camera.retry_max_s!r}"
        )
    if not 0 < cfg.motion.threshold < 1:
        raise ConfigError(
            f"motion.threshold: must be between 0 and 1, got {cfg.motion.threshold!r}"
        )
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
    if not did or any(c in did for c in "/+# ") or not did.isprintable():
        raise ConfigError(
            "daemon.device_id: must be non-empty without '/', '+', '#', spaces or control "
            f"characters, got {did!r}"
        )
    if cfg.mqtt.password_file and cfg.mqtt.password_env:
        raise ConfigError("mqtt.password_file: set password_file or password_env, not both")
    if bool(cfg.mqtt.cert_file) != bool(cfg.mqtt.key_file):
        raise ConfigError("mqtt.cert_file: cert_file and key_file must be set together")
    _check_web(cfg.web)


def _check_web(w: WebConfig) -> None:
    from edge.image import MAX_FILE_BYTES, MAX_PIXELS

    w.address()
    if not w.retention_days > 0:
        raise ConfigError(f"web.retention_days: must be > 0, got {w.retention_days!r}")
    if not w.session_hours > 0:
        raise ConfigError(f"web.session_hours: must be > 0, got {w.session_hours!r}")
    if not 0 < w.max_upload_bytes <= MAX_FILE_BYTES:
        raise ConfigError(
            f"web.max_upload_bytes: must be 1..{MAX_FILE_BYTES}, got {w.max_upload_bytes}"
        )
    if not 0 < w.max_upload_pixels <= MAX_PIXELS:
        raise ConfigError(
            f"web.max_upload_pixels: must be 1..{MAX_PIXELS}, got {w.max_upload_pixels}"
        )
    if bool(w.tls_cert) != bool(w.tls_key):
        raise ConfigError("web.tls_cert: tls_cert and tls_key must be set together")
    for key in ("password_file", "token_file", "visits"):
        if not getattr(w, key):
            raise ConfigError(f"web.{key}: must not be empty")


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
        raw = read_regular(p, MAX_CONFIG_BYTES)  # a FIFO would block, /dev/zero never end
    except FileTooLargeError as e:
        raise ConfigError(f"{e}: not a config file") from None
    except FileError as e:
        raise ConfigError(str(e)) from None
    try:
        data = tomllib.loads(raw.decode("utf-8"))
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as e:
        raise ConfigError(f"{p.name}: invalid TOML: {e}") from None
    return parse(data, p.name)


__all__ = ["Config", "load", "parse"]
