"""`classes`: list and search the 1000 ImageNet classes."""
from __future__ import annotations

import click

from ..foundation.errors import UserError
from ..models.classes import search_classes, suggest
from .options import CONTEXT_SETTINGS


@click.command(context_settings=CONTEXT_SETTINGS)
@click.argument("query", nargs=-1)
def classes(query):
    """List the 1000 ImageNet classes, or those matching QUERY.

    QUERY is an index (207), a WordNet id or its prefix (n02099601) or part of a name, in any
    case (retriever). Words may be given unquoted. Prints index, WordNet id and names; exits 1
    when nothing matches. Any index, WordNet id or full name shown works as --class elsewhere.

    \b
    Examples:
      biggan-directions classes                   # all 1000
      biggan-directions classes retriever         # 205-209
      biggan-directions classes golden retriever
      biggan-directions classes 497
      biggan-directions classes n03028079
    """
    text = " ".join(query).strip() or None
    found = search_classes(text)
    if not found:
        near = suggest(text)
        hint = (f"did you mean: {', '.join(f'{n} ({c.index})' for n, c in near)}?" if near else
                "run `biggan-directions classes` to list all 1000")
        raise UserError(f"no class matches {text!r}; {hint}")
    click.echo(f"{'index':>5}  {'wnid':<9}  names")
    for c in found:
        click.echo(f"{c.index:>5}  {c.wnid:<9}  {', '.join(c.names)}")


