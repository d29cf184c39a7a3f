"""Test support shared by the tests and the benchmarks: the small random BigGAN, an LPIPS backbone
file, a generator with a known Hessian basis, and helpers several test files use (a call that must
not happen, a signal sent once a run has logged some steps, a served command visited in-process).

Nothing here is product code: the package has no test-only paths. Benchmarks import this module
as `tests.support` (run as `python -m benchmarks.<name>` from the repository root) to time the
exact model the tests use.
"""
from __future__ import annotations

import atexit
import math
import shutil
import subprocess
import tempfile
import time
from pathlib import Path
from typing import Any, Callable

import torch

from biggan_directions.core.directions import random_orthonormal, save_directions

# The smallest fixed evaluation a run accepts (one latent per direction, two random references,
# two Rademacher draws): for tests that look at anything but the evaluation's size, which is
# most of a small run's time at its defaults (the auto size's floor is 128 samples, 4 references).
TINY_EVAL = dict(eval_per_direction=1, eval_references=2, eval_k=2)
TINY_EVAL_ARGS = ["--eval-per-direction", "1", "--eval-references", "2", "--eval-k", "2"]

# 32 px, ~0.5 M parameters: 4 -> 8 -> 16 -> 32 with attention before the last block.
SMALL_CONFIG = dict(output_dim=32, z_dim=128, class_embed_dim=128, channel_width=4, num_classes=1000,
                    layers=[(True, 16, 8), (True, 8, 4), (False, 4, 2), (True, 2, 1)],
                    attention_layer_position=3)


def build_small_biggan(seed: int = 0, config: dict | None = None):
    """A random-weight BigGAN (SMALL_CONFIG unless `config`) that gives finite, deterministic
    output in eval mode.

    Two traps of pytorch-pretrained-biggan: generator.bn.weight/bias are created uninitialised,
    and the spectral-norm vectors start unconverged (NaN in eval mode), so a few train-mode
    forwards under no_grad converge them first.
    """
    from pytorch_pretrained_biggan import BigGAN, BigGANConfig

    torch.manual_seed(seed)
    model = BigGAN(BigGANConfig(**(config or SMALL_CONFIG)))
    with torch.no_grad():
        model.generator.bn.weight.fill_(1.0)
        model.generator.bn.bias.fill_(0.0)
        model.train()
        one_hot = torch.zeros(4, model.config.num_classes)
        one_hot[:, 207 % model.config.num_classes] = 1
        for _ in range(5):
            model(torch.randn(4, model.config.z_dim), one_hot, 0.5)
    model.eval()
    return model


_BACKBONES: dict[tuple[str, int], Path] = {}   # (net, seed) -> this process's private copy


def write_backbone_checkpoint(folder: str | Path, net: str = "alex", seed: int = 1234) -> Path:
    """A seeded random torchvision backbone saved under torchvision's own file name in `folder`
    (e.g. folder/alexnet-owt-7be5be79.pth): a stand-in for the ImageNet weights that LPIPS
    loads, for tests that cannot download them. Returns the file's path.

    Each (net, seed) is built and saved once per process (AlexNet: 61 M parameters, a 244 MB
    file, ~1 s) into a private folder, then copied: a test that damages its copy damages no other.
    """
    import torchvision

    from biggan_directions.scoring.lpips_metric import backbone_checkpoint

    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / backbone_checkpoint(net)[0]
    kept = _BACKBONES.get((net, seed))
    if kept is None or not kept.is_file():
        arch = {"alex": torchvision.models.alexnet, "vgg": torchvision.models.vgg16,
                "squeeze": torchvision.models.squeezenet1_1}[net]
        private = Path(tempfile.mkdtemp(prefix="backbone-"))
        atexit.register(shutil.rmtree, private, True)
        kept = private / path.name
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(seed)
            torch.save(arch(weights=None).state_dict(), kept)
        _BACKBONES[(net, seed)] = kept
    shutil.copyfile(kept, path)
    return path


class HiddenBasis:
    """G(z) = C f(R z), f(u) = tanh(u) + 0.1 u^3: its Hessian is diagonal exactly in R's rows."""

    def __init__(self, d: int = 8, outputs: int = 16, seed: int = 0):
        g = torch.Generator().manual_seed(seed)
        self.R = torch.linalg.qr(torch.randn(d, d, generator=g, dtype=torch.float64))[0].float()
        self.C = torch.randn(outputs, d, generator=g)
        self.z_dim = d

    def __call__(self, z: torch.Tensor) -> torch.Tensor:
        u = z @ self.R.T
        return (torch.tanh(u) + 0.1 * u ** 3) @ self.C.T


class ClassBases:
    """A conditional generator with a planted basis per class: G(z, classes) gives, for a
    sample of class c, C_c f(R_c z) with f(u) = tanh(u) + 0.1 u^3, so its Hessian is diagonal
    exactly in R_c's rows. shared=True plants one R for every class (the C_c still differ).
    `num_classes`, `z_dim`: the conditional protocol a pooled run needs; `for_class(c)` is
    class c alone as a plain generator G(z) (what a per-class run trains on)."""

    def __init__(self, num_classes: int = 3, d: int = 6, outputs: int = 12,
                 shared: bool = False, seed: int = 0):
        g = torch.Generator().manual_seed(seed)
        bases = [torch.linalg.qr(torch.randn(d, d, generator=g, dtype=torch.float64))[0].float()
                 for _ in range(1 if shared else num_classes)]
        self.R = torch.stack(bases * num_classes if shared else bases)      # (n, d, d)
        self.C = torch.randn(num_classes, outputs, d, generator=g)          # (n, out, d)
        self.z_dim, self.num_classes = d, num_classes

    def __call__(self, z: torch.Tensor, classes: torch.Tensor) -> torch.Tensor:
        u = torch.einsum("bij,bj->bi", self.R[classes], z)
        return torch.einsum("boi,bi->bo", self.C[classes], torch.tanh(u) + 0.1 * u ** 3)

    def for_class(self, c: int):
        def G(z: torch.Tensor) -> torch.Tensor:
            return self(z, torch.full((z.shape[0],), c, dtype=torch.long))
        G.z_dim = self.z_dim
        return G


def forbid(monkeypatch, target: Any, name: str, message: str) -> None:
    """Replace target.name (a module's function, a class's method) with one that fails the test
    with `message` when called: e.g. "LPIPS loaded before the options were checked". Patch the
    name where the caller looks it up (the calling module), or the patch changes nothing."""
    def not_now(*args, **kwargs):
        raise AssertionError(message)
    monkeypatch.setattr(target, name, not_now)


def default_hangup() -> None:
    """A Popen preexec_fn: the child takes SIGHUP's default action even when the test runs under
    nohup (which makes SIGHUP ignored, and a child inherits that): a test that sends SIGHUP
    tests the terminal closing, not nohup."""
    import signal

    signal.signal(signal.SIGHUP, signal.SIG_DFL)


def signal_when_logged(proc: subprocess.Popen, out: Path, sig: int, steps: int = 3,
                       timeout: float = 120.0) -> list[Path]:
    """Wait until the discover run `proc` writes under `out` has logged step `steps` in its
    log.csv (<out>/<model>/<class>/log.csv; read from its last row's step, since the log may
    hold a step-0 row), or it exits, or `timeout` seconds pass; then send it `sig`. The
    checkpoint it saves is then at step `steps` or later. Returns the log files found."""
    logs: list[Path] = []
    deadline = time.time() + timeout
    while time.time() < deadline and proc.poll() is None:   # wait until a few steps are done
        logs = list(Path(out).glob("*/*/log.csv"))
        rows = logs[0].read_text().splitlines()[1:] if logs else []
        last = rows[-1].split(",", 1)[0] if rows else ""
        if last.isdigit() and int(last) >= steps:
            break
        time.sleep(0.02)
    proc.send_signal(sig)
    return logs


def serve_once(cli, args: list[str], visit: Callable[[str], Any]) -> tuple[Any, list]:
    """Invoke a command that serves with uvicorn (`view`) through click's CliRunner, in this
    process: uvicorn's Server.run is swapped for one that serves in a thread, calls
    visit(what the command has printed so far) once the server has started, then stops it.
    Returns (the CliRunner result, [what visit returned], or [] when the command never served);
    an exception raised by visit is raised here. (A test of the real process, its signals and
    its exit code starts it with subprocess instead.)"""
    import sys
    import threading

    import uvicorn
    from click.testing import CliRunner

    serve_forever, visited, failed = uvicorn.Server.run, [], []

    def serve_visit_stop(server, sockets=None):
        thread = threading.Thread(target=serve_forever, args=(server,), kwargs={"sockets": sockets})
        thread.start()
        try:
            deadline = time.monotonic() + 60
            while not server.started and thread.is_alive() and time.monotonic() < deadline:
                time.sleep(0.01)
            sys.stdout.flush()                  # CliRunner's capture: what was printed so far
            visited.append(visit(sys.stdout.buffer.getvalue().decode()))
        except BaseException as e:              # noqa: BLE001 - raised again after the command
            failed.append(e)
        finally:
            server.should_exit = True
            thread.join(30)

    uvicorn.Server.run = serve_visit_stop
    try:
        result = CliRunner().invoke(cli, args, catch_exceptions=True)
    finally:
        uvicorn.Server.run = serve_forever
    if failed:
        raise failed[0]
    return result, visited


def check_class_switching(client, refusal: str) -> None:
    """A view serving classes 207 and 1 (a pooled run, or a batch): /api/info lists them, each
    class gives its own image, another class is refused with `refusal`, and the command line
    carries the class asked for."""
    info = client.get("/api/info").json()
    assert [c["index"] for c in info["classes"]] == [207, 1]
    assert client.get("/api/info?cls=1").json()["class_name"] == "goldfish"
    a, b = (client.get(f"/api/image?seed=0&cls={c}").content for c in (207, 1))
    assert a != b
    r = client.get("/api/image?cls=5")
    assert r.status_code == 400 and refusal in r.json()["error"]
    assert "--class 1" in client.get("/api/command?cls=1&seed=2").json()["command"]


def make_run(folder: str | Path, model_dir: str | Path, *, ndirs: int, seed: int, truncation: float,
             path_size: float, name: str = "directions.safetensors", **meta: Any) -> Path:
    """A run as score, render and view open it: <folder>/<name> holding a seeded random
    orthonormal (ndirs, 128) matrix whose metadata names `model_dir`, class 207 (golden
    retriever), `truncation` and `path_size`; `meta` adds or overrides fields (None drops one).
    Returns the directions file."""
    q = random_orthonormal(ndirs, 128, torch.Generator().manual_seed(seed))
    info = {"model": str(model_dir), "class_index": 207, "class_name": "golden retriever",
            "truncation": truncation, "path_size": path_size, **meta}
    return save_directions(Path(folder) / name, q, {k: v for k, v in info.items() if v is not None})


# ---------------------------------------------------------------- a scene with planted factors
# Each planted coordinate's whole walk from -P to +P at PLANTED_PATH does this (0-based latent
# coordinate, label, measure, amount); coordinates 10 and 11 do nothing. (tests/test_describe.py)
PLANTED_PATH = 2.0
PLANTED = [(0, "shift-x", "shift_x_fraction", 0.16), (1, "shift-y", "shift_y_fraction", -0.12),
           (2, "zoom", "scale_ratio", 1.4), (3, "rotation", "rotation_degrees", 30.0),
           (4, "brightness", "brightness_delta", 20.0), (5, "contrast", "contrast_ratio", 2.0),
           (6, "saturation", "saturation_ratio", 1.6), (7, "color:yellow", "color_shift_b", 24.0),
           (8, "background", "background_share", None), (9, "shape", None, None)]
PLANTED_EMPTY = (10, 11)


def lab_to_rgb(lab: torch.Tensor) -> torch.Tensor:
    """(B, 3, H, W) CIELAB (D65) -> sRGB in [0, 1], clamped (the textbook formulas)."""
    L, a, b = lab.unbind(1)
    fy = (L + 16) / 116
    fx, fz = fy + a / 500, fy - b / 200

    def finv(t):
        return torch.where(t > 6 / 29, t ** 3, 3 * (6 / 29) ** 2 * (t - 4 / 29))

    xyz = torch.stack([0.95047 * finv(fx), finv(fy), 1.08883 * finv(fz)], 1)
    m = torch.tensor([[3.2406, -1.5372, -0.4986], [-0.9689, 1.8758, 0.0415],
                      [0.0557, -0.2040, 1.0570]], dtype=lab.dtype)
    lin = torch.einsum("ij,bjhw->bihw", m, xyz).clamp(0, 1)
    return torch.where(lin <= 0.0031308, 12.92 * lin, 1.055 * lin.clamp_min(1e-12) ** (1 / 2.4) - 0.055)


class PlantedScene(torch.nn.Module):
    """A generator with known factors: a textured rounded trefoil (the disc) over a plain background, 64 px, z_dim 12.

    Over a walk from -PLANTED_PATH to +PLANTED_PATH along coordinate j, the disc moves as PLANTED
    says: shifted (0: right, 1: up), zoomed (2), turned counter-clockwise on screen (3), and
    recoloured in CIELAB (4: L* up, 5: L* contrast, 6: chroma, 7: b* up, i.e. yellower); 8
    brightens the background only; 9 stretches the disc into an ellipse (no similarity or colour
    change explains it); 10 and 11 do nothing. forward: (B, 12) -> (B, 3, 64, 64) in [-1, 1]."""

    z_dim, resolution, truncation = 12, 64, 1.0

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        B, R = z.shape[0], self.resolution
        z = z.float()
        rate = {k: amount for k, _, _, amount in PLANTED if amount is not None}
        per = 1 / (2 * PLANTED_PATH)                                       # a unit's share of a walk
        tx = 2 * rate[0] * per * z[:, 0]                                   # normalised coords: width 2
        ty = 2 * rate[1] * per * z[:, 1]
        scale = torch.exp(math.log(rate[2]) * per * z[:, 2])
        theta = math.radians(rate[3]) * per * z[:, 3]
        stretch = torch.exp(0.25 * per * z[:, 9])
        grid = (torch.arange(R, dtype=torch.float32) + 0.5) / R * 2 - 1
        y, x = torch.meshgrid(grid, grid, indexing="ij")                   # (R, R), y down
        px, py = x - tx.view(B, 1, 1), y - ty.view(B, 1, 1)
        c, s = torch.cos(theta).view(B, 1, 1), torch.sin(theta).view(B, 1, 1)
        # screen = t + scale * Rccw(theta) u, Rccw = [[c, s], [-s, c]] with y down; invert it
        ux = (c * px - s * py) / scale.view(B, 1, 1)
        uy = (s * px + c * py) / scale.view(B, 1, 1)
        ux, uy = ux / stretch.view(B, 1, 1), uy * stretch.view(B, 1, 1)
        radius = 0.45 * (1 + 0.2 * torch.cos(3 * torch.atan2(uy, ux)))      # a rounded trefoil
        alpha = torch.sigmoid((radius - torch.sqrt(ux ** 2 + uy ** 2)) / 0.02)
        pattern = torch.sin(9 * ux) * torch.sin(9 * uy) + 0.5 * torch.sin(13 * (ux + 0.6 * uy))
        L = (50 + rate[4] * per * z[:, 4]).view(B, 1, 1) \
            + 20 * torch.exp(math.log(rate[5]) * per * z[:, 5]).view(B, 1, 1) * pattern
        chroma = torch.exp(math.log(rate[6]) * per * z[:, 6]).view(B, 1, 1)
        hues = torch.sin(5 * ux - 4 * uy)                                  # a second pattern, in colour
        a = chroma * (12 + 18 * hues)
        b = chroma * (8 - 14 * hues) + (rate[7] * per * z[:, 7]).view(B, 1, 1)
        bgL = (75 + 25 * per * z[:, 8]).view(B, 1, 1) + 4 * x
        obj = torch.stack([L, a, b], 1)                                    # (B, 3, R, R)
        bg = torch.stack([bgL, torch.full_like(bgL, -4.0), torch.full_like(bgL, -12.0)], 1)
        lab = alpha.unsqueeze(1) * obj + (1 - alpha.unsqueeze(1)) * bg
        return lab_to_rgb(lab) * 2 - 1
