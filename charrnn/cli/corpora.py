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

    from ..data.listops import SIZES, TREE_SETS  # (numpy, through the data layer: not for --help)
    from ..data.longrange import PREFIX, SETTINGS
    from ..data.pairs import PAIR_SETS

    t = Table(box=None, pad_edge=False)
    t.add_column("name", style="bold")
    t.add_column("what")
    for b in BUILTINS.values():
        default = " (default)" if b.name == DEFAULT_CORPUS else ""
        keys = SETTINGS.get(b.name.removeprefix(PREFIX)) if b.name.startswith(PREFIX) else None
        extra = f" ({b.name}:{','.join(f'{k}=N' for k, _ in keys)} to change it)" if keys else ""
        t.add_row(b.name + default, b.description + extra)
    for ts in TREE_SETS.values():
        keys = ",".join(f"{k}=N" for k, _ in ts.settings + SIZES)
        t.add_row(ts.name, f"{ts.description} (trees: --task tree; {ts.name}:{keys} to change the set)")
    out.print(t)
    out.print("Train on one with: charrnn train NAME (a tree set: charrnn train NAME --task tree)")
    out.print()
    p = Table(box=None, pad_edge=False)
    p.add_column("pair set", style="bold")
    p.add_column("what")
    for s in PAIR_SETS.values():
        p.add_row(s.name, f"{s.description}; {s.n_train:,} training pairs with sources up to {s.train_max_len} chars, "
                          f"{s.n_val:,} validation pairs of any length")  # fmt: skip
    out.print(p)
    out.print("Train an encoder-decoder on one with: charrnn train NAME --task seq2seq")
