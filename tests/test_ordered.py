"""The order-sensitive classification set (data/ordered.py): right labels, the same
characters in both classes, and a bag of n-grams near chance on it."""

from __future__ import annotations

from collections import Counter

from charrnn.baselines.bayes import NaiveBayes
from charrnn.data import ordered
from charrnn.data.builtin import BUILTINS


def test_every_text_has_the_label_its_prefixes_give_and_the_same_characters():
    rows = ordered.make(seed=1, per_class=300)
    assert Counter(label for label, _ in rows) == {"balanced": 300, "unbalanced": 300}
    assert len({text for _, text in rows}) == len(rows)
    for label, text in rows:
        assert ordered.balanced(text) == (label == "balanced"), (label, text)
        assert text.count("(") == text.count(")") and text[0] == "(" and text[-1] == ")"  # only the order tells them apart
    lengths = {lab: sorted(len(t) for la, t in rows if la == lab) for lab in ("balanced", "unbalanced")}
    assert lengths["balanced"] == lengths["unbalanced"]
    assert ordered.make(seed=1, per_class=300) == rows  # the same seed, the same set


def test_counting_n_grams_stays_near_chance():
    rows = ordered.make(seed=2, per_class=600)
    nb = NaiveBayes().fit(rows[:900])
    assert nb.evaluate(rows[900:]).accuracy < 0.62


def test_the_set_is_a_builtin_tsv(tmp_path):
    (path,) = BUILTINS["balanced"].files(tmp_path)
    lines = path.read_text(encoding="utf-8").splitlines()
    assert path.suffix == ".tsv" and len(lines) == 2 * ordered.PER_CLASS
    assert {line.split("\t")[0] for line in lines} == {"balanced", "unbalanced"}
