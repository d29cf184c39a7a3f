"""Click options built from the config dataclasses, shared options, and the list types users type."""
from __future__ import annotations

import inspect
from dataclasses import Field
from typing import Any, Callable

import click
from click.core import ParameterSource

from ..foundation.errors import UserError
from ..foundation.ranges import parse_int_list
from ..foundation.settings import cli_fields, default_of, help_of, option_name
from ..runtime.settings import DEVICE_HELP, THREADS_HELP, Runtime

CONTEXT_SETTINGS = dict(help_option_names=["-h", "--help"], max_content_width=100,
                        show_default=True)


# ---------------------------------------------------------------- config dataclass -> options
def options_from(cls, *, exclude: tuple[str, ...] = (), only: tuple[str, ...] | None = None,
                 prefix: str = "", help: dict[str, str] | None = None) -> Callable:
    """A decorator adding one click option per CLI field of config dataclass `cls`.

    Every option's click default is None, so an option not given leaves the dataclass default
    in force (the help shows that default); `config_from` builds the config. The parameter of
    field `name` is `prefix + name`, its option `--<prefix-><name-with-dashes>` (or the field's
    own `option`). `help` replaces a field's help text for this command.
    """
    chosen = [f for f in cli_fields(cls) if f.name not in exclude and (only is None or f.name in only)]

    def decorator(func):
        for f in reversed(chosen):
            func = _option(f, prefix, (help or {}).get(f.name))(func)
        names = dict(getattr(func, "__setting_options__", {}))
        names.update({f.name: _name(f, prefix) for f in chosen})
        func.__setting_options__ = names
        return func
    return decorator


def _name(f: Field, prefix: str) -> str:
    return "--" + prefix.replace("_", "-") + option_name(f)[2:] if prefix else option_name(f)


def _option(f: Field, prefix: str, help_text: str | None) -> Callable:
    meta = f.metadata
    default = f.default
    shown = meta.get("shown") or ("none" if default is None else
                                  (",".join(map(str, default)) if isinstance(default, tuple) else str(default)))
    kwargs: dict[str, Any] = dict(default=None, help=help_of(f, help_text), show_default=shown)
    if meta.get("shown") is None and default is not None and not isinstance(default, tuple) \
            and meta.get("parse") is None:
        kwargs.update(default=default, show_default=True)   # the dataclass's own default
    name = _name(f, prefix)
    if meta.get("choices"):
        kwargs["type"] = click.Choice(list(meta["choices"]))
    elif meta.get("parse") is not None:
        kwargs["type"] = str
        kwargs["metavar"] = meta.get("metavar") or "TEXT"
    elif isinstance(default, bool) or "bool" in str(f.type):
        return click.option(f"{name}/--no-{name[2:]}", prefix + f.name, **kwargs)
    else:
        kwargs["type"] = _scalar_type(f)
        if meta.get("metavar"):
            kwargs["metavar"] = meta["metavar"]
    return click.option(name, prefix + f.name, **kwargs)


def _scalar_type(f: Field):
    if isinstance(f.default, (int, float, str)) and not isinstance(f.default, bool):
        return type(f.default)
    text = str(f.type)
    return int if "int" in text else float if "float" in text else str


def config_from(cls, values: dict[str, Any], *, prefix: str = "", **fixed: Any):
    """An instance of config dataclass `cls` from a command's parameters: the CLI fields that
    were given (not None; parsed with the field's `parse` when it has one), plus `fixed`."""
    kwargs = dict(fixed)
    for f in cli_fields(cls):
        value = values.get(prefix + f.name)
        if value is None:
            continue
        parse = f.metadata.get("parse")
        kwargs[f.name] = parse(value) if parse is not None and isinstance(value, str) else value
    return cls(**kwargs)


def param_default(func: Callable, name: str) -> Any:
    """The default of parameter `name` of library function `func`: an option that hands its
    value to `func` takes its default from there, so it is written once."""
    default = inspect.signature(func).parameters[name].default
    if default is inspect.Parameter.empty:
        raise TypeError(f"{func.__name__}({name}) has no default")
    return default


def given(ctx: click.Context, name: str) -> bool:
    """Did the user give parameter `name` (command line or environment), not its default?"""
    return ctx.get_parameter_source(name) not in (None, ParameterSource.DEFAULT,
                                                  ParameterSource.DEFAULT_MAP)


class OptionNotRead(click.ClickException):
    """An option the user typed that the command's method does not read: one 'Error: ...' line,
    exit status 2 (a usage mistake, like an option the parser refuses)."""

    exit_code = 2


# ---------------------------------------------------------------- list types
class IntList(click.ParamType):
    """'0-3,7' -> [0, 1, 2, 3, 7] (ranges inclusive, order kept, duplicates dropped). `limit`:
    the most values the option takes (a longer list is refused before any range is expanded),
    `why` says where the limit comes from."""

    name = "LIST"

    def __init__(self, limit: int | None = None, why: str = ""):
        self.limit, self.why = limit, why

    def convert(self, value, param, ctx):
        if isinstance(value, list):
            return value
        try:
            return parse_int_list(value, param.opts[0] if param is not None else "value", self.limit)
        except UserError as e:
            reason = str(e).split(": ", 1)[-1]
            if self.why and "at most" in reason:
                reason = f"{reason.rstrip('.')} ({self.why})."
            self.fail(reason, param, ctx)


INT_LIST = IntList()
DIRS_LIMIT = 1024     # --dirs: more rows than a BigGAN latent has (z_dim 128); a run's own count
                      # is checked once its matrix is open
DIRS_LIST = IntList(DIRS_LIMIT, "a direction matrix has one row per latent coordinate at most")


# ---------------------------------------------------------------- shared options
def walk_seeds(ctx: click.Context, seeds: list[int] | None, num_seeds: int | None,
               model: str | None) -> dict[str, Any]:
    """The fields score and describe fix from their options: the model, and the seeds from
    --seeds or --num-seeds (both given: a UserError)."""
    if seeds is not None and given(ctx, "num_seeds"):
        raise UserError("--seeds and --num-seeds both given; pass one.")
    fixed: dict[str, Any] = {"model": model}
    if seeds is not None or num_seeds is not None:
        fixed["seeds"] = tuple(seeds if seeds is not None else range(num_seeds))
    return fixed


def echo_defaulted(run_settings) -> None:
    """A note for each run setting the run did not record, so a default was used."""
    for name in ("truncation", "path_size", "model"):
        if run_settings.sources.get(name) == "default":
            click.echo(f"note: the run records no {name}; used the default "
                       f"{getattr(run_settings, name)}.")


def device_option(f):
    """--device, from Runtime.device (its default and help)."""
    return click.option("--device", default=default_of(Runtime, "device"), metavar="DEV",
                        help=DEVICE_HELP)(f)


def threads_option(f):
    """--threads, from Runtime.threads (None: runtime.device.default_threads())."""
    return click.option("--threads", type=click.IntRange(min=1),
                        default=default_of(Runtime, "threads"),
                        envvar="BIGGAN_DIRECTIONS_THREADS", show_envvar=True,
                        help=THREADS_HELP, show_default="see help")(f)


def quiet_option(f):
    return click.option("--quiet", "-q", is_flag=True, help="No progress bars.")(f)


def no_wandb_option(f):
    """--no-wandb of score and compare (tracking.results.recorded_wandb)."""
    return click.option("--no-wandb", is_flag=True,
                        help="Leave the W&B run that a run folder recorded (RUN/wandb.json, from "
                             "discover --wandb) alone; without it the results are added there "
                             "too. TensorBoard events (RUN/tb/) are added either way.")(f)


def weights_dir_option(f):
    return click.option("--weights-dir", type=click.Path(file_okay=False), default=None,
                        envvar="BIGGAN_DIRECTIONS_WEIGHTS", show_envvar=True,
                        help="Folder of the weight store  [default: ./weights/]")(f)


def model_option(f=None, *, from_run: bool = False):
    """--model; with from_run, its default is the model the run recorded."""
    def decorate(f):
        from ..models.weights.store import DEFAULT_MODEL   # deferred: models.weights loads torch
        return click.option(
            "--model", default=None if from_run else DEFAULT_MODEL, metavar="NAME|DIR",
            show_default="the run's model" if from_run else True,
            help="biggan-deep-128, biggan-deep-256, biggan-deep-512, or a folder holding "
                 "config.json + pytorch_model.bin.")(f)
    return decorate(f) if f is not None else decorate


def runtime_options(f):
    """--device, --threads, --quiet: how a command runs (not what it computes). --precision and
    --compile, the rest of the Runtime group, come with each command's config (options_from),
    whose fields are Runtime's (runtime.settings.precision_setting, compile_setting)."""
    for option in (quiet_option, threads_option, device_option):
        f = option(f)
    return f


def setting_options(func) -> dict[str, str]:
    """The field -> option name map that options_from recorded on a command's callback."""
    return getattr(func, "__setting_options__", {})
