"""One tree through a tree model: every node's signals, its prediction, its gradient.

The tree-task counterpart of trace.py. Nodes are listed as the tree is written
(pre-order: a node, then its children left to right), so position t of a
TreeActivations is the t-th label of the text; for the recursive unit, which
reads the binarised tree, a written node [OP a b c] is the top of its chain of
JOIN nodes (treedata.binarize_mapped), whose state stands for the whole node;
for the binary Tree-LSTM, the JOIN node that closes its fold (JOIN (OP (OP a b) c)).

The head, trained at the roots, is applied at every node too: for ListOps, where
each subtree is itself an expression, it shows whether the states of the inner
nodes already hold their subtrees' values. Gradients are |dL/dh| at each node for
L the root's loss (against the tree's ListOps value when it has one, else against
the model's own answer): how much of the answer reaches back down each path,
a path as long as the tree is high.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import torch

from ..data.labels import LabelSet
from ..data.listops import evaluate
from ..data.treebatch import batch_flat, flatten
from ..data.treedata import TreeVocab, binarize_mapped
from ..data.trees import Tree, format_listops, nodes, parse_tree
from ..errors import CorpusError
from ..models.recursive import TreeLevels, TreeNet
from .trace import Activations, Probe, evaluating


@dataclass(frozen=True)
class TreeActivations(Activations):
    """Activations whose positions are the written tree's nodes in pre-order:
    tokens (T,) their labels, signals[name] (L, T, H), probs (T, C) what the head
    makes of each subtree over the labels in `vocab`."""

    depth: np.ndarray = field(default_factory=lambda: np.zeros(0, np.int64), compare=False)  # (T,) 0 at the root
    parent: np.ndarray = field(default_factory=lambda: np.zeros(0, np.int64), compare=False)  # (T,) -1 at the root
    truth: tuple[str | None, ...] = ()  # (T,) each subtree's ListOps value, where it has one
    target: str = ""  # what the gradients' loss scores the root against
    grads: dict[str, np.ndarray] = field(default_factory=dict, compare=False)  # name -> (L, T) |dL/d name|

    @property
    def predicted(self) -> list[str]:
        return [self.vocab[int(i)] for i in self.probs.argmax(1)]


def read_tree(text: str) -> Tree:
    """A tree typed by the user (ListOps or S-expression); CorpusError names the column."""
    if not text.strip():
        raise CorpusError("the tree is empty; type one such as [MAX 2 9 [MIN 4 7 ] 0 ].")
    return parse_tree(text.strip(), "the tree")


def subtree_values(tree: Tree) -> tuple[str | None, ...]:
    """Each node's ListOps value in pre-order (None where a subtree is not ListOps)."""
    out: list[str | None] = []
    for node in nodes(tree):
        try:
            out.append(str(evaluate(node)))
        except CorpusError:
            out.append(None)
    return tuple(out)


def _layout(tree: Tree) -> tuple[np.ndarray, np.ndarray]:
    """(depth, parent) of each node in pre-order."""
    depth, parent = [], []
    stack: list[tuple[Tree, int, int]] = [(tree, 0, -1)]
    while stack:
        node, d, up = stack.pop()
        i = len(depth)
        depth.append(d)
        parent.append(up)
        stack.extend((c, d + 1, i) for c in reversed(node.children))
    return np.array(depth, dtype=np.int64), np.array(parent, dtype=np.int64)


def tree_activations(model: TreeNet, vocab: TreeVocab, classes: LabelSet, tree: Tree, gradients: bool = True) -> TreeActivations:
    """Trace one tree (the model in eval mode, on its own device)."""
    btree, where = binarize_mapped(tree, model.form)
    batch = batch_flat([flatten(btree, vocab.stoi)])
    written = torch.from_numpy(batch.preorder[np.asarray(where, dtype=np.int64)])  # written node -> batch node
    lv = TreeLevels.of(batch, model.head.weight.device)
    truth = subtree_values(tree)
    depth, parent = _layout(tree)
    with evaluating(model), torch.enable_grad():
        logits, tr = model.trace(lv)  # (N, C)
        probs = torch.softmax(logits.float(), -1)[written]  # (T, C)
        target = truth[0] if truth[0] is not None and truth[0] in classes else classes.label(int(probs[0].argmax()))
        grads: dict[str, np.ndarray] = {}
        if gradients:
            loss = torch.nn.functional.cross_entropy(logits[lv.roots].float(), torch.tensor([classes.index(target)], device=logits.device))
            names = [n for n in model.kind.state if n in tr.steps]
            flat = [t for n in names for layer in tr.steps[n] for t in layer]
            got = iter(torch.autograd.grad(loss, flat, allow_unused=True))
            for n in names:
                per_layer = []
                for layer in tr.steps[n]:
                    g = [next(got) for _ in layer]
                    per_layer.append(torch.cat([torch.zeros_like(t) if x is None else x for t, x in zip(layer, g)]).norm(dim=1))  # (N,)
                grads[n] = torch.stack(per_layer)[:, written].float().cpu().numpy()  # (L, T)
    signals = {k: v[:, written].detach().float().cpu().numpy() for k, v in tr.signals.items()}  # (L, T, H)
    labels = tuple(n.label for n in nodes(tree))
    return TreeActivations(
        text=format_listops(tree), ids=np.array([vocab.stoi[x] for x in labels]), tokens=labels, cell=model.cfg.cell,
        signals=signals, probs=probs.detach().cpu().numpy(), vocab=classes.names, depth=depth, parent=parent, truth=truth,
        target=target, grads=grads,
    )  # fmt: skip


def by_depth(acts: TreeActivations) -> dict[str, np.ndarray]:
    """name -> (L, D+1): the mean |dL/d name| over the nodes at each depth from the root."""
    if len(acts.depth) == 0:
        return {}
    counts = np.bincount(acts.depth)
    return {n: np.stack([np.bincount(acts.depth, weights=g[k]) / np.maximum(counts, 1) for k in range(g.shape[0])])
            for n, g in acts.grads.items()}  # fmt: skip


def probe(model: TreeNet, vocab: TreeVocab, classes: LabelSet, text: str, step: int) -> Probe:
    """What the TUI's activations screen shows: the nodes of the probe tree across,
    the gradient from the root's loss by depth."""
    acts = tree_activations(model, vocab, classes, read_tree(text))
    return Probe(step, acts, by_depth(acts))
