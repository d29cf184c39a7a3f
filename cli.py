"""biggan-directions command line: `python cli.py ...` or the `biggan-directions` script.

The commands live in biggan_directions/cli/, one module each."""
import sys

from biggan_directions.cli import cli, main

__all__ = ["cli", "main"]

if __name__ == "__main__":
    sys.exit(main())
