"""biggan-directions: interpretable BigGAN directions with the Hessian Penalty (public API).

Names are imported lazily on first use, so `import biggan_directions` (and commands such as
`biggan-directions classes`) stay fast and do not load torch until it is needed.
"""
from importlib import import_module

_EXPORTS = {
    "UserError": "errors",
    "resolve_device": "device",
    "resolve_class": "classes", "search_classes": "classes", "ImageNetClass": "classes",
    "load_biggan": "weights", "save_biggan": "weights",
    "Generator": "generator", "BigGANGenerator": "generator",
    "latents_for_seeds": "generator", "truncated_normal": "generator",
    "hessian_penalty": "penalty",
    "DirectionMatrix": "directions", "orthonormalize": "directions",
    "load_directions": "directions", "save_directions": "directions",
    "easing": "walks", "walk_latents": "walks",
    "open_run": "runs", "resolve_run_settings": "runs",
    "sefa_directions": "sefa", "ganspace_directions": "ganspace",
    "DiscoverConfig": "discover_config", "discover_directions": "discovery", "run_discover": "discover",
}

__all__ = sorted(_EXPORTS)


def __getattr__(name: str):
    if name in _EXPORTS:
        value = getattr(import_module(f".{_EXPORTS[name]}", __name__), name)
        globals()[name] = value
        return value
    raise AttributeError(f"module 'biggan_directions' has no attribute {name!r}")


def __dir__():
    return __all__
