"""ListOps (charrnn/data/listops.py): values, agreement with the paper's own evaluation, the generator."""

from __future__ import annotations

import random
from collections import Counter

import pytest

from charrnn.data.listops import LISTOPS_OPS, TREE_SETS, evaluate, make_listops, tree_set_files
from charrnn.data.trees import JOIN, Tree, binarize, height, nodes, parse_tree, read_tree_examples
from charrnn.errors import ConfigError, CorpusError
from test_trees import EXAMPLE, random_tree


def test_listops_values():
    assert evaluate(EXAMPLE) == 9
    assert evaluate(parse_tree("[MED 5 1 3 ]")) == 3
    assert evaluate(parse_tree("[MED 1 2 3 4 ]")) == 2  # int(np.median) of 2.5, as the paper's code
    assert evaluate(parse_tree("[SM 9 9 9 ]")) == 7
    assert evaluate(parse_tree("[MIN [MAX 1 8 ] [SM 5 5 ] ]")) == 0
    assert evaluate(Tree("4")) == 4
    with pytest.raises(CorpusError, match="unknown ListOps operator 'FIRST'; known: MAX, MED, MIN, SM."):
        evaluate(parse_tree("[FIRST 1 2 ]"))
    with pytest.raises(CorpusError, match="ListOps leaf 'x' is not a number."):
        evaluate(parse_tree("[MAX x 2 ]"))


def _nb_value(t):
    """Nangia & Bowman's to_value, over their left-branching binary form (((OP a) b) ... ])."""
    if isinstance(t, str):
        return t if t.startswith("[") or t == "]" else int(t)
    left, right = _nb_value(t[0]), _nb_value(t[1])
    if isinstance(left, str):  # an operator meets its first argument
        return (left, [right])
    if right == "]":
        op, args = left[0][1:], left[1]
        return {"MIN": min, "MAX": max, "SM": lambda v: sum(v) % 10,
                "MED": lambda v: int(sorted(v)[len(v) // 2] if len(v) % 2 else (sorted(v)[len(v) // 2 - 1] + sorted(v)[len(v) // 2]) / 2)}[op](args)  # fmt: skip
    return (left[0], left[1] + [right])


def _as_pairs(t: Tree):
    if t.label != JOIN:
        return "[" + t.label if t.label in LISTOPS_OPS else t.label
    return tuple(_as_pairs(c) for c in t.children)


def test_evaluate_agrees_with_the_papers_own_evaluation_on_its_binary_form():
    rng = random.Random(1)
    for _ in range(300):
        t = Tree(rng.choice(LISTOPS_OPS), tuple(random_tree(rng, 4) for _ in range(rng.randint(2, 5))))
        assert _nb_value(_as_pairs(binarize(t, "left", end="]"))) == evaluate(t)


def test_listops_generator():
    train, val = make_listops(seed=3, n_train=2000, n_val=400, train_depth=3, val_depth=6, max_args=4)
    assert (train, val) == make_listops(seed=3, n_train=2000, n_val=400, train_depth=3, val_depth=6, max_args=4)
    assert make_listops(seed=4, n_train=2000, n_val=400, train_depth=3, val_depth=6, max_args=4)[0] != train
    assert all(e.label == str(evaluate(e.tree)) for e in train + val)
    assert [e.line for e in train[:3]] == [1, 2, 3]
    heights = Counter(height(e.tree) for e in train)
    assert set(heights) == {1, 2, 3}
    assert Counter(height(e.tree) for e in val) == {h: 400 // 6 + (h <= 400 % 6) for h in range(1, 7)}
    trees = [e.tree for e in train + val]
    assert len(set(trees)) == len(trees)  # no tree twice, within or across the splits
    inner = [n for t in trees for n in nodes(t) if n.children]
    assert {n.label for n in inner} == set(LISTOPS_OPS)
    assert {len(n.children) for n in inner} == {2, 3, 4}
    assert all(n.label in "0123456789" for t in trees for n in nodes(t) if n.is_leaf)
    assert len(Counter(e.label for e in train)) == 10 and max(Counter(e.label for e in train).values()) < 0.3 * len(train)
    with pytest.raises(ConfigError, match="1 <= train depth <= validation depth"):
        make_listops(train_depth=5, val_depth=3)


def test_tree_set_files(tmp_path):
    assert "listops" in TREE_SETS and TREE_SETS["listops"].description
    train_path, val_path = tree_set_files("listops", tmp_path, seed=1, n_train=300, n_val=40)
    train, val = TREE_SETS["listops"].make(1, 300, 40)
    assert [(e.label, e.tree) for e in read_tree_examples([train_path])] == [(e.label, e.tree) for e in train]
    assert [(e.label, e.tree) for e in read_tree_examples([val_path])] == [(e.label, e.tree) for e in val]
    with pytest.raises(ConfigError, match="unknown tree set 'sst'; the built-in ones are listops."):
        tree_set_files("sst", tmp_path)
