"""What `--task tree` reads: labelled trees, flattened once into arrays and cached.

The trees come from `label<TAB>tree` files (trees.py reads them; a malformed one
stops with file:line:column), split into training and validation by --val-frac,
or from a built-in set (listops.py's TREE_SETS: `charrnn train listops --task tree`),
which brings its own validation split with deeper trees than training.

Parsing and flattening 50,000 ListOps trees takes seconds, so the flattened
arrays (treebatch.FlatTree, binarised for the recursive unit) are cached under
CHECKPOINTS/.cache/trees, keyed by the files (path, size, modification time), the
split and the binarisation; a second run, or a resumed one, starts at once.

The tree vocabulary (every label the trees use) is a tokenizer, `TreeVocab`, so
that a checkpoint holds it the way it holds a character table.
"""

from __future__ import annotations

import hashlib
import json
import os
import random
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterable, Sequence

import numpy as np

from ..config import DataConfig
from ..errors import CheckpointError, ConfigError, CorpusError, TokenizerError
from .builtin import find
from .labels import LabelSet
from .listops import TREE_SETS, is_tree_set, tree_set_files, tree_set_spec
from .reading import resolve_files
from .treebatch import FlatTree, flatten
from .trees import JOIN, Tree, TreeExample, binarize, fold, fold_arguments, format_listops, height, iter_tree_examples, nodes, size

CACHE_VERSION = 3  # 3: folded trees end in a closing JOIN node
KEPT_TEXTS = 64  # validation trees kept as text, for the samples shown while training and the default probe


class TreeVocab:
    """The labels of a tree set's nodes (operators and leaves), sorted, as a tokenizer:
    a text is its labels separated by spaces."""

    kind = "tree"

    def __init__(self, labels: Iterable[str]):
        self.labels: tuple[str, ...] = tuple(sorted(set(labels)))
        self.stoi = {label: i for i, label in enumerate(self.labels)}

    @property
    def vocab_size(self) -> int:
        return len(self.labels)

    @property
    def eos_id(self) -> None:
        return None

    def encode(self, text: str, unknown: str = "error") -> list[int]:
        words = text.split()
        missing = sorted({w for w in words if w not in self.stoi})
        if missing and unknown != "skip":
            raise TokenizerError(f"the tree holds labels the model never saw in training: {' '.join(missing[:20])}.")
        return [self.stoi[w] for w in words if w in self.stoi]

    def decode(self, ids: Iterable[int]) -> str:
        return " ".join(self.labels[int(i)] for i in ids)

    def char_lengths(self) -> np.ndarray:
        return np.array([len(label) + 1 for label in self.labels], dtype=np.float64)  # the label and its space

    def stream_decoder(self) -> "_Words":
        return _Words(self.labels)

    def token_text(self, idx: int) -> str:
        return self.labels[idx]

    def to_state(self) -> dict[str, Any]:
        return {"kind": self.kind, "labels": list(self.labels)}

    @classmethod
    def from_state(cls, state: dict[str, Any]) -> "TreeVocab":
        labels = state.get("labels")
        if not isinstance(labels, list) or not all(isinstance(x, str) and x for x in labels) or labels != sorted(set(labels)):
            raise CheckpointError("the checkpoint's tree vocabulary is damaged (expected a sorted list of distinct labels).")
        return cls(labels)


class _Words:
    def __init__(self, labels: Sequence[str]):
        self.labels = labels

    def push(self, idx: int) -> str:
        return self.labels[idx] + " "


# How a cell reads a tree (TreeCore.form): as written, left-binarised with JOIN nodes
# (the recursive unit), or each node's arguments folded under its label (the binary Tree-LSTM).
FORMS = {"tree": lambda t: t, "joined": binarize, "folded": fold_arguments,
         "folded-open": lambda t: fold_arguments(t, close=False)}  # (a bintreelstm checkpoint from before the close)


def shaped(tree: Tree, form: str) -> Tree:
    """The tree in the form a cell reads (FORMS)."""
    return FORMS[form](tree)


def binarize_mapped(tree: Tree, form: str = "joined") -> tuple[Tree, list[int]]:
    """(shaped(tree, form), where): where[i] is the pre-order position, in the reshaped
    tree, of the written tree's node i (pre-order). A leaf maps to itself; an inner
    node maps to the top of the chain that stands for the whole node:
    [OP a b c] -> (((OP a) b) c) joined, (JOIN (OP (OP a b) c)) folded."""
    if form == "tree":
        return tree, list(range(sum(1 for _ in nodes(tree))))

    def join(node: Tree, kids: list[tuple[Tree, list[int], int]]) -> tuple[Tree, list[int], int]:
        if not kids:
            return node, [0], 1
        if form == "joined":
            acc = Tree(node.label)
            for b, _, _ in kids:
                acc = Tree(JOIN, (acc, b))
            at = len(kids) + 1  # pre-order: the k JOINs down the left spine, the operator, then each child
        elif len(kids) < 2:
            acc, at = Tree(node.label, tuple(b for b, _, _ in kids)), 1
        else:
            acc = kids[0][0]
            for b, _, _ in kids[1:]:
                acc = Tree(node.label, (acc, b))
            closed = form == "folded"
            acc = Tree(JOIN, (acc,)) if closed else acc
            at = len(kids) - 1 + closed  # pre-order: the closing JOIN, the k-1 folds down the left spine, then each child
        where = [0]
        for _, sub, n in kids:
            where.extend(at + q for q in sub)
            at += n
        return acc, where, at

    btree, where, _ = fold(tree, join)
    return btree, where


@dataclass(frozen=True)
class TreeSplit:
    """One split, flattened: what batches and scores are made of."""

    flats: list[FlatTree]  # each tree as arrays, in the form its cell reads (FORMS)
    labels: np.ndarray  # (n,) class index
    depth: np.ndarray  # (n,) the written tree's height
    nodes: np.ndarray  # (n,) the written tree's nodes (the budget of an evaluation counts these)
    chars: np.ndarray  # (n,) characters of the tree in ListOps form
    texts: tuple[str, ...]  # the first trees in ListOps form (KEPT_TEXTS of them)

    def __len__(self) -> int:
        return len(self.flats)


@dataclass(frozen=True)
class TreeData:
    train: TreeSplit
    val: TreeSplit
    vocab: TreeVocab
    classes: LabelSet
    source: str  # what was read, for the run's first line
    form: str  # FORMS: how the trees were reshaped for the cell


@dataclass(frozen=True)
class TreeSource:
    """Where a run's trees come from (cheap to make: nothing is read until `load`)."""

    files: tuple[Path, ...]  # label<TAB>tree files, split by val_frac
    builtin: str | None  # or a built-in set with its own validation split
    val_frac: float
    encoding: str
    errors: str
    cache: Path  # CHECKPOINTS/.cache
    vocab: TreeVocab | None = None  # a resumed run's own vocabulary and labels (None: from the data)
    classes: LabelSet | None = None

    @classmethod
    def of(cls, cfg: DataConfig, root: Path) -> "TreeSource":
        cache = Path(root) / ".cache"
        args = cfg.paths
        if len(args) == 1 and is_tree_set(args[0]) and not Path(args[0]).exists():
            tree_set_spec(args[0])  # a bad setting stops here, in one line
            return cls((), args[0], cfg.val_frac, cfg.encoding, cfg.errors, cache)
        for a in args:
            if (find(a) is not None or is_tree_set(a)) and not Path(a).exists():
                what = "a text corpus" if find(a) is not None else "a built-in tree set, which trains on its own"
                raise ConfigError(f"{a} is {what}; --task tree reads label<TAB>tree files or one built-in tree set "
                                  f"({', '.join(TREE_SETS)}).")  # fmt: skip
        files, _ = resolve_files(cfg, cache)
        return cls(tuple(files), None, cfg.val_frac, cfg.encoding, cfg.errors, cache)

    def _key(self, form: str) -> str:
        stats = [(str(p.resolve()), p.stat().st_size, p.stat().st_mtime_ns) for p in self.files]
        spec = [CACHE_VERSION, self.builtin, stats, self.val_frac, self.encoding, self.errors, form]
        return hashlib.sha1(json.dumps(spec).encode()).hexdigest()[:16]

    def load(self, form: str) -> TreeData:
        """The flattened splits (from the cache when it is there). A resumed run's source holds
        the vocabulary and labels it was trained with; trees with others are an error."""
        vocab, classes = self.vocab, self.classes
        path = self.cache / "trees" / f"{self._key(form)}.npz"
        data = _read_cache(path, form, self._describe()) if path.is_file() else None
        if data is None or (vocab is not None and vocab.labels != data.vocab.labels) or (classes is not None and classes != data.classes):
            train, val = self._examples()
            data = _build(train, val, form, self._describe(), vocab, classes)
            if vocab is None and classes is None:
                _write_cache(path, data)
        return data

    def _describe(self) -> str:
        if self.builtin:
            return f"{self.builtin} (built-in)"
        return ", ".join(p.name for p in self.files[:3]) + (f" and {len(self.files) - 3} more files" if len(self.files) > 3 else "")

    def _examples(self) -> tuple[list[tuple[Path, TreeExample]], list[tuple[Path, TreeExample]]]:
        if self.builtin:
            train_path, val_path = tree_set_files(self.builtin, self.cache / "corpora")
            return self._read([train_path]), self._read([val_path])
        rows = self._read(self.files)
        n_val = round(len(rows) * self.val_frac)
        if self.val_frac > 0 and n_val == 0:
            n_val = 1
        if n_val and n_val >= len(rows):
            raise CorpusError(f"only {len(rows)} tree(s): too few to hold out {self.val_frac:.0%} for validation and train on the rest.")
        held = set(random.Random(0).sample(range(len(rows)), n_val))
        return [r for i, r in enumerate(rows) if i not in held], [r for i, r in enumerate(rows) if i in held]

    def _read(self, files: Sequence[Path]) -> list[tuple[Path, TreeExample]]:
        rows = [(p, e) for p in files for e in iter_tree_examples(p, self.encoding, self.errors)]
        if not rows:
            raise CorpusError(f"{', '.join(map(str, files))}: no label<TAB>tree lines to train on.")
        return rows


def _build(train: list[tuple[Path, TreeExample]], val: list[tuple[Path, TreeExample]], form: str, source: str,
           vocab: TreeVocab | None, classes: LabelSet | None) -> TreeData:  # fmt: skip
    if vocab is None:  # labels seen only in validation still get an embedding (untrained): no spurious errors on small files
        vocab = TreeVocab(node.label for _, e in train + val for node in nodes(e.tree))
    if classes is None:
        classes = LabelSet(e.label for _, e in train + val)
    return TreeData(_split(train, vocab, classes, form), _split(val, vocab, classes, form), vocab, classes, source, form)


def _split(rows: list[tuple[Path, TreeExample]], vocab: TreeVocab, classes: LabelSet, form: str) -> TreeSplit:
    flats, labels, texts = [], [], []
    for path, e in rows:
        where = f"{path}:{e.line}"
        if e.label not in classes:
            raise CorpusError(f"{where}: the label {e.label!r} is not one the model was trained on (known: {classes.shown()}).")
        try:
            flats.append(flatten(shaped(e.tree, form), vocab.stoi))
        except CorpusError as err:
            raise CorpusError(f"{where}: {err}") from None
        labels.append(classes.index(e.label))
        if len(texts) < KEPT_TEXTS:
            texts.append(format_listops(e.tree))
    trees = [e.tree for _, e in rows]
    return TreeSplit(
        flats, np.array(labels, dtype=np.int64), np.array([height(t) for t in trees], dtype=np.int64),
        np.array([size(t) for t in trees], dtype=np.int64), np.array([len(format_listops(t)) for t in trees], dtype=np.int64),
        tuple(texts),
    )  # fmt: skip


# ------------------------------------------------------------------- cache

_FIELDS = ("tokens", "parent", "rank", "height")


def _write_cache(path: Path, data: TreeData) -> None:
    arrays: dict[str, np.ndarray] = {
        "vocab": np.array(data.vocab.labels, dtype=str), "classes": np.array(data.classes.names, dtype=str),
    }  # fmt: skip
    for name, s in (("train", data.train), ("val", data.val)):
        for f in _FIELDS:
            arrays[f"{name}.{f}"] = np.concatenate([getattr(t, f) for t in s.flats] or [np.zeros(0, np.int64)]).astype(np.int32)  # half the file
        arrays[f"{name}.sizes"] = np.array([len(t.tokens) for t in s.flats], dtype=np.int64)
        for f in ("labels", "depth", "nodes", "chars"):
            arrays[f"{name}.{f}"] = getattr(s, f)
        arrays[f"{name}.texts"] = np.array(s.texts, dtype=str)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    with open(tmp, "wb") as f:
        np.savez(f, **arrays)
    os.replace(tmp, path)


def _read_cache(path: Path, form: str, source: str) -> TreeData | None:
    try:
        with np.load(path, allow_pickle=False) as z:
            a = {k: z[k] for k in z.files}
        splits = []
        for name in ("train", "val"):
            cuts = np.cumsum(a[f"{name}.sizes"])[:-1]
            parts = [np.split(a[f"{name}.{f}"].astype(np.int64), cuts) for f in _FIELDS]
            flats = [FlatTree(*fields) for fields in zip(*parts)] if len(a[f"{name}.sizes"]) else []
            splits.append(TreeSplit(flats, *(a[f"{name}.{f}"] for f in ("labels", "depth", "nodes", "chars")),
                                    tuple(str(t) for t in a[f"{name}.texts"])))  # fmt: skip
        return TreeData(splits[0], splits[1], TreeVocab(a["vocab"].tolist()), LabelSet(a["classes"].tolist()), source, form)
    except (OSError, ValueError, KeyError):
        return None  # a damaged or older cache file: build it again
