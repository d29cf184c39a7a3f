"""The learning study's checks on noise: is the random band the draws' noise, and is there a descent direction at a start?

Subcommands (the face DCGAN on the CPU, one thread unless --threads; see study_learn for the study):

    python -m benchmarks.study_noise noise                 # the same random matrices on several draw sets
    python -m benchmarks.study_noise onestep --folder outputs/study [--init random]
    python -m benchmarks.study_noise gradnoise --k 2 4 8   # a batch's gradient noise by k

`onestep` writes its result to FOLDER/onestep[-random]-kK/onestep.json (resumable: the gradient
sums are checkpointed), which `study_learn report` prints beside the study's table.
"""
from __future__ import annotations

import argparse
import json
import os
import statistics
import time
from pathlib import Path

import torch

from biggan_directions.core.directions import baseline_directions
from biggan_directions.core.evaluation import derived_seed, eval_draws
from biggan_directions.methods.hessian import Discovery
from benchmarks.study_learn import (PATH_SIZE, SEED, TRUNCATION, Setting, Trainer, atomic_json, claim,
                                    face_dcgan, sets, value)


def noise(args) -> None:
    """Is the random band's spread the matrices or the draws? The same random matrices on
    several independent draw sets: a matrix's own quality would show as a positive
    correlation between sets; the draws' noise as none."""
    G = face_dcgan(args.threads)
    if G is None:
        return
    names = "abcdefgh"[:args.sets]
    sets_ = {n: eval_draws(G.z_dim, G.z_dim, per_direction=args.per_direction, k=4,
                           truncation=TRUNCATION, path_size=PATH_SIZE,
                           seed=derived_seed(SEED, f"noise-{n}")) for n in names}
    rng = torch.Generator().manual_seed(derived_seed(SEED, "noise-matrices"))
    values = {n: [] for n in names}
    for i in range(args.matrices):
        q = baseline_directions("random", G.z_dim, G.z_dim, None, rng)
        for n in names:
            values[n].append(value(G, q, sets_[n]))
        print(f"matrix {i}: " + ", ".join(f"{n} {values[n][-1]:.3f}" for n in names), flush=True)

    samples = sets_[names[0]].samples
    for i, x in enumerate(names):
        for y in names[i + 1:]:
            r = statistics.correlation(values[x], values[y])
            print(f"sets {x}, {y} ({samples} samples each): correlation {r:+.2f}")


def gradient_sums(run: Discovery, batches: int, ckpt: Path | None = None) -> tuple[float, float, int]:
    """The mean of `batches` training-batch gradients of the direction parameters at the run's
    start (left in run.matrix.A.grad), |E g|^2 (unbiased) and the per-batch noise (trace of the
    gradient's covariance). With `ckpt` the running sums are checkpointed every 100 batches
    (atomically) and a rerun resumes them."""
    total = torch.zeros_like(run.matrix.A)
    squares, n = 0.0, 0
    if ckpt is not None and ckpt.exists():
        state = torch.load(ckpt, weights_only=True)
        total, squares, n = state["total"], float(state["squares"]), int(state["n"])
        run.rng.set_state(state["rng"])
    t0 = time.perf_counter()
    while n < batches:
        run.optimizer.zero_grad(set_to_none=True)
        run._loss().backward()
        g = run.matrix.A.grad.detach()
        total += g
        squares += float(g.double().square().sum())
        n += 1
        if ckpt is not None and (n % 100 == 0 or n == batches):
            tmp = ckpt.with_suffix(".tmp")
            torch.save({"total": total, "squares": squares, "n": n, "rng": run.rng.get_state()}, tmp)
            os.replace(tmp, ckpt)
            print(f"[gradient] {n} batches ({time.perf_counter() - t0:.0f} s this process)", flush=True)
    mean = total.double() / n
    noise = squares / n - float(mean.square().sum())           # per-batch trace of the covariance
    signal = float(mean.square().sum()) - noise / n            # unbiased |E g|^2
    run.matrix.A.grad = mean.to(run.matrix.A.dtype)
    return signal, noise, n


def gradnoise(args) -> None:
    """How much one training batch's gradient at the start is noise, for each k: the trace of
    its covariance over --batches batches, and that times the batch's generator images (the
    noise left after a fixed compute: lower is better)."""
    G = face_dcgan(args.threads)
    if G is None:
        return
    for k in args.k:
        run = Trainer(G, Setting(init=args.init, k=k), args.batches).run
        run.setup()
        t0 = time.perf_counter()
        _, noise, n = gradient_sums(run, args.batches)
        print(f"{args.init} start, k = {k}: gradient noise per batch of 16 {noise:.4g}; times the "
              f"batch's {run.images_per_step} images {noise * run.images_per_step:.4g} "
              f"({n} batches, {time.perf_counter() - t0:.0f} s)", flush=True)


def onestep(args) -> None:
    """The most a fixed budget of training batches can tell about a descent direction from the
    SeFa start (or --init random): the mean gradient (Cayley parameters at S = 0) over --batches batches of 16,
    then ONE step along it, its length chosen on the validation set and the chosen matrix
    measured on the test set. Also prints the gradient's signal-to-noise ratio per batch.
    Resumable: the running sums are checkpointed (atomically) every 100 batches."""
    G = face_dcgan(args.threads)
    if G is None:
        return
    root = Path(args.folder) / ("onestep" + ("" if args.init == "sefa" else f"-{args.init}") + f"-k{args.k}")
    if not claim(root):
        print(f"{root} is being worked on by another process")
        return
    tr = Trainer(G, Setting(init=args.init, k=args.k), args.batches)
    run, start_q = tr.run, tr.q()
    run.setup()
    ckpt, out = root / "sums.pt", root / "onestep.json"
    signal, noise, n = gradient_sums(run, args.batches, ckpt)
    mean = run.matrix.A.grad                                   # the mean gradient, left there
    result = json.loads(out.read_text()) if out.exists() else {}
    result.update({"batches": n, "k": args.k, "signal": signal, "noise_per_batch": noise,
                   "snr_per_batch": signal / noise, "snr_of_mean": signal * n / noise})
    atomic_json(out, result)
    print(f"[onestep] |E g|^2 ~ {signal:.4g}, per-batch noise {noise:.4g}: SNR per batch "
          f"{signal / noise:.2e}, of the {n}-batch mean {signal * n / noise:.2f}", flush=True)
    draws = sets(G.z_dim, args.per_direction)
    unit = mean / mean.norm()
    line = result.setdefault("line", {})
    for t in args.lengths:
        if str(t) in line:
            continue
        with torch.no_grad():
            run.matrix.A.copy_((-t * unit).float())
        line[str(t)] = value(G, run.directions(), draws["val"])
        atomic_json(out, result)
        print(f"[onestep] length {t}: val {line[str(t)]:.4f}", flush=True)
    ref = json.loads((Path(args.folder) / "ref-val.json").read_text())
    best_t = min(line, key=line.get)
    if "test" not in result or result["test"]["length"] != best_t:
        with torch.no_grad():
            run.matrix.A.copy_((-float(best_t) * unit).float())
        result["test"] = {"length": best_t, "value": value(G, run.directions(), draws["test"])}
        atomic_json(out, result)
    test = json.loads((Path(args.folder) / "ref-test.json").read_text())
    if "start_test" not in result:
        result["start_test"] = value(G, start_q, draws["test"])
        atomic_json(out, result)
    start = result["start_test"]
    print(f"[onestep] chosen length {best_t} (val {line[best_t]:.4f}, SeFa {ref['sefa']:.4f}); test "
          f"{result['test']['value']:.4f} against the start's {start:.4f}: "
          f"{(result['test']['value'] - start) / test['random_std']:+.1f} random sd", flush=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="cmd", required=True)
    n = sub.add_parser("noise", help="the same random matrices on several draw sets")
    n.add_argument("--matrices", type=int, default=10)
    n.add_argument("--sets", type=int, default=3)
    n.add_argument("--per-direction", type=int, default=3)
    n.add_argument("--threads", type=int, default=1)
    g = sub.add_parser("gradnoise", help="a training batch's gradient noise at the start, per k")
    g.add_argument("--k", type=int, nargs="+", default=[2, 4, 8])
    g.add_argument("--batches", type=int, default=128)
    g.add_argument("--init", choices=["sefa", "random"], default="sefa")
    g.add_argument("--threads", type=int, default=1)
    o = sub.add_parser("onestep", help="one step along a --batches-batch gradient from SeFa")
    o.add_argument("--folder", required=True)
    o.add_argument("--batches", type=int, default=4000)
    o.add_argument("--k", type=int, default=2)
    o.add_argument("--init", choices=["sefa", "random"], default="sefa")
    o.add_argument("--lengths", type=float, nargs="*", default=[0.02, 0.05, 0.1, 0.2, 0.4])
    o.add_argument("--per-direction", type=int, default=16)
    o.add_argument("--threads", type=int, default=1)
    args = parser.parse_args()
    {"noise": noise, "onestep": onestep, "gradnoise": gradnoise}[args.cmd](args)


if __name__ == "__main__":
    main()
