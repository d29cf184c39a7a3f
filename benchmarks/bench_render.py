"""Benchmark rendering: frames per second and peak memory of a 4x4 grid video, 60 vs 600 frames.

Each case runs render_directions in a fresh subprocess (4 random orthonormal directions x 4
seeds, loop easing, default batch size) on a random-weight model built like tests/conftest.py:
the small test model on the CPU and, when CUDA is available, the full-size biggan-deep-128
architecture on the GPU. Figures per case:
  frames/s   frames written per second of wall time (generation + tiling + encoding; the
             model is built and warmed up before the clock starts);
  peak RSS   the process's peak resident memory while rendering (Linux: VmHWM, reset through
             /proc/self/clear_refs just before the render; it includes the model, torch and
             the Python heap), and its rise over the RSS just before;
  GPU peak   torch.cuda.max_memory_allocated during the render (GPU cases).
Target: the 600-frame peak RSS within 15% of the 60-frame one (memory does not grow with the
number of frames). The ffmpeg encoder (MP4) is a separate process, not counted: it reads
frames from a pipe and holds only libx264's look-ahead (a few dozen frames at most).

Examples:
    python -m benchmarks.bench_render                       # CPU, plus GPU when available
    python -m benchmarks.bench_render --frames 60 600 --formats mp4 gif
    python -m benchmarks.bench_render --devices cuda --out render.json
    python -m benchmarks.bench_render --devices cpu --full-size --frames 4 8   # slow on a CPU
    python -m benchmarks.bench_render --devices cuda --frames 600 --precision bf16 --compile
Precision and compile (render's --precision/--compile; default on CUDA: auto and compiled):
the warm-up render compiles, so the timed one measures the compiled generator.
"""
from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import torch

from biggan_directions.runtime.precision import resolve, resolve_compile
from biggan_directions.media.render import render_directions
from biggan_directions.core.directions import random_orthonormal
from benchmarks.penalty_step import build_generator, machine, peak_rss, reset_peak_rss

ROOT = Path(__file__).resolve().parents[1]   # subprocesses run `python -m benchmarks...` from here
GRID = 4            # 4 directions x 4 seeds
TARGET = 1.15       # 600-frame peak RSS / 60-frame peak RSS at most


def worker(device: str, model: str, frames: int, fmt: str, batch_size: int, threads: int,
           precision: str = "fp32", compile: str = "off") -> None:
    """Child process: build the model, warm up, render once; print one JSON line of figures."""
    torch.set_num_threads(threads)
    dev = torch.device(device)
    G = build_generator(model, dev)
    q = random_orthonormal(GRID, G.z_dim, torch.Generator().manual_seed(0)).to(dev)
    seeds = list(range(GRID))
    fast = dict(precision=precision, compile={"on": True, "off": False}.get(compile))
    with tempfile.TemporaryDirectory() as tmp:
        render_directions(G, q, seeds, Path(tmp) / "warm", frames=2, fmt=fmt, path_size=5.0,
                          batch_size=batch_size, progress=False, **fast)   # compiles here
        if dev.type == "cuda":
            torch.cuda.synchronize(dev)
            torch.cuda.reset_peak_memory_stats(dev)
        before = reset_peak_rss()
        start = time.perf_counter()
        [path] = render_directions(G, q, seeds, Path(tmp) / "out", frames=frames, fmt=fmt,
                                   path_size=5.0, batch_size=batch_size, progress=False, **fast)
        if dev.type == "cuda":
            torch.cuda.synchronize(dev)
        wall = time.perf_counter() - start
        peak = peak_rss()
        used, compiled = resolve(precision, dev)[0], resolve_compile(fast["compile"], dev)
        row = dict(device=device, model=model, frames=frames, fmt=fmt, batch_size=batch_size,
                   precision=used, compile=compiled,
                   resolution=G.resolution, seconds=wall, fps=frames / wall,
                   images_per_s=frames * GRID * GRID / wall, peak_rss_mib=peak,
                   rise_mib=peak - before, file_kib=path.stat().st_size / 1024,
                   gpu_peak_mib=(torch.cuda.max_memory_allocated(dev) / 2**20
                                 if dev.type == "cuda" else None),
                   machine=machine(dev))
    print(json.dumps(row))


def run_case(device, model, frames, fmt, batch_size, threads, precision="fp32",
             compile="off") -> dict:
    cmd = [sys.executable, "-m", "benchmarks.bench_render", "--_worker", device, model, str(frames), fmt,
           str(batch_size), str(threads), precision, compile]
    done = subprocess.run(cmd, capture_output=True, text=True, timeout=3600, cwd=ROOT)
    if done.returncode:
        tail = (done.stderr.strip().splitlines() or ["?"])[-1]
        return dict(device=device, model=model, frames=frames, fmt=fmt, error=tail)
    return json.loads(done.stdout.strip().splitlines()[-1])


def print_table(rows: list[dict]) -> None:
    def f(v, spec):
        return "-" if v is None else format(v, spec)

    head = (f"{'device':6} {'model':5} {'px':>4} {'prec':4} {'comp':4} {'fmt':3} {'frames':>6} {'frames/s':>8} "
            f"{'images/s':>8} {'peak RSS MiB':>12} {'rise MiB':>8} {'file KiB':>8} "
            f"{'GPU peak MiB':>12}")
    print(head)
    print("-" * len(head))
    for r in rows:
        if "error" in r:
            print(f"{r['device']:6} {r['model']:5} {'':>4} {r['fmt']:3} {r['frames']:>6}  "
                  f"error: {r['error']}")
            continue
        print(f"{r['device']:6} {r['model']:5} {r['resolution']:>4} {r['precision']:4} "
              f"{'yes' if r['compile'] else 'no':4} {r['fmt']:3} {r['frames']:>6} "
              f"{r['fps']:>8.1f} {r['images_per_s']:>8.0f} {r['peak_rss_mib']:>12.0f} "
              f"{r['rise_mib']:>8.1f} {r['file_kib']:>8.0f} "
              f"{f(r['gpu_peak_mib'], '>12.0f')}")
    ok = [r for r in rows if "error" not in r]
    for key in sorted({(r["device"], r["model"], r["fmt"]) for r in ok}):
        group = sorted((r for r in ok if (r["device"], r["model"], r["fmt"]) == key),
                       key=lambda r: r["frames"])
        if len(group) >= 2:
            lo, hi = group[0], group[-1]
            ratio = hi["peak_rss_mib"] / lo["peak_rss_mib"]
            line = (f"{key[0]} {key[1]} {key[2]}: peak RSS {hi['frames']} / {lo['frames']} frames "
                    f"= {ratio:.3f} (target <= {TARGET}: {'ok' if ratio <= TARGET else 'NOT MET'})")
            if lo["gpu_peak_mib"] is not None:
                line += f"; GPU peak {hi['gpu_peak_mib'] / lo['gpu_peak_mib']:.3f}"
            print(line)
    machines = sorted({r["machine"] for r in ok})
    for m in machines:
        print(f"machine: {m}")


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--frames", type=int, nargs="+", default=[60, 600])
    p.add_argument("--formats", nargs="+", choices=["mp4", "gif"], default=["mp4"])
    p.add_argument("--devices", nargs="+", default=None,
                   help="cpu and/or cuda [default: cpu, plus cuda when available]")
    p.add_argument("--full-size", action="store_true",
                   help="full biggan-deep-128 architecture on every device (default: GPU only)")
    p.add_argument("--batch-size", type=int, default=16)
    p.add_argument("--threads", type=int, default=min(2, os.cpu_count() or 1),
                   help="torch CPU threads in each case")
    p.add_argument("--out", type=Path, default=None, help="also write the rows as JSON")
    p.add_argument("--precision", choices=("auto", "fp32", "tf32", "bf16"), default=None,
                   help="generator precision (default: fp32 on the CPU, auto on CUDA)")
    p.add_argument("--compile", action=argparse.BooleanOptionalAction, default=None,
                   help="torch.compile the generator (default: on for CUDA)")
    p.add_argument("--_worker", nargs=8, help=argparse.SUPPRESS)
    return p.parse_args(argv)


def main(argv=None) -> None:
    args = parse_args(argv)
    if args._worker:
        device, model, frames, fmt, batch, threads, precision, compile = args._worker
        worker(device, model, int(frames), fmt, int(batch), int(threads), precision, compile)
        return
    devices = args.devices or (["cpu", "cuda"] if torch.cuda.is_available() else ["cpu"])
    rows = []
    for device in devices:
        model = "full" if device.startswith("cuda") or args.full_size else "small"
        for fmt in args.formats:
            for frames in args.frames:
                precision = args.precision or ("auto" if device.startswith("cuda") else "fp32")
                compile = {True: "on", False: "off", None: "default"}[args.compile]
                row = run_case(device, model, frames, fmt, args.batch_size, args.threads,
                               precision, compile)
                rows.append(row)
                print(f"  {device} {model} {fmt} {frames} frames: "
                      f"{'%.1f frames/s' % row['fps'] if 'fps' in row else row['error']}",
                      file=sys.stderr, flush=True)
    print_table(rows)
    if args.out:
        args.out.write_text(json.dumps(rows, indent=1))


if __name__ == "__main__":
    main()
