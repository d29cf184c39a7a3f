"""The command line: the click group (group.py, whose `main` is the `biggan-directions` script),
shared options (options.py) and one module per command."""
from .group import COMMANDS, cli, main

__all__ = ["COMMANDS", "cli", "main"]
