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
    python benchmarks/bench_penalty.py                       # CPU suite (< 3 min on 2 cores)
    python benchmarks/bench_penalty.py --quick
    python benchmarks/bench_penalty.py --device cuda --out penalty.json
    python benchmarks/bench_penalty.py --device cpu --full-size --steps 1 --batches 1 --no-compile
    python benchmarks/bench_penalty.py --device cpu --full-size --model small --batches 2 --compile-modes eager,default
"""
from __future__ import annotations

import argparse
import contextlib
import json
import os
import platform
import resource
import statistics
import subprocess
import sys
import time
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "tests"))                         # tests/support.py: the test model

from biggan_directions.device import resolve_device            # noqa: E402
from biggan_directions.directions import DirectionMatrix      # noqa: E402
from biggan_directions.generator import BigGANGenerator, truncated_normal  # noqa: E402
from biggan_directions.penalty import hessian_penalty, tile_batch         # noqa: E402

CLASS_INDEX = 207           # golden retriever, as published
TRUNCATION = 0.5
PATH_SIZE = 5.0             # eta: w = d e_j with d ~ U[-eta, eta]
K, EPSILON = 2, 0.1         # published settings
STEPS_50K = 50_000          # a published discovery run
OK_REL_ERR = 0.01           # reduced precision is "ok" within 1% of fp32 (issue 10)

MID_CONFIG = dict(output_dim=64, z_dim=128, class_embed_dim=128, channel_width=16, num_classes=1000,
                  layers=[(False, 16, 16), (True, 16, 8), (True, 8, 4), (False, 4, 4),
                          (True, 4, 2), (True, 2, 1)],
                  attention_layer_position=4)   # 64 px, ~2.1 M parameters


def model_config(name: str) -> dict:
    """'small' (the test model of tests/support.py), 'mid', or 'full' (biggan-deep-128)."""
    if name == "small":
        from support import SMALL_CONFIG    # the exact test model

        return dict(SMALL_CONFIG)
    if name == "mid":
        return dict(MID_CONFIG)
    if name == "full":
        return {}                           # BigGANConfig() defaults: biggan-deep-128
    raise ValueError(f"unknown model {name!r}")


def build_generator(name: str, device: torch.device, seed: int = 0) -> BigGANGenerator:
    """A random-weight BigGAN bound to class 207, frozen, giving finite output in eval mode.

    As in tests/support.py: set the uninitialised generator.bn weight/bias, and converge the
    spectral-norm vectors with a few train-mode forwards under no_grad before eval.
    """
    from pytorch_pretrained_biggan import BigGAN, BigGANConfig

    torch.manual_seed(seed)
    model = BigGAN(BigGANConfig(**model_config(name))).to(device)
    with torch.no_grad():
        model.generator.bn.weight.fill_(1.0)
        model.generator.bn.bias.fill_(0.0)
        model.train()
        one_hot = torch.zeros(4, model.config.num_classes, device=device)
        one_hot[:, CLASS_INDEX] = 1
        for _ in range(5):
            model(torch.randn(4, model.config.z_dim, device=device), one_hot, TRUNCATION)
    model.eval()
    model.requires_grad_(False)
    gen = BigGANGenerator(model, CLASS_INDEX, TRUNCATION)
    with torch.no_grad():
        out = gen(torch.zeros(1, gen.z_dim, device=device))
    if not torch.isfinite(out).all():
        raise RuntimeError(f"the random {name} model gives non-finite output")
    return gen


class DiscoveryStep:
    """One discovery step on a generator: sample, penalty w.r.t. w, backward, Adam."""

    def __init__(self, gen: BigGANGenerator, device: torch.device, seed: int = 0):
        self.gen, self.device = gen, device
        self.dirs = DirectionMatrix(gen.z_dim, gen.z_dim, generator=torch.Generator().manual_seed(seed)).to(device)
        self.opt = torch.optim.Adam(self.dirs.parameters(), lr=0.01)
        self.rng = torch.Generator().manual_seed(seed + 1)      # CPU draws: same on every device

    def sample(self, batch: int, rng: torch.Generator) -> tuple[torch.Tensor, torch.Tensor]:
        """z (B, z_dim) and w (B, ndirs) = d e_j, on the device."""
        z = truncated_normal((batch, self.gen.z_dim), TRUNCATION, rng)
        j = torch.randint(0, self.dirs.ndirs, (batch,), generator=rng)
        d = (torch.rand(batch, generator=rng) * 2 - 1) * PATH_SIZE
        w = torch.zeros(batch, self.dirs.ndirs)
        w[torch.arange(batch), j] = d
        return z.to(self.device), w.to(self.device)

    def penalty(self, G, z, w, mode, rng, autocast) -> torch.Tensor:
        q = self.dirs()                                           # (ndirs, z_dim), float32

        def G_w(rows):                                            # rows: (m*B, ndirs)
            latent = tile_batch(z, rows.shape[0]) + rows @ q      # float32, outside autocast
            with autocast():
                return G(latent)

        return hessian_penalty(G_w, w, k=K, epsilon=EPSILON, reduction="mean",
                               generator=rng, mode=mode)

    def __call__(self, G, batch: int, mode: str, autocast=contextlib.nullcontext) -> float:
        z, w = self.sample(batch, self.rng)
        p = self.penalty(G, z, w, mode, self.rng, autocast)
        self.opt.zero_grad(set_to_none=True)
        p.backward()
        self.opt.step()
        return p.item()

    def fixed_value(self, G, batch: int, mode: str, autocast=contextlib.nullcontext,
                    grad: bool = True) -> float:
        """The penalty on fixed inputs and draws (seed 1234) and a fixed Q, without a step.

        grad=True builds the graph as training does, so a compiled G reuses its training graph.
        """
        rng = torch.Generator().manual_seed(1234)
        z, w = self.sample(batch, rng)
        a = self.dirs.A.detach().clone()
        self.dirs.A.data.copy_(DirectionMatrix(self.dirs.ndirs, self.gen.z_dim,
                                               generator=torch.Generator().manual_seed(99)).A)
        try:
            with torch.set_grad_enabled(grad):
                return self.penalty(G, z, w, mode, rng, autocast).item()
        finally:
            self.dirs.A.data.copy_(a)


def sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def timed(fn, device) -> float:
    sync(device)
    start = time.perf_counter()
    fn()
    sync(device)
    return time.perf_counter() - start


def machine(device: torch.device) -> str:
    if device.type == "cuda":
        name = torch.cuda.get_device_name(device)
    else:
        name = platform.processor() or platform.machine()
        with contextlib.suppress(OSError):
            for line in Path("/proc/cpuinfo").read_text().splitlines():
                if line.startswith("model name"):
                    name = line.split(":", 1)[1].strip()
                    break
        name += f", {os.cpu_count()} cores, {torch.get_num_threads()} torch threads"
    return f"{name}; torch {torch.__version__}; python {platform.python_version()}"


# ---------------------------------------------------------------- CPU suite
def memory_worker(model: str, mode: str, batch: int, threads: int) -> None:
    """Child process: one step; prints the peak RSS (MiB) and its rise over the RSS before it.

    Linux resets the peak-RSS mark (VmHWM) when "5" is written to /proc/self/clear_refs, so
    the rise is the step's own; elsewhere ru_maxrss (peak since start) is the fallback.
    """
    torch.set_num_threads(threads)
    gen = build_generator(model, torch.device("cpu"))
    step = DiscoveryStep(gen, torch.device("cpu"))
    before = _reset_peak_rss()
    step(gen, batch, mode)
    peak = _peak_rss()
    print(json.dumps({"peak_mib": peak, "step_mib": peak - before}))


def _status_mib(field: str) -> float | None:
    with contextlib.suppress(OSError, ValueError, IndexError):
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith(field + ":"):
                return int(line.split()[1]) / 1024                 # kB -> MiB
    return None


def _reset_peak_rss() -> float:
    """Reset the peak-RSS mark where possible; return the current RSS (MiB)."""
    with contextlib.suppress(OSError):
        Path("/proc/self/clear_refs").write_text("5")
    current = _status_mib("VmRSS")
    return current if current is not None else _peak_rss()


def _peak_rss() -> float:
    peak = _status_mib("VmHWM")
    return peak if peak is not None else resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def measure_memory(model: str, mode: str, batch: int, threads: int) -> dict:
    cmd = [sys.executable, __file__, "--_memory", model, mode, str(batch), "--threads", str(threads)]
    done = subprocess.run(cmd, capture_output=True, text=True, timeout=600)
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
    from biggan_directions.precision import autocast, set_tf32

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
    from biggan_directions.flops import count_flops

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
