"""Forward-only calls of render and score (generator, LPIPS) at a precision, compiled when asked.

`resolve(spec, compile, device)` turns the settings into what runs: precision 'auto' is bf16
autocast on a CUDA GPU with bf16 support, tf32 on other CUDA devices, fp32 on the CPU
(precision.candidate; SettingError for combinations that cannot run, e.g. tf32 on the CPU), and
compile None is on for CUDA, off elsewhere. `FastCall` runs a function at that precision (bf16
autocast with float32 outputs; TF32 on for its CUDA matmuls and convolutions unless fp32, set
around each call and restored after) and torch.compile'd when asked (compiling.compiled).
`choose` keeps bf16 only where a measured figure stays within 1% of fp32 (score's LPIPS check).
"""
from __future__ import annotations

from typing import Any, Callable

import torch

from ..runtime.compiling import compiled
from ..runtime.precision import BF16_TOLERANCE, at_precision, candidate, relative_error, tf32_state


def resolve(spec: str, compile: bool | None, device: torch.device | str) -> tuple[str, bool]:
    """(precision to use, or for 'auto' -> 'bf16' to check; compile on/off) on `device`."""
    device = torch.device(device)
    return candidate(spec, device), (device.type == "cuda") if compile is None else bool(compile)


class FastCall:
    """fn(x) at `precision`, compiled when `compile`; x is a batch (B, ...) of independent rows.

    A compiled call pads a batch smaller than the largest one it has seen (repeating row 0) and
    returns the first B rows, so a job's last, short batch reuses the compiled graph. With CUDA
    graphs (cuda_graphs=True on CUDA) the output lives in the graph's memory until the next call:
    use it (or copy it) before calling again; pass cuda_graphs=False when outputs are kept.
    """

    def __init__(self, fn: Callable, precision: str, device: torch.device | str,
                 compile: bool = False, cuda_graphs: bool = True):
        self.precision, self.device, self.compile = precision, torch.device(device), bool(compile)
        self._call = compiled(at_precision(fn, precision, self.device), self.device, self.compile,
                              cuda_graphs=cuda_graphs)
        self._rows = 0                  # the largest batch compiled so far
        for name in ("z_dim", "resolution", "truncation"):
            if hasattr(fn, name):
                setattr(self, name, getattr(fn, name))

    def __call__(self, x: torch.Tensor):
        n = x.shape[0]
        if self.compile:
            if n < self._rows:
                x = torch.cat([x, x[:1].expand(self._rows - n, *x.shape[1:])])
            self._rows = max(self._rows, n)
        with tf32_state(self.device, self.precision != "fp32"):
            out = self._call(x)
        if x.shape[0] == n:
            return out
        return [o[:n] for o in out] if isinstance(out, (list, tuple)) else out[:n]

    def report(self) -> dict[str, Any]:
        """The compiled mode ('reduce-overhead', 'default', 'eager'; None before the first call)
        and the first call's seconds (compilation included)."""
        if not self.compile:
            return {"compile_mode": "eager", "compile_seconds": None}
        return {"compile_mode": getattr(self._call, "mode", None),
                "compile_seconds": getattr(self._call, "compile_seconds", None)}


def choose(spec: str, device: torch.device | str, precision: str,
           measure: Callable[[str], float],
           tolerance: float = BF16_TOLERANCE) -> tuple[str, dict[str, Any] | None]:
    """The precision to run, and the check's figures (None when nothing was checked).

    precision: resolve()'s candidate for `spec`. Only 'auto' with candidate 'bf16' is checked:
    measure('fp32') and measure('bf16') (e.g. the mean LPIPS of a fixed batch) must agree
    within `tolerance` (relative), else tf32 on CUDA (fp32 elsewhere) is used."""
    if spec != "auto" or precision != "bf16":
        return precision, None
    fp32, low = float(measure("fp32")), float(measure("bf16"))
    error = relative_error(low, fp32)
    check = {"fp32": fp32, "bf16": low, "relative_error": error, "tolerance": tolerance}
    if error <= tolerance:
        return "bf16", check
    return ("tf32" if torch.device(device).type == "cuda" else "fp32"), check


def generator_call(G: Callable, spec: str, compile: bool | None,
                   device: torch.device | str) -> FastCall:
    """render's generator call: G at resolve(spec, compile, device), no check against fp32."""
    precision, compiled = resolve(spec, compile, device)
    return FastCall(G, precision, device, compiled)


def record(asked: str, check: dict[str, Any] | None, call: FastCall,
           **others: FastCall) -> dict[str, Any]:
    """What ran, for a results file: precision (asked, used, the check), compile, the mode
    `call` (the generator) compiled to, and <name>_compile_mode of the `others` (e.g. lpips)."""
    out: dict[str, Any] = {"precision": call.precision, "precision_asked": asked,
                           "precision_check": check, "compile": call.compile,
                           "compile_mode": call.report()["compile_mode"]}
    out.update({f"{name}_compile_mode": c.report()["compile_mode"] for name, c in others.items()})
    return out
