"""Describing directions from their walk frames: the Describer (fed score's frames as they are made) and describe_directions.

Both paths measure the same frames the same way: the linear walk of each direction q and seed z,
z - (z.q) q + t P q for t = -1 .. +1 in `steps` frames (walks.walk_latents), walks ordered
direction-major (walk k * S + s), as `score` generates them. `score` hands each chunk of whole
walks to a Describer while it computes LPIPS (no second generation); describe_directions
generates the walks itself (no LPIPS).
"""
from __future__ import annotations

import os
import time
from collections import deque
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Any, Callable, Sequence

import numpy as np
import torch
from tqdm import tqdm

from ..foundation.settings import need, positive
from ..media.frames import to_uint8
from ..media.walks import easing, walk_latents
from ..models.generator import latents_for_seeds
from .config import DescribeConfig
from .labels import describe_measured
from .measures import measure_walks


def default_workers() -> int:
    """Threads that measure while the caller generates: one CPU is left to the caller, at most 4."""
    return max(1, min(4, (os.cpu_count() or 2) - 1))


class Describer:
    """Collects the walk frames of K directions x S seeds (T frames each) and measures each
    direction as soon as its S walks are in, on `workers` background threads (OpenCV and numpy
    release the GIL), so that measuring overlaps with the caller's generation and LPIPS. At most
    2 x workers directions wait to be measured (add() then waits for the oldest), so memory stays
    bounded. add() takes whole walks in order; finish() waits and returns one description per
    direction. workers=0 measures in the caller's thread. `seconds` is the caller's time spent in
    add() and finish() (converting, waiting), what describing adds to score's wall time."""

    def __init__(self, n_directions: int, n_seeds: int, steps: int,
                 config: DescribeConfig | None = None, workers: int | None = None):
        self.K, self.S, self.T = int(n_directions), int(n_seeds), int(steps)
        self.config = config or DescribeConfig()
        self.workers = default_workers() if workers is None else int(workers)
        self._pool = ThreadPoolExecutor(self.workers, "describe") if self.workers > 0 else None
        self._pending: list[np.ndarray] = []          # walks of the direction being filled
        self._next = 0                                # index of the next walk expected
        self._measured: list[Future] = []
        self._waiting: deque[Future] = deque()
        self.seconds = 0.0
        self.measure_seconds = 0.0                    # summed over the workers: the CPU it cost

    def _measure(self, frames: np.ndarray):
        start = time.perf_counter()
        out = measure_walks(frames, size=self.config.size, moving=self.config.moving,
                            geometry_seeds=self.config.geometry_seeds,
                            flow_stride=self.config.flow_stride)
        self.measure_seconds += time.perf_counter() - start    # one float add: atomic enough
        return out

    def add(self, first_walk: int, images: torch.Tensor) -> None:
        """images: (w*T, 3, H, W) in [-1, 1] (any device), the T frames of walks first_walk ..
        first_walk + w - 1, walk-major."""
        start = time.perf_counter()
        if first_walk != self._next:
            raise ValueError(f"walk {first_walk} given, walk {self._next} expected")
        # channels last on the device (one contiguous copy there, not a strided gather per read)
        frames = to_uint8(images.detach().float()).permute(0, 2, 3, 1).contiguous().cpu().numpy()
        frames = frames.reshape(-1, self.T, *frames.shape[1:])          # (w, T, H, W, 3)
        self._next += frames.shape[0]
        for walk in frames:
            self._pending.append(walk)
            if len(self._pending) == self.S:
                walks, self._pending = np.stack(self._pending), []
                if self._pool is None:
                    done: Future = Future()
                    done.set_result(self._measure(walks))
                else:
                    done = self._pool.submit(self._measure, walks)
                    self._waiting.append(done)
                    while len(self._waiting) > 2 * self.workers:
                        self._waiting.popleft().result()
                self._measured.append(done)
        self.seconds += time.perf_counter() - start

    def finish(self, inactive: Sequence[bool] | torch.Tensor | None = None) -> list[dict[str, Any]]:
        """One description per direction (labels.describe_measured), in direction order, each
        with its `direction` index. inactive: score's flags (K,); None: the Delta E rule."""
        if len(self._measured) != self.K:
            self.close()
            raise ValueError(f"{len(self._measured)} of {self.K} directions received")
        start = time.perf_counter()
        try:
            measured = [f.result() for f in self._measured]
        finally:
            self.close()
        self.seconds += time.perf_counter() - start
        flags = [None] * self.K if inactive is None else [bool(x) for x in inactive]
        return [{"direction": k, **describe_measured(w, inactive=flags[k], second=self.config.second,
                                                     inactive_delta_e=self.config.inactive_delta_e)}
                for k, w in enumerate(measured)]

    def close(self) -> None:
        """Stop the worker threads (what is queued is dropped); idempotent."""
        if self._pool is not None:
            self._pool.shutdown(wait=True, cancel_futures=True)
            self._pool = None


def _device_of(G) -> torch.device:
    try:
        return next(G.parameters()).device
    except (AttributeError, StopIteration, TypeError):
        return torch.device("cpu")


@torch.inference_mode()
def describe_directions(G: Callable[[torch.Tensor], torch.Tensor], Q: torch.Tensor, *,
                        path_size: float, seeds: int | Sequence[int] = 16, steps: int = 9,
                        device: torch.device | str | None = None, truncation: float | None = None,
                        batch_size: int = 32, config: DescribeConfig | None = None,
                        inactive: Sequence[bool] | None = None,
                        progress: bool = False) -> list[dict[str, Any]]:
    """Say what each row of Q does: one dict per row with `label` (str, from labels.LABELS),
    `label_confidence`, `second_label`, `inactive`, `measures` (measures.py's names), `agreement`
    and `shares`.

    G:          any generator of the protocol: (B, z_dim) latents -> (B, 3, H, W) in [-1, 1],
                on `device` (None: the device of G's parameters, else the CPU).
    Q:          (K, z_dim) unit rows.
    path_size:  P > 0: each walk goes from -P to +P in `steps` (odd) frames.
    seeds:      a count S (seeds 0..S-1) or the seeds; latents by latents_for_seeds at
                `truncation` (None: G.truncation, else 1).
    inactive:   K flags (e.g. score's LPIPS rule); None: config.inactive_delta_e's rule.
    config:     the measuring and labelling thresholds (DescribeConfig; its seeds and steps are
                not read here).
    """
    positive("path_size", path_size)
    seeds = list(range(seeds)) if isinstance(seeds, int) else [int(s) for s in seeds]
    need(len(seeds) >= 1, "seeds", seeds, "give at least one seed.")
    need(isinstance(steps, int) and steps >= 3 and steps % 2 == 1, "steps", steps,
         "must be odd and >= 3 so the walk's centre t=0 is a frame.")
    device = torch.device(device) if device is not None else _device_of(G)
    if truncation is None:
        truncation = float(getattr(G, "truncation", 1.0))
    K, D = Q.shape
    S, T = len(seeds), steps
    z = latents_for_seeds(seeds, D, truncation)                            # (S, D)
    lat = walk_latents(z, Q.detach().float().cpu(), easing("linear", T), path_size)   # (K, T, S, D)
    describer = Describer(K, S, T, config)
    bar = tqdm(total=K, unit="dir", desc="describe", disable=not progress, leave=False)
    try:
        for k in range(K):
            walks = lat[k].transpose(0, 1).reshape(S * T, D)               # (S*T, D) walk-major
            images = torch.cat([G(walks[i:i + batch_size].to(device))
                                for i in range(0, S * T, batch_size)])     # (S*T, 3, H, W)
            describer.add(k * S, images)
            bar.update(1)
    except BaseException:
        describer.close()                      # its worker threads stop with the job
        raise
    finally:
        bar.close()
    return describer.finish(inactive)
