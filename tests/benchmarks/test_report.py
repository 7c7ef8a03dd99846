"""benchmarks/_report.py: every machine line says whether the CPU has int8 dot products."""

from __future__ import annotations

from benchmarks._report import int8_dot_products, machine

ZEN3 = "processor\t: 0\nmodel name\t: AMD EPYC\nflags\t\t: fpu sse4_2 avx avx2 fma bmi2\n"
XEON = "model name\t: Intel Xeon\nflags\t\t: avx2 avx512f avx512_vnni amx_bf16 amx_int8\n"
PI5 = (
    "processor\t: 0\nFeatures\t: fp asimd evtstrm aes crc32 atomics asimdrdm lrcpc dcpop asimddp\n"
)
PI4 = "processor\t: 0\nFeatures\t: fp asimd evtstrm crc32 cpuid\n"


def test_int8_dot_products_are_read_from_x86_flags_and_arm_features() -> None:
    assert int8_dot_products(ZEN3) == []
    assert int8_dot_products(XEON) == ["amx_int8", "avx512_vnni"]
    assert int8_dot_products(PI5) == ["asimddp"]
    assert int8_dot_products(PI4) == []
    assert int8_dot_products("") == []


def test_the_machine_line_says_it() -> None:
    line = machine()
    assert "int8 dot products" in line and "cores" in line
