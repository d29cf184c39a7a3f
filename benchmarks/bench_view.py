"""Benchmark `view`: time from an image request to the PNG, i.e. from a slider release to the
bytes the page shows (the browser's decode and paint, a few ms, not included).

A random-weight model is saved and loaded through the real loader and served by the real app
(biggan_directions.view.view_app.create_app): the small test model on the CPU, or the full-size
biggan-deep-128 architecture (128 px) with `--device cuda`. A run of 64 random orthonormal
directions is written beside it. Each request moves one or two sliders to new values (as a
drag does), so no two requests ask for the same image. Figures, in ms, median and 90th
percentile over --requests requests after --warmup:
  in-process   the app's endpoint through Starlette's TestClient (routing, validation, lock,
               generation, PNG encoding);
  http         the same over a real socket: uvicorn on 127.0.0.1 and an httpx client
               (what the page's fetch() waits for);
  generate     view_image alone (latent, generator, uint8), the model's share.
Target (issue 12): at most 100 ms at 128 px on a GPU.

Examples:
    python -m benchmarks.bench_view                     # small model, CPU
    python -m benchmarks.bench_view --device cuda       # biggan-deep-128 size, GPU
    python -m benchmarks.bench_view --requests 100 --threads 2
"""
from __future__ import annotations

import argparse
import json
import socket
import statistics
import tempfile
import threading
import time
from pathlib import Path

import torch

from biggan_directions.core.directions import random_orthonormal, save_directions
from biggan_directions.models.weights import save_biggan
from biggan_directions.view.view import Viewer, format_amounts, view_image
from biggan_directions.view.view_app import create_app
from benchmarks.penalty_step import machine
from tests.support import SMALL_CONFIG, build_small_biggan

NDIRS = 64
PATH_SIZE = 5.0


def build(tmp: Path, full_size: bool, device: str) -> Viewer:
    """Save a random model and a run folder under tmp; open them as `view` does."""
    config = None if full_size else SMALL_CONFIG
    if full_size:
        from pytorch_pretrained_biggan import BigGANConfig
        config = BigGANConfig().to_dict()          # biggan-deep-128's architecture
    model_dir = save_biggan(build_small_biggan(config=config), tmp / "model")
    q = random_orthonormal(NDIRS, 128, torch.Generator().manual_seed(0))
    save_directions(tmp / "run" / "directions.safetensors", q,
                    {"model": str(model_dir), "class_index": 207, "class_name": "golden retriever",
                     "truncation": 0.5, "path_size": PATH_SIZE})
    return Viewer(tmp / "run", device=device, progress=False)


def queries(n: int) -> list[str]:
    """n slider states: seed 3, one or two directions at amounts no earlier request used."""
    out = []
    for i in range(n):
        amounts = {i % NDIRS: round(-PATH_SIZE + 2 * PATH_SIZE * ((i * 0.618) % 1), 3)}
        if i % 2:
            amounts[(i * 7 + 1) % NDIRS] = round(PATH_SIZE * ((i * 0.382) % 1), 3)
        out.append(f"seed=3&trunc=0.5&a={format_amounts(amounts)}")
    return out


def timed(get, qs: list[str], warmup: int, sync) -> list[float]:
    for q in qs[:warmup]:
        get(q)
    times = []
    for q in qs[warmup:]:
        start = time.perf_counter()
        r = get(q)
        sync()
        times.append((time.perf_counter() - start) * 1000)
        assert r.status_code == 200, r.text
    return times


def summary(name: str, ms: list[float]) -> dict:
    ms = sorted(ms)
    return {"what": name, "median_ms": round(statistics.median(ms), 2),
            "p90_ms": round(ms[int(0.9 * (len(ms) - 1))], 2), "n": len(ms)}


def serve(app) -> tuple[str, callable]:
    import uvicorn

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    while not server.started:
        time.sleep(0.02)

    def stop():
        server.should_exit = True
        thread.join(10)
    return f"http://127.0.0.1:{port}", stop


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--device", default="cpu", help="cpu (small model) or cuda (full-size 128 px)")
    ap.add_argument("--requests", type=int, default=40, help="timed requests per figure")
    ap.add_argument("--warmup", type=int, default=5)
    ap.add_argument("--threads", type=int, default=1, help="torch CPU threads")
    ap.add_argument("--out", default=None, help="also write the rows as JSON here")
    args = ap.parse_args(argv)

    import httpx
    from starlette.testclient import TestClient

    torch.set_num_threads(args.threads)
    device = torch.device(args.device)
    sync = (lambda: torch.cuda.synchronize(device)) if device.type == "cuda" else (lambda: None)
    qs = queries(args.warmup + args.requests)
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        viewer = build(Path(tmp), device.type == "cuda", args.device)
        app = create_app(viewer)
        client = TestClient(app)
        rows.append(summary("in-process", timed(lambda q: client.get("/api/image?" + q), qs,
                                                args.warmup, sync)))
        url, stop = serve(app)
        try:
            with httpx.Client(base_url=url) as http:
                rows.append(summary("http", timed(lambda q: http.get("/api/image?" + q), qs,
                                                  args.warmup, sync)))
        finally:
            stop()

        class _Ok:
            status_code = 200

        def generate(q):
            s = viewer.parse_state(dict(p.split("=") for p in q.split("&")))
            G = viewer.generator(s)
            view_image(G, viewer.open_class(s.class_index).run.directions, s.seed, dict(s.amounts))
            return _Ok()
        rows.append(summary("generate", timed(generate, qs, args.warmup, sync)))
        resolution = int(viewer.model.config.output_dim)
    print(f"view: request -> PNG, {resolution} px, {args.device}, {machine(device)}")
    for r in rows:
        print(f"  {r['what']:<11} median {r['median_ms']:8.2f} ms   p90 {r['p90_ms']:8.2f} ms   "
              f"(n={r['n']})")
    if args.out:
        Path(args.out).write_text(json.dumps({"resolution": resolution, "device": args.device,
                                              "machine": machine(device), "rows": rows}, indent=1))


if __name__ == "__main__":
    main()
