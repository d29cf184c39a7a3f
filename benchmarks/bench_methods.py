"""Benchmark the methods: time of SeFa, GANSpace and a Hessian run, and their penalty against random matrices.

Generators: the small random test model (tests/support.py, class 207, truncation 0.5) and a real
pretrained one, the 64 px face DCGAN shipped in the gan-face-generate wheel (benchmarks/
real_dcgan.py; fetched with pip once, skipped with a message when that fails). Figures:
  sefa            seconds per call (median of --repeats), first-layer weight only; for BigGAN
                  also layers='all' (gen_z plus every conditional batch norm); the top singular
                  values.
  ganspace        seconds for one call with --samples latents (sampling, forward to the layer,
                  PCA, regression), the top explained-variance ratios and their sum over
                  --ndirs components, and max |cos| between two different directions (0 for
                  orthogonal rows).
  overlap         ||Q_k P_k^T||_F^2 / k between SeFa's top-k directions and GANSpace's
                  (orthonormalised) top-k: 1 = the same subspace, ~k/z_dim for unrelated ones.
  penalty         every method's FULL basis (z_dim directions; a top-k subset would compare a
                  method's strongest directions, whose larger effect brings a larger penalty,
                  with average random ones) on ONE fixed evaluation (evaluation.py:
                  --per-direction latents per direction, 20% trimmed mean), with the identity
                  and --references random orthonormal matrices (mean +- std) on the same draws;
                  per method its penalty, ratio to the random mean, distance in random std, and
                  the verdict (beats chance only below mean - 2 std), and the seconds it took.
                  The hessian rows are Hessian Penalty runs of --hessian-steps steps (batch 16,
                  default lr) from a random and from a SeFa start.

Examples:
    python -m benchmarks.bench_methods
    python -m benchmarks.bench_methods --samples 20000 --device cuda --out methods.json
    python -m benchmarks.bench_methods --wheel /path/to/gan_face_generate-1.1.1-py3-none-any.whl
"""
from __future__ import annotations

import argparse
import json
import statistics
import time
from pathlib import Path

import torch

from biggan_directions.core.directions import orthonormalize
from biggan_directions.core.evaluation import (eval_draws, evaluate, reference_values,
                                                 versus_random)
from biggan_directions.methods.config import DiscoverConfig
from biggan_directions.methods.ganspace import ganspace_directions
from biggan_directions.methods.hessian import Discovery
from biggan_directions.methods.sefa import sefa_directions
from biggan_directions.models.generator import BigGANGenerator
from benchmarks.real_dcgan import CACHE, Unavailable, load_face_dcgan
from tests.support import build_small_biggan


def timed(fn, repeats: int = 1):
    """(median seconds over `repeats` calls, last result)."""
    times, result = [], None
    for _ in range(repeats):
        start = time.perf_counter()
        result = fn()
        if torch.cuda.is_available():
            torch.cuda.synchronize()
        times.append(time.perf_counter() - start)
    return statistics.median(times), result


def measure(name: str, G, layer: str, truncation: float, args, sefa_layers=("gen_z",)) -> dict:
    """SeFa and GANSpace figures for one generator; prints them and returns them."""
    k = args.ndirs
    row: dict = {"generator": name, "z_dim": G.z_dim, "ndirs": k, "samples": args.samples}
    q = None
    for layers in sefa_layers:
        seconds, (q_l, s) = timed(lambda: sefa_directions(G, ndirs=k, layers=layers), args.repeats)
        row[f"sefa_{layers}"] = {"seconds": seconds, "singular_values": s[:5].tolist()}
        print(f"{name:10s} {'sefa[' + layers + ']':13s} {seconds * 1e3:8.2f} ms   top s: "
              + " ".join(f"{v:.4f}" for v in s[:5]))
        q = q_l if q is None else q
    seconds, (u, ratio) = timed(lambda: ganspace_directions(
        G, layer, samples=args.samples, ndirs=k, seed=0, truncation=truncation,
        batch_size=args.batch_size, device=args.device))
    cos = (u @ u.T - torch.eye(k)).abs().max().item()
    overlap = (q @ orthonormalize(u.double()).float().T).pow(2).sum().item() / k
    row["ganspace"] = {"layer": layer,
                       "seconds": seconds, "explained": ratio[:5].tolist(),
                       "explained_total": ratio.sum().item(), "max_cos": cos}
    row["overlap_sefa_ganspace"] = overlap
    print(f"{name:10s} {'ganspace':13s} {seconds:8.2f} s    top ratio: "
          + " ".join(f"{v:.4f}" for v in ratio[:5])
          + f"   sum({k}) {ratio.sum():.3f}   max|cos| {cos:.3f}")
    print(f"{name:10s} overlap(sefa, ganspace) top-{k}: {overlap:.3f}   (random ~ {k / G.z_dim:.3f})")
    row["penalty"] = penalties(name, G, layer, truncation, args)
    return row


def penalties(name: str, G, layer: str, truncation: float, args) -> dict:
    """Every method's full basis (ndirs = z_dim: all bases span the same space, so only the
    rotation is compared), the identity and random orthonormal matrices on one fixed
    evaluation; Hessian runs of --hessian-steps from a random and a SeFa start join them."""
    z_dim, path = G.z_dim, args.path_size[name]
    device = torch.device(args.device)
    found = {}
    seconds, (q, _) = timed(lambda: sefa_directions(G, ndirs=z_dim))
    found["sefa"] = (q, seconds)
    seconds, (u, _) = timed(lambda: ganspace_directions(
        G, layer, samples=args.samples, ndirs=z_dim, seed=0, truncation=truncation,
        batch_size=args.batch_size, device=args.device))
    found["ganspace"] = (u, seconds)
    for init in ("random", "sefa"):
        cfg = DiscoverConfig(steps=args.hessian_steps, batch_size=16, path_size=path,
                             truncation=truncation, init=init, seed=0)
        start = time.perf_counter()
        run = Discovery(G, cfg, device)
        for _ in range(args.hessian_steps):
            run.train_step()
        found[f"hessian ({init} start)"] = (run.directions().detach().cpu(),
                                            time.perf_counter() - start)
    draws = eval_draws(z_dim, z_dim, per_direction=args.per_direction, k=4,
                       truncation=truncation, path_size=path, seed=0)
    common = dict(epsilon=0.1, reduction="mean", device=device)
    ref = reference_values(G, draws, z_dim, z_dim, matrices=args.references, seed=0, **common)
    print(f"{name:10s} fixed evaluation of full bases ({z_dim} directions x {args.per_direction} "
          f"latents, path size {path:g}, {ref['statistic']}): identity {ref['identity']:.4g}, "
          f"random {ref['random']:.4g} +- {ref['random_std']:.3g} ({args.references} matrices)")
    out = {"reference": ref, "methods": {}}
    for method, (q, seconds) in found.items():
        value = evaluate(G, q, draws, **common)
        ratio = value / ref["random"]
        sigmas = (value - ref["random"]) / (ref["random_std"] or 1.0)
        verdict = versus_random(value, ref)
        out["methods"][method] = {"penalty": value, "x_random": ratio, "random_std": sigmas,
                                  "verdict": verdict, "seconds": seconds}
        print(f"{name:10s}   {method:24s} {value:9.4g} = {ratio:.3f} x random ({sigmas:+.1f} std), "
              f"{verdict}; {seconds:.2f} s", flush=True)
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--samples", type=int, default=5000, help="GANSpace latents (default 5000)")
    parser.add_argument("--ndirs", type=int, default=10, help="directions per method (default 10)")
    parser.add_argument("--batch-size", type=int, default=250, help="GANSpace batch (default 250)")
    parser.add_argument("--repeats", type=int, default=20, help="SeFa calls timed (median)")
    parser.add_argument("--device", default="cpu", help="cpu or cuda (default cpu)")
    parser.add_argument("--threads", type=int, default=None, help="torch CPU threads")
    parser.add_argument("--cache", type=Path, default=CACHE, help=f"wheel cache (default {CACHE})")
    parser.add_argument("--wheel", type=Path, default=None, help="use this local wheel file instead of pip")
    parser.add_argument("--skip-real", action="store_true", help="only the small test model")
    parser.add_argument("--per-direction", type=int, default=16,
                        help="fixed evaluation: latents per direction (default 16)")
    parser.add_argument("--references", type=int, default=4, help="random matrices (default 4)")
    parser.add_argument("--hessian-steps", type=int, default=300,
                        help="steps of each Hessian run (default 300)")
    parser.add_argument("--out", type=Path, default=None, help="also write the figures as JSON")
    args = parser.parse_args()
    args.path_size = {"small": 5.0, "face-dcgan": 2.0}    # BigGAN's default; the DCGAN's z scale
    if args.threads:
        torch.set_num_threads(args.threads)
    device = torch.device(args.device)
    print(f"torch {torch.__version__}, device {device}, threads {torch.get_num_threads()}, "
          f"samples {args.samples}, ndirs {args.ndirs}")

    rows = []
    small = BigGANGenerator(build_small_biggan().to(device), 207, 0.5)
    rows.append(measure("small", small, "block0", 0.5, args, sefa_layers=("gen_z", "all")))
    if not args.skip_real:
        try:
            face = load_face_dcgan(device, args.cache, args.wheel)
        except Unavailable as e:
            print(f"face-dcgan skipped: {e}")
        else:
            rows.append(measure("face-dcgan", face, "main.2", 1.0, args))
    if args.out:
        args.out.write_text(json.dumps({"torch": torch.__version__, "device": str(device),
                                        "rows": rows}, indent=2) + "\n")


if __name__ == "__main__":
    main()
