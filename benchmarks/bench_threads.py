"""Benchmark CPU threads under load: generation time at 1 thread, all cores, and the tool's default.

Why: torch uses every core by default, and its OpenMP threads spin-wait; when other work shares
the machine (another job, a second render, a test suite), a thread that loses its core stalls
the others at every barrier. Measured here: the time of N render-sized generator calls (batch
16, no autograd) of a random-weight BigGAN, each in a fresh subprocess, once on an idle machine
and once with one busy process per core running beside it. The figure to read is the ratio of
each setting to 1 thread in the same condition.

    python -m benchmarks.bench_threads                   # 'mid' model (64 px), 20 calls
    python -m benchmarks.bench_threads --model small --calls 50
"""
from __future__ import annotations

import argparse
import json
import multiprocessing as mp
import os
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]   # subprocesses run `python -m benchmarks...` from here


def worker(model: str, threads: int, calls: int) -> None:
    import torch

    from benchmarks.penalty_step import build_generator

    torch.set_num_threads(threads)
    G = build_generator(model, torch.device("cpu"))
    z = torch.randn(16, G.z_dim, generator=torch.Generator().manual_seed(0))
    with torch.inference_mode():
        G(z)                                                  # warm-up
        start = time.perf_counter()
        for _ in range(calls):
            G(z)
        seconds = time.perf_counter() - start
    print(json.dumps({"threads": threads, "seconds": seconds}))


def busy(stop_at: float) -> None:
    x = 0
    while time.time() < stop_at:
        x += 1


def measure(model: str, threads: int, calls: int, load: bool) -> float:
    procs = []
    if load:
        stop_at = time.time() + 3600
        procs = [mp.Process(target=busy, args=(stop_at,), daemon=True) for _ in range(os.cpu_count() or 1)]
        for p in procs:
            p.start()
    try:
        out = subprocess.run([sys.executable, "-m", "benchmarks.bench_threads", "--worker", model, str(threads),
                              str(calls)], cwd=ROOT, check=True, capture_output=True, text=True, timeout=3600).stdout
    finally:
        for p in procs:
            p.terminate()
            p.join()
    return json.loads(out.strip().splitlines()[-1])["seconds"]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="mid", choices=["small", "mid"])
    parser.add_argument("--calls", type=int, default=20)
    parser.add_argument("--worker", nargs=3, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        worker(args.worker[0], int(args.worker[1]), int(args.worker[2]))
        return
    from biggan_directions.runtime.device import default_threads

    cores = os.cpu_count() or 1
    settings = sorted({1, cores, default_threads()})
    print(f"{args.model} model, {args.calls} calls of batch 16, {cores} CPUs; default_threads() = "
          f"{default_threads()}")
    print(f"{'condition':<10} {'threads':>7} {'seconds':>9} {'vs 1 thread':>12}")
    for load in (False, True):
        times = {t: measure(args.model, t, args.calls, load) for t in settings}
        for t in settings:
            print(f"{'loaded' if load else 'idle':<10} {t:>7} {times[t]:>9.2f} {times[t] / times[1]:>11.2f}x")


if __name__ == "__main__":
    main()
