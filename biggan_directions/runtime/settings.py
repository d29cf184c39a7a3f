"""The runtime settings group: device, threads, precision, compile, declared once for every command.

Torch-free, so the CLI builds its options from here without loading torch. `Runtime` is the
group; the job configs (DiscoverConfig, RenderConfig, ScoreConfig) record precision and compile
with their results, so they declare those two fields with `precision_setting()` and
`compile_setting()`: one default and one help text, whichever command shows them. What the
settings resolve to (the device, 'auto' precision, compile on or off) is runtime/device.py and
runtime/precision.py.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from ..foundation.settings import need, one_of, setting

PRECISIONS = ("auto", "fp32", "tf32", "bf16")
DEVICE_HELP = "auto (CUDA, then MPS, then CPU), cpu, cuda, cuda:N or mps."
THREADS_HELP = ("CPU threads for torch. Default: half the CPUs this process may use, at most 8 "
                "(1 on a 2-core machine): torch's own default, every core, runs 17-35x slower "
                "when other work shares the machine (BENCHMARKS.md).")
PRECISION_HELP = (
    "Precision of the generator's forward passes (and LPIPS's, in score): fp32, tf32 (CUDA), "
    "bf16 autocast, or auto: bf16 on a CUDA GPU that supports it, else tf32; fp32 on the CPU. "
    "auto keeps bf16 only when the command's check agrees with fp32 within 1% (discover: the "
    "fixed evaluation at start-up; score: the first batch's mean LPIPS; render: no check, its "
    "frames are 8-bit). discover's matrix, penalty, Adam and fixed evaluation stay fp32.")
COMPILE_HELP = ("torch.compile the generator call (and LPIPS's, in score): CUDA graphs where "
                "capture works, falling back to the default mode, then eager, with a warning.")
COMPILE_SHOWN = "on for CUDA, off for the CPU"


def precision_setting() -> Any:
    """The `precision` field of a job config: 'auto' by default, one help text."""
    return setting("auto", PRECISION_HELP, choices=PRECISIONS)


def compile_setting() -> Any:
    """The `compile` field of a job config: None (on for CUDA, off for the CPU) by default."""
    return setting(None, COMPILE_HELP, shown=COMPILE_SHOWN)


@dataclass(frozen=True)
class Runtime:
    """How a command runs (not what it computes): where, on how many CPU threads, at what
    precision, compiled or not. Every command takes these settings through the same options."""

    device: str = setting("auto", DEVICE_HELP, metavar="DEV")
    threads: int | None = setting(None, THREADS_HELP, shown="see help")   # None: default_threads()
    precision: str = precision_setting()
    compile: bool | None = compile_setting()

    def validate(self) -> "Runtime":
        """SettingError on a value no device takes; returns self (what a device takes is
        checked when it is resolved)."""
        one_of("precision", self.precision, PRECISIONS)
        need(self.threads is None or (isinstance(self.threads, int) and self.threads >= 1),
             "threads", self.threads, "must be at least 1.")
        return self
