"""Where a batch's class jobs run: in this process, one worker process per device, or Ray tasks.

Each backend takes the job function (class_job.run_class_job: (plan, cls, load, metrics, describe)
-> ClassResult) and reports through `Events`: `started(index)` when a class's job begins,
`finished(result)` with what the job returned, and `lost(cls, status, error, started)` for a
class whose job ended without a result (interrupted between steps, a dead worker, a crashed or
cancelled task), which returns the result to record (None: keep the class's line as it is). Every backend returns
True when the batch was interrupted (Ctrl-C / SIGTERM) and the running jobs have checkpointed.
"""
from __future__ import annotations

import ctypes
import dataclasses
import logging
import multiprocessing as mp
import os
import queue as queue_mod
import re
import signal
import time
from dataclasses import dataclass
from typing import Any, Callable, Sequence

import torch

from ..foundation.errors import UserError, first_line
from ..models.classes import ImageNetClass, resolve_class
from ..models.weights import load_biggan, verify_available
from ..runtime.device import DEVICE_HELP, resolve_device
from .result import ClassResult

BACKENDS = ("local", "ray")   # where class jobs run (batch --backend); the first is the default
DEFAULT_BACKEND = BACKENDS[0]
GPUS_PER_JOB = 1.0            # Ray: GPUs each class's task asks for (0 on a cluster without GPUs)
RAY_HINT = "pip install 'biggan-directions[ray]'"
INTERRUPT_WAIT_S = 300.0      # after Ctrl-C, how long to wait for running jobs to checkpoint
INTERRUPTED = "interrupted; run the same command again to resume"


@dataclass
class Events:
    """How a backend reports to the driver (which writes the manifest)."""

    started: Callable[[int], None]
    finished: Callable[[ClassResult], None]
    lost: Callable[[ImageNetClass, str, str, bool], ClassResult | None]


def local_devices(spec: str) -> list[torch.device]:
    """The devices of `--backend local`: every CUDA device for 'auto' when there are several
    (one worker process each), else the one device `spec` resolves to."""
    if spec.strip().lower() == "auto" and torch.cuda.is_available() and torch.cuda.device_count() > 1:
        return [torch.device("cuda", i) for i in range(torch.cuda.device_count())]
    return [resolve_device(spec)]


def check_device_spec(spec: str) -> str:
    """Syntax check of a device spec that workers resolve on their own machine (Ray)."""
    text = spec.strip().lower()
    if not re.fullmatch(r"auto|cpu|mps|cuda(:\d+)?", text):
        raise UserError(f"--device {spec!r} is not a device; use {DEVICE_HELP}")
    return text


# ---------------------------------------------------------------------- this process
def run_sequential(job: Callable, plan, todo: Sequence[ImageNetClass], device: torch.device,
                   events: Events) -> bool:
    """Jobs one after another in this process, the model loaded once up front: a model that
    fails to load stops the batch (UserError), since every class would fail the same way."""
    net = load_biggan(plan.model_source, device=device, weights_dir=plan.weights_dir,
                      progress=plan.progress)

    def load():
        return net, device

    metrics: dict = {}
    for i, cls in enumerate(todo, start=1):
        events.started(cls.index)
        try:
            result = job(plan, cls, load, metrics, describe=f"{i}/{len(todo)} {cls.name}")
        except KeyboardInterrupt:  # e.g. between two classes' steps
            result = events.lost(cls, "interrupted", INTERRUPTED, True)
        if result is not None:
            events.finished(result)
        if result is None or result.status == "interrupted":
            return True
    return False


# ---------------------------------------------------------------------- one process per device
def _pool_worker(job: Callable, plan, worker: int, device: str, cpu_threads: int, tasks,
                 results) -> None:
    """One worker process per device: take classes from `tasks` until None, post results.
    It leaves the terminal's process group so a Ctrl-C reaches it once, forwarded by the driver."""
    if hasattr(os, "setpgrp"):
        os.setpgrp()
    _interrupt_when_parent_dies()
    dev = torch.device(device)
    if dev.type == "cuda":
        torch.cuda.set_device(dev)
    torch.set_num_threads(cpu_threads)
    loaded: list[Any] = []

    def load():
        if not loaded:
            loaded.append(load_biggan(plan.model_source, device=dev, weights_dir=plan.weights_dir,
                                      progress=False))
        return loaded[0], dev

    metrics: dict = {}
    try:
        while True:
            index = tasks.get()
            if index is None:
                break
            results.put(("start", index))
            result = job(plan, resolve_class(index), load, metrics)
            results.put(("done", result))
            if result.status == "interrupted":
                break
    except KeyboardInterrupt:
        pass
    finally:
        results.put(("exit", worker))


def _interrupt_when_parent_dies() -> None:
    """Linux: a worker gets SIGINT (so it checkpoints and stops) if the driver dies without
    forwarding a Ctrl-C (killed, crashed). Elsewhere a no-op."""
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(1, int(signal.SIGINT))          # PR_SET_PDEATHSIG
    except (OSError, AttributeError, TypeError):
        pass


def run_pool(job: Callable, plan, todo: Sequence[ImageNetClass], devices: Sequence[torch.device],
             events: Events) -> bool:
    """One spawned worker process per device, fed from a queue; results come back here."""
    worker_plan = dataclasses.replace(plan, progress=False)
    ctx = mp.get_context("spawn")
    tasks, results = ctx.Queue(), ctx.Queue()
    tasks.cancel_join_thread()        # leftover tasks after Ctrl-C must not block our exit
    for cls in todo:
        tasks.put(cls.index)
    for _ in devices:
        tasks.put(None)
    threads = max(1, (os.cpu_count() or 1) // len(devices))     # the workers share the CPU
    procs = [ctx.Process(target=_pool_worker, args=(job, worker_plan, i, str(d), threads, tasks,
                                                    results),
                         name=f"batch-worker-{i}-{d}") for i, d in enumerate(devices)]
    for p in procs:
        p.start()
    exited: set[int] = set()          # workers (by index) that are done
    interrupted = False
    remaining = {c.index: c for c in todo}
    running: set[int] = set()

    def handle(kind, payload):
        nonlocal interrupted
        if kind == "start":
            running.add(payload)
            events.started(payload)
        elif kind == "done":
            remaining.pop(payload.class_index, None)
            interrupted |= payload.status == "interrupted"
            events.finished(payload)
        elif kind == "exit":
            exited.add(payload)

    def drain(deadline: float | None) -> None:
        while len(exited) < len(procs):
            try:
                handle(*results.get(timeout=0.5))
                continue
            except queue_mod.Empty:
                pass
            for i, p in enumerate(procs):   # died without saying goodbye (crash, killed)
                if i not in exited and p.exitcode is not None:
                    exited.add(i)
            if deadline is not None and time.monotonic() > deadline:
                return

    try:
        drain(None)
    except KeyboardInterrupt:
        interrupted = True
        for p in procs:
            if p.is_alive():
                try:
                    os.kill(p.pid, signal.SIGINT)
                except ProcessLookupError:
                    pass
        drain(time.monotonic() + INTERRUPT_WAIT_S)
    finally:
        for p in procs:
            p.join(timeout=5)
    for index, cls in sorted(remaining.items()):
        if interrupted and index not in running:
            continue                  # never started: its line stays as it was
        result = events.lost(cls, "interrupted", INTERRUPTED, True) if interrupted else events.lost(
            cls, "failed", "its worker process died; see the output above, then run the same "
                           "command again", True)
        if result is not None:
            events.finished(result)
    return interrupted


# ---------------------------------------------------------------------- Ray
def import_ray():
    """The ray module, or UserError saying how to install it."""
    try:
        import ray                  # deferred: optional (the ray extra) and slow to import
    except ImportError:
        raise UserError(f"--backend ray needs Ray, which is not installed; {RAY_HINT}") from None
    return ray


_WORKER_MODEL: dict[tuple, Any] = {}   # per Ray worker process: (model, weights, device) -> (net, device)
_WORKER_METRICS: dict[tuple, Any] = {}  # per Ray worker process: LPIPS networks


def ray_job(job: Callable, plan, index: int, device_spec: str) -> ClassResult:
    """The Ray task: check that this node holds the weights (a 'failed' line naming the node
    when not), resolve the device here (Ray sets the visible GPUs), load the model from
    plan.model_source (cached in the worker process), run the class's job, return its result."""
    cls = resolve_class(index)
    try:
        verify_available(plan.model_source, plan.weights_dir)
    except UserError as e:
        return ClassResult({**plan.new_entry(cls, "failed"), "error": str(e)}, plan.main_method)

    def load():
        key = (plan.model_source, plan.weights_dir, device_spec)
        if key not in _WORKER_MODEL:
            dev = resolve_device(device_spec)
            _WORKER_MODEL.clear()             # one model per worker process at a time
            _WORKER_MODEL[key] = (load_biggan(plan.model_source, device=dev,
                                              weights_dir=plan.weights_dir, progress=False), dev)
        return _WORKER_MODEL[key]

    return job(plan, cls, load, _WORKER_METRICS)


def run_ray(job: Callable, plan, todo: Sequence[ImageNetClass], events: Events, *, device: str,
            address: str | None, cpus: int | None, gpus_per_job: float) -> bool:
    """One Ray task per class (num_gpus = gpus_per_job, 0 on a cluster without GPUs), on the
    cluster at `address` or a local Ray with `cpus` CPUs; results are reported as they come."""
    ray = import_ray()
    own = not ray.is_initialized()
    if own:
        try:
            if address:
                ray.init(address=address, log_to_driver=plan.progress,
                         logging_level=logging.WARNING)
            else:
                ray.init(num_cpus=cpus, include_dashboard=False, log_to_driver=plan.progress,
                         logging_level=logging.WARNING)
        except (ConnectionError, RuntimeError, ValueError) as e:
            where = f"the Ray cluster at {address}" if address else "a local Ray"
            raise UserError(f"cannot start or reach {where} ({first_line(e)}); check "
                            f"--ray-address (or `ray status`).") from None
    try:
        has_gpus = ray.cluster_resources().get("GPU", 0) > 0
        task = ray.remote(ray_job).options(num_cpus=1, num_gpus=gpus_per_job if has_gpus else 0,
                                           max_retries=0)
        worker_plan = dataclasses.replace(plan, progress=False)
        pending = {task.remote(job, worker_plan, c.index, device): c for c in todo}
        try:
            while pending:
                ready, _ = ray.wait(list(pending), num_returns=1)
                for ref in ready:
                    result, _ = _ray_result(ray, ref, pending.pop(ref), events)
                    if result is not None:
                        events.finished(result)
        except KeyboardInterrupt:
            for ref in pending:
                ray.cancel(ref)       # raises KeyboardInterrupt in a running task: it checkpoints
            ready, _ = ray.wait(list(pending), num_returns=len(pending), timeout=INTERRUPT_WAIT_S)
            for ref in ready:
                cls = pending.pop(ref)
                result, cancelled = _ray_result(ray, ref, cls, events)
                if cancelled:
                    result = events.lost(cls, "interrupted", INTERRUPTED, False)
                if result is not None:
                    events.finished(result)
            for cls in pending.values():            # still running after the wait: say so
                result = events.lost(cls, "interrupted", INTERRUPTED, True)
                if result is not None:
                    events.finished(result)
            return True
        return False
    finally:
        if own:
            ray.shutdown()


def _ray_result(ray, ref, cls: ImageNetClass, events: Events) -> tuple[ClassResult | None, bool]:
    """(result, cancelled): the task's own result, or a 'failed' one when it crashed."""
    try:
        return ray.get(ref), False
    except Exception as e:  # noqa: BLE001 - the worker died, was cancelled, or could not unpickle
        cancelled = isinstance(e, ray.exceptions.TaskCancelledError)
        result = events.lost(cls, "failed", f"Ray task failed: {type(e).__name__}: {first_line(e)}",
                             True)
        return result, cancelled
