"""`charrnn corpora`: the built-in corpora (made from this Python, never downloaded) and the
built-in pair sets for encoder-decoders (generated from a seed)."""

from __future__ import annotations

from ..config import DEFAULT_CORPUS
from ..data.builtin import BUILTINS
from .common import Command, app, out, user_errors


@app.command(cls=Command)
@user_errors
def corpora() -> None:
    """List the built-in corpora (made from this Python installation, never downloaded) and pair sets."""
    from rich.table import Table

    from ..data.pairs import PAIR_SETS  # here, not above: it reads numpy, which --help must not load

    t = Table(box=None, pad_edge=False)
    t.add_column("name", style="bold")
    t.add_column("what")
    for b in BUILTINS.values():
        default = " (default)" if b.name == DEFAULT_CORPUS else ""
        t.add_row(b.name + default, b.description)
    out.print(t)
    out.print("Train on one with: charrnn train NAME")
    out.print()
    p = Table(box=None, pad_edge=False)
    p.add_column("pair set", style="bold")
    p.add_column("what")
    for s in PAIR_SETS.values():
        p.add_row(s.name, f"{s.description}; {s.n_train:,} training pairs with sources up to {s.train_max_len} chars, "
                          f"{s.n_val:,} validation pairs of any length")  # fmt: skip
    out.print(p)
    out.print("Train an encoder-decoder on one with: charrnn train NAME --task seq2seq")
