"""Benchmark loading a BigGAN: pytorch_model.bin (torch.load, weights_only) vs model.safetensors.

A random-weight model of the full biggan-deep-128 architecture (pytorch_pretrained_biggan's
BigGANConfig defaults, 50.4 M parameters, 201 MiB; built like tests/support.py) is saved in
both formats in a temporary folder. Figures, the median of --repeats loads each (the page cache
is warm after the first read, as on every load but the first after a boot):
  read      reading the state dict alone (torch.load / safetensors load_file);
  load      the whole strict load: config, BigGAN(config), read, load_state_dict, NaN check;
  store     load_biggan by name from the store, which also checks sha256 of the files it uses.
The outputs of both loads are compared bit for bit.

Examples:
    python -m benchmarks.bench_weights
    python -m benchmarks.bench_weights --repeats 9 --threads 4
"""
from __future__ import annotations

import argparse
import platform
import statistics
import tempfile
import time
from pathlib import Path

import torch

from biggan_directions.models.weights import (CONFIG_NAME, SAFETENSORS_NAME, WEIGHTS_NAME,
                                              load_biggan, save_biggan)
from biggan_directions.models.weights.checkpoint import load_checkpoint, read_state
from tests.support import build_small_biggan

NAME = "biggan-deep-128"


def median_s(fn, repeats: int) -> float:
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--threads", type=int, default=1)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    from pytorch_pretrained_biggan import BigGANConfig

    print(f"# {platform.processor() or platform.machine()}, torch {torch.__version__}, "
          f"{args.threads} thread(s), median of {args.repeats}")
    start = time.perf_counter()
    model = build_small_biggan(config=BigGANConfig().to_dict())
    params = sum(p.numel() for p in model.parameters())
    print(f"built random full-size {NAME}: {params / 1e6:.1f} M parameters in "
          f"{time.perf_counter() - start:.1f} s")

    with tempfile.TemporaryDirectory() as tmp:
        store = Path(tmp) / "store"
        folder = save_biggan(model, store / NAME)
        del model
        config, bin_path = folder / CONFIG_NAME, folder / WEIGHTS_NAME
        start = time.perf_counter()
        first = load_biggan(NAME, weights_dir=store, progress=False)  # writes model.safetensors
        print(f"first load from the store (.bin, sha256, conversion): "
              f"{time.perf_counter() - start:.2f} s")
        st_path = folder / SAFETENSORS_NAME
        print(f"files: {WEIGHTS_NAME} {bin_path.stat().st_size / 2**20:.1f} MiB, "
              f"{SAFETENSORS_NAME} {st_path.stat().st_size / 2**20:.1f} MiB")

        rows = []
        for label, path in ((".bin", bin_path), (".safetensors", st_path)):
            read = median_s(lambda: read_state(path, ""), args.repeats)
            load = median_s(lambda: load_checkpoint(config, path, "cpu", ""), args.repeats)
            rows.append((label, read, load))
        stored = median_s(lambda: load_biggan(NAME, weights_dir=store, progress=False),
                          args.repeats)

        z = torch.randn(1, 128, generator=torch.Generator().manual_seed(0))
        one_hot = torch.zeros(1, 1000)
        one_hot[0, 207] = 1
        with torch.no_grad():
            same = torch.equal(first(z, one_hot, 0.5),
                               load_checkpoint(config, st_path, "cpu", "")[0](z, one_hot, 0.5))

    print(f"{'format':<14}{'read s':>9}{'load s':>9}")
    for label, read, load in rows:
        print(f"{label:<14}{read:>9.3f}{load:>9.3f}")
    print(f"speed-up (safetensors): read x{rows[0][1] / rows[1][1]:.2f}, "
          f"load x{rows[0][2] / rows[1][2]:.2f}")
    print(f"load_biggan from the store (safetensors + sha256 of the files used): {stored:.3f} s")
    print(f"outputs bit-identical: {same}")


if __name__ == "__main__":
    main()
