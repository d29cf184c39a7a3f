"""describe on real weights: the labels of SeFa's 10 strongest directions of the face DCGAN, and a labelled strip.

The generator is the pretrained 64 px face DCGAN (z 100) of benchmarks/real_dcgan.py (fetched
with pip once; skipped with one line when that fails). Its SeFa directions (the top right-singular
vectors of the first layer's weights, strongest first) are described on 16 seeds with 9-frame
walks at the path size the learning study uses for this generator (2.0: its z is N(0, I), so
a walk of +-2 spans the usual range of one coordinate). Prints one row per direction (label,
confidence, second label, the label's measure, the main measures) as a markdown table for
BENCHMARKS.md, and writes docs/describe_dcgan.png: a row per direction walking seed 0 from
-P to +P, captioned "k label", for a person to judge the labels by eye.

    python -m benchmarks.describe_dcgan
    python -m benchmarks.describe_dcgan --seeds 32 --out docs/describe_dcgan.png
"""
from __future__ import annotations

import argparse
import time
from pathlib import Path

import torch

from biggan_directions.describe.describe import describe_directions
from biggan_directions.describe.files import caption
from biggan_directions.describe.tables import headline
from biggan_directions.media.frames import strip_image
from biggan_directions.media.video import save_png
from biggan_directions.methods.sefa import sefa_directions
from biggan_directions.models.generator import latents_for_seeds
from benchmarks.real_dcgan import CACHE, Unavailable, load_face_dcgan

PATH_SIZE = 2.0          # bench_methods' path size for the face DCGAN
STRIP_STEPS = 7


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--dirs", type=int, default=10)
    ap.add_argument("--seeds", type=int, default=16)
    ap.add_argument("--steps", type=int, default=9)
    ap.add_argument("--path-size", type=float, default=PATH_SIZE)
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--cache", type=Path, default=CACHE)
    ap.add_argument("--wheel", type=Path, default=None)
    ap.add_argument("--out", type=Path, default=Path("docs/describe_dcgan.png"))
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    try:
        G = load_face_dcgan(args.device, args.cache, args.wheel)
    except Unavailable as e:
        print(f"skipped: the face DCGAN is not available ({e})")
        return
    Q, s = sefa_directions(G, args.dirs)
    t0 = time.perf_counter()
    found = describe_directions(G, Q, path_size=args.path_size, seeds=args.seeds,
                                steps=args.steps, device=args.device)
    seconds = time.perf_counter() - t0
    print(f"face DCGAN (64 px), SeFa's {args.dirs} strongest directions, {args.seeds} seeds, "
          f"{args.steps} steps, path size {args.path_size:g}: described in {seconds:.1f} s\n")
    print("| dir | singular value | label | confidence | second | measure | shift x, y | scale "
          "| rotation | brightness | colour | background share |")
    print("| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |")
    for d, sv in zip(found, s.tolist()):
        m = d["measures"]
        print(f"| {d['direction']} | {sv:.2f} | {d['label']} | {d['label_confidence']:.2f} | "
              f"{d['second_label'] or '-'} | {headline(d)} | {m['shift_x_fraction']:+.3f}, "
              f"{m['shift_y_fraction']:+.3f} | {m['scale_ratio']:.3f} | "
              f"{m['rotation_degrees']:+.1f} | {m['brightness_delta']:+.1f} | "
              f"{m['color_shift']:.1f} {m['color_hue']} | {m['background_share']:.2f} |")
    z = latents_for_seeds([0], G.z_dim, 1.0).to(args.device)
    captions = [caption(d["direction"], d["label"]) for d in found]
    image = strip_image(G, Q.to(args.device), z[0], STRIP_STEPS, args.path_size, labels=captions)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    save_png(args.out, image, f"face DCGAN, SeFa directions 0-{args.dirs - 1}, seed 0, "
                              f"path size {args.path_size:g}, labels by describe")
    print(f"\nwrote {args.out} ({image.shape[1]} x {image.shape[0]} px)")


if __name__ == "__main__":
    main()
