"""ListOps (Nangia & Bowman, 2018), the chapter's test bed for recursive nets:
`[MAX 2 9 [MIN 4 7 ] 0 ]` has the value 9, and a model must follow the nesting to
compute it. Evaluation, and a generated set listed by `charrnn corpora`.

The generator is theirs: operators MIN, MAX, MED (median) and SM (sum mod 10); an
argument is a nested operator with probability `value_p` = 0.25, else a digit;
2 to `max_args` = 5 arguments; no operator deeper than the depth limit;
duplicates dropped. Training trees come from it as published; validation trees
have heights spread evenly over 1..val_depth, deeper than any in training, made
by the same process with one argument per level forced to be an operator.
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

from ..errors import ConfigError, CorpusError
from .pairs import cached_split
from .trees import Tree, TreeExample, fold, format_listops

LISTOPS_OPS = ("MAX", "MED", "MIN", "SM")
_DIGITS = tuple(Tree(str(d)) for d in range(10))


def _median(values: list[int]) -> int:
    s, n = sorted(values), len(values)
    return s[n // 2] if n % 2 else int((s[n // 2 - 1] + s[n // 2]) / 2)  # int(np.median(x)), as the paper's code


_APPLY: dict[str, Callable[[list[int]], int]] = {"MIN": min, "MAX": max, "MED": _median, "SM": lambda v: sum(v) % 10}


def evaluate(tree: Tree) -> int:
    """The value of a ListOps tree: MIN, MAX, MED (median; of an even count, the
    mean of the middle two rounded down) and SM (sum mod 10) over whole numbers.
    CorpusError for an unknown operator or a leaf that is not a number."""

    def value(node: Tree, kids: list[int]) -> int:
        if not kids:
            try:
                return int(node.label)
            except ValueError:
                raise CorpusError(f"ListOps leaf {node.label!r} is not a number.") from None
        op = _APPLY.get(node.label)
        if op is None:
            raise CorpusError(f"unknown ListOps operator {node.label!r}; known: {', '.join(LISTOPS_OPS)}.")
        return op(kids)

    return fold(tree, value)


# The generator builds each tree together with its value (one pass, not two), and
# draws with random() arithmetic, cheaper than randint/choice.
_Grown = tuple[Tree, int]
_LEAVES: tuple[_Grown, ...] = tuple((t, int(t.label)) for t in _DIGITS)


def _node(rng: random.Random, parts: list[_Grown]) -> _Grown:
    op = LISTOPS_OPS[int(rng.random() * 4)]
    return Tree(op, tuple(p[0] for p in parts)), _APPLY[op]([p[1] for p in parts])


def _grow(rng: random.Random, room: int, max_args: int, value_p: float) -> _Grown:
    # Nangia & Bowman's generate_tree: an operator with probability value_p while room is left
    if room > 0 and rng.random() < value_p:
        n = 2 + int(rng.random() * (max_args - 1))
        return _node(rng, [_grow(rng, room - 1, max_args, value_p) for _ in range(n)])
    return _LEAVES[int(rng.random() * 10)]


def _grow_root(rng: random.Random, depth: int, max_args: int, value_p: float) -> _Grown:
    # their generate_tree(1) when it draws an operator (a bare digit is no example)
    n = 2 + int(rng.random() * (max_args - 1))
    return _node(rng, [_grow(rng, depth - 1, max_args, value_p) for _ in range(n)])


def _grow_exact(rng: random.Random, depth: int, max_args: int, value_p: float) -> _Grown:
    # Their process with one argument per level forced to be an operator (a spine),
    # so the tree's height is exactly `depth`.
    if depth == 0:
        return _LEAVES[int(rng.random() * 10)]
    n = 2 + int(rng.random() * (max_args - 1))
    spine = int(rng.random() * n)
    grow = [_grow_exact if i == spine else _grow for i in range(n)]
    return _node(rng, [g(rng, depth - 1, max_args, value_p) for g in grow])


def make_listops(
    seed: int = 0, n_train: int = 50_000, n_val: int = 2_000, train_depth: int = 5, val_depth: int = 8,
    max_args: int = 5, value_p: float = 0.25,
) -> tuple[list[TreeExample], list[TreeExample]]:  # fmt: skip
    """(train, validation) ListOps examples, label = the tree's value as a digit.

    Training trees follow Nangia & Bowman's generator with at most `train_depth`
    nested operators (their MAX_DEPTH is train_depth + 1; the root is always an
    operator); validation trees have heights spread evenly over 1..val_depth, so
    those deeper than train_depth never occur in training. No tree appears twice,
    in either split or across them. The same arguments give the same examples.
    """
    if not 1 <= train_depth <= val_depth or max_args < 2 or not 0 < value_p <= 1 or n_train < 1 or n_val < 0:
        raise ConfigError("ListOps needs 1 <= train depth <= validation depth, max args >= 2, 0 < value p <= 1 and n_train >= 1.")
    seen: set[Tree] = set()  # a Tree is a tuple of tuples: hashed and compared in C

    def draw(n: int, grow: Callable[[int], _Grown], what: str) -> list[TreeExample]:
        out: list[TreeExample] = []
        for _ in range(50 * n + 1000):
            if len(out) == n:
                break
            tree, value = grow(len(out))
            if tree not in seen:
                seen.add(tree)
                out.append(TreeExample(str(value), tree, len(out) + 1))
        if len(out) < n:
            raise ConfigError(f"ListOps: cannot find {n:,} distinct {what} trees with these settings; ask for fewer.")
        return out

    rng = random.Random(f"listops/{seed}/train")  # a str seed is hashed the same way on every run
    train = draw(n_train, lambda _: _grow_root(rng, train_depth, max_args, value_p), "training")
    rng = random.Random(f"listops/{seed}/val")
    val = draw(n_val, lambda i: _grow_exact(rng, 1 + i % val_depth, max_args, value_p), "validation")
    return train, val


@dataclass(frozen=True)
class TreeSet:
    """A built-in tree set: what `charrnn corpora` lists, and how to make its (train, validation) examples."""

    name: str
    description: str
    make: Callable[[int, int, int], tuple[list[TreeExample], list[TreeExample]]]  # (seed, n_train, n_val)
    n_train: int = 50_000
    n_val: int = 2_000


TREE_SETS: dict[str, TreeSet] = {
    "listops": TreeSet(
        "listops",
        "ListOps trees (Nangia & Bowman 2018: MIN MAX MED SM over digits) -> their value; validation deeper than training",
        lambda seed, n_train, n_val: make_listops(seed, n_train, n_val),
    )
}


def tree_set_files(name: str, folder: Path, seed: int = 0, n_train: int | None = None, n_val: int | None = None) -> tuple[Path, Path]:
    """(train.tsv, val.tsv) of a built-in tree set as label<TAB>tree lines under `folder`, written on first use."""
    spec = TREE_SETS.get(name)
    if spec is None:
        raise ConfigError(f"unknown tree set {name!r}; the built-in ones are {', '.join(TREE_SETS)}.")
    n_train = spec.n_train if n_train is None else n_train
    n_val = spec.n_val if n_val is None else n_val

    def rows() -> tuple[list[tuple[str, str]], list[tuple[str, str]]]:
        train, val = spec.make(seed, n_train, n_val)
        return [(e.label, format_listops(e.tree)) for e in train], [(e.label, format_listops(e.tree)) for e in val]

    return cached_split(folder, f"{name}-seed{seed}-{n_train}x{n_val}", rows)
