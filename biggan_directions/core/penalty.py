"""The Hessian Penalty (Peebles et al., ECCV 2020): a pure function, batched or sequential."""
from __future__ import annotations

from typing import Callable, Sequence, Union

import torch
from torch.utils.checkpoint import checkpoint

from .published import PUBLISHED_EPSILON, PUBLISHED_K


Outputs = Union[torch.Tensor, Sequence[torch.Tensor]]
MODES = ("batched", "sequential")
REDUCTIONS = ("max", "mean")


def hessian_penalty(G: Callable[[torch.Tensor], Outputs], z: torch.Tensor, k: int = PUBLISHED_K,
                    epsilon: float = PUBLISHED_EPSILON,
                    reduction: str | Callable[[torch.Tensor], torch.Tensor] = "max",
                    G_z: Outputs | None = None, generator: torch.Generator | None = None,
                    return_separately: bool = False, mode: str = "batched",
                    chunk_size: int | None = None) -> torch.Tensor | list[torch.Tensor]:
    """Hessian Penalty of G at z: how far G's Hessian w.r.t. its input is from diagonal.

    For each output element y = G(z)_p with Hessian H (w.r.t. all entries of one sample's input):

        L = Var_v[ v^T H v ] = 2 * sum_{i != j} H_ij^2,    v ~ Rademacher (entries +-1),

    estimated with k draws v_1..v_k and central finite differences

        v^T H v ~= d_v = ( G(z + eps v) - 2 G(z) + G(z - eps v) ) / eps^2,

    exact when G is quadratic. The unbiased variance of d over the k draws is taken per output
    element, then reduced over ALL remaining elements (batch included) with `reduction`; when G
    returns several tensors (multi-layer penalty) the per-tensor terms are summed. Cost: 1 + 2k
    evaluations of G (2k with `G_z`). Scale note (the authors'): the loss scales like 1/eps^4:
    each d divides by eps^2 and the variance squares that, so any part of the numerator that
    does not shrink like eps^2 (ReLU kinks, rounding noise of low-precision outputs) is blown
    up; changing eps changes the loss's scale, not only its accuracy, so compare runs at one eps.

    G:         callable, (R, ...) -> tensor (R, ...) or a list/tuple of such tensors. It must act
               row by row (row r of each output depends on row r of the input only: eval mode,
               no batch statistics, fixed noise) and be deterministic across calls. It is always
               called on m*B rows, m >= 1 whole copies of the batch stacked along dim 0, so row r
               belongs to sample r % B; a closure over per-sample data (e.g. BigGAN latents while
               z is the direction weights w) tiles that data with `tile_batch(data, rows)`.
    z:         (B, ...) floating input; the gradient flows to z and to whatever G closes over.
    k:         number of Rademacher draws, >= 2 (the variance needs two).
    epsilon:   finite-difference step, > 0 (published: 0.1).
    reduction: 'max' (the paper's general default), 'mean' (used for BigGAN images), or a
               callable mapping the per-element variance tensor (B, ...) to a scalar.
    G_z:       G(z) when already computed (tensor or list matching G's output); skips that pass.
    generator: torch.Generator on the CPU. The k draws, of z's shape, are made on the CPU and
               then moved to z's device and dtype, so a seed gives the same draws on any device.
               None uses torch's global RNG.
    return_separately: return a list with one scalar per output tensor instead of their sum.
    mode:      'batched': every evaluation in ONE call of G on the (1+2k)B-row batch
               [z; z+eps v_1..k; z-eps v_1..k], then split (fastest: one big forward);
               'sequential': the paper's loop, one call of G per evaluation of B rows.
               Both give the same value and gradient for the same draws.
    chunk_size: batched mode only: call G on at most this many rows at a time (rounded down to a
               whole number of batch copies, at least B rows per call). Same value and gradient;
               with autograd on, each chunk is checkpointed (its forward runs again in backward,
               about +1 forward of cost), so the memory held for backward is one chunk's
               activations plus G's outputs instead of all (1+2k)B rows' activations.

    Returns a scalar tensor (or a list of them), differentiable, in G's output dtype promoted
    to at least float32 (the differences of low-precision outputs are taken in float32).
    """
    _check_arguments(z, k, epsilon, reduction, mode, chunk_size, generator)
    batch = z.shape[0]
    v = _rademacher((k, *z.shape), generator).to(device=z.device, dtype=z.dtype)  # (k, B, ...)
    step = epsilon * v

    base = None if G_z is None else _as_list(G_z)
    if mode == "batched":
        parts = ([] if base is not None else [z.unsqueeze(0)]) + [z + step, z - step]
        rows = torch.cat(parts).flatten(0, 1)                     # ((1+2k)B or 2kB, ...)
        outs = _call_in_chunks(G, rows, batch, chunk_size)
        copies = rows.shape[0] // batch
        outs = [y.unflatten(0, (copies, batch)) for y in outs]     # (1+2k or 2k, B, ...)
        if base is None:
            base = [y[0] for y in outs]
            outs = [y[1:] for y in outs]
        _check_same_count(outs, base)
        plus = [y[:k] for y in outs]                               # (k, B, ...)
        minus = [y[k:] for y in outs]
        diffs = [_second_difference(p, m, b, epsilon) for p, m, b in zip(plus, minus, base)]
    else:
        if base is None:
            base = _call(G, z, batch)
        per_draw = []                                              # k lists of (B, ...) tensors
        for s in range(k):
            plus, minus = _call(G, z + step[s], batch), _call(G, z - step[s], batch)
            _check_same_count(plus, base)
            per_draw.append([_second_difference(p, m, b, epsilon)
                             for p, m, b in zip(plus, minus, base)])
        diffs = [torch.stack(d) for d in zip(*per_draw)]           # (k, B, ...) per tensor

    penalties = [_reduce(d.var(dim=0, correction=1), reduction) for d in diffs]
    if return_separately:
        return penalties
    return sum(penalties[1:], penalties[0])


def tile_batch(data: torch.Tensor, rows: int) -> torch.Tensor:
    """Stack whole copies of per-sample `data` (B, ...) to `rows` rows (a multiple of B), the
    layout `hessian_penalty` calls G with: row r is sample r % B."""
    batch = data.shape[0]
    if batch == 0 or rows % batch:
        raise ValueError(f"cannot tile a batch of {batch} to {rows} rows (not a multiple)")
    return data.repeat(rows // batch, *([1] * (data.dim() - 1)))


def _check_arguments(z, k, epsilon, reduction, mode, chunk_size, generator) -> None:
    if not isinstance(z, torch.Tensor) or not z.is_floating_point() or z.dim() < 1 or z.shape[0] < 1:
        raise ValueError("z must be a floating-point tensor of shape (B, ...) with B >= 1")
    if isinstance(k, bool) or not isinstance(k, int) or k < 2:
        raise ValueError(f"k={k!r}: the variance over draws needs an integer k >= 2")
    if not float(epsilon) > 0.0:
        raise ValueError(f"epsilon={epsilon!r}: the finite-difference step must be > 0")
    if mode not in MODES:
        raise ValueError(f"mode={mode!r}: use one of {', '.join(MODES)}")
    if not callable(reduction) and reduction not in REDUCTIONS:
        raise ValueError(f"reduction={reduction!r}: use one of {', '.join(REDUCTIONS)} or a callable")
    if chunk_size is not None and (isinstance(chunk_size, bool) or not isinstance(chunk_size, int)
                                   or chunk_size < 1):
        raise ValueError(f"chunk_size={chunk_size!r}: use a positive integer or None")
    if generator is not None and generator.device.type != "cpu":
        raise ValueError("generator must be a CPU torch.Generator (draws are made on the CPU so "
                         "a seed gives the same draws on every device)")


def _rademacher(shape: tuple[int, ...], generator: torch.Generator | None) -> torch.Tensor:
    """Entries +-1 with probability 1/2 each, int8, drawn on the CPU."""
    bits = torch.randint(0, 2, shape, generator=generator, dtype=torch.int8)
    return bits.mul_(2).sub_(1)


def _as_list(out: Outputs) -> list[torch.Tensor]:
    if isinstance(out, torch.Tensor):
        return [out]
    if isinstance(out, (list, tuple)) and out and all(isinstance(t, torch.Tensor) for t in out):
        return list(out)
    raise ValueError("G (and G_z) must give a tensor or a non-empty list/tuple of tensors, "
                     f"got {type(out).__name__}")


def _call(G, x: torch.Tensor, batch: int) -> list[torch.Tensor]:
    outs = _as_list(G(x))
    for y in outs:
        if y.dim() < 1 or y.shape[0] != x.shape[0]:
            raise ValueError(f"G mapped {x.shape[0]} input rows to an output of shape "
                             f"{tuple(y.shape)}; it must keep the batch dimension first")
    return outs


def _call_in_chunks(G, rows: torch.Tensor, batch: int, chunk_size: int | None) -> list[torch.Tensor]:
    """G on all rows, in calls of whole batch copies of at most chunk_size rows (>= batch).

    With autograd on, each chunk is checkpointed: only its outputs are kept, and its forward is
    run again during backward, so the memory held for backward is one chunk's activations.
    """
    if chunk_size is None or chunk_size >= rows.shape[0]:
        return _call(G, rows, batch)
    step = max(1, chunk_size // batch) * batch
    if torch.is_grad_enabled():
        def run(chunk):
            return tuple(_call(G, chunk, batch))

        pieces = [list(checkpoint(run, chunk, use_reentrant=False)) for chunk in rows.split(step)]
    else:
        pieces = [_call(G, chunk, batch) for chunk in rows.split(step)]
    _check_same_count(*pieces)
    return [torch.cat(ys) for ys in zip(*pieces)]


def _check_same_count(*lists: list) -> None:
    if len({len(x) for x in lists}) > 1:
        raise ValueError("G returned a different number of tensors across calls (or G_z does not "
                         "match G's output)")


def _second_difference(plus: torch.Tensor, minus: torch.Tensor, base: torch.Tensor,
                       epsilon: float) -> torch.Tensor:
    """(plus - 2 base + minus) / eps^2, in at least float32; base broadcasts over the draws."""
    if base.shape != plus.shape[-base.dim():]:
        raise ValueError(f"G(z) has shape {tuple(base.shape)} but G's perturbed output has "
                         f"{tuple(plus.shape[-base.dim():])} per draw; check G_z")
    dtype = torch.promote_types(plus.dtype, torch.float32)
    plus, minus, base = plus.to(dtype), minus.to(dtype), base.to(dtype)
    return (plus + minus - 2.0 * base) / (epsilon * epsilon)


def _reduce(variance: torch.Tensor, reduction) -> torch.Tensor:
    if reduction == "max":
        return variance.max()
    if reduction == "mean":
        return variance.mean()
    out = reduction(variance)
    if not isinstance(out, torch.Tensor) or out.numel() != 1:
        raise ValueError("a reduction callable must return a scalar tensor")
    return out.reshape(())
