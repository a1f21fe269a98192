"""Level-by-level batches of trees, for recursive networks that compute every node
of the same height, across the whole batch, in one matrix product.

A node's state depends only on its children's, and all of a node's children sit
lower than it, so once the nodes are grouped by height (a leaf has height 0, a
node one more than its highest child) each group can be computed at once from
the groups before it: the depth of the computation is the trees' height, not
their number of nodes.

Layout of a TreeBatch for B trees with N nodes in all (numpy int64 unless said):

    tokens        (N,)    the token id of each node's label; -1 for a node with none
                          (a binarised tree's JOIN nodes). Leaves always have one.
    level_starts  (L+1,)  nodes are numbered by height: level k (height k) is nodes
                          level_starts[k] .. level_starts[k+1]-1; level 0 is every
                          leaf of the batch, level L-1 holds the tallest root;
                          within a level, nodes go tree by tree, each in pre-order
    children      L-1 arrays; children[k-1] (n_k, A_k) lists, for node
                          level_starts[k] + j, its children's node indices in order
                          (A_k: the largest arity in level k), padded with 0
    mask          L-1 bool arrays like children: True where a child is real
    roots         (B,)    the node index of each tree's root, in the trees' order
    tree_of       (N,)    which tree (0..B-1) each node belongs to
    preorder      (N,)    the node indices tree by tree, each tree in pre-order
                          (a node, then its children left to right, as the tree is
                          written): tree b's are preorder[offsets[b]:offsets[b+1]]
    offsets       (B+1,)  where each tree's stretch of `preorder` starts

Every child index is smaller than its parent's, and a level's nodes are one
contiguous range, so a model can fill a state matrix level by level (or
concatenate per-level results in order, which gives the same node numbering).
A sketch, for a Tree-LSTM with hidden size H:

    h = zeros(N, H)
    h[:n0] = leaf(emb(tokens[:n0]))                               # (n_0, H), n0 = level_starts[1]
    for lo, hi, kids, mask in batch.levels():                     # levels 1 .. L-1
        h_kids = h[kids] * mask[..., None]                        # (n_k, A_k, H)
        h[lo:hi] = cell(emb(tokens[lo:hi]), h_kids, mask)         # one product for the level
    h_root = h[roots]                                             # (B, H)

For the binary recursive unit (every inner node has exactly two children, after
trees.binarize), `batch.is_binary` holds, and children[k-1][:, 0] / [:, 1] are the
left and right children.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Iterator, Mapping, Sequence

import numpy as np

from ..errors import CorpusError
from .trees import JOIN, Tree, nodes


@dataclass(frozen=True)
class FlatTree:
    """One tree as arrays in pre-order (made once per example, batched many times).

    tokens (n,) token ids (-1 for JOIN); parent (n,) pre-order index of each
    node's parent (-1 for the root, which is node 0); rank (n,) its position among
    its siblings; height (n,) its height."""

    tokens: np.ndarray
    parent: np.ndarray
    rank: np.ndarray
    height: np.ndarray


def tree_vocab(trees: Sequence[Tree]) -> dict[str, int]:
    """Every label the trees use (JOIN aside), sorted, mapped to 0, 1, ..."""
    labels = {node.label for tree in trees for node in nodes(tree)}
    labels.discard(JOIN)
    return {label: i for i, label in enumerate(sorted(labels))}


def flatten(tree: Tree, vocab: Mapping[str, int]) -> FlatTree:
    """The tree as a FlatTree; CorpusError for a label `vocab` does not know."""
    tokens: list[int] = []
    parent: list[int] = []
    rank: list[int] = []
    stack: list[tuple[Tree, int, int]] = [(tree, -1, 0)]
    while stack:
        node, up, r = stack.pop()
        i = len(tokens)
        label, kids = node.label, node.children
        if label == JOIN:
            if not kids:
                raise CorpusError("a leaf of the tree has an empty label.")
            tokens.append(-1)
        else:
            tok = vocab.get(label)
            if tok is None:
                known = ", ".join(list(vocab)[:20]) + (" ..." if len(vocab) > 20 else "")
                raise CorpusError(f"the tree holds {label!r}, a token the model never saw in training (known: {known}).")
            tokens.append(tok)
        parent.append(up)
        rank.append(r)
        for k in range(len(kids) - 1, -1, -1):
            stack.append((kids[k], i, k))
    n = len(tokens)
    height = [0] * n
    for i in range(n - 1, 0, -1):  # children come after their parent in pre-order
        p = parent[i]
        if height[i] + 1 > height[p]:
            height[p] = height[i] + 1
    as_array = np.array
    return FlatTree(as_array(tokens, np.int64), as_array(parent, np.int64), as_array(rank, np.int64), as_array(height, np.int64))


@dataclass(frozen=True)
class TreeBatch:
    """Trees numbered level by level; the layout is in the module docstring."""

    tokens: np.ndarray
    level_starts: np.ndarray
    children: tuple[np.ndarray, ...]
    mask: tuple[np.ndarray, ...]
    roots: np.ndarray
    tree_of: np.ndarray
    preorder: np.ndarray
    offsets: np.ndarray

    @property
    def n_nodes(self) -> int:
        """N: the nodes of all trees together."""
        return len(self.tokens)

    @property
    def n_levels(self) -> int:
        """L: the number of heights (1 + the tallest tree's height)."""
        return len(self.level_starts) - 1

    @property
    def is_binary(self) -> bool:
        """True when every inner node has exactly two children (the recursive unit's input)."""
        return all(m.shape[1] == 2 and bool(m.all()) for m in self.mask)

    def levels(self) -> Iterator[tuple[int, int, np.ndarray, np.ndarray]]:
        """(lo, hi, children, mask) for levels 1 .. L-1: nodes lo..hi-1 and their child table."""
        for k in range(1, self.n_levels):
            yield int(self.level_starts[k]), int(self.level_starts[k + 1]), self.children[k - 1], self.mask[k - 1]


def batch_trees(trees: Sequence[Tree], vocab: Mapping[str, int]) -> TreeBatch:
    """A TreeBatch of the trees (flattened with `vocab`)."""
    return batch_flat([flatten(t, vocab) for t in trees])


def batch_flat(flats: Sequence[FlatTree]) -> TreeBatch:
    """A TreeBatch of trees flattened beforehand (all numpy: no loop over nodes)."""
    if not flats:
        raise ValueError("batch_flat needs at least one tree")
    sizes = np.array([len(f.tokens) for f in flats], dtype=np.int64)
    offsets = np.zeros(len(flats) + 1, dtype=np.int64)
    np.cumsum(sizes, out=offsets[1:])
    n = int(offsets[-1])
    tokens = np.concatenate([f.tokens for f in flats])
    height = np.concatenate([f.height for f in flats])
    rank = np.concatenate([f.rank for f in flats])
    parent = np.concatenate([f.parent for f in flats])  # pre-order index within its tree, -1 at roots
    tree_of = np.repeat(np.arange(len(flats), dtype=np.int64), sizes)
    has_parent = parent >= 0
    parent = np.where(has_parent, parent + offsets[:-1][tree_of], -1)  # -> index in the concatenation

    order = np.argsort(height, kind="stable")  # new node j is old node order[j]
    new_of = np.empty(n, dtype=np.int64)
    new_of[order] = np.arange(n, dtype=np.int64)
    counts = np.bincount(height, minlength=int(height.max()) + 1)
    level_starts = np.zeros(len(counts) + 1, dtype=np.int64)
    np.cumsum(counts, out=level_starts[1:])

    child_new = new_of[has_parent.nonzero()[0]]
    parent_new = new_of[parent[has_parent]]
    arity = np.bincount(parent_new, minlength=n)
    table = np.zeros((n, max(int(arity.max()), 1)), dtype=np.int64)
    table[parent_new, rank[has_parent]] = child_new
    children, mask = [], []
    for k in range(1, len(counts)):
        lo, hi = level_starts[k], level_starts[k + 1]
        a = arity[lo:hi]
        width = int(a.max())
        children.append(np.ascontiguousarray(table[lo:hi, :width]))
        mask.append(np.arange(width) < a[:, None])
    return TreeBatch(
        tokens=tokens[order],
        level_starts=level_starts,
        children=tuple(children),
        mask=tuple(mask),
        roots=new_of[offsets[:-1]],
        tree_of=tree_of[order],
        preorder=new_of,
        offsets=offsets,
    )
