"""biggan-directions: find, render and rank interpretable directions in BigGAN (click entry point).

Each command parses and validates its options, then calls one library function that a script
can call too. Mistakes a user can fix raise UserError and print as one line, exit status 1.
"""
from __future__ import annotations

import sys

import click

from biggan_directions.errors import UserError

CONTEXT_SETTINGS = dict(help_option_names=["-h", "--help"], max_content_width=100,
                        show_default=True)


class Group(click.Group):
    """A click group that turns UserError into one 'Error: ...' line and exit status 1."""

    def invoke(self, ctx):
        try:
            return super().invoke(ctx)
        except UserError as e:
            raise click.ClickException(str(e)) from None


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


# ---------------------------------------------------------------- shared options
def device_option(f):
    return click.option("--device", default="auto", metavar="DEV",
                        help="auto (CUDA, then MPS, then CPU), cpu, cuda, cuda:N or mps.")(f)


def quiet_option(f):
    return click.option("--quiet", "-q", is_flag=True, help="No progress bars.")(f)


def weights_dir_option(f):
    return click.option("--weights-dir", type=click.Path(file_okay=False), default=None,
                        envvar="BIGGAN_DIRECTIONS_WEIGHTS", show_envvar=True,
                        help="Folder of the weight store  [default: weights/]")(f)


def model_option(f):
    return click.option("--model", default="biggan-deep-128", metavar="NAME|DIR",
                        help="biggan-deep-128, biggan-deep-256, biggan-deep-512, or a folder "
                             "holding config.json + pytorch_model.bin.")(f)


# ---------------------------------------------------------------- classes
# (section owned by classes)

# ---------------------------------------------------------------- discover
# (section owned by discover)

# ---------------------------------------------------------------- render
# (section owned by render)

# ---------------------------------------------------------------- score
# (section owned by score)

# ---------------------------------------------------------------- batch
# (section owned by batch)


def main(argv=None):
    """Console-script entry point."""
    return cli.main(args=argv, prog_name="biggan-directions")


if __name__ == "__main__":
    sys.exit(main())
