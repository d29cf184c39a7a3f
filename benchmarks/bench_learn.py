"""Benchmark whether learned directions beat chance: Hessian Penalty discovery on a real generator.

Runs discovery (discovery.Discovery, the same loop as `discover`) on the pretrained face DCGAN
(z 100, 64 px, from the gan-face-generate wheel; skipped with a message when it cannot be
downloaded) under a few settings at an equal step budget, and evaluates the matrix along the way
on ONE fixed stratified evaluation set (evaluation.eval_draws, shared by every setting and by
the references): the identity, SeFa, and random orthonormal matrices (mean +- std over
--references matrices). A learned matrix beats chance when its penalty lies below the random
mean by more than twice the random spread.

    python -m benchmarks.bench_learn                        # 1000 steps per setting, CPU
    python -m benchmarks.bench_learn --steps 3000 --device cuda --out learn.json --plot learn.png
    python -m benchmarks.bench_learn --replot learn.json --plot docs/learn_dcgan.png
"""
from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import torch

from biggan_directions.core.evaluation import (eval_draws, evaluate, reference_values,
                                                 versus_random)
from biggan_directions.methods.config import DiscoverConfig
from biggan_directions.methods.hessian import Discovery

SETTINGS = {
    "random init, lr 0.01": dict(init="random", lr=0.01),
    "random init, lr 0.001": dict(init="random", lr=0.001),
    "sefa init, lr 0.01": dict(init="sefa", lr=0.01),
    "sefa init, lr 0.001": dict(init="sefa", lr=0.001),
    "sefa init, lr 0.0001": dict(init="sefa", lr=0.0001),
}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=1000)
    parser.add_argument("--batch-size", type=int, default=16)
    parser.add_argument("--path-size", type=float, default=2.0)
    parser.add_argument("--per-direction", type=int, default=16)
    parser.add_argument("--eval-k", type=int, default=4)
    parser.add_argument("--references", type=int, default=4)
    parser.add_argument("--points", type=int, default=2, help="evaluations per run (and step 0)")
    parser.add_argument("--settings", nargs="+", choices=list(SETTINGS), default=list(SETTINGS),
                        metavar="NAME", help=f"which runs, from: {'; '.join(SETTINGS)}")
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--out", default=None, help="also write the curves as JSON here")
    parser.add_argument("--plot", default=None, help="also draw the curves as a PNG here")
    parser.add_argument("--replot", default=None, metavar="JSON",
                        help="only draw --plot from curves an earlier --out wrote")
    args = parser.parse_args()
    if args.replot:
        plot(json.loads(Path(args.replot).read_text()), args.plot or "learn.png")
        return
    torch.set_num_threads(args.threads)
    device = torch.device(args.device)
    from benchmarks.real_dcgan import Unavailable, load_face_dcgan
    try:
        G = load_face_dcgan(device)
    except Unavailable as e:
        print(f"face DCGAN unavailable, nothing measured: {e}")
        return
    d = G.z_dim
    draws = eval_draws(d, d, per_direction=args.per_direction, k=args.eval_k, truncation=1.0,
                       path_size=args.path_size, seed=12345)
    common = dict(epsilon=0.1, reduction="mean", device=device)
    t0 = time.perf_counter()
    ref = reference_values(G, draws, d, d, matrices=args.references, seed=12345, **common)
    per_eval = (time.perf_counter() - t0) / (args.references + 1)
    print(f"face DCGAN (real weights), z {d}; batch {args.batch_size}, path size {args.path_size}, "
          f"eps 0.1, mean; {args.steps} steps per setting; {args.device}, {args.threads} threads")
    print(f"fixed evaluation: {draws.samples} samples ({args.per_direction} per direction), "
          f"k {args.eval_k}; {per_eval:.1f} s per evaluation")
    print(f"identity {ref['identity']:.4g}; random {ref['random']:.4g} +- {ref['random_std']:.3g} "
          f"(n={args.references}: {', '.join(f'{v:.4g}' for v in ref['random_values'])})")
    curves = {"reference": ref, "runs": {}}
    marks = sorted({0, *[round(args.steps * (i + 1) / args.points) for i in range(args.points)]})
    for name in args.settings:
        extra = SETTINGS[name]
        cfg = DiscoverConfig(batch_size=args.batch_size, path_size=args.path_size,
                             steps=args.steps, eval_per_direction=1, eval_k=2, **extra)
        run = Discovery(G, cfg, device)
        curve, start = [], time.perf_counter()
        for step in range(args.steps + 1):
            if step in marks:
                value = evaluate(G, run.directions(), draws, **common)
                curve.append((step, value))
                print(f"  {name:<24} step {step:>6}: {value:.4g}  ({versus_random(value, ref)})",
                      flush=True)
            if step < args.steps:
                run.train_step()
        seconds = time.perf_counter() - start
        final = curve[-1][1]
        print(f"{name:<26} {final:.4g} = {final / ref['random']:.3f} x random, "
              f"{(final - ref['random']) / (ref['random_std'] or 1):+.1f} random std; "
              f"{seconds / args.steps * 1000:.0f} ms/step", flush=True)
        curves["runs"][name] = curve
    if args.out:
        Path(args.out).write_text(json.dumps(curves, indent=1))
    if args.plot:
        plot(curves, args.plot)


def plot(curves: dict, path: str) -> None:
    """The runs' fixed-evaluation curves over the identity and the random band (curves.py)."""
    from biggan_directions.runs.curves import write_compare_curves

    runs = [{"label": name, "points": [tuple(p) for p in points]}
            for name, points in curves["runs"].items()]
    write_compare_curves(path, runs, curves["reference"],
                         title="face DCGAN (real weights): fixed-evaluation penalty vs steps")
    print(f"wrote {path}")


if __name__ == "__main__":
    main()
