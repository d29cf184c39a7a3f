"""Benchmark one discovery step (Hessian Penalty forward + backward + Adam), batched vs sequential.

A step is the published BigGAN recipe (REFERENCE.md section 2): z ~ truncated normal, one
direction j and one distance d ~ U[-5, 5] per sample, w = d e_j, generator input z + w Q with
Q = DirectionMatrix(), penalty w.r.t. w with k = 2, eps = 0.1, mean reduction, backward to A,
Adam step. Models have random weights (built like tests/support.py), so no download is needed.

CPU suite (default without a GPU): the small test model and a 'mid' model, fp32 eager, batch
1/8/32; time per step with the two modes interleaved step by step (fair under a shared CPU),
peak memory as ru_maxrss of a fresh subprocess per (model, mode, batch).

GPU suite (default with CUDA, or --full-size on any device): the full biggan-deep-128
architecture at batch 32 and 96: the paper's loop (sequential, fp32, eager) as the baseline, then
the batched step at each precision (fp32, TF32, bf16 autocast) x compile mode (eager,
torch.compile default, reduce-overhead = CUDA graphs). Each row: time per step, speed-up over the
baseline at the same batch, achieved TFLOP/s (one step's FLOPs counted once with
flops.count_flops), peak memory (torch.cuda.max_memory_allocated), and the penalty on fixed
inputs and draws against eager fp32 ("ok (<1%)" or "not ok"). Rows print as they finish and,
with --out, the JSON is rewritten after every row; compiled settings stop starting after
--budget-s (default 330 s), so the suite ends within ~8 minutes on one H100/H200.

Examples:
    python -m benchmarks.bench_penalty                       # CPU suite (< 3 min on 2 cores)
    python -m benchmarks.bench_penalty --quick
    python -m benchmarks.bench_penalty --device cuda --out penalty.json
    python -m benchmarks.bench_penalty --device cpu --full-size --steps 1 --batches 1 --no-compile
    python -m benchmarks.bench_penalty --device cpu --full-size --model small --batches 2 --compile-modes eager,default
"""
from __future__ import annotations

import argparse
import contextlib
import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

import torch

from biggan_directions.runtime.device import resolve_device
from benchmarks.penalty_step import (CLASS_INDEX, EPSILON, K, OK_REL_ERR, PATH_SIZE, STEPS_50K,
                                     TRUNCATION, DiscoveryStep, build_generator, machine, peak_rss,
                                     reset_peak_rss, sync, timed)

ROOT = Path(__file__).resolve().parents[1]   # subprocesses run `python -m benchmarks...` from here


# ---------------------------------------------------------------- CPU suite
def memory_worker(model: str, mode: str, batch: int, threads: int) -> None:
    """Child process: one step; prints the peak RSS (MiB) and its rise over the RSS before it.

    Linux resets the peak-RSS mark (VmHWM) when "5" is written to /proc/self/clear_refs, so
    the rise is the step's own; elsewhere ru_maxrss (peak since start) is the fallback.
    """
    torch.set_num_threads(threads)
    gen = build_generator(model, torch.device("cpu"))
    step = DiscoveryStep(gen, torch.device("cpu"))
    before = reset_peak_rss()
    step(gen, batch, mode)
    peak = peak_rss()
    print(json.dumps({"peak_mib": peak, "step_mib": peak - before}))


def measure_memory(model: str, mode: str, batch: int, threads: int) -> dict:
    cmd = [sys.executable, "-m", "benchmarks.bench_penalty", "--_memory", model, mode, str(batch), "--threads", str(threads)]
    done = subprocess.run(cmd, capture_output=True, text=True, timeout=600, cwd=ROOT)
    if done.returncode:
        tail = (done.stderr.strip().splitlines() or ["?"])[-1]
        return {"error": tail}
    return json.loads(done.stdout.strip().splitlines()[-1])


def cpu_suite(args, device) -> list[dict]:
    rows = []
    for model in args.models:
        gen = build_generator(model, device)
        step = DiscoveryStep(gen, device)
        for batch in args.batches:
            times = {"batched": [], "sequential": []}
            for mode in times:                                   # warm-up
                for _ in range(args.warmup):
                    step(gen, batch, mode)
            for _ in range(args.steps):                          # interleaved: fair under load
                for mode in times:
                    times[mode].append(timed(lambda: step(gen, batch, mode), device))
            for mode, ts in times.items():
                mem = measure_memory(model, mode, batch, args.threads) if not args.no_memory else {}
                rows.append(dict(model=model, batch=batch, mode=mode, median_s=statistics.median(ts),
                                 best_s=min(ts), steps=len(ts), **mem))
            print_progress(rows[-2:])
    return rows


def print_cpu_table(rows: list[dict]) -> None:
    print()
    print(f"{'model':6} {'batch':>5} {'mode':10} {'median ms':>10} {'best ms':>9} "
          f"{'peak RSS MiB':>12} {'step MiB':>9} {'speed-up (median/best)':>23}")
    for r in rows:
        mem = (f"{r['peak_mib']:12.0f} {r['step_mib']:9.0f}" if "peak_mib" in r
               else f"{r.get('error', '-')[:22]:>22}")
        ratio = ""
        if r["mode"] == "sequential":
            b = next(x for x in rows if x["model"] == r["model"] and x["batch"] == r["batch"]
                     and x["mode"] == "batched")
            ratio = f"{r['median_s'] / b['median_s']:.2f}x / {r['best_s'] / b['best_s']:.2f}x"
            r["speedup_median"] = r["median_s"] / b["median_s"]
            r["speedup_best"] = r["best_s"] / b["best_s"]
        print(f"{r['model']:6} {r['batch']:5d} {r['mode']:10} {r['median_s'] * 1e3:10.1f} "
              f"{r['best_s'] * 1e3:9.1f} {mem} {ratio:>23}")
    print("speed-up = sequential time / batched time (batched does the 1+2k evaluations in one "
          "forward). step MiB = rise of the peak RSS during one step over the RSS before it (fresh process).")


# ---------------------------------------------------------------- GPU suite
PRECISIONS = ("fp32", "tf32", "bf16")
COMPILE_MODES = ("eager", "default", "reduce-overhead")
# the order settings run in: the baseline and eager rows first, then the compiled ones that
# matter most, so the time budget cuts the least informative rows
COMPILED_ORDER = [("bf16", "reduce-overhead"), ("bf16", "default"), ("tf32", "default"),
                  ("tf32", "reduce-overhead"), ("fp32", "default"), ("fp32", "reduce-overhead")]


def set_precision(name: str, device: torch.device):
    """Set the TF32 flags for `name` (on for tf32 and bf16, as discover does); return the
    autocast context factory for the generator."""
    from biggan_directions.runtime.precision import autocast, set_tf32

    set_tf32(device, name != "fp32")
    return lambda: autocast(name, device)


def gpu_settings(args, device: torch.device) -> list[tuple[str, str, str]]:
    """(precision, compile mode, penalty mode) in run order: the paper's loop (fp32, eager,
    sequential) first, then every precision x compile mode of the batched step."""
    chosen = [(p, m) for p in args.precisions for m in ("eager",)]
    chosen += [(p, m) for p, m in COMPILED_ORDER if p in args.precisions and m in args.compile_modes]
    return [("fp32", "eager", "sequential")] + [(p, m, "batched") for p, m in chosen]


def gpu_suite(args, device, emit) -> list[dict]:
    """Every setting x batch (see gpu_settings); `emit(rows)` after each row (print + JSON).
    No compiled setting starts after --budget-s seconds (its rows say 'skipped')."""
    from biggan_directions.runtime.flops import count_flops

    gen = build_generator(args.models[0], device)
    step = DiscoveryStep(gen, device)
    reference: dict[int, float] = {}       # batch -> eager fp32 batched penalty on fixed draws
    flops: dict[int, int] = {}             # batch -> FLOPs of one step (fp32 eager, counted once)
    rows: list[dict] = []
    started = time.perf_counter()
    for precision, compile_mode, mode in gpu_settings(args, device):
        G = gen
        if compile_mode != "eager":
            torch._dynamo.reset()          # fresh graphs for each setting's flags
            G = torch.compile(gen, mode=compile_mode, dynamic=False)
        for batch in args.batches:
            row = dict(precision=precision, compile=compile_mode, batch=batch, mode=mode)
            rows.append(row)
            if compile_mode == "reduce-overhead" and device.type != "cuda":
                row["error"] = "skipped (CUDA graphs need CUDA)"
            elif compile_mode != "eager" and time.perf_counter() - started > args.budget_s:
                row["error"] = "skipped (time budget)"
            else:
                if batch not in flops:
                    set_precision("fp32", device)
                    flops[batch] = count_flops(lambda: step.penalty(
                        gen, *step.sample(batch, torch.Generator().manual_seed(7)), "batched",
                        torch.Generator().manual_seed(8), contextlib.nullcontext).backward())
                    step.opt.zero_grad(set_to_none=True)
                row["flops_per_step"] = flops[batch]
                run_gpu_row(row, step, G, reference, args, device)
            add_ratios(rows)
            emit(rows)
    set_precision("fp32", device)
    return rows


def run_gpu_row(row: dict, step: DiscoveryStep, G, reference: dict[int, float], args,
                device: torch.device) -> None:
    """Time one setting, read its peak memory and its penalty error against eager fp32."""
    batch, mode, graphs = row["batch"], row["mode"], row["compile"] == "reduce-overhead"
    mark = getattr(torch.compiler, "cudagraph_mark_step_begin", None) if graphs else None

    def one_step():
        if mark is not None:
            mark()                         # CUDA graphs: the previous step's outputs are done
        step(G, batch, mode, autocast)

    try:
        if batch not in reference:
            set_precision("fp32", device)
            reference[batch] = step.fixed_value(step.gen, batch, "batched", grad=False)
        autocast = set_precision(row["precision"], device)
        t0 = time.perf_counter()
        for _ in range(args.warmup):                       # includes compilation
            one_step()
        sync(device)
        row["warmup_s"] = time.perf_counter() - t0
        if device.type == "cuda":
            torch.cuda.reset_peak_memory_stats(device)
        ts = [timed(one_step, device) for _ in range(args.steps)]
        row.update(median_s=statistics.median(ts), best_s=min(ts), steps=len(ts))
        row["tflops"] = row["flops_per_step"] / row["median_s"] / 1e12
        if device.type == "cuda":
            row["peak_mib"] = torch.cuda.max_memory_allocated(device) / 2**20
        if mark is not None:
            mark()
        row["value"] = step.fixed_value(G, batch, mode, autocast, grad=row["compile"] != "eager")
        row["rel_err"] = abs(row["value"] - reference[batch]) / (abs(reference[batch]) or 1e-30)
    except Exception as e:  # noqa: BLE001 - out of memory, compiler errors: the row says so
        text = str(e).strip().splitlines()[0][:100] if str(e).strip() else ""
        row["error"] = "out of memory" if "out of memory" in str(e) else f"{type(e).__name__}: {text}"
        step.opt.zero_grad(set_to_none=True)
        if device.type == "cuda":
            torch.cuda.empty_cache()


def add_ratios(rows: list[dict]) -> None:
    """speedup: the paper's loop (sequential, fp32, eager) at the same batch / this row's time."""
    for r in rows:
        base = next((x for x in rows if x["mode"] == "sequential" and x["batch"] == r["batch"]
                     and "median_s" in x), None)
        if base and "median_s" in r:
            r["speedup"] = base["median_s"] / r["median_s"]


def print_gpu_table(rows: list[dict], device: torch.device) -> None:
    print()
    print(f"{'precision':9} {'compile':15} {'batch':>5} {'mode':10} {'median ms':>10} "
          f"{'best ms':>9} {'peak MiB':>9} {'TFLOP/s':>8} {'vs paper':>8} {'50k h':>6}  "
          f"{'penalty vs fp32':<18}")
    for r in rows:
        head = f"{r['precision']:9} {r['compile']:15} {r['batch']:5d} {r['mode']:10}"
        if "median_s" not in r:
            print(f"{head} {r.get('error', '-')}")
            continue
        mem = f"{r['peak_mib']:9.0f}" if "peak_mib" in r else f"{'-':>9}"
        ratio = f"{r['speedup']:.2f}x" if "speedup" in r else "-"
        verdict = "ok (<1%)" if r["rel_err"] < OK_REL_ERR else "not ok"
        print(f"{head} {r['median_s'] * 1e3:10.1f} {r['best_s'] * 1e3:9.1f} {mem} "
              f"{r['tflops']:8.2f} {ratio:>8} {STEPS_50K * r['median_s'] / 3600:6.2f}  "
              f"{r['rel_err']:8.3%} {verdict}")
    good = [r for r in rows if "median_s" in r and r["rel_err"] < OK_REL_ERR and r["batch"] == 32]
    if good:
        best = min(good, key=lambda r: r["median_s"])
        print(f"fastest setting within 1% of fp32 at batch 32: {best['precision']}, "
              f"{best['compile']}: {best['median_s'] * 1e3:.0f} ms/step ({best['tflops']:.1f} "
              f"TFLOP/s) -> 50k steps in {STEPS_50K * best['median_s'] / 60:.0f} min")
    print("vs paper = time of the paper's loop (sequential, fp32, eager) at the same batch / this "
          "row's time. TFLOP/s = FLOPs of one step (FlopCounterMode, counted once in fp32 eager) / "
          "median time. peak MiB = torch.cuda.max_memory_allocated during the timed steps. "
          "penalty vs fp32: relative difference of the penalty on fixed inputs and draws from "
          "eager fp32 batched.")
    if device.type != "cuda":
        print(f"on {device.type} the TF32 flags do nothing: tf32 rows run in fp32.")


# ---------------------------------------------------------------- main
def print_progress(rows: list[dict]) -> None:
    for r in rows:
        keys = ("model", "precision", "compile", "batch", "mode")
        head = " ".join(f"{k}={r[k]}" for k in keys if k in r)
        body = (f"{r['median_s'] * 1e3:.1f} ms/step" if "median_s" in r else r.get("error", ""))
        if "rel_err" in r:
            body += f", penalty vs fp32 {r['rel_err']:.3%}, {r['tflops']:.2f} TFLOP/s"
        print(f"  {head}: {body}", file=sys.stderr, flush=True)


def write_json(path: str, device: torch.device, suite: str, rows: list[dict], total: float) -> None:
    record = dict(machine=machine(device), device=str(device), suite=suite, k=K, epsilon=EPSILON,
                  total_s=total, rows=rows)
    tmp = Path(path).with_suffix(".tmp")
    tmp.write_text(json.dumps(record, indent=2))
    os.replace(tmp, path)


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--device", default="auto", help="auto, cpu, cuda, cuda:N (default: auto)")
    p.add_argument("--full-size", action="store_true",
                   help="run the GPU suite (full biggan-deep-128) on any device, e.g. the CPU")
    p.add_argument("--model", choices=("small", "mid", "full"), default=None,
                   help="only this model (default: small and mid on the CPU suite, full on the GPU "
                        "suite); e.g. --full-size --model small exercises the GPU suite quickly")
    p.add_argument("--quick", action="store_true",
                   help="fewer steps and settings (CPU: small model, batch 1 and 8; GPU: batch 32, "
                        "eager and default compile only)")
    p.add_argument("--batches", default=None,
                   help="comma-separated batch sizes (default: CPU 1,8,32; GPU 32,96)")
    p.add_argument("--steps", type=int, default=None, help="timed steps per setting (default 3)")
    p.add_argument("--warmup", type=int, default=None, help="warm-up steps per setting (default 1; "
                   "2 on GPU)")
    p.add_argument("--threads", type=int, default=os.cpu_count(), help="torch CPU threads")
    p.add_argument("--precisions", default=",".join(PRECISIONS),
                   help="GPU suite: comma-separated precisions (default fp32,tf32,bf16)")
    p.add_argument("--compile-modes", default=",".join(COMPILE_MODES),
                   help="GPU suite: comma-separated compile modes (default "
                        "eager,default,reduce-overhead)")
    p.add_argument("--no-compile", action="store_true", help="GPU suite: eager rows only")
    p.add_argument("--no-memory", action="store_true", help="CPU suite: skip the memory subprocesses")
    p.add_argument("--budget-s", type=float, default=330.0,
                   help="GPU suite: start no torch.compile setting after this many seconds "
                        "(default 330: the suite ends within ~8 minutes on one H100/H200)")
    p.add_argument("--out", default=None, help="also write the results as JSON here (GPU suite: "
                                               "after every row)")
    p.add_argument("--_memory", nargs=3, metavar=("MODEL", "MODE", "BATCH"), help=argparse.SUPPRESS)
    return p.parse_args(argv)


def main(argv=None) -> None:
    args = parse_args(argv)
    torch.set_num_threads(args.threads)
    if args._memory:
        model, mode, batch = args._memory
        return memory_worker(model, mode, int(batch), args.threads)
    device = resolve_device(args.device)
    gpu = device.type == "cuda" or args.full_size
    default_batches = ("32" if args.quick else "32,96") if gpu else ("1,8" if args.quick else "1,8,32")
    args.batches = [int(b) for b in (args.batches or default_batches).split(",")]
    args.steps = args.steps or (2 if args.quick else 3)
    args.warmup = args.warmup if args.warmup is not None else (2 if device.type == "cuda" else 1)
    if args.model:
        args.models = [args.model]
    else:
        args.models = ["full"] if gpu else (["small"] if args.quick else ["small", "mid"])
    args.precisions = [p for p in args.precisions.split(",") if p]
    args.compile_modes = (["eager"] if args.no_compile else ["eager", "default"] if args.quick
                          else [m for m in args.compile_modes.split(",") if m])
    unknown = set(args.precisions) - set(PRECISIONS) | set(args.compile_modes) - set(COMPILE_MODES)
    if unknown:
        raise SystemExit(f"unknown precision or compile mode: {', '.join(sorted(unknown))}")

    print(f"machine: {machine(device)}", flush=True)
    print(f"step: penalty w.r.t. w of G(z + w Q), k={K}, eps={EPSILON}, mean reduction, backward, "
          f"Adam; class {CLASS_INDEX}, truncation {TRUNCATION}, path size {PATH_SIZE}", flush=True)
    start = time.perf_counter()
    suite = "gpu" if gpu else "cpu"
    if gpu:
        def emit(rows):
            print_progress(rows[-1:])
            if args.out:
                write_json(args.out, device, suite, rows, time.perf_counter() - start)
        rows = gpu_suite(args, device, emit)
        print_gpu_table(rows, device)
    else:
        rows = cpu_suite(args, device)
        print_cpu_table(rows)
    total = time.perf_counter() - start
    print(f"total benchmark time: {total:.0f} s")
    if args.out:
        write_json(args.out, device, suite, rows, total)


if __name__ == "__main__":
    main()
