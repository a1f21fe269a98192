"""Sequence classification: one label per document, read after the whole document.

Data: labelled documents (data/labels.py: `--label-from file|folder|prefix|tsv`),
split per label and encoded as characters (data/examples.py). A step reads
`--batch-size` documents of similar length (data/bucket.py); a document longer
than `--max-chars` is read through a random window of that many characters in
training, and from its start in validation and by `charrnn predict`.

The loss is the cross-entropy of the label, in nats per document. Evaluation
reports accuracy beside two yardsticks measured on the very same documents: the
majority class, and a character n-gram naive Bayes (baselines/bayes.py) trained
on the same training documents, so a user sees whether the RNN earns its keep.
The final evaluation adds per-label precision and recall and the confusion
matrix (tasks/reports.py: ClassReport).
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from ..config import DataConfig, ModelConfig, TrainConfig
from ..data.bucket import BucketBatcher, pad
from ..data.examples import LabelledData
from ..data.labels import LabelSet
from ..data.tokenizer import tokenizer_from_state
from ..errors import ConfigError
from ..models.classifier import SequenceClassifier
from ..runtime import distributed
from ..runtime.hardware import autocast
from .base import Scores, Task
from .classify_use import ClassifyUse
from .reports import ClassReport
from .state import CorpusFacts, TaskState

EVAL_BATCH = 64  # documents scored at once
BASELINE = "character 1-3-gram naive Bayes"


class Classification(Task):
    name = "classify"
    Use = ClassifyUse  # predict, the documents shown while training, the TUI's probe (tasks/classify_use.py)
    unit = "document"
    bpc = False

    def __init__(self, model_cfg: ModelConfig, data_cfg: DataConfig, cfg: TrainConfig, data: LabelledData,
                 dist: distributed.Dist, device: torch.device, amp: torch.dtype | None):  # fmt: skip
        super().__init__(model_cfg, data_cfg, cfg, data, dist, device, amp)
        self.tok, self.labels = data.tokenizer, data.labels
        options = {**model_cfg.options, "classes": len(self.labels)}
        self.model_cfg = ModelConfig(**{**vars(model_cfg), "vocab_size": self.tok.vocab_size, "options": options}).validate()
        self.max_chars = self.model_cfg.task_options().max_chars
        if len(data.val) == 0 and data_cfg.val_frac > 0:
            raise ConfigError("no label has two documents to hold one out for validation; add documents or use --val-frac 0.")
        self.batcher = BucketBatcher(np.minimum(data.train.lengths, self.max_chars), cfg.batch_size, cfg.seed, dist.rank,
                                     dist.world, what="documents")  # fmt: skip
        self.steps_per_epoch = self.batcher.steps_per_epoch
        self.units_per_step = self.batcher.batch_size * dist.world
        counts = np.bincount(data.train_y, minlength=len(self.labels))
        self.majority = int(np.argmax(counts))
        self._bayes: np.ndarray | None = None  # the baseline's answer for every validation document

    @classmethod
    def open(cls, data_cfg: DataConfig, root: Any, resume: TaskState | None) -> LabelledData:
        from ..data.examples import open_labelled

        if resume is None:
            return open_labelled(data_cfg, root)
        return open_labelled(data_cfg, root, tokenizer_from_state(resume.tokenizer), LabelSet.from_state(resume.labels))

    def summary(self) -> str:
        return self.data.summary()

    @classmethod
    def model_for(cls, model_cfg: ModelConfig) -> SequenceClassifier:
        return SequenceClassifier(model_cfg)

    def chars_per_unit(self) -> float:
        return float(np.minimum(self.data.train.lengths, self.max_chars).mean())

    # ------------------------------------------------------------ training

    def batch(self, epoch: int, i: int) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        rows = self.batcher.batch(epoch, i)
        rng = np.random.default_rng([self.cfg.seed, epoch, i, self.dist.rank])
        docs = []
        for r in rows:
            ids = self.data.train[r]
            start = int(rng.integers(0, len(ids) - self.max_chars + 1)) if len(ids) > self.max_chars else 0
            docs.append(ids[start : start + self.max_chars])
        x, lengths = pad(docs, 0)
        to = self.device
        return torch.from_numpy(x).to(to), torch.from_numpy(lengths).to(to), torch.from_numpy(self.data.train_y[rows]).to(to)

    def loss(self, net: nn.Module, batch: tuple[torch.Tensor, torch.Tensor, torch.Tensor]) -> torch.Tensor:
        x, lengths, y = batch
        _, loss = net(x, y, lengths)
        return loss

    # ---------------------------------------------------------- evaluation

    def _scored(self, final: bool) -> np.ndarray:
        """The validation documents scored: the first ones up to the character budget."""
        budget = self.cfg.final_eval_tokens if final else self.cfg.eval_tokens
        chars = np.cumsum(np.minimum(self.data.val.lengths, self.max_chars))
        return np.arange(min(len(chars), int(np.searchsorted(chars, budget)) + 1))

    @torch.inference_mode()
    def evaluate(self, model: nn.Module, final: bool) -> Scores | None:
        if len(self.data.val) == 0:
            return None
        rows = self._scored(final)
        mine = rows[self.dist.rank :: self.dist.world]
        mine = mine[np.argsort(self.data.val.lengths[mine], kind="stable")]  # neighbours in length: little padding
        C = len(self.labels)
        confusion = torch.zeros(C * C, dtype=torch.float64, device=self.device)
        sums = torch.zeros(2, dtype=torch.float64, device=self.device)  # nats, characters
        was_training = model.training
        model.eval()
        for at in range(0, len(mine), EVAL_BATCH):
            part = mine[at : at + EVAL_BATCH]
            x, lengths = pad([self.data.val[r][: self.max_chars] for r in part], 0)
            x, lengths = torch.from_numpy(x).to(self.device), torch.from_numpy(lengths).to(self.device)
            y = torch.from_numpy(self.data.val_y[part]).to(self.device)
            with autocast(self.device, self.amp):
                logits, _ = model(x, lengths=lengths)
            sums[0] += F.cross_entropy(logits.float(), y, reduction="sum").double()
            sums[1] += lengths.sum()
            confusion += torch.bincount(y * C + logits.argmax(-1), minlength=C * C).double()
        model.train(was_training)
        sums, confusion = distributed.sum_(self.dist, sums), distributed.sum_(self.dist, confusion)
        matrix = confusion.view(C, C).long().cpu().numpy()
        truth = self.data.val_y[rows]
        bayes = self._bayes_answers()[rows]
        majority = float(np.mean(truth == self.majority))
        report = ClassReport.of(self.labels.names, matrix, majority)
        metrics = {"accuracy": report.accuracy, "majority": majority, "bayes_accuracy": float(np.mean(bayes == truth))}
        if final:
            baseline = np.zeros((C, C), dtype=np.int64)
            np.add.at(baseline, (truth, bayes), 1)
            report = ClassReport.of(self.labels.names, matrix, majority, ClassReport.of(self.labels.names, baseline, majority), BASELINE)
        n = len(rows)
        return Scores(float(sums[0]) / n, None, n, float(sums[1]), metrics, report if final else None)

    def _bayes_answers(self) -> np.ndarray:
        """The n-gram baseline's label for every validation document (fitted once, on the training documents)."""
        if self._bayes is None:
            from ..baselines.bayes import NaiveBayes

            decode = self.tok.decode
            nb = NaiveBayes().fit((self.labels.label(int(y)), decode(self.data.train[i])) for i, y in enumerate(self.data.train_y))
            texts = [decode(self.data.val[i][: self.max_chars]) for i in range(len(self.data.val))]
            self._bayes = np.array([self.labels.index(lab) for lab in nb.predict(texts)], dtype=np.int64)
        return self._bayes

    # --------------------------------------------------------- checkpoints

    def checkpoint_state(self) -> TaskState:
        d = self.data
        train, val = int(d.train.lengths.sum()), int(d.val.lengths.sum())
        return TaskState(tokenizer=self.tok.to_state(), steps_per_epoch=self.steps_per_epoch, world=self.dist.world,
                         corpus=CorpusFacts(train, val, train + val, len(d.train), len(d.val)),
                         labels=self.labels.to_state(), label_stats=d.stats.to_state())  # fmt: skip

    def restore(self, state: TaskState, epoch: int, batch_i: int) -> tuple[int, int]:
        return rescale_position(state, epoch, batch_i, self.steps_per_epoch)


def rescale_position(state: TaskState, epoch: int, batch_i: int, steps_per_epoch: int) -> tuple[int, int]:
    """Where a resumed run goes on: the same place in the epoch, as a share of it when the
    number of steps an epoch takes has changed (another number of processes)."""
    old = state.steps_per_epoch or steps_per_epoch
    if old != steps_per_epoch:
        batch_i = batch_i * steps_per_epoch // old
    return (epoch + 1, 0) if batch_i >= steps_per_epoch else (epoch, batch_i)
