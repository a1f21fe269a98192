"""The `charrnn` command: one Typer app (common.py), one module per command.

Each command module registers itself on `common.app` when imported; this package
imports them all. Nothing here imports torch: `charrnn --help` answers at once.
"""

from __future__ import annotations

# The order of these imports is the order of the commands in --help.
from . import train, sample, predict, info, runs, corpora, inspect, compare, export, tui  # noqa: F401, I001
from .common import app


def main() -> None:
    app()


__all__ = ["app", "main"]
