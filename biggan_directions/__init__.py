"""biggan-directions: interpretable BigGAN directions with the Hessian Penalty (public API)."""
from .errors import UserError
from .device import resolve_device
from .generator import BigGANGenerator, Generator, latents_for_seeds, truncated_normal
from .directions import DirectionMatrix, load_directions, save_directions, orthonormalize
from .walks import easing, walk_latents

__all__ = [
    "UserError", "resolve_device", "BigGANGenerator", "Generator", "latents_for_seeds",
    "truncated_normal", "DirectionMatrix", "load_directions", "save_directions",
    "orthonormalize", "easing", "walk_latents",
]
