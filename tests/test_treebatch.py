"""Level-by-level tree batches (charrnn/data/treebatch.py): the layout, and computing
ListOps values level by level with the arrays against evaluating each tree alone."""

from __future__ import annotations

import random

import numpy as np
import pytest

from charrnn.data.treebatch import batch_flat, batch_trees, flatten, tree_vocab
from charrnn.data.listops import evaluate, make_listops
from charrnn.data.trees import JOIN, Tree, binarize, format_sexpr, height, nodes, parse_tree
from charrnn.errors import CorpusError
from test_trees import random_tree


def some_trees(n: int, seed: int = 0) -> list[Tree]:
    rng = random.Random(seed)
    train, val = make_listops(seed, n_train=n, n_val=n // 2, train_depth=3, val_depth=7)
    return [e.tree for e in train + val] + [random_tree(rng, 6) for _ in range(n)] + [Tree("7")]


def levelwise_listops(batch, vocab) -> np.ndarray:
    """ListOps values of every node, computed one level at a time with numpy only."""
    names = np.array(sorted(vocab, key=vocab.get))
    value = np.zeros(batch.n_nodes)
    leaves = slice(0, batch.level_starts[1])
    value[leaves] = names[batch.tokens[leaves]].astype(int)
    for lo, hi, kids, mask in batch.levels():
        v = value[kids]  # (n_k, A_k)
        arity = mask.sum(1)
        big = np.where(mask, v, np.inf)
        ordered = np.sort(big, axis=1)
        mid = ordered[np.arange(len(v)), arity // 2]
        low = ordered[np.arange(len(v)), np.maximum(arity // 2 - 1, 0)]
        results = {
            "MIN": big.min(1),
            "MAX": np.where(mask, v, -np.inf).max(1),
            "SM": np.where(mask, v, 0).sum(1) % 10,
            "MED": np.where(arity % 2 == 1, mid, np.trunc((low + mid) / 2)),
        }
        ops = names[batch.tokens[lo:hi]]
        value[lo:hi] = np.select([ops == op for op in results], list(results.values()))
    return value


def test_level_by_level_values_equal_each_tree_evaluated_alone():
    trees = some_trees(300)
    vocab = tree_vocab(trees)
    batch = batch_trees(trees, vocab)
    values = levelwise_listops(batch, vocab)
    assert [int(v) for v in values[batch.roots]] == [evaluate(t) for t in trees]
    alone = [int(levelwise_listops(b, vocab)[b.roots][0]) for b in (batch_trees([t], vocab) for t in trees[:50])]
    assert alone == [evaluate(t) for t in trees[:50]]


def test_layout_invariants():
    trees = some_trees(200, seed=1)
    vocab = tree_vocab(trees)
    b = batch_trees(trees, vocab)
    n = sum(sum(1 for _ in nodes(t)) for t in trees)
    assert b.n_nodes == n and b.n_levels == 1 + max(height(t) for t in trees)
    assert b.level_starts[0] == 0 and b.level_starts[-1] == n and np.all(np.diff(b.level_starts) > 0)
    node_height = np.zeros(n, dtype=int)
    for k, (lo, hi, kids, mask) in enumerate(b.levels(), start=1):
        assert kids.shape == mask.shape and kids.dtype == np.int64 and mask.dtype == bool
        assert np.all(kids[mask] < lo) and np.all(kids[~mask] == 0) and np.all(mask[:, 0])
        assert np.all(mask[:, :-1] >= mask[:, 1:])  # real children first, padding after
        assert kids.shape[1] == mask.sum(1).max()
        node_height[lo:hi] = 1 + np.where(mask, node_height[kids], -1).max(1)
        assert np.all(node_height[lo:hi] == k)
        assert np.all(b.tree_of[kids[mask]] == np.repeat(b.tree_of[lo:hi], mask.sum(1)))
    # every node but the roots is exactly one node's child
    child_count = np.bincount(np.concatenate([k[m] for k, m in zip(b.children, b.mask)]), minlength=n)
    expected = np.ones(n, dtype=int)
    expected[b.roots] = 0
    assert np.array_equal(child_count, expected)
    # preorder walks each tree as it is written
    inverse = {i: label for label, i in vocab.items()}
    for i, t in enumerate(trees):
        idx = b.preorder[b.offsets[i] : b.offsets[i + 1]]
        assert [inverse[x] for x in b.tokens[idx]] == [m.label for m in nodes(t)]
        assert idx[0] == b.roots[i] and np.all(b.tree_of[idx] == i)


def test_a_small_batch_exactly():
    trees = [parse_tree("[MAX 2 [MIN 4 7 ] ]"), parse_tree("3")]
    vocab = tree_vocab(trees)
    assert vocab == {"2": 0, "3": 1, "4": 2, "7": 3, "MAX": 4, "MIN": 5}
    b = batch_trees(trees, vocab)
    # heights: leaves 2, 4, 7 (tree 0) and 3 (tree 1) first, in order; then MIN; then MAX
    assert b.tokens.tolist() == [0, 2, 3, 1, 5, 4]
    assert b.level_starts.tolist() == [0, 4, 5, 6]
    assert [c.tolist() for c in b.children] == [[[1, 2]], [[0, 4]]]
    assert [m.tolist() for m in b.mask] == [[[True, True]], [[True, True]]]
    assert b.roots.tolist() == [5, 3] and b.tree_of.tolist() == [0, 0, 0, 1, 0, 0]
    assert b.preorder.tolist() == [5, 0, 4, 1, 2, 3] and b.offsets.tolist() == [0, 5, 6]


@pytest.mark.parametrize("branching", ["left", "right"])
def test_binary_batches_rebuild_each_tree(branching):
    trees = [binarize(t, branching) for t in some_trees(100, seed=2)]
    vocab = tree_vocab(trees)
    assert JOIN not in vocab
    b = batch_trees(trees, vocab)
    assert b.is_binary and not batch_trees([parse_tree("[MAX 1 2 3 ]")], vocab).is_binary
    names = np.array(sorted(vocab, key=vocab.get), dtype=object)
    text = np.empty(b.n_nodes, dtype=object)
    assert np.all(b.tokens[: b.level_starts[1]] >= 0)
    text[: b.level_starts[1]] = names[b.tokens[: b.level_starts[1]]]
    for lo, hi, kids, _ in b.levels():
        assert np.all(b.tokens[lo:hi] == -1)
        left, right = text[kids[:, 0]], text[kids[:, 1]]  # one "matrix product" for the whole level
        text[lo:hi] = "(" + left + " " + right + ")"
    assert list(text[b.roots]) == [format_sexpr(t) for t in trees]


def test_flatten_once_batch_many_times_and_errors():
    trees = some_trees(50, seed=3)
    vocab = tree_vocab(trees)
    flats = [flatten(t, vocab) for t in trees]
    one, two = batch_trees(trees, vocab), batch_flat(flats)
    assert all(np.array_equal(getattr(one, f), getattr(two, f)) for f in ("tokens", "level_starts", "roots", "preorder"))
    assert flats[0].height[0] == height(trees[0]) and flats[0].parent[0] == -1
    with pytest.raises(CorpusError, match=r"the tree holds 'FIRST', a token the model never saw in training \(known: 0, 1,"):
        flatten(parse_tree("[FIRST 1 2 ]"), vocab)
    with pytest.raises(CorpusError, match="a leaf of the tree has an empty label"):
        flatten(Tree("MAX", (Tree(JOIN), Tree("1"))), vocab)
