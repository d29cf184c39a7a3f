"""Config fields that carry their own help: one owner for every default (dataclass -> CLI option).

A job's config is a frozen dataclass whose fields are declared with `setting(default, help)`.
The CLI builds its options from those fields (cli/options.py), so a default and its help are
written once, here in the library, and `check` helpers raise SettingError naming the field.
A field read by some of a job's methods only says which (`methods=`): the CLI marks its help
with them and refuses it for another method.
"""
from __future__ import annotations

import math
from dataclasses import MISSING, Field, field, fields
from typing import Any, Callable

from .errors import SettingError


def setting(default: Any, help: str, *, choices: tuple[str, ...] | None = None,
            metavar: str | None = None, parse: Callable[[str], Any] | None = None,
            option: str | None = None, shown: str | None = None, cli: bool = True,
            methods: tuple[str, ...] | None = None) -> Any:
    """A dataclass field with CLI metadata.

    help:    the option's help text (also the field's documentation).
    choices: allowed strings (an option with a fixed choice).
    metavar, parse: for fields typed on the command line as text (`parse(text)` -> value,
             e.g. '0-39' -> (0, 40)); the parse function raises SettingError on bad text.
    option:  the option's name when it is not --<field-name-with-dashes> (e.g. '--format').
    shown:   the default as the help shows it, when str(default) would not say it well.
    cli:     False keeps the field out of the command line (library-only).
    methods: the methods (of a config with a `method` field) that read the field; None: every
             method reads it (shared). The help of the field's option starts with them.
    """
    if methods is not None and (isinstance(methods, str) or not methods):
        raise TypeError("methods: a non-empty tuple of method names, or None (shared)")
    return field(default=default, metadata={"help": help, "choices": choices, "metavar": metavar,
                                            "parse": parse, "option": option, "shown": shown,
                                            "cli": cli,
                                            "methods": None if methods is None else tuple(methods)})


def methods_of(f: Field) -> tuple[str, ...] | None:
    """The methods that read config field `f` (its `methods=`); None: shared by every method."""
    return f.metadata.get("methods")


def help_of(f: Field, text: str | None = None) -> str:
    """The help of field `f`'s option (`text`, else the field's): '[hessian] ...' for a field
    that some methods only read, unmarked for a shared one."""
    owners = methods_of(f)
    text = text or f.metadata["help"]
    return f"[{', '.join(owners)}] {text}" if owners else text


def option_name(f: Field) -> str:
    """The CLI option of a config field: its `option`, else --<name-with-dashes>."""
    return f.metadata.get("option") or "--" + f.name.replace("_", "-")


def cli_fields(cls) -> list[Field]:
    """The fields of a config dataclass that become CLI options, in declaration order."""
    return [f for f in fields(cls) if f.metadata.get("cli", False)]


def default_of(cls, name: str) -> Any:
    """The default of field `name` of dataclass `cls`."""
    for f in fields(cls):
        if f.name == name:
            if f.default is not MISSING:
                return f.default
            return f.default_factory()  # type: ignore[misc]
    raise KeyError(name)


# ------------------------------------------------------------------ value checks
def need(ok: bool, name: str, value: Any, reason: str, source: str | None = None) -> None:
    """Raise SettingError(name, value, reason) unless ok."""
    if not ok:
        raise SettingError(name, value, reason, source)


def positive(name: str, value: float, source: str | None = None) -> float:
    """A finite number > 0."""
    need(isinstance(value, (int, float)) and math.isfinite(value) and value > 0, name, value,
         "must be a finite number > 0.", source)
    return value


def at_least(name: str, value: int, low: int, source: str | None = None) -> int:
    need(isinstance(value, int) and value >= low, name, value, f"must be at least {low}.", source)
    return value


def one_of(name: str, value: str, choices: tuple[str, ...], source: str | None = None) -> str:
    need(value in choices, name, value, f"use {' or '.join(choices)}.", source)
    return value
