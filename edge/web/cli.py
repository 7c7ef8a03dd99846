"""``edge web``, ``edge web-password`` and ``edge web-token`` (registered by edge/cli.py).

Imports nothing of the web stack until a command runs, so ``edge`` works without the ``web``
extra installed.
"""

from __future__ import annotations

import argparse
import getpass
import logging
import sys

from edge.errors import ConfigError


def _config(path: str):
    from edge.daemon import config as config_mod

    return config_mod.load(path)


def cmd_web(args: argparse.Namespace) -> int:
    """The web app alone, without a camera: manage the gallery, recognise uploaded photos."""
    cfg = _config(args.config)
    if args.listen:
        cfg.web.listen = args.listen
        cfg.web.address()
    logging.getLogger().setLevel(cfg.daemon.log_level.upper())
    from edge.daemon.cli import web_server_module

    return web_server_module().WebServer(cfg, live=False).run()


def cmd_password(args: argparse.Namespace) -> int:
    from edge.web.auth import write_password

    cfg = _config(args.config)
    try:
        password = sys.stdin.readline().rstrip("\n") if args.stdin else _ask_twice()
    except UnicodeDecodeError:
        raise ConfigError("web password: not UTF-8 text; nothing changed") from None
    except EOFError:  # no terminal, and standard input ended
        raise ConfigError(
            "web password: no input (use --stdin to pipe it); nothing changed"
        ) from None
    write_password(cfg.web.password_file, password)
    print(f"web password set ({cfg.web.password_file}); signed-in sessions are signed out")
    return 0


def _ask_twice() -> str:
    password = getpass.getpass("new web password: ")
    if getpass.getpass("again: ") != password:
        raise ConfigError("web password: the two entries differ; nothing changed")
    return password


def cmd_token(args: argparse.Namespace) -> int:
    from edge.web.auth import ensure_token, new_token

    cfg = _config(args.config)
    print(new_token(cfg.web.token_file) if args.new else ensure_token(cfg.web.token_file))
    return 0


def add_commands(subparsers) -> None:
    p = subparsers.add_parser("web", help="serve the face library web app alone (no camera)")
    p.add_argument("--config", required=True, help="daemon TOML config ([web], [recognition])")
    p.add_argument("--listen", help="host:port, overriding web.listen")
    p.set_defaults(func=cmd_web)
    p = subparsers.add_parser("web-password", help="set the web app's sign-in password")
    p.add_argument("--config", required=True, help="daemon TOML config (web.password_file)")
    p.add_argument("--stdin", action="store_true", help="read the password from standard input")
    p.set_defaults(func=cmd_password)
    p = subparsers.add_parser("web-token", help="print the HTTP API's bearer token")
    p.add_argument("--config", required=True, help="daemon TOML config (web.token_file)")
    p.add_argument(
        "--new",
        action="store_true",
        help="replace it with a new one first (a running server needs a restart)",
    )
    p.set_defaults(func=cmd_token)
