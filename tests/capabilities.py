"""Print the ATEN_CPU_CAPABILITY values this CPU supports, one per line (`make test-kernels`).

torch picks its CPU kernels by capability (default, avx2, avx512); float sums round differently
under each, which is how users' CPUs differ from the one the suite last ran on. Linux reads the
CPU's flags from /proc/cpuinfo; elsewhere only `default` is listed.
"""
from __future__ import annotations

from pathlib import Path

# What torch's dispatcher requires of the CPU for each capability (x86-64).
NEEDS = {"avx2": {"avx2", "fma"}, "avx512": {"avx512f", "avx512bw", "avx512vl", "avx512dq"}}


def supported(cpuinfo: str | None = None) -> list[str]:
    """The capabilities the CPU described by `cpuinfo` (default: /proc/cpuinfo) supports."""
    if cpuinfo is None:
        try:
            cpuinfo = Path("/proc/cpuinfo").read_text()
        except OSError:
            return ["default"]
    flags: set[str] = set()
    for line in cpuinfo.splitlines():
        if line.startswith("flags"):
            flags = set(line.split(":", 1)[1].split())
            break
    return ["default"] + [name for name, needs in NEEDS.items() if needs <= flags]


if __name__ == "__main__":
    print("\n".join(supported()))
