"""Print the ATEN_CPU_CAPABILITY values `make test-kernels` runs under, one per line.

torch picks its CPU kernels by capability (default, avx2, avx512); float sums round differently
under each, which is how users' CPUs differ from the one the suite last ran on. Linux reads the
CPU's flags from /proc/cpuinfo; elsewhere only `default` is listed.

`python -m tests.capabilities` lists every capability the CPU supports; with `--besides-native`
it leaves out the one torch runs under here (ATEN_CPU_CAPABILITY when set, else the best the CPU
supports): `make test` has just run the whole suite under that one.
"""
from __future__ import annotations

import sys
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


def native() -> str:
    """The capability torch's kernels run under in this environment, e.g. 'avx512'."""
    import torch   # deferred: listing the CPU's capabilities needs no torch

    return torch.backends.cpu.get_cpu_capability().lower()


def besides(ran: str, cpuinfo: str | None = None) -> list[str]:
    """supported(cpuinfo) without `ran`, the capability a run has already covered."""
    return [name for name in supported(cpuinfo) if name != ran]


if __name__ == "__main__":
    if sys.argv[1:] == ["--besides-native"]:
        ran = native()
        print(f"(make test ran under {ran}; not again)", file=sys.stderr)
        print("\n".join(besides(ran)))
    else:
        print("\n".join(supported()))
