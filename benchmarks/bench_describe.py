"""Benchmark describing from score's frames: what `score` costs with and without describing, as a ratio.

Issue 25's budget: describing from the frames `score` generates adds at most 15% to its time.
Describing measures on worker threads (describe.Describer) while score generates and computes
LPIPS, so what it adds to score's wall time depends on spare CPU cores; the measuring's own time
(summed over its threads) is printed beside it. Both are timed in one process, alternating (plain, described, plain, described, ...), and the
best of each is kept, so a shared, noisy machine compares like with like; the figure that
matters is the ratio, printed last.

CPU, small: the tests' small random 32 px BigGAN and the tests' seeded random AlexNet backbone
(the backbone's weights do not change its cost).
CPU or GPU, --full-on DEVICE: full-size biggan-deep-128 with random weights (128 px frames,
described at DescribeConfig.size = 128 px), fewer directions and seeds.

    python -m benchmarks.bench_describe                     # small model, CPU
    python -m benchmarks.bench_describe --dirs 8 --seeds 8 --repeats 2
    python -m benchmarks.bench_describe --full-on cpu --dirs 2 --seeds 4
"""
from __future__ import annotations

import argparse
import platform
import tempfile
import time

import torch

from biggan_directions.core.directions import random_orthonormal
from biggan_directions.describe.config import DescribeConfig
from biggan_directions.describe.describe import default_workers
from biggan_directions.models.generator import BigGANGenerator
from biggan_directions.scoring.lpips_metric import load_lpips
from biggan_directions.scoring.score import score_directions
from benchmarks.bench_score import full_size_biggan
from tests.support import build_small_biggan, write_backbone_checkpoint

TRUNC = 0.5


def compare(G, metric, dirs: int, seeds: int, steps: int, repeats: int, device: torch.device,
            label: str) -> float:
    """Best seconds of score without and with describing; prints both and the ratio."""
    Q = random_orthonormal(dirs, G.z_dim, torch.Generator().manual_seed(0))
    common = dict(path_size=5.0, metric=metric, truncation=TRUNC, steps=steps, batch_size=32,
                  device=device, precision="fp32")
    plain, described, inside, work = [], [], [], []
    cpu_plain, cpu_described = [], []
    score_directions(G, Q[:1], range(2), **common)                        # warm-up
    score_directions(G, Q[:1], range(2), describe=DescribeConfig(), **common)
    for _ in range(repeats):
        t0, c0 = time.perf_counter(), time.process_time()
        score_directions(G, Q, range(seeds), **common)
        plain.append(time.perf_counter() - t0)
        cpu_plain.append(time.process_time() - c0)
        t0, c0 = time.perf_counter(), time.process_time()
        result = score_directions(G, Q, range(seeds), describe=DescribeConfig(), **common)
        described.append(time.perf_counter() - t0)
        cpu_described.append(time.process_time() - c0)
        inside.append(result.describe_seconds)
        work.append(result.describe_work_seconds)
    p, d = min(plain), min(described)
    frames = dirs * seeds * steps
    print(f"{label}: {dirs} directions x {seeds} seeds x {steps} steps = {frames} frames, "
          f"best of {repeats}")
    print(f"  score alone            {p:8.2f} s  ({frames / p:7.1f} frames/s)")
    print(f"  score + describe       {d:8.2f} s  (in score's thread: {min(inside):.2f} s; "
          f"measuring on {default_workers()} worker thread(s): {min(work):.2f} s)")
    print(f"  ratio                  {d / p:8.3f}  (describing adds {100 * (d / p - 1):+.1f}%; "
          f"budget +15%)")
    cp, cd = min(cpu_plain), min(cpu_described)
    print(f"  CPU time, every thread {cp:8.2f} s alone, {cd:.2f} s with describing: "
          f"{cd / cp:.3f} ({100 * (cd / cp - 1):+.1f}%: the wall cost when no core is spare)")
    return d / p


def measuring_cost(repeats: int) -> None:
    """What measuring one direction costs on 128 px frames (BigGAN-deep-128's), at the default
    --size 64 and at 128: the planted scene of the tests drawn at 128 px, 16 seeds x 9 frames,
    one thread, best of `repeats`. On a GPU, score makes a direction's 144 frames in ~70 ms
    (2,000 frames/s), so this is the figure to set against it there."""
    from biggan_directions.describe.measures import measure_walks
    from biggan_directions.media.frames import to_uint8
    from biggan_directions.media.walks import easing, walk_latents
    from biggan_directions.models.generator import latents_for_seeds
    from tests.support import PLANTED_PATH, PlantedScene

    G = PlantedScene()
    G.resolution = 128
    z = latents_for_seeds(range(16), 12, 1.0)
    walks = []
    for axis in (0, 3, 4, 9):                       # a shift, a turn, a brightness, a stretch
        lat = walk_latents(z, torch.eye(12)[[axis]], easing("linear", 9), PLANTED_PATH)[0]
        images = G(lat.transpose(0, 1).reshape(-1, 12))                    # (16*9, 3, H, W)
        frames = to_uint8(images).permute(0, 2, 3, 1).contiguous().numpy()
        walks.append(frames.reshape(16, 9, *frames.shape[1:]))
    print("measuring one direction of 128 px frames (16 seeds x 9 frames, one thread, "
          f"best of {repeats}):")
    for size in (64, 128):
        cfg = DescribeConfig(size=size)
        best = float("inf")
        for _ in range(repeats):
            t0 = time.perf_counter()
            for w in walks:
                measure_walks(w, size=cfg.size, moving=cfg.moving,
                              geometry_seeds=cfg.geometry_seeds, flow_stride=cfg.flow_stride)
            best = min(best, (time.perf_counter() - t0) / len(walks))
        print(f"  --size {size:<4d} {1000 * best:7.1f} ms per direction"
              + ("  (the default)" if size == DescribeConfig().size else ""))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--dirs", type=int, default=16)
    ap.add_argument("--seeds", type=int, default=16)
    ap.add_argument("--steps", type=int, default=9)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--threads", type=int, default=1,
                    help="torch threads (the small model runs fastest on one)")
    ap.add_argument("--full-on", default=None, metavar="DEVICE",
                    help="full-size random biggan-deep-128 on DEVICE instead of the small model")
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    print(f"machine: {platform.processor() or platform.machine()}, torch {torch.__version__}, "
          f"{torch.get_num_threads()} torch thread(s)")
    with tempfile.TemporaryDirectory() as tmp:
        backbone = write_backbone_checkpoint(tmp)
        if args.full_on:
            device = torch.device(args.full_on)
            net = full_size_biggan(device)                               # biggan-deep-128
            label = f"full-size biggan-deep-128 (random weights) on {device}"
        else:
            device = torch.device("cpu")
            net = build_small_biggan()
            label = "small random BigGAN (32 px) on cpu"
        G = BigGANGenerator(net, 207, TRUNC).to(device)
        metric = load_lpips("alex", device, backbone=backbone)
        compare(G, metric, args.dirs, args.seeds, args.steps, args.repeats, device, label)
    measuring_cost(args.repeats)


if __name__ == "__main__":
    main()
