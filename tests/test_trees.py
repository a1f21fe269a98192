"""Trees (charrnn/data/trees.py): both syntaxes, errors with columns, the reader, binarisation, helpers."""

from __future__ import annotations

import random

import pytest

from charrnn.data.listops import LISTOPS_OPS, evaluate
from charrnn.data.trees import (
    JOIN,
    Tree,
    binarize,
    format_listops,
    format_sexpr,
    height,
    iter_tree_examples,
    nodes,
    parse_tree,
    read_tree_examples,
    size,
)
from charrnn.errors import ConfigError, CorpusError

EXAMPLE = Tree("MAX", (Tree("2"), Tree("9"), Tree("MIN", (Tree("4"), Tree("7"))), Tree("0")))


def random_tree(rng: random.Random, depth: int) -> Tree:
    """Any shape: arities 1..5, leaves 0..9, operators of ListOps."""
    if depth == 0 or rng.random() < 0.4:
        return Tree(str(rng.randrange(10)))
    return Tree(rng.choice(LISTOPS_OPS), tuple(random_tree(rng, depth - 1) for _ in range(rng.randint(1, 5))))


def test_both_syntaxes_give_the_same_tree():
    assert parse_tree("[MAX 2 9 [MIN 4 7 ] 0 ]") == EXAMPLE
    assert parse_tree("  (MAX 2 9 (MIN 4 7) 0)  ") == EXAMPLE
    assert parse_tree("[MAX 2 9 [MIN 4 7] 0]") == EXAMPLE  # a bracket glued to a token still closes
    assert parse_tree("( MAX 2\t9 ( MIN 4 7 ) 0 )") == EXAMPLE
    assert parse_tree("5") == Tree("5")
    assert format_listops(EXAMPLE) == "[MAX 2 9 [MIN 4 7 ] 0 ]" and format_sexpr(EXAMPLE) == "(MAX 2 9 (MIN 4 7) 0)"


def test_formats_round_trip():
    rng = random.Random(0)
    for _ in range(300):
        t = random_tree(rng, 6)
        assert parse_tree(format_listops(t)) == t and parse_tree(format_sexpr(t)) == t


@pytest.mark.parametrize(
    "text, col, message",
    [
        ("[MAX 1 2", 1, "'[MAX' is never closed (unbalanced brackets)."),
        ("[MAX 1 [MIN 2 3 ] [SM 4", 19, "'[SM' is never closed (2 nodes open) (unbalanced brackets)."),
        ("[MAX 1 2 ] ]", 12, "']' closes no node (unbalanced brackets)."),
        ("[MAX ]", 1, "empty node: '[MAX' has no children."),
        ("[MAX 1 ] 3", 10, "text after the end of the tree ('3'); one tree a line."),
        ("1 2", 3, "text after the end of the tree ('2'); one tree a line."),
        ("[ MAX 1 ]", 1, "'[' must be followed by its operator, as in [MAX."),
        ("[MAX 1 (2) ]", 8, "'(2)' puts parentheses in a ListOps tree; write each tree in one syntax."),
        ("((MAX 1) 2)", 2, "a node's first element must be its label, not '('."),
        ("(MAX 1 ())", 8, "an empty node '()'."),
        ("(MAX)", 1, "empty node: '(MAX' has no children."),
        ("(MAX 1 [MIN 2 ])", 8, "'[MIN' puts ListOps brackets in an S-expression; write each tree in one syntax."),
        ("(MAX 1 (", 8, "'(' with no label and no children at the end of the line."),
        ("(MAX 1) x", 9, "text after the end of the tree ('x'); one tree a line."),
        ("   ", 1, "no tree."),
    ],
)
def test_malformed_trees_name_the_column(text, col, message):
    with pytest.raises(CorpusError) as e:
        parse_tree(text, "t.tsv:4", col0=2)
    assert str(e.value) == f"t.tsv:4: column {col + 2}: {message}"


def test_reader_labels_lines_and_columns(tmp_path):
    p = tmp_path / "trees.tsv"
    p.write_bytes(b"9\t[MAX 2 9 [MIN 4 7 ] 0 ]\r\n\r\n 3 \t(SM 1 2)\r\n")
    examples = list(iter_tree_examples(p))
    assert [(e.label, e.tree, e.line) for e in examples] == [("9", EXAMPLE, 1), ("3", parse_tree("[SM 1 2 ]"), 3)]
    cases = [
        ("7\t[MAX 1 2\n", "trees.tsv:1: column 3: '[MAX' is never closed"),
        ("[MAX 1 2 ]\n", "trees.tsv:1: no tab; each line must be label<TAB>tree."),
        ("\t[MAX 1 2 ]\n", "trees.tsv:1: the label is empty"),
        ("5\t  \n", "trees.tsv:1: no tree after the label '5'."),
        ("12\t[MAX 1 2 ] 5\n", "trees.tsv:1: column 15: text after the end of the tree"),
        (" 12 \t[MAX 1 2 ] 5\n", "trees.tsv:1: column 17: text after the end of the tree"),
    ]
    for text, message in cases:
        p.write_text(text, encoding="utf-8")
        with pytest.raises(CorpusError) as e:
            read_tree_examples([p])
        assert str(e.value).startswith(f"{tmp_path}/{message}"), str(e.value)
    p.write_text("\n", encoding="utf-8")
    with pytest.raises(CorpusError, match="no label<TAB>tree lines to train on"):
        read_tree_examples([p])


def test_binarize_both_ways():
    assert format_sexpr(binarize(EXAMPLE)) == "((((MAX 2) 9) ((MIN 4) 7)) 0)"
    assert format_sexpr(binarize(EXAMPLE, "right")) == "(MAX (2 (9 ((MIN (4 7)) 0))))"
    assert format_sexpr(binarize(EXAMPLE, end="]")) == "(((((MAX 2) 9) (((MIN 4) 7) ])) 0) ])"
    rng = random.Random(2)
    for _ in range(100):
        t = random_tree(rng, 5)
        for way in ("left", "right"):
            b = binarize(t, way)
            assert all(len(n.children) in (0, 2) and (n.label == JOIN) == bool(n.children) for n in nodes(b))
            leaves = [n.label for n in nodes(b) if n.is_leaf]
            assert leaves == [n.label for n in nodes(t)]  # pre-order: each operator before its arguments
    with pytest.raises(ConfigError, match="branching must be left or right"):
        binarize(EXAMPLE, "middle")


def test_height_size_and_deep_trees_without_recursion():
    assert (height(Tree("1")), height(EXAMPLE), size(EXAMPLE)) == (0, 2, 7)
    deep = "[SM 1 " * 5000 + "2" + " ]" * 5000
    t = parse_tree(deep)
    assert height(t) == 5000 and size(t) == 10001 and evaluate(t) == 2
    assert format_listops(t) == deep and height(binarize(t)) == 5001  # (((SM 1) ...) adds one level per operator, plus one
