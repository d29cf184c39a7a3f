"""What a short CPU run costs in evaluation, and how soon a run shows progress (issue 17, item 2).

1. The evaluation share of a 300-step run of the small test model with the defaults
   (--eval-per-direction auto): seconds spent on the references and evaluations over the whole
   run, as run.json records them (eval_share), with the size auto chose and its standard error.
2. The time from "model loaded" to the first line of progress on stderr for the full-size
   biggan-deep-128 architecture (random weights) on the CPU: `discover --steps 3 --batch-size 2`
   in a child process, which prints a marker once the model is loaded; the parent timestamps
   the child's first stderr output after it, then stops the child.

    python -m benchmarks.bench_first_progress                 # both parts
    python -m benchmarks.bench_first_progress --skip-full     # only the small-model share
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

ROOT = Path(__file__).resolve().parents[1]   # the child imports benchmarks/ from here


def small_share(steps: int, threads: int) -> None:
    import torch

    from benchmarks.penalty_step import build_generator
    from biggan_directions.methods.config import DiscoverConfig
    from biggan_directions.runs.discover import run_discover

    torch.set_num_threads(threads)
    G = build_generator("small", torch.device("cpu"))
    with tempfile.TemporaryDirectory() as tmp:
        t0 = time.perf_counter()
        run_discover(G, DiscoverConfig(steps=steps), Path(tmp) / "run", progress=False,
                     meta={"model": "small-test-model", "class_index": 207})
        wall = time.perf_counter() - t0
        record = json.loads((Path(tmp) / "run" / "run.json").read_text())
    se = record.get("eval_standard_error")
    print(f"small model, --steps {steps}, defaults (batch {record['config']['batch_size']}, "
          f"eval auto -> {record['eval_per_direction']} per direction = {record['eval_samples']} "
          f"samples, standard error {se:.3g} = {se / record['reference_eval']['random']:.1%} of "
          f"the random level), {threads} thread(s)")
    print(f"  training {record['seconds']:.1f} s, evaluations + references "
          f"{record['eval_seconds']:.1f} s, wall {wall:.1f} s: evaluation share "
          f"{record['eval_share']:.1%} (target <= 20%)")


CHILD = r"""
import time, torch
from benchmarks.penalty_step import build_generator
from biggan_directions.methods.config import DiscoverConfig
from biggan_directions.runs.discover import run_discover
torch.set_num_threads({threads})
G = build_generator("full", torch.device("cpu"))
print("LOADED", time.time(), flush=True)
run_discover(G, DiscoverConfig(steps=3, batch_size=2), {folder!r}, progress=True,
             meta={{"model": "full-size-random", "class_index": 207}})
"""


def full_first_progress(threads: int, limit: float) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        code = CHILD.format(threads=threads, folder=str(Path(tmp) / "run"))
        child = subprocess.Popen([sys.executable, "-c", code], cwd=ROOT, stdout=subprocess.PIPE,
                                 stderr=subprocess.PIPE, text=True, bufsize=1,
                                 env={**os.environ, "TQDM_DISABLE": ""})
        try:
            line = child.stdout.readline()
            if not line.startswith("LOADED"):
                print(f"full-size: the child failed before loading: {child.stderr.read()[-500:]}")
                return
            loaded = float(line.split()[1])
            os.set_blocking(child.stderr.fileno(), False)
            first = None
            while time.time() - loaded < limit and first is None:
                chunk = child.stderr.read(200)
                if chunk:
                    first = (time.time(), chunk.strip().splitlines()[0][:100])
                time.sleep(0.05)
            if first is None:
                print(f"full-size biggan-deep-128 (random weights), CPU, {threads} thread(s): "
                      f"no progress within {limit:.0f} s of the model being loaded")
            else:
                print(f"full-size biggan-deep-128 (random weights), CPU, {threads} thread(s): "
                      f"first progress {first[0] - loaded:.2f} s after the model was loaded "
                      f"(target <= 10 s): {first[1]!r}")
        finally:
            child.kill()
            child.wait()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=300)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--limit", type=float, default=120.0, help="seconds to wait for progress")
    parser.add_argument("--skip-full", action="store_true")
    args = parser.parse_args()
    small_share(args.steps, args.threads)
    if not args.skip_full:
        full_first_progress(args.threads, args.limit)


if __name__ == "__main__":
    main()
