"""Tree cells on ListOps in one process: accuracy on depths seen in training and deeper
ones against the CPU seconds spent, at fixed steps (the figures behind issue 24's fix).

The loop is the trainer's recipe written out (AdamW, --lr 3e-3, weight decay 0.1,
50 warmup steps, cosine to 2e-4, gradient clip 1, 64 trees a step, one thread), over
the built-in set `bench/trees.py` uses (training depths 1-5, validation 1-8, 250
trees a depth), so that cells compare at equal steps and, by the CPU column, at
equal CPU time; `bench/trees.py` runs the same through `charrnn train` beside the LSTM.

Anchor: Nangia & Bowman (2018), a Tree-LSTM given the true trees about 98.7%.

    python bench/tree_cells.py [--cell bintreelstm] [--steps 2000] [--every 1000] [--seed 0] [--root DIR]
"""

from __future__ import annotations

import argparse
import math
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import header  # noqa: E402

import numpy as np  # noqa: E402
import torch  # noqa: E402

from charrnn.config import DataConfig, ModelConfig  # noqa: E402
from charrnn.data.treebatch import batch_flat  # noqa: E402
from charrnn.data.treedata import TreeSource  # noqa: E402
from charrnn.models import registry  # noqa: E402
from charrnn.models.recursive import TreeLevels, TreeNet  # noqa: E402

SEEN = 5  # the set's training depths are 1..5


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--cell", default="bintreelstm")
    ap.add_argument("--steps", type=int, default=2000)
    ap.add_argument("--every", type=int, default=1000, help="evaluate every this many steps")
    ap.add_argument("--lr", type=float, default=3e-3)
    ap.add_argument("--hidden", type=int, default=128)
    ap.add_argument("--embed", type=int, default=64)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--root", type=Path, default=None, help="where the data cache goes (default: a temporary folder)")
    a = ap.parse_args()
    torch.set_num_threads(1)
    torch.manual_seed(a.seed)
    header(f"tree cells on ListOps: {a.cell}, {a.steps} steps of 64 trees, seed {a.seed}, one thread")
    root = a.root or Path(tempfile.mkdtemp(prefix="charrnn-tree-cells-"))
    data = TreeSource.of(DataConfig(paths=("listops",)), root).load(registry.get(a.cell).load().form)
    tr, va = data.train, data.val
    cfg = ModelConfig(cell=a.cell, task="tree", layers=1, hidden=a.hidden, embed=a.embed, dropout=0.0,
                      vocab_size=data.vocab.vocab_size, options={"classes": len(data.classes)})  # fmt: skip
    net = TreeNet(cfg)
    opt = torch.optim.AdamW(net.parameters(), lr=a.lr, weight_decay=0.1)
    rng = np.random.default_rng(a.seed)

    def lr_at(s: int) -> float:
        return a.lr * (s + 1) / 50 if s < 50 else 2e-4 + 0.5 * (a.lr - 2e-4) * (1 + math.cos(math.pi * s / a.steps))

    def evaluate() -> tuple[float, float, np.ndarray]:
        net.eval()
        right, count = np.zeros(16), np.zeros(16)
        with torch.inference_mode():
            for lo in range(0, len(va), 500):
                idx = np.arange(lo, min(len(va), lo + 500))
                logits, _ = net(TreeLevels.of(batch_flat([va.flats[i] for i in idx])))
                right += np.bincount(va.depth[idx], weights=logits.argmax(1).numpy() == va.labels[idx], minlength=16)
                count += np.bincount(va.depth[idx], minlength=16)
        net.train()
        top = int(va.depth.max())
        return right[1 : SEEN + 1].sum() / count[1 : SEEN + 1].sum(), right[SEEN + 1 :].sum() / max(count[SEEN + 1 :].sum(), 1), right[1 : top + 1] / np.maximum(count[1 : top + 1], 1)

    params = sum(p.numel() for p in net.parameters())
    print(f"{a.cell}: {params:,} parameters; hidden {a.hidden}, embedding {a.embed}, lr {a.lr}")
    print(f"| steps | CPU s | wall s | depths 1-{SEEN} (seen) | deeper | by depth 1.. |")
    print("|---:|---:|---:|---:|---:|---|")
    cpu0, wall0 = time.process_time(), time.monotonic()
    perm, at = rng.permutation(len(tr)), 0
    for s in range(a.steps):
        if at + 64 > len(tr):
            perm, at = rng.permutation(len(tr)), 0
        idx = perm[at : at + 64]
        at += 64
        for g in opt.param_groups:
            g["lr"] = lr_at(s)
        _, loss = net(TreeLevels.of(batch_flat([tr.flats[i] for i in idx])), torch.from_numpy(tr.labels[idx]))
        opt.zero_grad()
        loss.backward()
        torch.nn.utils.clip_grad_norm_(net.parameters(), 1.0)
        opt.step()
        if (s + 1) % a.every == 0 or s + 1 == a.steps:
            cpu, wall = time.process_time() - cpu0, time.monotonic() - wall0
            seen, deeper, by = evaluate()
            print(f"| {s + 1} | {cpu:.0f} | {wall:.0f} | {seen:.1%} | {deeper:.1%} | {' '.join(f'{x:.2f}' for x in by)} |", flush=True)


if __name__ == "__main__":
    main()
