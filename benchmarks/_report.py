"""Write one benchmark's table into its own section of docs/BENCHMARKS.md.

Each script owns the text between ``<!-- BEGIN name -->`` and ``<!-- END name -->`` and
replaces only that, so scripts can be re-run independently.
"""

from __future__ import annotations

import datetime as _dt
import os
import platform
import re
from pathlib import Path

DOC = Path(__file__).resolve().parents[1] / "docs" / "BENCHMARKS.md"
HEADER = (
    "# Benchmarks\n\nEach section is written by the script it names; re-run it to refresh it.\n"
)


#: /proc/cpuinfo flags of int8 dot-product instructions (x86 AMX / VNNI, Arm's SDOT and I8MM):
#: XNNPACK's int8 kernels are several times faster with them (dlib's network as int8: 1.07 ms
#: per face on an AMD EPYC with them, 8.4 ms on one without; docs/BENCHMARKS.md), so every
#: machine line says whether its CPU has them.
INT8_DOT_FLAGS = ("amx_int8", "avx512_vnni", "avx_vnni", "asimddp", "i8mm")


def int8_dot_products(cpuinfo: str) -> list[str]:
    """The :data:`INT8_DOT_FLAGS` a /proc/cpuinfo text lists (x86 ``flags``, Arm ``Features``)."""
    flags: set[str] = set()
    for line in cpuinfo.splitlines():
        key, _, value = line.partition(":")
        if key.strip() in ("flags", "Features"):
            flags.update(value.split())
    return [f for f in INT8_DOT_FLAGS if f in flags]


def machine() -> str:
    cpu = platform.processor() or platform.machine()
    try:
        cpuinfo = Path("/proc/cpuinfo").read_text()
    except OSError:
        cpuinfo = ""
    for line in cpuinfo.splitlines():
        if line.startswith("model name"):
            cpu = line.split(":", 1)[1].strip()
            break
    dot = int8_dot_products(cpuinfo)
    if not cpuinfo:
        isa = "int8 dot products unknown"
    elif dot:
        isa = f"int8 dot products ({', '.join(dot)})"
    else:
        isa = "no int8 dot products"
    return (
        f"{cpu}, {os.cpu_count()} cores, {isa}, Python {platform.python_version()}, "
        f"{platform.system()} {platform.machine()}"
    )


def stamp() -> str:
    return (
        f"Machine: {machine()}. Date: {_dt.datetime.now(_dt.UTC).strftime('%Y-%m-%d %H:%M UTC')}."
    )


def markdown_table(headers: list[str], rows: list[list[object]]) -> str:
    def cell(v: object) -> str:
        return f"{v:.4g}" if isinstance(v, float) else str(v)

    lines = ["| " + " | ".join(headers) + " |", "|" + "---|" * len(headers)]
    lines += ["| " + " | ".join(cell(v) for v in row) + " |" for row in rows]
    return "\n".join(lines)


def write_section(name: str, title: str, body: str, doc: Path = DOC) -> None:
    """Replace (or append) the section ``name`` of docs/BENCHMARKS.md."""
    doc.parent.mkdir(parents=True, exist_ok=True)
    text = doc.read_text() if doc.exists() else HEADER
    block = f"<!-- BEGIN {name} -->\n## {title}\n\n{stamp()}\n\n{body.strip()}\n<!-- END {name} -->"
    pattern = re.compile(
        rf"<!-- BEGIN {re.escape(name)} -->.*?<!-- END {re.escape(name)} -->", re.S
    )
    text = (
        pattern.sub(lambda _: block, text)
        if pattern.search(text)
        else text.rstrip() + "\n\n" + block + "\n"
    )
    doc.write_text(text)


def rss_mb(pid: int) -> float:
    """Resident memory of a live process now (VmRSS), in MB; 0 when /proc has no such line."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return 0.0


def pct(values: list[float], q: float) -> float:
    """The measured value at quantile ``q`` (0..1), rounded to the nearest rank."""
    s = sorted(values)
    return s[min(len(s) - 1, int(q * (len(s) - 1) + 0.5))]
