"""biggan-directions: interpretable BigGAN directions with the Hessian Penalty (public API).

Names are imported lazily on first use, so `import biggan_directions` (and commands such as
`biggan-directions classes`) stay fast and do not load torch until it is needed.
"""
from importlib import import_module

_EXPORTS = {
    "UserError": "foundation.errors",
    "resolve_device": "runtime.device",
    "resolve_class": "models.classes", "search_classes": "models.classes",
    "ImageNetClass": "models.classes",
    "load_biggan": "models.weights", "save_biggan": "models.weights",
    "Generator": "models.generator", "BigGANGenerator": "models.generator",
    "latents_for_seeds": "models.generator", "truncated_normal": "models.generator",
    "hessian_penalty": "core.penalty",
    "DirectionMatrix": "core.directions", "orthonormalize": "core.directions",
    "load_directions": "core.directions", "save_directions": "core.directions",
    "easing": "media.walks", "walk_latents": "media.walks",
    "open_run": "runs.layout", "resolve_run_settings": "runs.layout",
    "sefa_directions": "methods.sefa", "ganspace_directions": "methods.ganspace",
    "DiscoverConfig": "methods.config", "discover_directions": "methods.hessian",
    "run_discover": "runs.discover",
    "describe_directions": "describe.describe", "DescribeConfig": "describe.config",
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
