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
from ..data.examples import LabelledData, encode_texts
from ..data.labels import LabelSet
from ..data.tokenizer import tokenizer_from_state
from ..errors import ConfigError, TokenizerError
from ..models.classifier import SequenceClassifier
from ..runtime import distributed
from ..runtime.hardware import autocast
from .base import Prediction, PredictOptions, Predictor, Scores, Task
from .reports import ClassReport, ClassTrace
from .state import CorpusFacts, TaskState

EVAL_BATCH = 64  # documents scored at once
SHOWN = 3  # validation documents shown (with their predicted label) at each evaluation
BASELINE = "character 1-3-gram naive Bayes"


class Classification(Task):
    name = "classify"
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

    def sample(self, model: nn.Module, step: int) -> str:
        """A few validation documents with the label the model gives them."""
        n = len(self.data.val)
        if n == 0:
            return ""
        first = (step // self.cfg.eval_every * SHOWN) % n
        predictor = ClassifyPredictor(model, self.tok, self.labels, self.max_chars, PredictOptions())
        lines = []
        for r in [(first + k) % n for k in range(min(SHOWN, n))]:
            text = self.tok.decode(self.data.val[r][: self.max_chars])
            details = predictor.predict(text).details
            label, p = details.ranked()[0]
            truth = self.labels.label(int(self.data.val_y[r]))
            mark = "✓" if label == truth else f"✗ (is {truth})"
            lines.append(f"{label} {p:.2f} {mark}  {shorten(text)}")
        return "\n".join(lines)

    def default_probe_text(self) -> str:
        split = self.data.val if len(self.data.val) else self.data.train
        return self.tok.decode(split[0][: min(self.max_chars, 160)])

    def probe(self, model: nn.Module, text: str, step: int) -> Any:
        from ..inspect.trace import Probe, activations, gradient_flow

        text = text[: self.max_chars]
        acts = activations(model, self.tok, text, unknown="skip")
        flow = gradient_flow(model, self.tok, text, "skip", loss_of=lambda tr: F.cross_entropy(tr.logits[0, -1:].float(), tr.logits[0, -1:].argmax(-1)))
        prediction = ClassifyPredictor(model, self.tok, self.labels, self.max_chars, PredictOptions(trace=True)).predict(text)
        return Probe(step, acts, flow, task=self.name, prediction=prediction)

    # --------------------------------------------------------- prediction

    @classmethod
    def predictor(cls, state: TaskState, model: nn.Module, opts: PredictOptions) -> Predictor:
        return ClassifyPredictor(model, tokenizer_from_state(state.tokenizer), LabelSet.from_state(state.labels),
                                 model.cfg.task_options().max_chars, opts)  # fmt: skip

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


def shorten(text: str, width: int = 60) -> str:
    """A text on one line, cut to about `width` characters."""
    flat = text.replace("\n", "⏎").replace("\t", "→")
    return flat if len(flat) <= width else flat[: width - 1] + "…"


class ClassifyPredictor(Predictor):
    def __init__(self, model: nn.Module, tok: Any, labels: LabelSet, max_chars: int, opts: PredictOptions):
        wrong = [flag for flag, on in (("--beam", opts.beam is not None), ("--top", opts.top > 1), ("--attention-map", opts.attention_map),
                                       ("--temperature", opts.temperature is not None)) if on]  # fmt: skip
        if wrong:
            raise ConfigError(f"{', '.join(wrong)} {'is' if len(wrong) == 1 else 'are'} for encoder-decoder runs; "
                              "a classifier answers with a label (--trace follows it along the text).")  # fmt: skip
        self.model, self.tok, self.labels, self.max_chars, self.opts = model, tok, labels, max_chars, opts

    @torch.no_grad()
    def predict(self, text: str) -> Prediction:
        from ..inspect.trace import evaluating

        ids = encode_texts(self.tok, [text], unknown="skip")[0][: self.max_chars]
        if len(ids) == 0:
            raise TokenizerError(f"none of the characters of {shorten(text, 30)!r} is one the model knows; nothing to classify.")
        model = self.model
        with evaluating(model):
            idx = torch.from_numpy(ids.astype(np.int64))[None].to(model.head.weight.device)  # (1, T)
            logits, _ = model(idx)
            probs = torch.softmax(logits[0].float(), -1).cpu().numpy()  # (C,)
            steps = attention = None
            if self.opts.trace:
                steps = torch.softmax(model.prefix_logits(model.states(idx))[0].float(), -1).cpu().numpy()  # (T, C)
                att = model.attention(idx)
                attention = att[0].cpu().numpy() if att is not None else None
        details = ClassTrace(self.labels.names, probs, tuple(self.tok.decode([int(i)]) for i in ids), steps, attention)
        ranked = details.ranked()
        line = f"{ranked[0][0]} {ranked[0][1]:.3f}" + "".join(f"  {lab} {p:.3f}" for lab, p in ranked[1:5])
        record: dict[str, Any] = {"label": ranked[0][0], "probabilities": dict(ranked), "chars_read": len(ids)}
        if steps is not None:
            record["trace"] = [[round(float(v), 5) for v in row] for row in steps]
        return Prediction(line, details, record)

