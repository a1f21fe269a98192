"""An order-sensitive classification set: balanced brackets against unbalanced ones.

    balanced     (()(())(()))     every prefix opens at least as many as it closes
    unbalanced   (()())(()))(     some prefix closes one too many

Each text is a random balanced string of n pairs (n from 10 to 20) with ")("
put in at a point between two sibling groups, "...)|(...": inside an enclosing
pair the text stays balanced, between two top-level groups it goes one below zero
there and is unbalanced. So both classes hold the same characters, the same
lengths and the same four characters "))((" around the change, and a bag of
character n-grams, which sees what occurs and not where, stays near chance (a
1-3-gram naive Bayes about 50%), while a recurrent net needs only a counter kept
in its state (the single-output RNN of section 10.2) to tell them apart.

Written once as a `label<TAB>text` file (`charrnn train balanced --task classify`;
a .tsv is read with --label-from tsv).
"""

from __future__ import annotations

import os
import random
from pathlib import Path

VERSION = 1
PER_CLASS = 6_000
MIN_PAIRS, MAX_PAIRS = 10, 20


def balanced(text: str) -> bool:
    """Whether no prefix of `text` closes more brackets than it opens and the whole closes them all."""
    depth = 0
    for ch in text:
        depth += 1 if ch == "(" else -1
        if depth < 0:
            return False
    return depth == 0


def dyck(rng: random.Random, n: int) -> str:
    """A balanced string of n pairs, each equally likely (shuffles kept only when balanced)."""
    chars = ["("] * n + [")"] * n
    while True:
        rng.shuffle(chars)
        text = "".join(chars)
        if balanced(text):
            return text


def faults(text: str) -> tuple[list[int], list[int]]:
    """Points k between two sibling groups (text[k-1] == ")" and text[k] == "("):
    (those inside an enclosing pair, those at the top level)."""
    inner, top, depth = [], [], 0
    for k in range(1, len(text)):
        depth += 1 if text[k - 1] == "(" else -1
        if text[k - 1] == ")" and text[k] == "(":
            (top if depth == 0 else inner).append(k)
    return inner, top


def make(seed: int = 0, per_class: int = PER_CLASS) -> list[tuple[str, str]]:
    """(label, text) rows, `per_class` of each label, lengths spread evenly, shuffled; no text twice."""
    rng = random.Random(f"balanced/{seed}")
    rows: list[tuple[str, str]] = []
    seen: set[str] = set()
    spans = MAX_PAIRS - MIN_PAIRS + 1
    for i in range(2 * per_class):
        label = ("balanced", "unbalanced")[i % 2]
        n = MIN_PAIRS + (i // 2) % spans
        while True:
            base = dyck(rng, n)
            points = faults(base)[label == "unbalanced"]
            if points:
                k = rng.choice(points)
                text = base[:k] + ")(" + base[k:]
                if text not in seen:
                    break
        seen.add(text)
        rows.append((label, text))
    rng.shuffle(rows)
    return rows


def write(folder: Path) -> Path:
    """The set as `folder`/balanced-vN.tsv, made once and written atomically."""
    out = Path(folder) / f"balanced-v{VERSION}.tsv"
    if not out.exists():
        out.parent.mkdir(parents=True, exist_ok=True)
        tmp = out.with_name(f"{out.name}.{os.getpid()}.tmp")
        tmp.write_text("".join(f"{label}\t{text}\n" for label, text in make()), encoding="utf-8")
        tmp.replace(out)
    return out
