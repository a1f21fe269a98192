"""The `charrnn` command: one Typer app (common.py), one module per command.

Each command module registers itself on `common.app` when imported; this package
imports them all. Nothing here imports torch: `charrnn --help` answers at once.
"""

from __future__ import annotations

# isort: off  (the order of these imports is the order of the commands in --help)
from . import train, sample, info, corpora, inspect, compare, tui  # noqa: F401
from .common import app

# isort: on


def main() -> None:
    app()


__all__ = ["app", "main"]
