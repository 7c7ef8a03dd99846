"""``edge run --config FILE`` and ``edge check-config FILE`` (registered by edge/cli.py)."""

from __future__ import annotations

import argparse
import logging
import sys
from pathlib import Path

from edge.daemon import config as config_mod
from edge.errors import ConfigError
from edge.pipeline import SHIPPED_MODELS, resolve_model


def check(cfg: config_mod.Config, name: str = "config") -> list[str]:
    """Checks beyond types that need the file system; raises ConfigError, returns warnings."""
    warnings: list[str] = []
    m = cfg.mqtt
    if m.host:
        m.password()  # raises naming password_file / password_env
        for key in ("ca_file", "cert_file", "key_file"):
            path = getattr(m, key)
            if path and not Path(path).is_file():
                raise ConfigError(f"{name}: mqtt.{key}: file not found: {path}")
        if (m.ca_file or m.cert_file) and not m.tls:
            warnings.append("mqtt.ca_file/cert_file are set but mqtt.tls is false")
    if not Path(cfg.recognition.gallery).is_file():
        warnings.append(
            f"recognition.gallery: {cfg.recognition.gallery} does not exist yet "
            "(every face is unknown until someone is enrolled; the daemon loads it then)"
        )
    if cfg.recognition.model and not resolve_model(cfg.recognition.model).is_file():
        raise ConfigError(
            f"{name}: recognition.model: file not found: {cfg.recognition.model} (a path, or "
            f"a shipped model: {', '.join(SHIPPED_MODELS)})"
        )
    if cfg.detector.model and not Path(cfg.detector.model).expanduser().is_file():
        raise ConfigError(f"{name}: detector.model: file not found: {cfg.detector.model}")
    if cfg.web.enabled:
        try:
            web_server_module().check_web(cfg.web)
        except ConfigError as e:
            raise ConfigError(f"{name}: {e}") from None
    return warnings


def check_loads(cfg: config_mod.Config, name: str = "config") -> list[str]:
    """Load what ``edge run`` would load (model, detector, gallery) without starting anything:
    ConfigError naming the key for a file the daemon would refuse, warnings for what it would
    work around (a gallery of another model, re-embedded on start). Only ``check-config`` pays
    this: ``run`` loads them once, itself."""
    from edge.daemon.loop import recognizer_from_config
    from edge.errors import DetectorError, DoorfaceError
    from edge.gallery import Gallery

    try:
        recognizer = recognizer_from_config(cfg)
    except DetectorError as e:  # its message names detector.* itself
        raise ConfigError(f"{name}: {e}") from None
    except DoorfaceError as e:
        raise ConfigError(f"{name}: recognition.model: {e}") from None
    path = Path(cfg.recognition.gallery)
    if not path.is_file():
        return []  # check() has said so
    try:
        gallery = Gallery.load(path)
    except DoorfaceError as e:
        raise ConfigError(f"{name}: recognition.gallery: {e}") from None
    model_id = recognizer.embedder.model_id
    if gallery.model_id == model_id:
        return []
    try:
        gallery.check_rebuildable(model_id)  # what the daemon's load would refuse
    except DoorfaceError as e:
        raise ConfigError(f"{name}: recognition.gallery: {e}") from None
    return [
        f"recognition.gallery: made by model {gallery.model_id[:12]}; the daemon re-embeds "
        f"its {len(gallery)} stored crops for model {model_id[:12]} when it starts"
    ]


def cmd_check_config(args: argparse.Namespace) -> int:
    cfg = config_mod.load(args.file)
    name = Path(args.file).name
    for w in check(cfg, name) + check_loads(cfg, name):
        print(f"warning: {w}", file=sys.stderr)
    target = f"mqtt://{cfg.mqtt.host}:{cfg.mqtt.port}" if cfg.mqtt.host else "stdout"
    print(f"{args.file}: OK (camera {cfg.camera.source}, events to {target})")
    return 0


def cmd_run(args: argparse.Namespace) -> int:
    from edge.daemon.loop import Daemon

    cfg = config_mod.load(args.config)
    for w in check(cfg, Path(args.config).name):
        logging.getLogger("edge.daemon").warning("%s", w)
    logging.getLogger().setLevel(cfg.daemon.log_level.upper())
    if not logging.getLogger().handlers:
        logging.basicConfig(format="%(levelname)s %(name)s: %(message)s")
    web = _start_web(cfg)
    try:
        daemon = Daemon(cfg, observer=web.recorder if web else None)
        daemon.install_signals()
        return daemon.run()
    finally:
        if web is not None:
            web.stop()


def _start_web(cfg: config_mod.Config):
    """The web app's server thread when ``web.enabled`` (edge/web), else None."""
    if not cfg.web.enabled:
        return None
    web = web_server_module().WebServer(cfg, live=True)
    web.start()
    return web


def web_server_module():
    """edge.web.server, imported only when the web app is on (it needs the 'web' extra)."""
    try:
        from edge.web import server
    except ImportError as exc:
        raise ConfigError(f"web.enabled: needs the 'web' extra ({exc.name} is missing)") from None
    return server


def add_commands(subparsers) -> None:
    p = subparsers.add_parser("run", help="run the door daemon (camera -> recognition -> MQTT)")
    p.add_argument("--config", required=True, help="TOML config file (see config.example.toml)")
    p.set_defaults(func=cmd_run)
    p = subparsers.add_parser("check-config", help="validate a daemon config file and exit")
    p.add_argument("file", help="TOML config file")
    p.set_defaults(func=cmd_check_config)
