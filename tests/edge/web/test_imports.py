"""The web app is optional: `edge` works without the `web` extra, and never imports TensorFlow."""

from __future__ import annotations

import subprocess
import sys

BLOCK_WEB_STACK = """
import importlib.abc, sys
class NoWeb(importlib.abc.MetaPathFinder):
    def find_spec(self, name, path, target=None):
        if name.split('.')[0] in ('starlette', 'uvicorn', 'jinja2', 'multipart'):
            raise ImportError(f'blocked {name}', name=name)
sys.meta_path.insert(0, NoWeb())
"""


def _run(code: str) -> str:
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr[-2000:]
    return out.stdout.strip()


def test_edge_and_the_daemon_need_no_web_stack_when_it_is_off(tmp_path):
    cfg = tmp_path / "config.toml"
    cfg.write_text(f'[recognition]\ngallery = "{tmp_path / "g.npz"}"\n[web]\nenabled = false\n')
    code = BLOCK_WEB_STACK + (
        "import edge.cli\n"
        "parser = edge.cli.build_parser()\n"
        "from edge.daemon import cli, config\n"
        f"cli.check(config.load({str(cfg)!r}))\n"
        f"assert cli._start_web(config.load({str(cfg)!r})) is None\n"
        "print(sorted(m for m in sys.modules if m.startswith('edge.web')))\n"
    )
    assert _run(code) == "['edge.web', 'edge.web.cli']"


def test_enabling_the_web_without_its_extra_is_one_line(tmp_path):
    cfg = tmp_path / "config.toml"
    cfg.write_text(f'[recognition]\ngallery = "{tmp_path / "g.npz"}"\n[web]\nenabled = true\n')
    code = BLOCK_WEB_STACK + (
        "from edge.daemon import cli, config\n"
        "from edge.errors import ConfigError\n"
        "try:\n"
        f"    cli._start_web(config.load({str(cfg)!r}))\n"
        "except ConfigError as e:\n"
        "    print(e)\n"
    )
    assert _run(code).startswith("web.enabled: needs the 'web' extra")


def test_the_web_app_imports_no_tensorflow():
    code = (
        "import sys, importlib\n"
        "for m in ('edge.web.app', 'edge.web.api', 'edge.web.pages', 'edge.web.server'):\n"
        "    importlib.import_module(m)\n"
        "print(sorted(m for m in sys.modules if m.split('.')[0] in ('tensorflow', 'keras')))\n"
    )
    assert _run(code) == "[]"
