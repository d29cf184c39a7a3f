"""Benchmark LPIPS scoring: pairs per second, and the time to score D directions x S seeds x T steps.

CPU: the small random 32 px BigGAN of the tests, and the tests' seeded random AlexNet backbone file
(support.write_backbone_checkpoint, given to load_lpips as `backbone`; fine for timing: the
backbone's weights do not change its cost, and the scores themselves are not reported).
GPU (when torch.cuda.is_available()): full-size biggan-deep-128 with random weights.

    python -m benchmarks.bench_score                   # CPU, then GPU if there is one
    python -m benchmarks.bench_score --dirs 8 --seeds 4 --skip-gpu
    python -m benchmarks.bench_score --full-on DEVICE  # the full-size section on any device
    python -m benchmarks.bench_score --precision bf16 --no-compile   # GPU: one setting

Frames/s is end to end (generation at 128 px, LPIPS features and distances, the 'auto'
precision check included). Target (issue 10): at least 2,000 frames/s on one H100/H200.
"""
from __future__ import annotations

import argparse
import copy
import tempfile
import time

import torch

from biggan_directions.core.directions import random_orthonormal
from biggan_directions.models.generator import BigGANGenerator
from biggan_directions.scoring.lpips_metric import load_lpips, lpips_distance, lpips_features
from biggan_directions.scoring.score import score_directions, walk_pairs
from tests.support import build_small_biggan, write_backbone_checkpoint

TRUNC = 0.5


def sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def timed(fn, device: torch.device, repeats: int = 3) -> float:
    """Best wall time of `repeats` calls after one warm-up call."""
    fn()
    sync(device)
    best = float("inf")
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        sync(device)
        best = min(best, time.perf_counter() - t0)
    return best


@torch.inference_mode()
def lpips_pairs_per_second(metric, size: int, walks: int, steps: int, device: torch.device) -> tuple[float, float]:
    """Pairs/s for the pairs of `walks` walks of `steps` frames (size x size): (a) lpips.forward on
    each pair (features of both images computed per pair), (b) features once per frame, then
    distances between them (what score_directions does)."""
    pairs, _ = walk_pairs(steps)
    gen = torch.Generator().manual_seed(0)
    frames = (torch.rand(walks, steps, 3, size, size, generator=gen) * 2 - 1).to(device)
    a = torch.tensor([i for i, _ in pairs], device=device)
    b = torch.tensor([j for _, j in pairs], device=device)
    n_pairs = walks * len(pairs)

    def forward():
        metric(frames[:, a].flatten(0, 1), frames[:, b].flatten(0, 1), normalize=False)

    def features_once():
        feats = [f.unflatten(0, (walks, steps)) for f in lpips_features(metric, frames.flatten(0, 1))]
        lpips_distance(metric, [f[:, a].flatten(0, 1) for f in feats],
                       [f[:, b].flatten(0, 1) for f in feats])

    return n_pairs / timed(forward, device), n_pairs / timed(features_once, device)


@torch.inference_mode()
def generation_seconds(G, n_frames: int, batch_size: int, z_dim: int, device: torch.device) -> float:
    """Wall time to generate n_frames images in batches (generation alone, for the split)."""
    z = torch.randn(n_frames, z_dim, generator=torch.Generator().manual_seed(0)).to(device)

    def run():
        for i in range(0, n_frames, batch_size):
            G(z[i:i + batch_size])

    sync(device)
    t0 = time.perf_counter()
    run()
    sync(device)
    return time.perf_counter() - t0


def score_run(label: str, G, metric, dirs: int, seeds: int, steps: int, batch_size: int,
              device: torch.device, precision: str = "fp32", compile: bool | None = False) -> None:
    q = random_orthonormal(dirs, G.z_dim, generator=torch.Generator().manual_seed(0))
    fast = dict(precision=precision, compile=compile)
    # warm-up on one seed (kernel selection, allocator, compilation of the same batch shapes),
    # not counted
    score_directions(G, q, [0], path_size=3.0, metric=metric, truncation=TRUNC, steps=steps,
                     batch_size=batch_size, device=device, **fast)
    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats(device)
    sync(device)
    t0 = time.perf_counter()
    r = score_directions(G, q, range(seeds), path_size=3.0, metric=metric, truncation=TRUNC,
                         steps=steps, batch_size=batch_size, device=device, **fast)
    sync(device)
    total = time.perf_counter() - t0
    gen = generation_seconds(G, r.frames, batch_size, G.z_dim, device)
    mem = (f", peak GPU memory {torch.cuda.max_memory_allocated(device) / 2**30:.2f} GiB"
           if device.type == "cuda" else "")
    print(f"  {label}: {dirs} dirs x {seeds} seeds x {steps} steps = {r.frames} frames, "
          f"{r.pairs} LPIPS pairs, batch {batch_size}: {total:.2f} s total "
          f"({r.frames / total:.3g} frames/s, {r.pairs / total:.3g} pairs/s end to end; "
          f"fp32 eager generation alone {gen:.2f} s{mem})")
    ran = r.inference
    check = ran["precision_check"]
    print(f"    precision {ran['precision']} (asked {ran['precision_asked']}"
          + (f"; bf16 check: mean LPIPS {check['bf16']:.5g} vs fp32 {check['fp32']:.5g}, "
             f"relative error {check['relative_error']:.3%}" if check else "")
          + f"), compile: generator {ran['compile_mode']}, LPIPS {ran['lpips_compile_mode']}; "
          f"FRAMES/S (LPIPS included): {r.frames / total:.4g}", flush=True)


def full_size_biggan(device: torch.device):
    """biggan-deep-128's architecture with random weights (no download): bn set to 1/0, spectral
    norm converged by a few train-mode forwards under no_grad, then eval."""
    from pytorch_pretrained_biggan import BigGAN, BigGANConfig

    torch.manual_seed(0)
    model = BigGAN(BigGANConfig()).to(device)
    with torch.no_grad():
        model.generator.bn.weight.fill_(1.0)
        model.generator.bn.bias.fill_(0.0)
        model.train()
        one_hot = torch.zeros(4, 1000, device=device)
        one_hot[:, 207] = 1
        for _ in range(3):
            model(torch.randn(4, 128, device=device), one_hot, TRUNC)
    return model.eval().requires_grad_(False)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--dirs", type=int, default=32)
    p.add_argument("--seeds", type=int, default=16)
    p.add_argument("--steps", type=int, default=9)
    p.add_argument("--batch-size", type=int, default=32)
    p.add_argument("--gpu-batch-size", type=int, default=128)
    p.add_argument("--skip-gpu", action="store_true")
    p.add_argument("--full-on", default=None, metavar="DEVICE",
                   help="run the full-size section on this device (default: cuda when available)")
    p.add_argument("--full-dirs", type=int, default=None, help="directions for the full-size run")
    p.add_argument("--precision", choices=("auto", "fp32", "tf32", "bf16"), default=None,
                   help="generator and LPIPS precision (default: fp32 on the CPU, auto on the GPU)")
    p.add_argument("--compile", action=argparse.BooleanOptionalAction, default=None,
                   help="torch.compile the generator and LPIPS (default: on for CUDA)")
    args = p.parse_args()

    cpu = torch.device("cpu")
    print(f"torch {torch.__version__}, {torch.get_num_threads()} CPU threads; LPIPS alex with a "
          f"random backbone file (timing only)")
    with tempfile.TemporaryDirectory(prefix="bench-score-") as folder:
        metric = load_lpips("alex", cpu, backbone=write_backbone_checkpoint(folder))
    cpu_metric = metric
    print("CPU, LPIPS pairs/s on walk pairs (11 per 9-step walk):")
    for size, walks in ((32, 16), (128, 4)):
        fwd, once = lpips_pairs_per_second(metric, size, walks, args.steps, cpu)
        print(f"  {size}px: lpips.forward per pair {fwd:.3g} pairs/s; features once per frame "
              f"{once:.3g} pairs/s ({once / fwd:.1f}x)")
    print("CPU, small random BigGAN (32 px, ~0.5 M params):")
    G = BigGANGenerator(build_small_biggan(), 207, TRUNC)
    score_run("small", G, metric, args.dirs, args.seeds, args.steps, args.batch_size, cpu,
              args.precision or "fp32", bool(args.compile))

    full_on = args.full_on or ("cuda" if torch.cuda.is_available() and not args.skip_gpu else None)
    if full_on is None:
        print("GPU: none here; the full-size biggan-deep-128 section was skipped.")
        return
    dev = torch.device(full_on)
    name = torch.cuda.get_device_name(dev) if dev.type == "cuda" else str(dev)
    print(f"{name}, biggan-deep-128 full size, RANDOM weights; LPIPS alex random backbone file:")
    metric = copy.deepcopy(cpu_metric).to(dev)
    fwd, once = lpips_pairs_per_second(metric, 128, 32 if dev.type == "cuda" else 2, args.steps, dev)
    print(f"  128px LPIPS: lpips.forward per pair {fwd:.3g} pairs/s; features once {once:.3g} "
          f"pairs/s ({once / fwd:.1f}x)")
    G = BigGANGenerator(full_size_biggan(dev), 207, TRUNC).to(dev)
    bs = args.gpu_batch_size if dev.type == "cuda" else args.batch_size
    fast = dict(precision=args.precision or ("auto" if dev.type == "cuda" else "fp32"),
                compile=args.compile)
    score_run("biggan-deep-128", G, metric, args.full_dirs or args.dirs,
              args.seeds if dev.type == "cuda" else 1, args.steps, bs, dev, **fast)
    if dev.type == "cuda" and not args.full_dirs:
        score_run("biggan-deep-128, published ndirs", G, metric, 120, args.seeds, args.steps, bs,
                  dev, **fast)


if __name__ == "__main__":
    main()
