"""`weights`: list, fetch, verify and import the BigGAN weights in the store."""
from __future__ import annotations

import click

from ..foundation.errors import UserError
from .options import CONTEXT_SETTINGS, quiet_option, weights_dir_option

HUB_REPO_HELP = ("Hub repository to try after the package's URLs, as OWNER/REPO[@REVISION]; "
                 "'' skips the Hub  [default: the known mirror, e.g. osanseviero/BigGAN-deep-128]")


@click.group(context_settings=CONTEXT_SETTINGS)
def weights():
    """The weight store (./weights/<name>/): what it holds, fetching ahead of time, checks.

    \b
    Examples:
      biggan-directions weights list
      biggan-directions weights fetch biggan-deep-128
      biggan-directions weights verify
      biggan-directions weights import ~/Downloads/pytorch_model.bin --name biggan-deep-128
    """


@weights.command("list")
@weights_dir_option
def list_(weights_dir):
    """Each model in the store with its files, sizes and whether they match their checksums."""
    from ..models.weights import default_weights_dir, list_store   # deferred: torch (fast --help)

    entries = list_store(weights_dir)
    if not entries:
        click.echo(f"{weights_dir or default_weights_dir()}: no models; fetch one with "
                   f"`biggan-directions weights fetch biggan-deep-128`.")
        return
    for entry in entries:
        files = ", ".join(f"{f} {_size(n)}" for f, n in entry.sizes.items())
        click.echo(f"{entry.name}  {entry.status}  ({files})")


@weights.command()
@click.argument("name")
@click.option("--hub-repo", default=None, envvar="BIGGAN_DIRECTIONS_HUB_REPO", show_envvar=True,
              help=HUB_REPO_HELP)
@weights_dir_option
@quiet_option
def fetch(name, hub_repo, weights_dir, quiet):
    """Put model NAME into the store ahead of time (e.g. before a cluster run): downloaded when
    absent, loaded once to check it, checksums recorded, model.safetensors written."""
    from ..models.weights import fetch_model   # deferred: torch (fast --help)

    folder = fetch_model(name, weights_dir, hub_repo=hub_repo, progress=not quiet,
                         report=None if not quiet else (lambda line: None))
    click.echo(f"{name}: ready in {folder}")


@weights.command()
@click.argument("name", required=False)
@weights_dir_option
def verify(name, weights_dir):
    """Check the sizes and sha256 of NAME's files (or of every model in the store) against
    their checksums.json. Exits 1 naming the file on any mismatch."""
    from ..models.weights import list_store, store_folder   # deferred: torch (fast --help)

    if name is not None and not store_folder(name, weights_dir).is_dir():
        raise UserError(f"{store_folder(name, weights_dir)} does not exist; fetch it with "
                        f"`biggan-directions weights fetch {name}`.")
    entries = list_store(weights_dir, names=None if name is None else [name])
    if not entries:
        raise UserError("the store holds no models to verify.")
    bad = [e for e in entries if not e.ok]
    for entry in entries:
        click.echo(f"{entry.name}: {'ok' if entry.ok else entry.status}")
    if bad:
        raise UserError(f"{len(bad)} of {len(entries)} model(s) failed verification: "
                        f"{'; '.join(e.status for e in bad)}")


@weights.command("import")
@click.argument("path", type=click.Path(exists=True))
@click.option("--name", required=True, help="The model the file holds, e.g. biggan-deep-128.")
@click.option("--config", type=click.Path(exists=True, dir_okay=False), default=None,
              help="Its config.json  [default: beside PATH, else the store's]")
@click.option("--overwrite", is_flag=True, help="Replace the model the store already holds.")
@weights_dir_option
def import_(path, name, config, overwrite, weights_dir):
    """Copy a pytorch_model.bin or .safetensors file downloaded by hand (or a folder holding one
    and config.json) into the store, after checking that it loads strictly."""
    from ..models.weights import import_weights   # deferred: torch (fast --help)

    folder = import_weights(path, name, weights_dir, config=config, overwrite=overwrite)
    click.echo(f"{name}: imported into {folder}")


def _size(n: int) -> str:
    return f"{n / 2**20:.1f} MiB" if n >= 2**20 else f"{n} B"
