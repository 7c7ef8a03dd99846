"""systemd/doorface-edge.service: its exposure score, and `edge run` under its restrictions.

systemd is not PID 1 here (nor in CI), so the unit cannot simply be started. Instead the
directives are rebuilt from the unit file itself and applied with the kernel features systemd
uses: SystemCallFilter=, MemoryDenyWriteExecute=, RestrictAddressFamilies= and
RestrictNamespaces= as seccomp filters (tests/systemd/sandbox.py, from the same syscall groups
as `systemd-analyze syscall-filter` lists), User=/CapabilityBoundingSet=/NoNewPrivileges= with
setpriv (supplementary group video, no capabilities, empty bounding set), ProtectProc=invisible
as a private /proc mounted hidepid=invisible, and PrivateUsers= as a user namespace mapping only
the service's own user. The camera is a video readable by the group video alone.
Outside its user namespace the daemon stays uid 0 with no capabilities rather than an
unprivileged user: the interpreter here (and in CI) lives under /root, which only its owner may
enter. Without capabilities uid 0 passes no permission check it does not own; inside, it is the
ordinary uid 990, so libraries see a non-root user as under User=doorface.
Not reproduced: the file-system view (ProtectSystem=, PrivateTmp=, ...), which needs no
syscall the daemon does not already make; the device cgroup, which the camera's DeviceAllow=
lines open.
"""

from __future__ import annotations

import grp
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
UNIT = ROOT / "systemd" / "doorface-edge.service"
SANDBOX = Path(__file__).with_name("sandbox.py")
MAX_EXPOSURE = 2.0
NOBODY = 65534
SERVICE_UID = 990  # the service's uid inside its user namespace (a system user's, like doorface)


def need(tool: str) -> str:
    exe = shutil.which(tool)
    if exe is None:
        if os.environ.get("CI"):
            pytest.fail(f"{tool} missing in CI")
        pytest.skip(f"{tool} is not installed")
    return exe


def need_root() -> None:
    if os.geteuid() != 0:
        if os.environ.get("CI"):
            pytest.fail("the unit sandbox test needs root in CI (setpriv, mount namespaces)")
        pytest.skip("needs root (setpriv, mount namespaces)")


# -- reading the unit ---------------------------------------------------------------------
def service_settings(text: str) -> dict[str, list[str]]:
    """[Service] key -> its values in order (a directive may be given several times)."""
    settings: dict[str, list[str]] = {}
    section = ""
    for raw in text.splitlines():
        line = raw.strip()
        if not line or line.startswith(("#", ";")):
            continue
        if line.startswith("["):
            section = line
        elif section == "[Service]" and "=" in line:
            key, value = line.split("=", 1)
            settings.setdefault(key, []).append(value)
    return settings


def syscall_groups(analyze: str) -> dict[str, list[str]]:
    """Every @group of `systemd-analyze syscall-filter`: its syscalls and nested @groups."""
    out = subprocess.run(
        [analyze, "syscall-filter"], capture_output=True, text=True, check=True
    ).stdout
    groups: dict[str, list[str]] = {}
    current: list[str] | None = None
    for line in out.splitlines():
        if line.startswith("@"):
            current = groups.setdefault(line.strip(), [])
        elif line.startswith(" ") and current is not None and not line.strip().startswith("#"):
            current.append(line.strip())
        elif not line.strip() or line.startswith("#"):
            current = None
    return groups


def expand(item: str, groups: dict[str, list[str]]) -> set[str]:
    if not item.startswith("@"):
        return {item}
    return set().union(*(expand(x, groups) for x in groups[item]))


def allowed_syscalls(filters: list[str], groups: dict[str, list[str]]) -> set[str]:
    """systemd's rule: the first SystemCallFilter= without "~" starts an allow-list; later
    "~" lines remove from it, plain lines add to it."""
    assert filters and not filters[0].startswith("~"), "the unit's filter must be an allow-list"
    allowed: set[str] = set()
    for value in filters:
        deny = value.startswith("~")
        names = set().union(*(expand(x, groups) for x in value.lstrip("~").split()))
        allowed = allowed - names if deny else allowed | names
    return allowed


# Denied by the unit, yet called: the unit's SystemCallErrorNumber=EPERM fails them, and the
# daemon must cope. Any other denied call kills the sandboxed daemon.
TOLERATED = {
    # LiteRT (libpywrap_litert_common.so) asks its arenas to prefer a NUMA node: a hint that
    # it does without on EPERM (and a Pi has one node)
    "mbind": "@resources",
}


def unit_policy(settings: dict[str, list[str]], groups: dict[str, list[str]]) -> dict:
    families = settings.get("RestrictAddressFamilies")
    allowed = allowed_syscalls(settings["SystemCallFilter"], groups)
    return {
        "syscalls": sorted(allowed),
        "tolerated": sorted(set(TOLERATED) - allowed),
        "memory_deny_write_execute": settings.get("MemoryDenyWriteExecute") == ["yes"],
        "address_families": families[-1].split() if families else None,
        "restrict_namespaces": settings.get("RestrictNamespaces") == ["yes"],
    }


@pytest.fixture(scope="module")
def settings() -> dict[str, list[str]]:
    return service_settings(UNIT.read_text())


@pytest.fixture(scope="module")
def policy(settings) -> dict:
    return unit_policy(settings, syscall_groups(need("systemd-analyze")))


# -- the score ----------------------------------------------------------------------------
def test_exposure_is_at_most_2(tmp_path):
    analyze = need("systemd-analyze")
    unit = tmp_path / UNIT.name
    shutil.copy(UNIT, unit)
    r = subprocess.run(
        [analyze, "security", "--offline=true", "--no-pager", str(unit)],
        capture_output=True,
        text=True,
    )
    found = re.search(r"Overall exposure level for \S+: (\d+\.\d)", r.stdout)
    assert found, r.stdout[-500:] + r.stderr
    assert float(found.group(1)) <= MAX_EXPOSURE, r.stdout


def test_unit_hardening_keeps_the_camera(settings):
    assert settings["CapabilityBoundingSet"] == [""]
    assert settings["ProtectProc"] == ["invisible"]
    assert settings["SupplementaryGroups"] == ["video"]
    assert settings["PrivateUsers"] == ["yes"] and settings["MemoryDenyWriteExecute"] == ["yes"]
    assert "ProcSubset" not in settings  # it would hide /proc/cpuinfo from XNNPACK on ARM
    assert "PrivateDevices" not in settings  # it would hide /dev/video*
    assert "DevicePolicy" in settings and any("video4linux" in d for d in settings["DeviceAllow"])


def test_policy_is_the_units_filter(policy):
    allowed = set(policy["syscalls"])
    assert {"read", "openat", "mmap", "ioctl", "socket", "connect", "futex", "clone"} <= allowed
    denied = {"setuid", "sched_setaffinity", "add_key", "mlock", "io_uring_setup", "mount"}
    assert not denied & allowed, denied & allowed  # ~@privileged @resources @keyring ...
    assert {"reboot", "init_module", "ptrace", "swapon"}.isdisjoint(allowed)
    groups = syscall_groups(need("systemd-analyze"))
    for name, group in TOLERATED.items():  # still denied, for the stated reason
        assert name in policy["tolerated"] and name in expand(group, groups)
    assert policy["memory_deny_write_execute"] and policy["restrict_namespaces"]
    assert "AF_INET" in policy["address_families"] and "AF_PACKET" not in policy["address_families"]


# -- running under it ---------------------------------------------------------------------
def sandboxed(policy: dict, work: Path, argv: list[str]) -> list[str]:
    """argv as the unit would run it: private /proc (hidepid=invisible), only the
    supplementary group video, no capabilities, its own user namespace, seccomp."""
    policy_file = work / "policy.json"
    policy_file.write_text(json.dumps(policy))
    video = grp.getgrnam("video").gr_gid
    return [
        need("unshare"),
        "--mount",
        "--propagation",
        "private",
        "sh",
        "-c",
        'mount -t proc -o hidepid=invisible,nosuid,nodev,noexec proc /proc && exec "$@"',
        "sh",
        need("setpriv"),  # Group= (not root's), SupplementaryGroups=video, while it may
        f"--regid={NOBODY}",
        f"--groups={video}",
        need("unshare"),  # PrivateUsers= (mapping uid 0 needs CAP_SETFCAP: before the drop)
        "--user",
        f"--map-user={SERVICE_UID}",  # inside, an ordinary user: libraries that act
        f"--map-group={NOBODY}",  # differently for root (SQLite chowns its journal) do not
        need("setpriv"),  # CapabilityBoundingSet=, NoNewPrivileges=: no capability left
        "--inh-caps=-all",
        "--no-new-privs",
        sys.executable,
        str(SANDBOX),
        str(policy_file),
        "--",
        *argv,
    ]


@pytest.fixture
def work():
    """A folder outside pytest's tmp_path, whose parents only root may enter."""
    need_root()
    d = Path(tempfile.mkdtemp(prefix="doorface-unit-"))
    d.chmod(0o755)
    yield d
    shutil.rmtree(d, ignore_errors=True)


PROBE = r"""
import errno, mmap, os, socket, sys
what = sys.argv[1]
if what == "wx":
    try:
        mmap.mmap(-1, 4096, prot=mmap.PROT_READ | mmap.PROT_WRITE | mmap.PROT_EXEC)
    except PermissionError:
        print("EPERM")
elif what == "packet":
    try:
        socket.socket(socket.AF_PACKET, socket.SOCK_RAW)
    except OSError as e:
        print(errno.errorcode[e.errno])
elif what == "view":
    caps = [l.split()[1] for l in open("/proc/self/status") if l.startswith(("CapPrm", "CapEff"))]
    print(caps, os.path.exists("/proc/" + sys.argv[3]), open(sys.argv[2]).read())
elif what == "affinity":
    os.sched_setaffinity(0, {0})
    print("not killed")
"""


def test_sandbox_enforces_the_unit(policy, work):
    secret = work / "camera"  # another user's, readable through the group video only
    secret.write_text("frame")
    os.chown(secret, NOBODY, grp.getgrnam("video").gr_gid)
    secret.chmod(0o040)

    def probe(*args: str) -> subprocess.CompletedProcess:
        cmd = sandboxed(policy, work, [sys.executable, "-c", PROBE, *args])
        return subprocess.run(cmd, capture_output=True, text=True, timeout=60)

    assert probe("wx").stdout.strip() == "EPERM"  # MemoryDenyWriteExecute
    assert probe("packet").stdout.strip() == "EAFNOSUPPORT"  # RestrictAddressFamilies
    other_user = [need("setpriv"), f"--reuid={NOBODY}", "--clear-groups", "sleep", "60"]
    with subprocess.Popen(other_user) as sleeper:
        view = probe("view", str(secret), str(sleeper.pid))
        sleeper.kill()
    # no capability at all; another user's process invisible; the group video, unmapped in
    # the user namespace, still opens the camera
    zero = "0000000000000000"
    assert view.stdout.strip() == f"['{zero}', '{zero}'] False frame", view.stdout + view.stderr
    killed = probe("affinity")  # ~@resources: the filter kills
    assert killed.returncode in (-signal.SIGSYS, 128 + signal.SIGSYS), killed
    assert "not killed" not in killed.stdout


class Subscriber:
    """Collects the events topic of a broker, subscribed before the daemon starts."""

    def __init__(self, port: int) -> None:
        import paho.mqtt.client as mqtt

        self.events: list[dict] = []
        self.subscribed = threading.Event()
        self.client = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2)
        self.client.on_connect = lambda c, *_: c.subscribe("doorface/+/events", qos=1)
        self.client.on_subscribe = lambda *_: self.subscribed.set()
        self.client.on_message = lambda c, u, m: self.events.append(json.loads(m.payload))
        self.client.connect("127.0.0.1", port)
        self.client.loop_start()
        assert self.subscribed.wait(10), "no SUBACK from mosquitto"

    def close(self) -> None:
        self.client.loop_stop()
        self.client.disconnect()


@pytest.mark.mqtt
@pytest.mark.slow
def test_edge_run_under_the_units_sandbox(policy, work):
    """The shipped model and YuNet, a video readable only by the group video, events to a
    real broker and sd_notify to a socket: all through the unit's restrictions."""
    import socket

    from edge.pipeline import resolve_model
    from tests.edge.daemon.conftest import Broker
    from tests.edge.daemon.door import make_door_video

    video_gid = grp.getgrnam("video").gr_gid
    clip, state = work / "clip", work / "state"
    clip.mkdir()
    state.mkdir()
    door = make_door_video(clip, resolve_model(None), backend="yunet")
    shutil.move(door["gallery"], state / "gallery.npz")
    os.chown(clip, 0, video_gid)
    clip.chmod(0o750)
    os.chown(door["video"], 0, video_gid)
    door["video"].chmod(0o640)
    state.chmod(0o700)  # StateDirectoryMode=: the service's own (uid 0 here, see above)

    broker = Broker(work)
    broker.start()
    notify = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    notify.bind(str(work / "notify.sock"))
    (work / "notify.sock").chmod(0o666)
    subscriber = Subscriber(broker.port)
    config = work / "config.toml"
    config.write_text(
        f'[daemon]\ndevice_id = "door1"\n'
        f'[camera]\nsource = "{door["video"]}"\nexit_on_end = true\n'
        f'[recognition]\ngallery = "{state / "gallery.npz"}"\n'
        f'[mqtt]\nhost = "127.0.0.1"\nport = {broker.port}\n'
        f'[outbox]\npath = "{state / "outbox.sqlite"}"\n'
    )
    config.chmod(0o644)
    env = {
        "PATH": "/usr/bin:/bin",
        "HOME": str(state),
        "NOTIFY_SOCKET": str(work / "notify.sock"),
        "WATCHDOG_USEC": "2000000",
    }
    edge = Path(sys.executable).with_name("edge")
    try:
        r = subprocess.run(
            sandboxed(policy, work, [str(edge), "run", "--config", str(config)]),
            capture_output=True,
            text=True,
            timeout=300,
            env=env,
            cwd=state,
        )
        notify.setblocking(False)
        notes = []
        while True:
            try:
                notes.append(notify.recv(4096).decode())
            except BlockingIOError:
                break
    finally:
        subscriber.close()
        notify.close()
        broker.stop()
    assert r.returncode == 0, r.stderr[-3000:]
    assert "Traceback" not in r.stderr, r.stderr[-3000:]
    assert "READY=1" in notes and "WATCHDOG=1" in notes, notes
    recognized = [e for e in subscriber.events if e["type"] == "recognized"]
    assert [e["person"] for e in recognized][:1] == ["astronaut"], subscriber.events
