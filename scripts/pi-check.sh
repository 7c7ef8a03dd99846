#!/usr/bin/env bash
# The README's "Install on the Pi", run for real on Debian arm64 under QEMU user emulation.
#
#   sudo bash scripts/pi-check.sh [SUITE...]          # default: bookworm trixie
#   bash scripts/pi-check.sh --print-commands SUITE   # the README commands it would run
#
# For each suite: a Debian arm64 root file system (debootstrap, cached), entered with chroot
# through binfmt_misc + qemu-aarch64 (QEMU >= 8: Debian 12's own 7.2 segfaults inside
# ai-edge-litert's allocate_tensors); the exact commands of README.md's Pi section, read from
# the README at run time with the few rewrites listed in readme_commands(); then `edge demo`,
# an enrol/identify round, and `edge run` as the unit runs it (user doorface, its
# credentials directory) on a short clip, publishing to a Mosquitto on the host that must
# receive the event. Emulated: its timings say nothing about a Pi's speed. The emulated CPU is
# a Cortex-A72, the Pi 4's ($PI_CHECK_CPU; QEMU's default "max" CPU has SME, and XNNPACK's float
# kernels for it ran YuNet 7x slower under emulation than its NEON kernels for an A72).
#
# Cached between runs in $PI_CHECK_CACHE (default /var/cache/doorface-pi-check): the
# debootstrapped root file system as a tarball keyed by suite + package list, and pip's cache.
# Everything else lives in a temporary folder that is unmounted and removed on every exit.
# Needs root, binfmt_misc, and network to Debian's mirror and PyPI; installs debootstrap,
# qemu-user (bookworm-backports on a Debian 12 host), zstd and mosquitto when missing.
set -euo pipefail

SUITES_KNOWN=(bookworm trixie)
REPO="$(cd "$(dirname "$0")/.." && pwd)"
README="${PI_CHECK_README:-$REPO/README.md}"
CACHE="${PI_CHECK_CACHE:-/var/cache/doorface-pi-check}"
MIRROR="${PI_CHECK_MIRROR:-http://deb.debian.org/debian}"
CPU="${PI_CHECK_CPU:-cortex-a72}" # qemu-aarch64 reads QEMU_CPU; sudo in the chroot keeps it
PYPI="${PI_CHECK_PYPI:-https://pypi.org/simple/pip/}"
# Packages debootstrap adds to minbase: what the README's apt line installs (after the
# python3-picamera2 rewrite), sudo (the README's commands use it) and ca-certificates.
ROOTFS_PACKAGES="ca-certificates,git,python3,python3-numpy,python3-venv,sudo"
ROOTFS_FORMAT=1 # bump when the way the root file system is made changes
SRC_IN_CHROOT=/mnt/doorface-src

die() {
  echo "pi-check: $*" >&2
  exit 1
}

# -- the README's commands --------------------------------------------------------------
readme_block() {
  # The first ```sh block after the "## Install on the Pi" heading, verbatim.
  [ -f "$README" ] || die "README not found: $README"
  awk '/^## Install on the Pi/ {s = 1; next}
       s == 1 && /^## / {exit}
       s == 1 && /^```sh/ {s = 2; next}
       s == 2 && /^```/ {exit}
       s == 2 {print}' "$README"
}

readme_commands() {
  # The README commands for SUITE, one a line, rewritten only where a chroot on a PC must
  # differ from a Pi; "# skip: ..." lines name what is not run and why. Each rewrite must
  # match, so a changed README fails here instead of silently testing something else.
  local suite="$1" block
  block="$(readme_block)"
  [ -n "$block" ] || die "README: no \`\`\`sh block under '## Install on the Pi'"
  printf '%s\n' "$block" | awk -v suite="$suite" -v src="$SRC_IN_CHROOT" '
    function fail(msg) { print "pi-check: README Pi section: " msg > "/dev/stderr"; bad = 1; exit 1 }
    /\\$/ { fail("continued lines are not supported: " $0) }
    /^[[:space:]]*(#|$)/ { next }
    {
      line = $0
      if (line ~ /# *Bookworm *$/ && suite != "bookworm") { next }
      if (line ~ /# *Trixie *$/ && suite != "trixie") { next }
      if (sub(/ *&& *sudo systemctl daemon-reload/, "", line)) n["daemon-reload"]++
      if (line ~ /(^|[^a-z])(systemctl|journalctl)[[:space:]]/) {
        out[++k] = "# skip (no init system in a chroot; edge run is started as the unit would): " line
        n["systemd"]++; next
      }
      if (line ~ /apt install/) {
        # Debian has no python3-picamera2 (Raspberry Pi OS has); its numpy is what pip sees
        if (sub(/python3-picamera2/, "python3-numpy", line)) n["picamera2"]++
      }
      if (sub(/<this repository>/, src, line)) n["repository"]++
      if (line ~ /edge enroll /) { out[++k] = "pi_prepare_photos"; n["enroll"]++ }
      if (line ~ /\.venv\/bin\/pip install/) n["pip"]++
      out[++k] = line
    }
    END {
      if (bad) exit 1
      if (n["picamera2"] != 1) fail("expected one apt install of python3-picamera2")
      if (n["repository"] != 1) fail("expected one <this repository> placeholder")
      if (n["enroll"] != 1) fail("expected one edge enroll command")
      if (n["systemd"] < 1) fail("expected the systemctl commands")
      if (n["pip"] != 1) fail("expected exactly one pip install line for " suite " (# Bookworm / # Trixie)")
      for (i = 1; i <= k; i++) print out[i]
    }'
}

# -- host preparation -------------------------------------------------------------------
qemu_major() { "$1" --version 2>/dev/null | awk 'NR == 1 {split($3, v, "."); print v[1] + 0}'; }

ensure_host_tools() {
  local missing=() qemu
  command -v debootstrap >/dev/null || missing+=(debootstrap)
  command -v zstd >/dev/null || missing+=(zstd)
  [ -x /usr/sbin/mosquitto ] || command -v mosquitto >/dev/null || missing+=(mosquitto)
  command -v mosquitto_sub >/dev/null || missing+=(mosquitto-clients)
  qemu="$(command -v qemu-aarch64 || true)"
  if [ -z "$qemu" ] || [ "$(qemu_major "$qemu")" -lt 8 ]; then missing+=(qemu-user); fi
  [ ${#missing[@]} -eq 0 ] && return 0
  command -v apt-get >/dev/null || die "missing ${missing[*]} and no apt-get to install them"
  local release=()
  if grep -q '^VERSION_CODENAME=bookworm' /etc/os-release 2>/dev/null; then
    # Debian 12's qemu-user is 7.2: take 10.x from backports
    if ! grep -rqs 'bookworm-backports' /etc/apt/sources.list /etc/apt/sources.list.d/; then
      printf 'Types: deb\nURIs: %s\nSuites: bookworm-backports\nComponents: main\nSigned-By: /usr/share/keyrings/debian-archive-keyring.gpg\n' \
        "$MIRROR" >/etc/apt/sources.list.d/doorface-bookworm-backports.sources
    fi
    release=(-t bookworm-backports)
  fi
  echo "pi-check: installing ${missing[*]}"
  apt-get update -qq >/dev/null 2>&1 || die "apt-get update failed (no network to Debian's mirror?)"
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${release[@]}" \
    "${missing[@]}" >/dev/null 2>&1 || die "apt-get install ${missing[*]} failed (no network to Debian's mirror?)"
  qemu="$(command -v qemu-aarch64 || true)"
  [ -n "$qemu" ] && [ "$(qemu_major "$qemu")" -ge 8 ] ||
    die "qemu-aarch64 >= 8 is needed (7.2 segfaults in ai-edge-litert); install qemu-user from bookworm-backports"
}

ensure_binfmt() {
  # Register qemu-aarch64 with the F flag: the kernel opens the interpreter now, so it runs
  # inside a chroot that does not contain it.
  local dir=/proc/sys/fs/binfmt_misc entry qemu conf
  [ -e "$dir/register" ] || mount -t binfmt_misc binfmt_misc "$dir" 2>/dev/null ||
    die "binfmt_misc unavailable (cannot mount $dir): arm64 binaries cannot run here"
  qemu="$(readlink -f "$(command -v qemu-aarch64)")"
  entry="$dir/qemu-aarch64"
  if [ -e "$entry" ]; then
    if grep -q '^enabled' "$entry" && grep -q "^interpreter $qemu\$" "$entry" &&
      grep -q '^flags: .*F' "$entry"; then
      return 0
    fi
    echo -1 >"$entry" || die "binfmt_misc: cannot replace the existing qemu-aarch64 entry"
  fi
  conf=':qemu-aarch64:M::\x7f\x45\x4c\x46\x02\x01\x01\x00\x00\x00\x00\x00\x00\x00\x00\x00\x02\x00\xb7\x00:\xff\xff\xff\xff\xff\xff\xff\x00\xff\xff\xff\xff\xff\xff\xff\xff\xfe\xff\xff\xff'
  echo "$conf:$qemu:F" >"$dir/register" 2>/dev/null ||
    die "binfmt_misc: cannot register qemu-aarch64 (read-only or unprivileged /proc?)"
}

PROBE='import sys, urllib.request; urllib.request.urlopen(sys.argv[1], timeout=20).read(1)'

# -- one suite ----------------------------------------------------------------------------
WORK=""
MOUNTS=()
BROKER_PID=""
SUB_PID=""

cleanup() {
  local i
  [ -n "$SUB_PID" ] && kill "$SUB_PID" 2>/dev/null && wait "$SUB_PID" 2>/dev/null
  [ -n "$BROKER_PID" ] && kill "$BROKER_PID" 2>/dev/null && wait "$BROKER_PID" 2>/dev/null
  SUB_PID="" BROKER_PID=""
  for ((i = ${#MOUNTS[@]} - 1; i >= 0; i--)); do
    umount "${MOUNTS[i]}" 2>/dev/null || umount -l "${MOUNTS[i]}" 2>/dev/null || true
  done
  MOUNTS=()
  if [ -n "$WORK" ] && [ -d "$WORK" ]; then
    if findmnt -rn -o TARGET | grep -q "^$WORK/"; then
      echo "pi-check: mounts left under $WORK; not removing it" >&2
    else
      rm -rf --one-file-system "$WORK"
    fi
  fi
  WORK=""
}
trap 'cleanup' EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

mount_at() { # mount_at TARGET mount-args...: mount and remember it for cleanup
  local target="$1"
  shift
  mkdir -p "$target"
  mount "$@" "$target" || die "cannot mount $target"
  MOUNTS+=("$target")
}

rootfs_tarball() {
  local key
  key="$(printf '%s|%s|%s|%s' "$1" "$ROOTFS_PACKAGES" "$MIRROR" "$ROOTFS_FORMAT" | sha256sum | cut -c1-12)"
  echo "$CACHE/rootfs-$1-arm64-$key.tar.zst"
}

make_rootfs() { # make_rootfs SUITE ROOT LOG: debootstrap, CA certificates, then cache it
  local suite="$1" root="$2" log="$3" tarball
  tarball="$(rootfs_tarball "$suite")"
  if [ -f "$tarball" ]; then
    mkdir -p "$root"
    zstd -dc "$tarball" | tar -x -C "$root" --numeric-owner || die "$suite: cannot unpack $tarball"
    echo cached
    return 0
  fi
  debootstrap --arch=arm64 --variant=minbase --include="$ROOTFS_PACKAGES" "$suite" "$root" "$MIRROR" \
    >>"$log" 2>&1 || die "$suite: debootstrap failed (see $log)"
  rm -rf "$root"/var/cache/apt/archives/*.deb
  mkdir -p "$CACHE"
  tar -C "$root" --numeric-owner -cf - . | zstd -q -T0 -3 >"$tarball.part" && mv "$tarball.part" "$tarball"
  echo fresh
}

snapshot_source() { # the working tree as it is (tracked + untracked, not ignored), committed
  local dst="$1"
  mkdir -p "$dst"
  (cd "$REPO" && git ls-files -z --cached --others --exclude-standard |
    tar --null -T - --ignore-failed-read -cf - 2>/dev/null) | tar -x -C "$dst"
  git -C "$dst" init -q
  git -C "$dst" add -A
  git -C "$dst" -c user.name=pi-check -c user.email=pi-check@localhost commit -qm snapshot
}

free_port() { python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'; }

chroot_script() { # the script run inside the chroot: helpers, README commands, then the checks
  local suite="$1" port="$2"
  cat <<'EOF'
set -euo pipefail
step() { echo "$1 $(( $(date +%s) - T0 ))" >>/tmp/pi-check-times; T0=$(date +%s); echo "== $1" >&2; }
fail() { echo "pi-check-fail: $*" >>/tmp/pi-check-times; echo "pi-check: $*" >&2; exit 1; }
T0=$(date +%s)
pi_prepare_photos() {
  # Enrolment photos for the README's `edge enroll ... photos/alice/`: the demo's astronaut
  # (scikit-image, from the demo extra) as Alice, and matplotlib's Grace Hopper as a stranger.
  step readme_until_enroll
  .venv/bin/pip install -q '.[demo]' "numpy==$(.venv/bin/python -c 'import numpy; print(numpy.__version__)')"
  .venv/bin/python - <<'PY'
from pathlib import Path
import cv2, matplotlib.cbook
from edge.demo import packaged_faces, variants
from edge.image import load_image
astronaut, _ = packaged_faces()
folder = Path("photos/alice")
folder.mkdir(parents=True, exist_ok=True)
for i, photo in enumerate(variants(astronaut, 4)):
    cv2.imwrite(str(folder / f"alice-{i}.jpg"), photo)
hopper = load_image(matplotlib.cbook.get_sample_data("grace_hopper.jpg", asfileobj=False))
cv2.imwrite("photos/stranger.jpg", hopper)
PY
  chmod -R a+rX photos
  step demo_extra_and_photos
}
EOF
  echo "cd /"
  readme_commands "$suite"
  cat <<EOF
PORT=$port
EOF
  cat <<'EOF'
step readme_from_enroll
cd /opt/doorface
sudo -u doorface .venv/bin/edge demo --quiet 2>/tmp/demo.err || { cat /tmp/demo.err >&2; fail "edge demo failed"; }
cat /tmp/demo.err >&2
grep -q "recognized \['Eileen Collins'" /tmp/demo.err || fail "edge demo did not recognise the astronaut"
step edge_demo
sudo -u doorface .venv/bin/edge identify --gallery /var/lib/doorface/gallery.npz --json \
  photos/alice/alice-0.jpg photos/stranger.jpg >/tmp/identify.json
.venv/bin/python - <<'PY' || fail "edge identify: wrong names: $(cat /tmp/identify.json)"
import json
rows = [json.loads(line) for line in open("/tmp/identify.json")]
names = [[face["name"] for face in row["faces"]] for row in rows]
assert names == [["Alice"], [None]], names
PY
step enrol_identify
# a short clip (the demo's own composition: Alice walking up to the door) as a folder of frames
.venv/bin/python - <<'PY'
from pathlib import Path
import cv2
from edge.demo import Visitor, build_clip, packaged_faces
from edge.detectors import create_detector
astronaut, _ = packaged_faces()
clip = build_clip([Visitor("Alice", [astronaut])], create_detector(), gap=2, visit=12)
folder = Path("/var/lib/doorface/clip")
folder.mkdir(exist_ok=True)
for frame in clip:
    cv2.imwrite(str(folder / f"{frame.index:05d}.jpg"), frame.image)
PY
chown -R doorface:doorface /var/lib/doorface/clip
cat >/etc/doorface/pi-check.toml <<TOML
[camera]
source = "/var/lib/doorface/clip"
exit_on_end = true
[mqtt]
host = "127.0.0.1"
port = $PORT
username = "doorface"
password_file = "\${CREDENTIALS_DIRECTORY}/mqtt_password"
TOML
# as the unit runs it: user doorface, LoadCredential's directory, StateDirectory as cwd
install -d -m 0700 -o doorface /run/credentials/doorface-edge.service
install -m 0400 -o doorface /etc/doorface/mqtt_password /run/credentials/doorface-edge.service/
as_unit() { (cd /var/lib/doorface && sudo -u doorface CREDENTIALS_DIRECTORY=/run/credentials/doorface-edge.service "$@"); }
as_unit /opt/doorface/.venv/bin/edge check-config /etc/doorface/pi-check.toml
as_unit timeout 600 /opt/doorface/.venv/bin/edge run --config /etc/doorface/pi-check.toml || fail "edge run failed"
step edge_run
EOF
}

check_suite() {
  local suite="$1" log root started t how port passwd
  started=$(date +%s)
  mkdir -p "$CACHE/pip" "$CACHE/logs"
  log="$CACHE/logs/pi-check-$suite.log"
  : >"$log"
  WORK="$(mktemp -d /var/tmp/doorface-pi-check.XXXXXX)"
  root="$WORK/root"
  how="$(make_rootfs "$suite" "$root" "$log")"
  t=$(($(date +%s) - started))
  echo "rootfs_$how $t" >"$WORK/times"

  chroot "$root" /bin/true 2>>"$log" || die "$suite: chroot cannot run the arm64 root file system (binfmt_misc/qemu-aarch64; see $log)"
  mount_at "$root/proc" -t proc proc
  mount_at "$root/sys" -t sysfs -o ro sysfs
  mount_at "$root/dev" --bind /dev
  mount_at "$root/dev/pts" --bind /dev/pts
  mount_at "$root/dev/shm" -t tmpfs -o mode=1777 tmpfs
  mount_at "$root/tmp" -t tmpfs -o mode=1777 tmpfs
  mount_at "$root/root/.cache/pip" --bind "$CACHE/pip"
  snapshot_source "$WORK/src"
  mount_at "$root$SRC_IN_CHROOT" --bind -o ro "$WORK/src"
  cp /etc/resolv.conf /etc/hosts "$root/etc/" 2>/dev/null || true
  mkdir -p "$root/etc/systemd/system" # minbase has no systemd; the README copies the unit there
  # the host's extra CAs (a TLS-inspecting proxy, a company CA) and pip set to the system store
  if compgen -G "/usr/local/share/ca-certificates/*" >/dev/null; then
    cp -r /usr/local/share/ca-certificates/. "$root/usr/local/share/ca-certificates/"
    chroot "$root" update-ca-certificates >>"$log" 2>&1 || die "$suite: update-ca-certificates failed (see $log)"
  fi
  printf '[global]\ncert = /etc/ssl/certs/ca-certificates.crt\n' >"$root/etc/pip.conf"
  chroot "$root" python3 -c "$PROBE" "$PYPI" 2>>"$log" ||
    die "$suite: no network for pip: cannot reach $PYPI from the chroot"

  port="$(free_port)"
  passwd="$WORK/mosquitto.passwd"
  mosquitto_passwd -b -c "$passwd" doorface your-mqtt-password 2>>"$log" >&2 || die "mosquitto_passwd failed"
  chmod 0644 "$passwd"
  printf 'user root\nlistener %s 127.0.0.1\nallow_anonymous false\npassword_file %s\n' "$port" "$passwd" >"$WORK/mosquitto.conf"
  "$(command -v mosquitto || echo /usr/sbin/mosquitto)" -c "$WORK/mosquitto.conf" >>"$log" 2>&1 &
  BROKER_PID=$!
  for _ in $(seq 100); do # the subscriber must not race the broker's start
    (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null && break
    sleep 0.1
  done
  mosquitto_sub -h 127.0.0.1 -p "$port" -u doorface -P your-mqtt-password -q 1 \
    -t 'doorface/+/events' >"$WORK/events.json" 2>>"$log" &
  SUB_PID=$!

  chroot_script "$suite" "$port" >"$root/tmp/pi-check.sh"
  echo 'Defaults env_keep += "QEMU_CPU"' >"$root/etc/sudoers.d/pi-check-qemu-cpu"
  chmod 0440 "$root/etc/sudoers.d/pi-check-qemu-cpu"
  echo "# $suite: README commands" >>"$log"
  chroot "$root" /usr/bin/env -i PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin \
    HOME=/root LANG=C.UTF-8 QEMU_CPU="$CPU" bash /tmp/pi-check.sh >>"$log" 2>&1 || {
    local reason last
    reason="$(sed -n 's/^pi-check-fail: //p' "$root/tmp/pi-check-times" 2>/dev/null || true)"
    last="$(awk 'END {print $1}' "$root/tmp/pi-check-times" 2>/dev/null || true)"
    tail -n 25 "$log" >&2
    die "$suite: ${reason:-a command failed after step '${last:-start}'} after $(($(date +%s) - started)) s (log: $log)"
  }
  cat "$root/tmp/pi-check-times" >>"$WORK/times"
  sleep 1 # edge run has flushed its outbox before exiting; let the subscriber print it
  grep -q '"person": *"Alice"' "$WORK/events.json" ||
    die "$suite: the broker received no event naming Alice from edge run (got: $(head -c 300 "$WORK/events.json"))"
  echo "total $(($(date +%s) - started))" >>"$WORK/times"
  echo "pi-check: $suite OK: $(awk '{printf "%s%s %d s", sep, $1, $2; sep = ", "}' "$WORK/times")"
  cleanup
}

# -- main ---------------------------------------------------------------------------------
if [ "${1:-}" = "--print-commands" ]; then
  [ $# -eq 2 ] || die "usage: pi-check.sh --print-commands SUITE"
  readme_commands "$2"
  exit 0
fi
suites=("$@")
[ ${#suites[@]} -gt 0 ] || suites=("${SUITES_KNOWN[@]}")
for s in "${suites[@]}"; do
  [[ " ${SUITES_KNOWN[*]} " == *" $s "* ]] || die "unknown suite '$s' (known: ${SUITES_KNOWN[*]})"
  readme_commands "$s" >/dev/null
done
[ "$(id -u)" -eq 0 ] || die "needs root (debootstrap, chroot and mounts)"
command -v chroot >/dev/null || die "chroot unavailable"
ensure_host_tools
ensure_binfmt
for s in "${suites[@]}"; do # debootstrap's mirror, when the root file system is not cached
  [ -f "$(rootfs_tarball "$s")" ] || python3 -c "$PROBE" "$MIRROR/dists/$s/Release" 2>/dev/null ||
    die "no network for debootstrap: cannot reach $MIRROR/dists/$s/Release"
done
for s in "${suites[@]}"; do check_suite "$s"; done
