"""Generators over a set of classes: the conditional protocol a pooled run trains on.

A pooled run learns ONE direction matrix over several classes: every training sample draws its
class from the set, and the fixed evaluation measures each class on the same draws. What it
needs from the generator is a conditional call:

    G(z, classes): z (B, z_dim), classes a (B,) int64 tensor of class indices -> G's output,
    with `z_dim` and `num_classes` (indices lie in 0..num_classes-1).

`BigGANGenerator` is one (it indexes its class embedding per sample, so a step over many
classes costs what a step over one does). `GeneratorList` makes one out of single-class
generators (class i is the list's i-th). `class_pool` decides, for what a caller handed over,
whether the run is pooled and over which classes.
"""
from __future__ import annotations

from typing import Any, Callable, Sequence

import torch

from ..foundation.errors import UserError


class GeneratorList:
    """Single-class generators G_i(z) as one conditional generator: G(z, classes) computes each
    class's rows with its own generator (one call per class present) and puts them back in
    order. Class i is the list's i-th generator; all must share z_dim."""

    def __init__(self, generators: Sequence[Callable]):
        self.generators = list(generators)
        if len(self.generators) < 1:
            raise UserError("a list of generators needs at least one.")
        dims = {int(g.z_dim) for g in self.generators}
        if len(dims) != 1:
            raise UserError(f"the generators have different latent sizes {sorted(dims)}; a "
                            f"pooled run needs one latent.")
        self.z_dim = dims.pop()
        self.num_classes = len(self.generators)
        self.classes = tuple(range(self.num_classes))
        res = {getattr(g, "resolution", None) for g in self.generators}
        if len(res) == 1 and None not in res:
            self.resolution = res.pop()

    def __call__(self, z: torch.Tensor, classes: torch.Tensor | None = None) -> Any:
        if classes is None:
            return self.generators[0](z)
        classes = classes.to("cpu")
        present = torch.unique(classes).tolist()
        if len(present) == 1:
            return self.generators[int(present[0])](z)
        parts, rows = [], []
        for c in present:
            idx = (classes == c).nonzero().flatten()
            parts.append(self.generators[int(c)](z[idx.to(z.device)]))
            rows.append(idx)
        order = torch.argsort(torch.cat(rows)).to(z.device)
        if isinstance(parts[0], (list, tuple)):
            return [torch.cat([p[i] for p in parts])[order] for i in range(len(parts[0]))]
        return torch.cat(parts)[order]


def class_pool(G: Any, classes: Sequence[int] | None = None) -> tuple[Any, tuple[int, ...] | None]:
    """(the generator to call, the pooled class set or None for a single-class run).

    G may be: a list or tuple of single-class generators (pooled over all of them, or over
    `classes`, positions in the list); a conditional generator with `num_classes` (pooled over
    `classes`, else over its own `classes` attribute when it holds two or more, else over all
    num_classes); or any plain generator G(z) (single-class: `classes` must be None). A set is
    sorted; a class given twice, one outside the generator's range, or a set of one are refused.
    """
    if isinstance(G, (list, tuple)):
        G = GeneratorList(G)
        if classes is None:
            classes = G.classes
    num = getattr(G, "num_classes", None)
    if classes is None:
        own = getattr(G, "classes", None)
        if own is not None:
            if len(own) < 2:
                return G, None                 # a generator bound to one class
            classes = own
        elif num is not None:
            classes = range(int(num))
        else:
            return G, None
    if num is None:
        raise UserError("a pooled run needs a conditional generator G(z, classes) with "
                        "`num_classes`, or a list of single-class generators.")
    chosen = [int(c) for c in classes]
    if len(chosen) < 2:
        raise UserError(f"a pooled run needs at least two classes, got {chosen}; for one class "
                        f"run without pooling.")
    seen: set[int] = set()
    for c in chosen:
        if not 0 <= c < int(num):
            raise UserError(f"class {c} is outside the generator's classes 0-{int(num) - 1}.")
        if c in seen:
            raise UserError(f"class {c} is given twice; give each class once.")
        seen.add(c)
    return G, tuple(sorted(chosen))
