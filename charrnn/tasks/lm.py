"""Language modelling: predict each next token, with teacher forcing and truncated BPTT.

Teacher forcing: at every timestep the model reads the true previous token and
is scored on predicting the next one (section 10.2.1). Truncated BPTT: each row
of a batch is a contiguous stream (data/batches.py), the hidden state is carried
from batch to batch but detached, so gradients flow back at most `seq_len`
steps, and it is reset at document boundaries unless `--doc-state carry`.

Scores are nats per token and bits per character (total nats over the split
divided by its character count, / ln 2), so char and subword models compare.

Labelled documents (`--label-from`) condition the model on their label
(models/context.py): each batch carries, per timestep, the label of the
document its target belongs to, so a stream switches label where its document
changes; label dropout swaps a whole document's label for "no label" (a choice
carried from batch to batch with the state, drawn from (seed, epoch, batch), so
a resumed run draws the same). Validation is scored twice: with the true labels
and with none, and the difference is what the label is worth. `--length-model
halt|length` ends documents with an extra output instead of the softmax's
end token (models/ends.py); the length model reads each token's remaining
document length from a file made beside the cached ids (data/remaining.py).
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import torch
from torch import nn

from ..config import DataConfig, ModelConfig, TrainConfig, option_flag
from ..data.batches import StreamBatcher, eval_batches, eval_windows
from ..data.corpus import Corpus
from ..errors import ConfigError
from ..models.core import State
from ..models.lm import CharRNN, lm_options
from ..runtime import distributed
from ..runtime.hardware import autocast
from .base import Scores, Task
from .lm_options import CONDITION_FIELDS, LMOptions
from .lm_use import LMUse
from .state import CorpusFacts, LMState

LN2 = math.log(2.0)


def sum_dtype(device: torch.device) -> torch.dtype:
    """Long sums in float64, except on Apple's MPS, which has none."""
    return torch.float32 if device.type == "mps" else torch.float64


class LanguageModelling(Task):
    name = "lm"
    State = LMState
    Use = LMUse  # the sample shown while training, the TUI's probe (tasks/lm_use.py)

    def __init__(self, model_cfg: ModelConfig, data_cfg: DataConfig, cfg: TrainConfig, data: Corpus,
                 dist: distributed.Dist, device: torch.device, amp: torch.dtype | None):  # fmt: skip
        super().__init__(model_cfg, data_cfg, cfg, data, dist, device, amp)
        self.corpus, self.tok = data, data.tokenizer
        self.labels = data.label_set  # None: not conditioned
        options = dict(model_cfg.options)
        if self.labels is not None:  # every conditioning setting spelled out in the run's config
            given = LMOptions(**{k: v for k, v in options.items() if k in CONDITION_FIELDS})
            options.update({k: getattr(given, k) for k in CONDITION_FIELDS}, labels=len(self.labels))
        self.model_cfg = ModelConfig(**{**vars(model_cfg), "vocab_size": self.tok.vocab_size, "options": options}).validate()
        self.opts = lm_options(self.model_cfg)
        if self.opts.length_model != "eos" and self.tok.eos_id is None:
            raise ConfigError(
                f"--length-model {self.opts.length_model} ends documents, and this corpus has none: split it with "
                "--doc-sep line, blank, file or a separator line such as %."
            )
        self.remaining = None
        if self.opts.length_model == "length":
            from ..data.remaining import remaining_file

            self.remaining = remaining_file(data.ids, self.tok.eos_id, data.cache_dir)  # type: ignore[arg-type]
        split = data.split
        self.sides = tuple(a for a in (data.labels, self.remaining) if a is not None)  # parallel to the ids
        self.batcher = StreamBatcher(data.train, cfg.batch_size, cfg.seq_len, seed=cfg.seed, rank=dist.rank, world=dist.world,
                                     sides=tuple(a[:split] for a in self.sides))  # fmt: skip
        self.dropped: np.ndarray | None = None  # (B,) bool: the current document of each stream is shown with no label
        if len(data.val) < 2 and data_cfg.val_frac > 0:
            raise ConfigError("the validation split is too small to score; use a larger corpus or a larger --val-frac.")
        self.steps_per_epoch = self.batcher.steps_per_epoch
        self.units_per_step = self.batcher.tokens_per_step
        self.char_lengths = torch.from_numpy(self.tok.char_lengths()).to(device, sum_dtype(device))
        self.reset_docs = cfg.doc_state == "reset" and self.tok.eos_id is not None
        self.state: State | None = None  # the carried state of this rank's streams, (L, B, ...) each
        self._next: State | None = None

    @classmethod
    def check(cls, model_cfg: ModelConfig, data_cfg: DataConfig, cfg: TrainConfig) -> None:
        given = [k for k in CONDITION_FIELDS if k in model_cfg.options]
        if given and data_cfg.label_from is None:
            raise ConfigError(f"{option_flag(given[0])} conditions the model on each document's label: give --label-from "
                              "file, folder, prefix or tsv to say where the labels come from.")  # fmt: skip
        opts = lm_options(model_cfg)
        if data_cfg.label_from is not None and cfg.doc_state == "carry" and opts.condition != "input":
            raise ConfigError(f"--condition {opts.condition} sets the state at each document's start, which --doc-state carry "
                              "never does: use --condition input, or --doc-state reset.")  # fmt: skip

    @classmethod
    def open(cls, data_cfg: DataConfig, root: Any, resume: LMState | None) -> Corpus:  # type: ignore[override]
        from ..data.corpus import factory_for, prepare
        from ..data.tokenizer import tokenizer_from_state

        tok = None if resume is None else tokenizer_from_state(resume.tokenizer)
        labels = None if resume is None else resume.label_set()
        factory, spec = factory_for(data_cfg)
        return prepare(data_cfg, root, tokenizer=tok, factory=factory, tok_spec=spec, labels=labels)

    def summary(self) -> str:
        return self.corpus.summary()

    @classmethod
    def model_for(cls, model_cfg: ModelConfig) -> CharRNN:
        return CharRNN(model_cfg)

    def build_model(self) -> CharRNN:
        self.model = CharRNN(self.model_cfg)  # kept for the shape of a zero carried state
        ends = self.model.ends
        if ends is not None:
            c = self.corpus
            docs = max(c.n_docs, 1)
            ends.setup(self.tok.eos_id, halt_weight=(len(c.ids) - docs) / docs)  # type: ignore[arg-type]
            if ends.kind == "length":
                ends.fit(self._length_counts())
        return self.model

    def _length_counts(self) -> np.ndarray:
        """(labels + 1, BINS) how many training documents have a length in each bin, by
        label; the last row counts them all (the only row without labels)."""
        from ..data.remaining import document_starts
        from ..models.ends import BINS, bins_np

        C = len(self.labels) if self.labels is not None else 0
        counts = np.zeros((C + 1, BINS))
        split = self.corpus.split
        train_labels = self.corpus.labels[:split] if self.corpus.labels is not None else None
        for lengths, labels in document_starts(self.corpus.train, self.remaining[:split], self.tok.eos_id, train_labels):  # type: ignore[index, arg-type]
            b = bins_np(lengths)
            np.add.at(counts[-1], b, 1)
            if labels is not None:
                np.add.at(counts, (np.minimum(labels, C), b), 1)
        return counts

    def chars_per_unit(self) -> float:
        return (self.corpus.chars_train + self.corpus.chars_val) / max(len(self.corpus.ids), 1)

    # ------------------------------------------------------------ training

    def batch(self, epoch: int, i: int) -> tuple[torch.Tensor | None, ...]:
        """x, y (B, T); the label of each step's target, or None; each step's remaining length, or None."""
        chunk, *sides = self.batcher.windows(epoch, i)  # (B, T+1) each
        x, y = chunk[:, :-1], chunk[:, 1:]
        labels = remaining = None
        if self.labels is not None:
            labels = self._dropout(x, sides.pop(0)[:, 1:], epoch, i)  # the label of the document each step predicts
        if self.remaining is not None:
            remaining = sides.pop(0)[:, :-1]  # the length left after each input
        return tuple(None if a is None else torch.from_numpy(np.ascontiguousarray(a)).to(self.device, non_blocking=True)
                     for a in (x, y, labels, remaining))  # fmt: skip

    def _dropout(self, x: np.ndarray, labels: np.ndarray, epoch: int, i: int) -> np.ndarray:
        """Label dropout by document: each document that starts here is shown with "no
        label" with probability --label-dropout; the one each stream is in carries on."""
        p = self.opts.label_dropout
        if p == 0:
            return labels
        B, T = x.shape
        rng = np.random.default_rng([self.cfg.seed, epoch, i, self.dist.rank, 13])
        draws = rng.random((B, T + 1)) < p  # (B, T+1): one for each document that may start in a row
        if self.dropped is None:
            self.dropped = rng.random(B) < p  # a fresh stream, inside some document
        seg = np.cumsum(x == self.tok.eos_id, 1)  # (B, T): 0 for the document carried from the last batch
        drop = np.where(seg == 0, self.dropped[:, None], draws[np.arange(B)[:, None], seg])  # (B, T)
        self.dropped = drop[:, -1].copy()
        return np.where(drop, len(self.labels), labels)  # type: ignore[arg-type]

    def loss(self, net: nn.Module, batch: tuple[torch.Tensor | None, ...]) -> torch.Tensor:
        x, y, labels, remaining = batch
        if self.state is None:
            self.state = self._zeros()
        reset = (x == self.tok.eos_id) if self.reset_docs else None
        if labels is None and remaining is None:
            _, loss, self._next = net(x, self.state, y, reset)
        else:
            _, loss, self._next = net(x, self.state, y, reset, labels=labels, remaining=remaining)
        return loss

    def warm_start(self, model: nn.Module, should_stop: Any) -> str | None:
        """The model's core fits what it fits in closed form over one pass of the training
        split: this rank's share of 64 or more contiguous streams (the same ones whatever the
        number of processes), the state carried, reset at documents."""
        world, rank = self.dist.world, self.dist.rank
        streams = max(self.cfg.batch_size, -(-64 // world))
        rows = slice(rank * streams, (rank + 1) * streams)

        def batches() -> Any:
            for x, y in eval_batches(self.corpus.train, len(self.corpus.train), streams * world, self.cfg.seq_len):
                x, y = torch.from_numpy(x[rows]).to(self.device), torch.from_numpy(y[rows]).to(self.device)
                if x.numel():
                    yield x, y, (x == self.tok.eos_id) if self.reset_docs else None

        return model.core.warm_start(model, batches(), lambda t: distributed.sum_(self.dist, t), should_stop)

    def after_step(self, ok: bool) -> None:
        # carried in fp32, whatever autocast did; a skipped step starts the streams afresh
        self.state = tuple(s.detach().float() for s in self._next) if ok and self._next is not None else None
        self._next = None

    def new_epoch(self) -> None:
        self.state = None  # new offsets: the streams restart
        self.dropped = None

    def _zeros(self) -> State:
        return self.model.init_state(self.cfg.batch_size, self.device, torch.float32)

    # ---------------------------------------------------------- evaluation

    def evaluate(self, model: nn.Module, final: bool) -> Scores | None:
        """The validation split with the true labels; for a conditioned model also with
        "no label" (metrics val_bpc_no_label and label_gain_bpc: what the label is worth)."""
        if len(self.corpus.val) < 2:
            return None
        budget = self.cfg.final_eval_tokens if final else self.cfg.eval_tokens
        split = self.corpus.split
        sides = tuple(a[split:] for a in self.sides)

        def score(no_label: bool) -> tuple[float, float, int, float]:
            return evaluate(
                model, self.corpus.val, self.char_lengths, budget, self.cfg.batch_size, self.cfg.seq_len,
                self.tok.eos_id if self.reset_docs else None, self.device, self.amp, self.dist,
                labels=sides[0] if self.labels is not None else None, remaining=sides[-1] if self.remaining is not None else None,
                no_label=no_label,
            )  # fmt: skip

        loss, bpc, n, chars = score(False)
        metrics = {}
        if self.labels is not None:
            loss0, bpc0, _, _ = score(True)
            metrics = {"val_loss_no_label": loss0, "val_bpc_no_label": bpc0, "label_gain_bpc": bpc0 - bpc}
        return Scores(loss, bpc, n, chars, metrics)

    # --------------------------------------------------------- checkpoints

    def checkpoint_state(self) -> LMState:
        state = self.state if self.state is not None else self._zeros()
        carried = [distributed.gather_rows(self.dist, s.detach()).cpu() for s in state]  # (L, B x world, ...) each
        c = self.corpus
        labelled: dict[str, Any] = {}
        if self.labels is not None and c.label_stats is not None:
            dropped = torch.from_numpy(self.dropped.astype(np.uint8)) if self.dropped is not None else torch.full((self.cfg.batch_size,), 2, dtype=torch.uint8)
            labelled = dict(labels=self.labels.to_state(), label_stats=c.label_stats.to_state(),
                            label_dropped=distributed.gather_rows(self.dist, dropped.to(self.device), dim=0).cpu())  # 2: none drawn yet
        return LMState(tokenizer=self.tok.to_state(), steps_per_epoch=self.steps_per_epoch, world=self.dist.world,
                       corpus=CorpusFacts(c.chars_train, c.chars_val, len(c.ids)), carried_state=carried, **labelled)  # fmt: skip

    def restore(self, state: LMState, epoch: int, batch_i: int) -> tuple[int, int]:  # type: ignore[override]
        carried = state.carried_state
        B, W = self.cfg.batch_size, self.dist.world
        fits = carried and all(s.dim() >= 2 and s.shape[1] == B * W for s in carried)
        zeros = self._zeros()
        fits = fits and len(carried) == len(zeros) and all(a.shape[0] == b.shape[0] and a.shape[2:] == b.shape[2:] for a, b in zip(carried, zeros))
        if state.world == W and fits:
            rows = slice(self.dist.rank * B, (self.dist.rank + 1) * B)
            self.state = tuple(s[:, rows].to(self.device) for s in carried)
            dropped = state.label_dropped
            if self.labels is not None and dropped is not None and dropped.shape == (B * W,) and int(dropped[0]) != 2:
                self.dropped = dropped[rows].numpy().astype(bool)
        else:
            # Another number of processes lays the streams out differently: keep the
            # place in the epoch, start the streams from a zero state.
            old = state.steps_per_epoch or self.steps_per_epoch
            batch_i = batch_i * self.steps_per_epoch // old
        if batch_i >= self.steps_per_epoch:  # the corpus changed length
            epoch, batch_i = epoch + 1, 0
        return epoch, batch_i


@torch.inference_mode()
def evaluate(
    model: CharRNN,
    ids: Any,
    char_lengths: torch.Tensor,
    max_tokens: int,
    streams: int,
    seq_len: int,
    eos_id: int | None,
    device: torch.device,
    amp: torch.dtype | None = None,
    dist: distributed.Dist = distributed.SINGLE,
    labels: Any = None,
    remaining: Any = None,
    no_label: bool = False,
) -> tuple[float, float, int, float]:
    """(nats per token, bits per character, tokens, characters) over a split.

    The split is read as `streams` contiguous streams with the state carried along
    each, as char-rnn scores it (a stream starts cold once, not every window).
    With several processes each rank scores its share of the streams and the
    sums are added up, so every rank returns the same numbers. `labels` and
    `remaining` are the split's arrays parallel to `ids` (a conditioned model, a
    length model); `no_label` scores a conditioned model with "no label" throughout.
    """
    was_training = model.training
    model.eval()
    sums = torch.zeros(3, dtype=sum_dtype(device), device=device)  # nats, characters, tokens
    state = None
    arrays = (ids, *(a for a in (labels, remaining) if a is not None))
    rows = slice(dist.rank * streams, (dist.rank + 1) * streams)
    for chunk, *sides in eval_windows(arrays, max_tokens, streams * dist.world, seq_len):
        chunk = torch.from_numpy(chunk[rows]).to(device)  # (B, t+1)
        x, y = chunk[:, :-1], chunk[:, 1:]
        if x.numel() == 0:
            continue
        lab = torch.from_numpy(sides.pop(0)[rows, 1:]).to(device) if labels is not None else None
        rem = torch.from_numpy(sides.pop(0)[rows, :-1]).to(device) if remaining is not None else None
        reset = (x == eos_id) if eos_id is not None else None
        with autocast(device, amp):
            nats, state = model.nats(x, y, state, reset, None if no_label else lab, rem)
        sums[0] += nats.sum().to(sums.dtype)
        sums[1] += char_lengths[y].sum()
        sums[2] += y.numel()
    model.train(was_training)
    total, chars, n = distributed.sum_(dist, sums).tolist()
    if n == 0:
        return math.nan, math.nan, 0, 0.0
    return total / n, total / max(chars, 1e-9) / LN2, int(n), chars


__all__ = ["LanguageModelling", "evaluate", "sum_dtype"]
