"""Throughput of a run: FLOPs of one step counted once (torch's FlopCounterMode), and rates."""
from __future__ import annotations

from typing import Any, Callable

from torch.utils.flop_counter import FlopCounterMode


def count_flops(step: Callable[[], Any]) -> int:
    """Floating-point operations of one call of `step` (forward and backward, as executed),
    counted by torch.utils.flop_counter.FlopCounterMode (matmuls and convolutions)."""
    with FlopCounterMode(display=False) as counter:
        step()
    return int(counter.get_total_flops())


def throughput(steps: int, seconds: float, images_per_step: int,
               flops_per_step: int | None) -> dict[str, float | None]:
    """steps/s, images/s (generator images, perturbations included) and achieved TFLOP/s."""
    if steps <= 0 or seconds <= 0:
        return {"steps_per_second": None, "images_per_second": None, "tflops": None}
    rate = steps / seconds
    return {"steps_per_second": round(rate, 4),
            "images_per_second": round(rate * images_per_step, 2),
            "tflops": round(rate * flops_per_step / 1e12, 4) if flops_per_step else None}
