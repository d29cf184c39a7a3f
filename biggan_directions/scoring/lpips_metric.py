"""The LPIPS metric: its ImageNet backbone (found, downloaded once, loaded without pickle) and reusable features."""
from __future__ import annotations

import os
import socket
import warnings
from pathlib import Path
from typing import Sequence

import torch
from torch import nn

from ..foundation.errors import UserError, first_line
from ..foundation.settings import one_of

NETS = ("alex", "vgg", "squeeze")
DEFAULT_NET = "alex"          # ScoreConfig.net's default


def backbone_checkpoint(net: str) -> tuple[str, str]:
    """(file name, URL) of the torchvision ImageNet checkpoint lpips loads for `net`.

    Read from torchvision's weight enums (lpips builds tv.alexnet / vgg16 / squeezenet1_1 with
    pretrained=True, i.e. IMAGENET1K_V1), e.g. 'alex' -> 'alexnet-owt-7be5be79.pth'.
    """
    from torchvision import models as tv     # deferred: torchvision takes seconds to import

    weights = {"alex": tv.AlexNet_Weights, "vgg": tv.VGG16_Weights,
               "squeeze": tv.SqueezeNet1_1_Weights}
    one_of("net", net, NETS)
    url = weights[net].IMAGENET1K_V1.url
    return url.rsplit("/", 1)[-1], url


def load_lpips(net: str = DEFAULT_NET, device: torch.device | str = "cpu", *,
               backbone: str | os.PathLike | None = None, download: bool = True) -> nn.Module:
    """lpips.LPIPS(net) in eval mode, frozen, on `device`.

    backbone: a torchvision checkpoint file of `net`'s architecture to use as the backbone
    (like lpips' own `model_path` for its linear layers), e.g. weights kept outside torch's
    cache. None (the default): torchvision's ImageNet checkpoint in torch.hub.get_dir()/checkpoints
    ($TORCH_HOME/hub/checkpoints), downloaded once when absent (download=True, 30 s socket
    timeout); when it cannot be had, a UserError says which file to put where.
    The file is read with torch.load(weights_only=True) into torchvision's architecture,
    strictly, never unpickled with code (torchvision's own loader would). lpips' linear layers
    ship with the package. Loading leaves the caller's global RNG as it was.
    """
    import lpips                    # deferred: slow to import (torchvision); only scoring needs it

    if backbone is None:
        path = ensure_backbone(net, download)
    else:
        backbone_checkpoint(net)             # checks the net's name first
        path = Path(backbone)
        if not path.is_file():
            raise UserError(f"{path}: no such LPIPS backbone file (a torchvision {net} checkpoint).")
    with warnings.catch_warnings(), torch.random.fork_rng(devices=[]):
        warnings.simplefilter("ignore")      # torchvision's 'pretrained is deprecated' notices
        metric = lpips.LPIPS(net=net, verbose=False, pnet_rand=True)   # random init drawn here,
        _load_backbone(metric, net, path, backbone_checkpoint(net)[1])  # then replaced by the file
    return metric.eval().requires_grad_(False).to(device)


def ensure_backbone(net: str = DEFAULT_NET, download: bool = True) -> Path:
    """The path of the backbone's checkpoint in torchvision's cache, downloaded once when
    absent (download=True); UserError saying which file to put where when it cannot be had."""
    file, url = backbone_checkpoint(net)
    path = Path(torch.hub.get_dir()) / "checkpoints" / file
    if path.is_file():
        return path
    hint = (f"put {path.name} in {path.parent}/ (from {url}) or set TORCH_HOME to a folder "
            f"holding hub/checkpoints/{path.name}")
    if not download:
        raise UserError(f"LPIPS '{net}' needs its ImageNet backbone: {hint}.")
    previous = socket.getdefaulttimeout()
    socket.setdefaulttimeout(30)             # torch.hub's download has no timeout of its own
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        torch.hub.download_url_to_file(url, str(path), progress=True)
    except Exception as e:  # noqa: BLE001 - URLError, timeouts, HTTP and disk errors alike
        path.unlink(missing_ok=True)
        raise UserError(f"LPIPS '{net}' backbone could not be downloaded ({first_line(e)}); "
                        f"{hint}.") from None
    finally:
        socket.setdefaulttimeout(previous)
    return path


def _load_backbone(metric: nn.Module, net: str, path: Path, url: str) -> None:
    """Copy torchvision's checkpoint at `path` into lpips' backbone slices (which hold
    torchvision's `features` modules under their original indices)."""
    import torchvision              # deferred: takes seconds to import

    arch = {"alex": torchvision.models.alexnet, "vgg": torchvision.models.vgg16,
            "squeeze": torchvision.models.squeezenet1_1}[net]
    bad = f"{path}: not a usable {net} checkpoint"
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
        model = arch(weights=None)
        model.load_state_dict(state)         # strict: every key, every shape
    except Exception as e:  # noqa: BLE001 - corrupt, truncated, pickled code, wrong keys alike
        raise UserError(f"{bad} ({first_line(e)}); replace it with {url}.") from None
    with torch.no_grad():
        for part in metric.net.children():   # slice1, slice2, ...
            for index, module in part.named_children():
                module.load_state_dict(model.features[int(index)].state_dict())


def lpips_features(metric: nn.Module, images: torch.Tensor) -> list[torch.Tensor]:
    """Per-layer unit-normalised LPIPS features of (B, 3, H, W) images in [-1, 1].

    Returns one (B, C_l, H_l, W_l) tensor per backbone layer: exactly what lpips.LPIPS.forward
    computes for each input (v0.1 scaling layer, backbone, channel normalisation).
    """
    import lpips                    # deferred: slow to import (torchvision); only scoring needs it

    outs = metric.net.forward(metric.scaling_layer(images))
    return [lpips.normalize_tensor(o) for o in outs]


def lpips_distance(metric: nn.Module, feats_a: Sequence[torch.Tensor],
                   feats_b: Sequence[torch.Tensor]) -> torch.Tensor:
    """(N,) LPIPS between feature lists of equal shapes (N, C_l, H_l, W_l): the learned linear
    layer on the squared feature difference, averaged over space, summed over layers. Equals
    lpips.LPIPS.forward(a, b, normalize=False).flatten() on the images the features came from."""
    total = None
    for lin, a, b in zip(metric.lins, feats_a, feats_b):
        d = lin((a - b) ** 2).mean(dim=(2, 3))   # (N, 1)
        total = d if total is None else total + d
    return total.flatten()
