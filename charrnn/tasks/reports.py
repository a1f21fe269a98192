"""What the classification and encoder-decoder tasks hand to the terminal: plain frozen data (no torch).

A report travels in the final evaluation (`Scores.report` -> `EvalEvent.report`),
goes into metrics.jsonl as JSON (`record()`), and is drawn in the terminal by the
view that charrnn/views/ maps its type to (the faces know the tasks, not the other way).
`ClassTrace` and `Decoded` are the details of one prediction (`Prediction.details`),
drawn by the task's view (charrnn/views/) for `charrnn predict` and the TUI.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Sequence

import numpy as np


def rates(confusion: Sequence[Sequence[int]]) -> tuple[float, tuple[float, ...], tuple[float, ...]]:
    """(accuracy, precision per label, recall per label) of a confusion matrix whose rows are the
    true labels and columns the predicted ones; 0.0 for a label never predicted or never present."""
    n = sum(map(sum, confusion))
    hits = [row[i] for i, row in enumerate(confusion)]
    predicted = [sum(col) for col in zip(*confusion)] if confusion else []
    present = [sum(row) for row in confusion]
    precision = tuple(h / p if p else 0.0 for h, p in zip(hits, predicted))
    recall = tuple(h / a if a else 0.0 for h, a in zip(hits, present))
    return (sum(hits) / n if n else 0.0), precision, recall


@dataclass(frozen=True)
class ClassReport:
    """A classifier on the validation documents: accuracy, per-label precision and recall, the
    confusion matrix, the majority-class accuracy, and the n-gram naive Bayes baseline beside it."""


    labels: tuple[str, ...]
    confusion: tuple[tuple[int, ...], ...]  # row = true label, column = predicted label
    majority: float  # accuracy of always answering the most common training label
    baseline: "ClassReport | None" = None  # naive Bayes on the same split
    baseline_name: str = ""

    @classmethod
    def of(cls, labels: Sequence[str], confusion: Any, majority: float, baseline: "ClassReport | None" = None,
           baseline_name: str = "") -> "ClassReport":  # fmt: skip
        rows = tuple(tuple(int(v) for v in row) for row in confusion)
        return cls(tuple(labels), rows, float(majority), baseline, baseline_name)

    @property
    def n(self) -> int:
        return sum(map(sum, self.confusion))

    @property
    def accuracy(self) -> float:
        return rates(self.confusion)[0]

    @property
    def precision(self) -> tuple[float, ...]:
        return rates(self.confusion)[1]

    @property
    def recall(self) -> tuple[float, ...]:
        return rates(self.confusion)[2]

    def record(self) -> dict[str, Any]:
        out = {
            "documents": self.n,
            "accuracy": self.accuracy,
            "majority": self.majority,
            "labels": list(self.labels),
            "precision": dict(zip(self.labels, self.precision)),
            "recall": dict(zip(self.labels, self.recall)),
            "confusion": [list(row) for row in self.confusion],
        }
        if self.baseline is not None:
            out["baseline"] = {"name": self.baseline_name, **self.baseline.record()}
        return out


@dataclass(frozen=True)
class LengthRow:
    """The pairs whose source has lo..hi characters."""

    lo: int
    hi: int
    n: int
    exact: float  # share of outputs equal to their target
    cer: float  # character error rate: edits / target characters


@dataclass(frozen=True)
class Seq2SeqReport:
    """An encoder-decoder on the validation pairs (greedy decoding): exact match and character
    error rate, overall and by source length, with a few of the mistakes."""


    n: int
    exact: float
    cer: float
    rows: tuple[LengthRow, ...]
    train_max: int  # the longest training source: rows beyond it test lengths never trained on
    mistakes: tuple[tuple[str, str, str], ...] = ()  # (source, target, output)

    def record(self) -> dict[str, Any]:
        return {
            "pairs": self.n,
            "exact_match": self.exact,
            "cer": self.cer,
            "train_max_source": self.train_max,
            "by_source_length": [vars(r) for r in self.rows],
            "mistakes": [list(m) for m in self.mistakes],
        }


@dataclass(frozen=True)
class ClassTrace:
    """A classifier's answer for one text, and (with --trace) how it moved as the characters arrived."""

    labels: tuple[str, ...]
    probs: np.ndarray  # (C,) P(label | the text)
    tokens: tuple[str, ...]  # the characters read (those the model never saw are skipped)
    steps: np.ndarray | None = None  # (T, C) P(label | the first t characters), with --trace
    attention: np.ndarray | None = None  # (T,) the attention pool's weights over the text (--pool attn)

    def ranked(self) -> list[tuple[str, float]]:
        """(label, probability), most probable first."""
        order = np.argsort(-self.probs, kind="stable")
        return [(self.labels[i], float(self.probs[i])) for i in order]


END = "<end>"  # how the end token reads among Decoded.steps


@dataclass(frozen=True)
class Beam:
    output: str
    logp: float  # log P(output, end | source), natural log
    score: float  # the length-normalised score beam search ranks by
    finished: bool  # ended by the end token (else cut at the length limit)


@dataclass(frozen=True)
class Decoded:
    """An encoder-decoder's output for one source, how it was found, and where it looked."""

    source: tuple[str, ...]  # the source's characters
    output: str
    steps: tuple[str, ...]  # the characters written, then "<end>" if the end token was
    logp: float  # log-probability of `steps` under the model
    how: str  # "greedy", "beam 5", "sampled at temperature 0.8"
    beams: tuple[Beam, ...] = ()  # beam search: the best hypotheses, best first
    attention: np.ndarray | None = None  # (len(steps), len(source)) α(t, s), each row sums to 1
