"""Run a command under the seccomp filters that a systemd unit's directives describe.

``python sandbox.py POLICY.json -- COMMAND...`` loads the filters, then execs COMMAND; the
test builds POLICY from the unit (tests/systemd/test_unit.py, ``unit_policy``). libseccomp is
driven through ctypes (libseccomp2 is on every Debian with systemd), so no Python binding has
to be installed. Like systemd, each directive is its own filter and the kernel applies the
strictest answer of all of them:

- SystemCallFilter= (an allow-list): any other system call kills the process, except those
  in the policy's "tolerated" list, which fail with EPERM as the unit's
  SystemCallErrorNumber=EPERM makes every denied call fail. Killing is stricter: a denied call
  the daemon makes shows up here unless it is named, with its reason, in the test.
- MemoryDenyWriteExecute=: mmap with PROT_WRITE|PROT_EXEC, mprotect/pkey_mprotect adding
  PROT_EXEC and shmat with SHM_EXEC fail with EPERM (systemd's rules).
- RestrictAddressFamilies=: socket() of another family fails with EAFNOSUPPORT.
- RestrictNamespaces=yes: unshare/setns fail with EPERM, clone with a CLONE_NEW* flag too,
  and clone3 (whose flags seccomp cannot see) with ENOSYS, so libc falls back to clone.

Loading a filter sets no_new_privs (NoNewPrivileges=yes).
"""

from __future__ import annotations

import ctypes
import errno
import json
import os
import socket
import sys

ACT_KILL_PROCESS = 0x80000000
ACT_ALLOW = 0x7FFF0000
CMP_EQ, CMP_MASKED_EQ = 4, 7
PROT_WRITE, PROT_EXEC, SHM_EXEC = 0x2, 0x4, 0o100000
CLONE_NEW = (0x00020000, 0x02000000, 0x04000000, 0x08000000, 0x10000000, 0x20000000, 0x40000000)
AF_MAX = 46


def act_errno(code: int) -> int:
    return 0x00050000 | (code & 0xFFFF)


class ArgCmp(ctypes.Structure):
    _fields_ = [
        ("arg", ctypes.c_uint),
        ("op", ctypes.c_int),
        ("datum_a", ctypes.c_uint64),
        ("datum_b", ctypes.c_uint64),
    ]


def libseccomp() -> ctypes.CDLL:
    lib = ctypes.CDLL("libseccomp.so.2", use_errno=True)
    lib.seccomp_init.restype = ctypes.c_void_p
    lib.seccomp_init.argtypes = [ctypes.c_uint32]
    lib.seccomp_syscall_resolve_name.argtypes = [ctypes.c_char_p]
    lib.seccomp_rule_add_array.argtypes = [
        ctypes.c_void_p,
        ctypes.c_uint32,
        ctypes.c_int,
        ctypes.c_uint,
        ctypes.POINTER(ArgCmp),
    ]
    lib.seccomp_load.argtypes = [ctypes.c_void_p]
    lib.seccomp_release.argtypes = [ctypes.c_void_p]
    return lib


class Filter:
    """One libseccomp filter context for the native architecture."""

    lib = libseccomp()

    def __init__(self, default_action: int) -> None:
        self.ctx = self.lib.seccomp_init(default_action)
        if not self.ctx:
            raise OSError("seccomp_init failed")

    def rule(self, action: int, name: str, *cmps: tuple[int, int, int, int]) -> None:
        """Add a rule; names this architecture lacks are skipped, as systemd does."""
        nr = self.lib.seccomp_syscall_resolve_name(name.encode())
        if nr < 0:
            return
        args = (ArgCmp * max(1, len(cmps)))(*(ArgCmp(*c) for c in cmps))
        rc = self.lib.seccomp_rule_add_array(self.ctx, action, nr, len(cmps), args)
        if rc < 0:
            raise OSError(-rc, f"seccomp_rule_add {name}: {os.strerror(-rc)}")

    def load(self) -> None:
        rc = self.lib.seccomp_load(self.ctx)
        self.lib.seccomp_release(self.ctx)
        if rc < 0:
            raise OSError(-rc, f"seccomp_load: {os.strerror(-rc)}")


def load_policy(policy: dict) -> None:
    """Load the filters, the allow-list last: seccomp() itself is not on it."""
    if policy["memory_deny_write_execute"]:
        mdwe = Filter(ACT_ALLOW)
        wx = PROT_WRITE | PROT_EXEC
        for name in ("mmap", "mmap2"):
            mdwe.rule(act_errno(errno.EPERM), name, (2, CMP_MASKED_EQ, wx, wx))
        for name in ("mprotect", "pkey_mprotect"):
            mdwe.rule(act_errno(errno.EPERM), name, (2, CMP_MASKED_EQ, PROT_EXEC, PROT_EXEC))
        mdwe.rule(act_errno(errno.EPERM), "shmat", (2, CMP_MASKED_EQ, SHM_EXEC, SHM_EXEC))
        mdwe.load()
    if policy["address_families"] is not None:
        families = Filter(ACT_ALLOW)
        allowed = {getattr(socket, name) for name in policy["address_families"]}
        for family in sorted(set(range(AF_MAX)) - allowed):
            families.rule(act_errno(errno.EAFNOSUPPORT), "socket", (0, CMP_EQ, family, 0))
        families.load()
    if policy["restrict_namespaces"]:
        ns = Filter(ACT_ALLOW)
        ns.rule(act_errno(errno.EPERM), "unshare")
        ns.rule(act_errno(errno.EPERM), "setns")
        ns.rule(act_errno(errno.ENOSYS), "clone3")
        for flag in CLONE_NEW:
            ns.rule(act_errno(errno.EPERM), "clone", (0, CMP_MASKED_EQ, flag, flag))
        ns.load()
    allow = Filter(ACT_KILL_PROCESS)
    for name in policy["syscalls"]:
        allow.rule(ACT_ALLOW, name)
    for name in policy["tolerated"]:
        allow.rule(act_errno(errno.EPERM), name)
    allow.load()


def main(argv: list[str]) -> int:
    if len(argv) < 4 or argv[2] != "--":
        print("usage: sandbox.py POLICY.json -- COMMAND...", file=sys.stderr)
        return 2
    with open(argv[1]) as f:
        load_policy(json.load(f))
    os.execv(argv[3], argv[3:])
    return 127  # not reached


if __name__ == "__main__":
    sys.exit(main(sys.argv))
