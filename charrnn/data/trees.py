"""Trees for recursive networks: the Tree type, its two written forms, a reader of
`label<TAB>tree` lines, and binarisation.

Two syntaxes, told apart per line by the first character:

    ListOps       [MAX 2 9 [MIN 4 7 ] 0 ]   `[OP` opens a node, `]` closes it, any other token is a leaf
    S-expression  (MAX 2 9 (MIN 4 7) 0)     `(` opens a node whose first element is its label

Both give Tree("MAX", (Tree("2"), Tree("9"), Tree("MIN", (Tree("4"), Tree("7"))), Tree("0"))).
A line holding a single token is a one-leaf tree. A malformed tree stops with a
CorpusError naming the file, the line and the column (1-based, in characters of
the whole line) of the problem.

ListOps (evaluation, the generated set) is in listops.py; level-by-level batches
for the models are in treebatch.py.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Callable, Iterable, Iterator, NamedTuple, TypeVar

from ..errors import ConfigError, CorpusError
from .labels import check_label
from .pairs import iter_tsv_rows, read_all

T = TypeVar("T")


class Tree(NamedTuple):
    """A node: its label (an operator, a token, or JOIN) and its children (none for a leaf)."""

    label: str
    children: tuple["Tree", ...] = ()

    @property
    def is_leaf(self) -> bool:
        """True for a node without children."""
        return not self.children


JOIN = ""  # the label of a binarised tree's inner nodes, which carry no token


def nodes(tree: Tree) -> Iterator[Tree]:
    """Every node of the tree in pre-order (a node, then its children left to right)."""
    stack = [tree]
    while stack:
        node = stack.pop()
        yield node
        stack.extend(reversed(node.children))


def fold(tree: Tree, fn: Callable[[Tree, list[T]], T]) -> T:
    """fn applied bottom-up without recursion: fn(node, results of its children) for
    every node; returns the root's result."""
    stack: list[tuple[Tree, bool]] = [(tree, False)]
    results: list[T] = []
    while stack:
        node, ready = stack.pop()
        if not ready and node.children:
            stack.append((node, True))
            stack.extend((c, False) for c in reversed(node.children))
            continue
        k = len(node.children)
        kids = results[-k:] if k else []
        if k:
            del results[-k:]
        results.append(fn(node, kids))
    return results[0]


def height(tree: Tree) -> int:
    """Edges on the longest path from the root down to a leaf: 0 for a leaf, 1 for
    [MAX 1 2 ]. A ListOps example's depth is its tree's height."""
    return fold(tree, lambda node, kids: 1 + max(kids) if kids else 0)


def size(tree: Tree) -> int:
    """The number of nodes, leaves included."""
    return sum(1 for _ in nodes(tree))


def binarize(tree: Tree, branching: str = "left", end: str | None = None) -> Tree:
    """The tree with every node rewritten as binary JOIN nodes, its label becoming
    the first leaf, for the chapter's recursive unit h = tanh(b + W [h_left; h_right]):

        left   [OP a b c ]  ->  (((OP a) b) c)   the operator meets its arguments in order
        right  [OP a b c ]  ->  (OP (a (b c)))   the arguments fold first, then meet the operator

    Left-branching is Nangia & Bowman's own binarisation of ListOps; with
    end="]" it is theirs exactly, the closing bracket a last leaf: ((((OP a) b) c) ]).
    Leaves stay leaves; inner nodes are labelled JOIN. Returns the binary tree.
    """
    if branching not in ("left", "right"):
        raise ConfigError(f"branching must be left or right, got {branching!r}.")
    tail = (Tree(end),) if end is not None else ()

    def join(node: Tree, kids: list[Tree]) -> Tree:
        if not kids:
            return node
        items = [Tree(node.label), *kids, *tail]
        if branching == "left":
            acc = items[0]
            for item in items[1:]:
                acc = Tree(JOIN, (acc, item))
        else:
            acc = items[-1]
            for item in reversed(items[:-1]):
                acc = Tree(JOIN, (item, acc))
        return acc

    return fold(tree, join)


def fold_arguments(tree: Tree, close: bool = True) -> Tree:
    """The tree with every node of k >= 2 children rewritten as a left fold of binary
    nodes under its own label, closed by a JOIN node of one child, for the binary
    Tree-LSTM, which reads the label as the input x of every node of the fold:

        [OP a b c ]  ->  (JOIN (OP (OP a b) c))   the operator meets its arguments in order

    Each fold node's state stands for OP over the arguments folded so far, so the
    operator reaches every step of its own computation. The closing node (no token,
    x = 0, the bracket `]` of the written tree) turns that running state into the
    node's value: the two differ for an operator such as MED, whose running state has
    to hold every argument seen so far while its value is one digit (on ListOps the
    close lifts depths 1-5 from 83% to 93% after 1,500 steps: bench/RESULTS.md, issue 24).
    Leaves and nodes of one child stay as they are; close=False leaves the fold open, the
    form before the close (a bintreelstm checkpoint of that time, `--open-folds`). Returns the tree.
    """

    def join(node: Tree, kids: list[Tree]) -> Tree:
        if len(kids) < 2:
            return node if not kids else Tree(node.label, tuple(kids))
        acc = kids[0]
        for item in kids[1:]:
            acc = Tree(node.label, (acc, item))
        return Tree(JOIN, (acc,)) if close else acc

    return fold(tree, join)


# ------------------------------------------------------------------ syntax

_LISTOPS = re.compile(r"\[[^\s\[\]]*|\]|[^\s\[\]]+")
_SEXPR = re.compile(r"[()]|[^\s()]+")


class _Malformed(Exception):
    def __init__(self, col: int, message: str):
        super().__init__(message)
        self.col, self.message = col, message


def parse_tree(text: str, where: str = "the tree", col0: int = 0) -> Tree:
    """The Tree written in `text` (ListOps or S-expression, told apart by its first
    character). A malformed tree raises CorpusError "`where`: column C: ..." where C
    counts from 1 and `col0` characters precede `text` on its line."""
    try:
        return _parse(text)
    except _Malformed as e:
        raise CorpusError(f"{where}: column {col0 + e.col}: {e.message}") from None


def _parse(text: str) -> Tree:
    sexpr = text.lstrip().startswith("(")
    stack: list[tuple[str, list[Tree], int]] = []  # open nodes: (label, children so far, column of the opener)
    root: Tree | None = None
    expect_label: int | None = None  # S-expression: column of a "(" still waiting for its label
    for m in (_SEXPR if sexpr else _LISTOPS).finditer(text):
        tok, col = m.group(), m.start() + 1
        opens = tok == "(" if sexpr else tok.startswith("[")
        closes = tok == (")" if sexpr else "]")
        if root is not None and not closes:
            raise _Malformed(col, f"text after the end of the tree ({tok!r}); one tree a line.")
        if expect_label is not None:
            if closes:
                raise _Malformed(expect_label, "an empty node '()'.")
            if opens:
                raise _Malformed(col, "a node's first element must be its label, not '('.")
            _check_leaf(tok, col, sexpr)
            stack.append((tok, [], expect_label))
            expect_label = None
            continue
        if opens:
            if sexpr:
                expect_label = col
            elif len(tok) == 1:
                raise _Malformed(col, "'[' must be followed by its operator, as in [MAX.")
            else:
                stack.append((tok[1:], [], col))
            continue
        if closes:
            if not stack:
                raise _Malformed(col, f"'{tok}' closes no node (unbalanced brackets).")
            label, kids, opened = stack.pop()
            if not kids:
                raise _Malformed(opened, f"empty node: '{_opener(label, sexpr)}' has no children.")
            node = Tree(label, tuple(kids))
        else:
            _check_leaf(tok, col, sexpr)
            node = Tree(tok)
        if stack:
            stack[-1][1].append(node)
        else:
            root = node
    if expect_label is not None:
        raise _Malformed(expect_label, "'(' with no label and no children at the end of the line.")
    if stack:
        label, _, opened = stack[-1]
        more = f" ({len(stack)} nodes open)" if len(stack) > 1 else ""
        raise _Malformed(opened, f"'{_opener(label, sexpr)}' is never closed{more} (unbalanced brackets).")
    if root is None:
        raise _Malformed(1, "no tree.")
    return root


def _opener(label: str, sexpr: bool) -> str:
    return f"({label}" if sexpr else f"[{label}"


def _check_leaf(tok: str, col: int, sexpr: bool) -> None:
    stray = "[]" if sexpr else "()"
    if any(c in tok for c in stray):
        mixed = "ListOps brackets in an S-expression" if sexpr else "parentheses in a ListOps tree"
        raise _Malformed(col, f"{tok!r} puts {mixed}; write each tree in one syntax.")


def format_listops(tree: Tree) -> str:
    """The tree in ListOps syntax: '[MAX 2 9 [MIN 4 7 ] 0 ]'."""
    return _format(tree, "[{}", "]")


def format_sexpr(tree: Tree) -> str:
    """The tree as an S-expression: '(MAX 2 9 (MIN 4 7) 0)'."""
    return _format(tree, "({}", ")").replace("( ", "(").replace(" )", ")")  # tokens hold no brackets


def _format(tree: Tree, opener: str, closer: str) -> str:
    out: list[str] = []
    stack: list[Tree | None] = [tree]  # None stands for a closing bracket
    while stack:
        node = stack.pop()
        if node is None:
            out.append(closer)
        elif node.children:
            out.append(opener.format(node.label))
            stack.append(None)
            stack.extend(reversed(node.children))
        else:
            out.append(node.label)
    return " ".join(out)


class TreeExample(NamedTuple):
    """One `label<TAB>tree` example: its label, its tree, and its line."""

    label: str
    tree: Tree
    line: int  # 1-based line of its file (for generated sets: of the file they are written to)


def iter_tree_examples(path: Path, encoding: str = "utf-8", errors: str = "strict") -> Iterator[TreeExample]:
    """Each `label<TAB>tree` line of a file as a TreeExample, blank lines skipped.

    CorpusError names file:line (and the column, for a malformed tree)."""
    for n, raw, text in iter_tsv_rows(path, "label<TAB>tree", encoding, errors):
        label = check_label(raw.strip(), f"{path}:{n}")
        if not text.strip():
            raise CorpusError(f"{path}:{n}: no tree after the label {label!r}.")
        yield TreeExample(label, parse_tree(text, f"{path}:{n}", len(raw) + 1), n)


def read_tree_examples(paths: Iterable[Path], encoding: str = "utf-8", errors: str = "strict") -> list[TreeExample]:
    """All examples of the files, in order; CorpusError when there are none."""
    return read_all(paths, lambda path: iter_tree_examples(path, encoding, errors), "label<TAB>tree")
