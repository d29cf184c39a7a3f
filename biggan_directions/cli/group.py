"""The click group (`main`: the console script): one module per command, errors a user can fix
printed as one line.

Each command parses and validates its options, then calls one library function that a script
can call too. UserError prints as `Error: ...` with exit status 1; a SettingError is worded with
the option the user typed (`--path-size 0.0: ...`); Ctrl-C and SIGTERM exit 130.
"""
from __future__ import annotations

import sys
from importlib import import_module

import click

from ..foundation.errors import SettingError, UserError
from ..runtime.signals import sigterm_as_interrupt
from .options import CONTEXT_SETTINGS, setting_options


# command name -> module under biggan_directions.cli; a command's module (and torch, which the
# config dataclasses need) is imported only when that command runs or its help is shown.
COMMANDS = {"classes": "classes", "discover": "discover", "render": "render", "score": "score",
            "view": "view", "compare": "compare", "batch": "batch", "weights": "weights",
            "describe": "describe", "find": "find", "directions": "directions"}


class Group(click.Group):
    """A click group that loads its commands lazily and turns UserError into one 'Error: ...'
    line and exit status 1."""

    def list_commands(self, ctx):
        return list(COMMANDS)

    def get_command(self, ctx, name):
        if name not in COMMANDS:
            return None
        return getattr(import_module(f"{__package__}.{COMMANDS[name]}"), name)

    def invoke(self, ctx):
        try:
            # SIGTERM is Ctrl-C from the first moment: loading a command (torch, LPIPS) takes
            # seconds, and a signal then must still print one line, not end the process silently
            with sigterm_as_interrupt():
                return super().invoke(ctx)
        except SettingError as e:
            raise click.ClickException(_word_setting_error(self, ctx, e)) from None
        except UserError as e:
            raise click.ClickException(str(e)) from None
        except KeyboardInterrupt:
            click.echo("Interrupted.", err=True)
            sys.exit(130)


def _word_setting_error(group: click.Group, ctx: click.Context, e: SettingError) -> str:
    """The error with the option's name when the user typed the value (no recorded source)."""
    if e.source is None:
        name = ctx.invoked_subcommand
        command = group.get_command(ctx, name) if name else None
        options = setting_options(command.callback) if command is not None else {}
        if e.setting in options:
            return e.describe(options[e.setting])
    return str(e)


@click.group(cls=Group, context_settings=CONTEXT_SETTINGS)
@click.version_option(package_name="biggan-directions")
def cli():
    """Find interpretable directions in a pretrained BigGAN with the Hessian Penalty,
    render them as videos and rank them with LPIPS.

    \b
    Typical session:
      biggan-directions classes retriever
      biggan-directions discover --class "golden retriever"
      biggan-directions score outputs/biggan-deep-128/207-golden-retriever
      biggan-directions render outputs/biggan-deep-128/207-golden-retriever --top 8
    """


def main(argv=None):
    """Console-script entry point."""
    return cli.main(args=argv, prog_name="biggan-directions")
