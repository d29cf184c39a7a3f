"""Forward-only calls of render and score (generator, LPIPS) at a precision, compiled when asked.

The settings are resolved by runtime.precision (`resolve`, `resolve_compile`: the resolver
training uses too). `FastCall` runs a function at that precision (bf16 autocast with float32
outputs; TF32 on for its CUDA matmuls and convolutions unless fp32, set around each call and
restored after) and torch.compile'd when asked (compiling.compiled).
"""
from __future__ import annotations

from typing import Any, Callable

import torch

from ..runtime.compiling import compiled
from ..runtime import precision
from ..runtime.precision import at_precision, precision_record, resolve_compile, tf32_state


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


def generator_call(G: Callable, spec: str, compile: bool | None,
                   device: torch.device | str) -> FastCall:
    """render's generator call: G at resolve(spec, device), no check against fp32."""
    chosen, _ = precision.resolve(spec, device)
    return FastCall(G, chosen, device, resolve_compile(compile, device))


def record(asked: str, check: dict[str, Any] | None, call: FastCall,
           **others: FastCall) -> dict[str, Any]:
    """What ran, for a results file: precision (asked, used, the check), compile, the mode
    `call` (the generator) compiled to, and <name>_compile_mode of the `others` (e.g. lpips)."""
    out = {**precision_record(asked, call.precision, check, call.compile),
           "compile_mode": call.report()["compile_mode"]}
    out.update({f"{name}_compile_mode": c.report()["compile_mode"] for name, c in others.items()})
    return out
