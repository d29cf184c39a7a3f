"""Benchmark what logging costs a run: time and disk of a 300-step small-model run with TensorBoard events vs without.

The run: the small test model (tests/support.py, class 207), --steps 300, batch 4, an evaluation
every 50 steps (7 evaluations with the start, so 7 strips of --log-directions 8), checkpoints
every 100 steps, the default auto-sized fixed evaluation. Each repeat runs the two variants back
to back in alternating order (off, on, on, off, ...) in fresh folders, after one warm-up run of
each, so that a shared machine's load falls on both alike; the figures are ratios within this
process. Figures:
  time        wall seconds of run_discover per variant (median over --repeats), and the extra
              share with events: median(on) / median(off) - 1 (target <= 2%), with the spread
              (min .. max of the pairwise ratios).
  cpu         CPU seconds of the whole process per variant (every thread: the event writer's
              thread included), median; less sensitive than wall time to other users' load.
  in the loop the wall and CPU seconds of the tracker's own calls (timed inside the run), as a
              share of the run's: the cost without the machine's noise.
  disk        bytes of RUN/tb/ against the checkpoints (checkpoint.pt, directions.safetensors,
              last.safetensors), against the rest of the run folder, and per step.

Examples:
    python -m benchmarks.bench_tracking
    python -m benchmarks.bench_tracking --repeats 5 --steps 300 --out tracking.json
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import statistics
import tempfile
import time
from pathlib import Path

import torch

from biggan_directions.methods.config import DiscoverConfig
from biggan_directions.models.generator import BigGANGenerator
from biggan_directions.runs.discover import run_discover
from biggan_directions.tracking.config import TrackingConfig
from biggan_directions.tracking.training import TrainingTracker
from tests.support import build_small_biggan

CHECKPOINT_FILES = ("checkpoint.pt", "directions.safetensors", "last.safetensors",
                    "best.safetensors")


class TimedTracker(TrainingTracker):
    """A TrainingTracker that adds up the seconds its own calls take."""

    seconds = 0.0        # wall seconds of its calls
    cpu = 0.0            # CPU seconds of its calls (this thread: the machine's load left out)

    def __call__(self, kind, **fields):
        t0, c0 = time.perf_counter(), time.thread_time()
        try:
            super().__call__(kind, **fields)
        finally:
            self.seconds += time.perf_counter() - t0
            self.cpu += time.thread_time() - c0


def size(path: Path) -> int:
    if path.is_file():
        return path.stat().st_size
    return sum(p.stat().st_size for p in path.rglob("*") if p.is_file()) if path.exists() else 0


def one_run(G, config: DiscoverConfig, root: Path, events: bool) -> dict:
    folder = root / ("on" if events else "off")
    shutil.rmtree(folder, ignore_errors=True)
    tracker = TimedTracker(TrackingConfig(log_directions=8), notify=print) if events else None
    t0, c0 = time.perf_counter(), time.process_time()
    run_discover(G, config, folder, progress=False, on_event=tracker)
    seconds, cpu = time.perf_counter() - t0, time.process_time() - c0
    out = {"seconds": seconds, "cpu": cpu, "tracker_seconds": tracker.seconds if tracker else 0.0,
           "tracker_cpu": tracker.cpu if tracker else 0.0,
           "tb_bytes": size(folder / "tb"),
           "checkpoint_bytes": sum(size(folder / n) for n in CHECKPOINT_FILES),
           "folder_bytes": size(folder) - size(folder / "tb")}
    return out


def main(argv=None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=300)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--out", default=None, help="write the figures as JSON here")
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)
    G = BigGANGenerator(build_small_biggan(), 207, 1.0)
    config = DiscoverConfig(steps=args.steps, batch_size=4, eval_every=50, checkpoint_every=100,
                            seed=0)
    runs = {"off": [], "on": []}
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        one_run(G, config, root, False), one_run(G, config, root, True)     # warm-up
        for i in range(args.repeats):
            order = (False, True) if i % 2 == 0 else (True, False)
            for events in order:
                runs["on" if events else "off"].append(one_run(G, config, root, events))
    off = [r["seconds"] for r in runs["off"]]
    on = [r["seconds"] for r in runs["on"]]
    pairs = [b / a - 1 for a, b in zip(off, on)]
    cpu_off = [r["cpu"] for r in runs["off"]]
    cpu_on = [r["cpu"] for r in runs["on"]]
    last = runs["on"][-1]
    figures = {
        "machine": f"{platform.machine()} {platform.processor() or ''} {os.cpu_count()} CPUs, "
                   f"torch {torch.__version__}, {args.threads} thread(s)".replace("  ", " "),
        "steps": args.steps, "repeats": args.repeats,
        "seconds_off": statistics.median(off), "seconds_on": statistics.median(on),
        "time_share": statistics.median(on) / statistics.median(off) - 1,
        "time_share_pairs": [min(pairs), max(pairs)],
        "cpu_off": statistics.median(cpu_off), "cpu_on": statistics.median(cpu_on),
        "cpu_share": statistics.median(cpu_on) / statistics.median(cpu_off) - 1,
        "tracker_seconds": statistics.median(r["tracker_seconds"] for r in runs["on"]),
        "tracker_cpu": statistics.median(r["tracker_cpu"] for r in runs["on"]),
        "tb_bytes": last["tb_bytes"], "checkpoint_bytes": last["checkpoint_bytes"],
        "folder_bytes": last["folder_bytes"],
    }
    figures["tracker_share"] = figures["tracker_seconds"] / figures["seconds_on"]
    figures["tracker_cpu_share"] = figures["tracker_cpu"] / figures["cpu_on"]
    figures["disk_vs_checkpoints"] = figures["tb_bytes"] / figures["checkpoint_bytes"]
    figures["disk_vs_folder"] = figures["tb_bytes"] / figures["folder_bytes"]
    print(f"machine: {figures['machine']}")
    print(f"{args.steps}-step small-model run, median of {args.repeats} (alternating order):")
    print(f"  without events {figures['seconds_off']:.2f} s, with events "
          f"{figures['seconds_on']:.2f} s: {100 * figures['time_share']:+.2f}% "
          f"(pairs {100 * min(pairs):+.2f}% .. {100 * max(pairs):+.2f}%)")
    print(f"  CPU seconds (every thread, the event writer's included): without "
          f"{figures['cpu_off']:.2f} s, with {figures['cpu_on']:.2f} s: "
          f"{100 * figures['cpu_share']:+.2f}%")
    print(f"  the tracker's own calls: {figures['tracker_seconds']:.3f} s wall = "
          f"{100 * figures['tracker_share']:.2f}% of the run's; {figures['tracker_cpu']:.3f} s CPU = "
          f"{100 * figures['tracker_cpu_share']:.2f}% of its CPU time")
    print(f"  disk: tb/ {figures['tb_bytes'] / 1024:.1f} KiB; checkpoints "
          f"{figures['checkpoint_bytes'] / 1024:.1f} KiB ({100 * figures['disk_vs_checkpoints']:.1f}%); "
          f"rest of the folder {figures['folder_bytes'] / 1024:.1f} KiB "
          f"({100 * figures['disk_vs_folder']:.1f}%); {figures['tb_bytes'] / args.steps:.0f} B/step")
    if args.out:
        Path(args.out).write_text(json.dumps(figures, indent=1))
    return figures


if __name__ == "__main__":
    main()
