"""scripts/pi-check.sh: it runs the README's Pi commands, and fails cleanly on bad input.

The full run (debootstrap, QEMU, pip, edge demo/enroll/identify/run) takes minutes per suite
and is run by .ci/run itself; these tests check what it runs and how it fails.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
SCRIPT = ROOT / "scripts" / "pi-check.sh"
README = ROOT / "README.md"
SUITES = ("bookworm", "trixie")
SKIP = "# skip (no init system in a chroot; edge run is started as the unit would): "


def run_script(*args: str, env: dict | None = None, prefix: tuple[str, ...] = ()):
    return subprocess.run(
        [*prefix, "bash", str(SCRIPT), *args],
        capture_output=True,
        text=True,
        timeout=600,
        env={**os.environ, **(env or {})},
    )


def readme_pi_lines(text: str) -> list[str]:
    section = text.split("## Install on the Pi", 1)[1]
    block = section.split("```sh\n", 1)[1].split("```", 1)[0]
    return [line for line in block.splitlines() if line.strip() and not line.startswith("#")]


def expected_commands(lines: list[str], suite: str) -> list[str]:
    """What the script must run of each README line for a suite, rewrites spelled out."""
    other = {"bookworm": "# Trixie", "trixie": "# Bookworm"}[suite]
    out = []
    for line in lines:
        if line.rstrip().endswith(other):
            continue
        line = line.replace(" && sudo systemctl daemon-reload", "")
        if re.search(r"\b(systemctl|journalctl) ", line):
            out.append(SKIP + line)
            continue
        line = line.replace("python3-picamera2", "python3-numpy")
        line = line.replace("<this repository>", "/mnt/doorface-src")
        if "edge enroll " in line:
            out.append("pi_prepare_photos")
        out.append(line)
    return out


@pytest.mark.parametrize("suite", SUITES)
def test_script_runs_the_readmes_commands(suite):
    r = run_script("--print-commands", suite)
    assert r.returncode == 0, r.stderr
    got = r.stdout.splitlines()
    assert got == expected_commands(readme_pi_lines(README.read_text()), suite)
    pip = [c for c in got if ".venv/bin/pip install" in c]
    assert len(pip) == 1  # exactly one install line per release
    if suite == "bookworm":  # the pins that keep pip from backtracking through OpenCV
        assert "'numpy<2'" in pip[0] and "'opencv-python-headless<4.12'" in pip[0]
    else:
        assert "numpy<2" not in pip[0]
    ran = [c for c in got if not c.startswith("#")]
    assert any("edge check-config /etc/doorface/config.toml" in c for c in ran)
    assert any(c.startswith("sudo cp systemd/doorface-edge.service") for c in ran)


@pytest.mark.parametrize(
    "old,new,message",
    [
        ("<this repository>", "https://example.org/doorface", "<this repository>"),
        ("python3-picamera2", "python3-picamera3", "python3-picamera2"),
        ("# Trixie\n", "\n", "one pip install line for bookworm"),  # both lines would run
        ("sudo -u doorface .venv/bin/edge enroll", "edge-enroll", "edge enroll"),
        ("```sh\nsudo apt install", "```\nsudo apt install", "no ```sh block"),
    ],
)
def test_a_changed_readme_fails_the_script(tmp_path, old, new, message):
    text = README.read_text()
    pi_section = text.index("## Install on the Pi")
    assert old in text[pi_section:]
    readme = tmp_path / "README.md"
    readme.write_text(text[:pi_section] + text[pi_section:].replace(old, new, 1))
    r = run_script("--print-commands", "bookworm", env={"PI_CHECK_README": str(readme)})
    assert r.returncode == 1 and r.stdout == ""
    assert len(r.stderr.splitlines()) == 1 and message in r.stderr, r.stderr


def test_unknown_suite_is_one_line():
    r = run_script("bookworm", "sid-arm64")
    assert r.returncode == 1
    assert r.stderr == "pi-check: unknown suite 'sid-arm64' (known: bookworm trixie)\n"


def pi_check_mounts() -> list[str]:
    targets = subprocess.run(["findmnt", "-rn", "-o", "TARGET"], capture_output=True, text=True)
    return [t for t in targets.stdout.splitlines() if "doorface-pi-check" in t]


@pytest.mark.slow
def test_no_network_is_one_line_and_leaves_nothing_mounted():
    """In a network namespace of its own nothing is reachable. With the root file system
    cached (as after .ci/run's own pi-check), the script unpacks and mounts it, finds that
    pip cannot reach PyPI from the chroot, and must unmount and remove everything; on a
    machine that never ran it, installing debootstrap and qemu-user fails first, also in one
    line that names the network."""
    if os.geteuid() != 0 or shutil.which("unshare") is None:
        if os.environ.get("CI"):
            pytest.fail("needs root and unshare in CI")
        pytest.skip("needs root (network namespace, mounts)")
    mounts, work = pi_check_mounts(), set(Path("/var/tmp").glob("doorface-pi-check.*"))
    r = run_script("bookworm", prefix=("unshare", "--net"))
    assert r.returncode == 1
    assert r.stderr.count("\n") == 1 and "no network" in r.stderr, r.stderr
    assert pi_check_mounts() == mounts  # (another run's may be there)
    assert set(Path("/var/tmp").glob("doorface-pi-check.*")) == work
