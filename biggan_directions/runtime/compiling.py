"""torch.compile of a generator call, with CUDA graphs where capture works and a graceful fallback.

`compiled(fn, device)` returns a callable that tries, on its first call, torch.compile with
mode 'reduce-overhead' (CUDA graphs; CUDA only), then the default mode, then plain eager; each
fallback prints one warning line. The mode that worked and the seconds the first call took
(compilation included) are kept on the returned object for the run record.
"""
from __future__ import annotations

import sys
import time
from typing import Any, Callable

import torch


class CompiledCall:
    """fn compiled lazily; `.mode` is 'reduce-overhead', 'default' or 'eager' once called."""

    def __init__(self, fn: Callable, device: torch.device, warn: Callable[[str], None] | None = None,
                 cuda_graphs: bool = True):
        self.fn = fn
        graphs = cuda_graphs and device.type == "cuda"
        self.modes = (["reduce-overhead"] if graphs else []) + ["default", "eager"]
        self.mode: str | None = None
        self.compile_seconds: float | None = None
        self.warnings: list[str] = []
        self._call: Callable | None = None
        self._warn = warn or (lambda text: print(text, file=sys.stderr))
        for name in ("z_dim", "resolution"):
            if hasattr(fn, name):
                setattr(self, name, getattr(fn, name))

    def __call__(self, *args: Any) -> Any:
        if self._call is not None:
            return self._call(*args)
        start = time.perf_counter()
        for i, mode in enumerate(self.modes):
            call = self.fn if mode == "eager" else torch.compile(self.fn, mode=mode, dynamic=False)
            try:
                out = call(*args)
            except Exception as e:  # noqa: BLE001 - any compiler failure falls back
                if mode == "eager":
                    raise
                text = (f"warning: torch.compile ({mode}) failed ({type(e).__name__}: "
                        f"{str(e).strip().splitlines()[0][:120] if str(e).strip() else ''}); "
                        f"falling back to {self.modes[i + 1]}.")
                self.warnings.append(text)
                self._warn(text)
                torch._dynamo.reset()
                continue
            self.mode, self._call = mode, call
            self.compile_seconds = time.perf_counter() - start
            return out
        raise AssertionError("unreachable")


def compiled(fn: Callable, device: torch.device, enabled: bool = True,
             warn: Callable[[str], None] | None = None, cuda_graphs: bool = True) -> Callable:
    """`fn` compiled (see CompiledCall) when enabled, else `fn` itself. cuda_graphs=False skips
    'reduce-overhead' (CUDA graphs need one call per step whose outputs are used before the
    next: not the case with chunked or sequential penalties)."""
    return CompiledCall(fn, torch.device(device), warn, cuda_graphs) if enabled else fn
