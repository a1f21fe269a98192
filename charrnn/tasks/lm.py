"""Language modelling: predict each next token, with teacher forcing and truncated BPTT.

Teacher forcing: at every timestep the model reads the true previous token and
is scored on predicting the next one (section 10.2.1). Truncated BPTT: each row
of a batch is a contiguous stream (data/batches.py), the hidden state is carried
from batch to batch but detached, so gradients flow back at most `seq_len`
steps, and it is reset at document boundaries unless `--doc-state carry`.

Scores are nats per token and bits per character (total nats over the split
divided by its character count, / ln 2), so char and subword models compare.
"""

from __future__ import annotations

import math
from typing import Any

import torch
from torch import nn

from ..config import DataConfig, ModelConfig, SampleConfig, TrainConfig
from ..data.batches import StreamBatcher, eval_batches
from ..data.corpus import Corpus
from ..errors import ConfigError
from ..models.core import State
from ..models.lm import CharRNN
from ..training import distributed
from ..training.hardware import autocast
from .base import Scores, Task

LN2 = math.log(2.0)


def sum_dtype(device: torch.device) -> torch.dtype:
    """Long sums in float64, except on Apple's MPS, which has none."""
    return torch.float32 if device.type == "mps" else torch.float64


class LanguageModelling(Task):
    name = "lm"

    def __init__(self, model_cfg: ModelConfig, data_cfg: DataConfig, cfg: TrainConfig, data: Corpus,
                 dist: distributed.Dist, device: torch.device, amp: torch.dtype | None):  # fmt: skip
        super().__init__(model_cfg, data_cfg, cfg, data, dist, device, amp)
        self.corpus, self.tok = data, data.tokenizer
        self.model_cfg = ModelConfig(**{**vars(model_cfg), "vocab_size": self.tok.vocab_size}).validate()
        self.batcher = StreamBatcher(data.train, cfg.batch_size, cfg.seq_len, seed=cfg.seed, rank=dist.rank, world=dist.world)
        if len(data.val) < 2 and data_cfg.val_frac > 0:
            raise ConfigError("the validation split is too small to score; use a larger corpus or a larger --val-frac.")
        self.steps_per_epoch = self.batcher.steps_per_epoch
        self.units_per_step = self.batcher.tokens_per_step
        self.char_lengths = torch.from_numpy(self.tok.char_lengths()).to(device, sum_dtype(device))
        self.reset_docs = cfg.doc_state == "reset" and self.tok.eos_id is not None
        self.state: State | None = None  # the carried state of this rank's streams, (L, B, ...) each
        self._next: State | None = None

    @classmethod
    def open(cls, data_cfg: DataConfig, root: Any, resume: dict[str, Any] | None) -> Corpus:
        from ..data.corpus import factory_for, prepare
        from ..data.tokenizer import tokenizer_from_state

        if data_cfg.label_from is not None:
            raise ConfigError("--label-from reads labelled documents, which a plain language model does not use.")
        tok = None if resume is None else tokenizer_from_state(resume["tokenizer"])
        factory, spec = factory_for(data_cfg)
        return prepare(data_cfg, root, tokenizer=tok, factory=factory, tok_spec=spec)

    def summary(self) -> str:
        return self.corpus.summary()

    @classmethod
    def model_for(cls, model_cfg: ModelConfig) -> CharRNN:
        return CharRNN(model_cfg)

    def build_model(self) -> CharRNN:
        self.model = CharRNN(self.model_cfg)  # kept for the shape of a zero carried state
        return self.model

    def chars_per_unit(self) -> float:
        return (self.corpus.chars_train + self.corpus.chars_val) / max(len(self.corpus.ids), 1)

    # ------------------------------------------------------------ training

    def batch(self, epoch: int, i: int) -> tuple[torch.Tensor, torch.Tensor]:
        x, y = self.batcher.batch(epoch, i)  # (B, T) each
        return torch.from_numpy(x).to(self.device, non_blocking=True), torch.from_numpy(y).to(self.device, non_blocking=True)

    def loss(self, net: nn.Module, batch: tuple[torch.Tensor, torch.Tensor]) -> torch.Tensor:
        x, y = batch
        if self.state is None:
            self.state = self._zeros()
        reset = (x == self.tok.eos_id) if self.reset_docs else None
        _, loss, self._next = net(x, self.state, y, reset)
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

    def _zeros(self) -> State:
        return self.model.init_state(self.cfg.batch_size, self.device, torch.float32)

    # ---------------------------------------------------------- evaluation

    def evaluate(self, model: nn.Module, final: bool) -> Scores | None:
        if len(self.corpus.val) < 2:
            return None
        budget = self.cfg.final_eval_tokens if final else self.cfg.eval_tokens
        loss, bpc, n, chars = evaluate(
            model, self.corpus.val, self.char_lengths, budget, self.cfg.batch_size, self.cfg.seq_len,
            self.tok.eos_id if self.reset_docs else None, self.device, self.amp, self.dist,
        )  # fmt: skip
        return Scores(loss, bpc, n, chars)

    def sample(self, model: nn.Module, step: int) -> str:
        from .generate import eos_text, sample_text

        # Its own generator: sampling never touches the training RNG, so a resumed
        # run trains on exactly the numbers an uninterrupted one would.
        gen = torch.Generator().manual_seed(self.cfg.seed + step)
        scfg = SampleConfig(temperature=0.8, length=self.cfg.sample_chars)
        was_training = model.training
        try:
            return sample_text(model, self.tok, scfg, gen, eos_text(self.data_cfg.doc_sep))
        finally:
            model.train(was_training)

    def default_probe_text(self, n: int = 96) -> str:
        """A slice of the validation split (else of the training split), from a line start."""
        ids = self.corpus.val if len(self.corpus.val) > 1 else self.corpus.train
        text = self.tok.decode(ids[: 4 * n])
        start = text.find("\n") + 1 if "\n" in text[: 2 * n] else 0
        return text[start : start + n] or text[:n]

    def probe(self, model: nn.Module, text: str, step: int) -> Any:
        from ..inspect.trace import probe

        return probe(model, self.tok, text, step)

    # --------------------------------------------------------- checkpoints

    def checkpoint_state(self) -> dict[str, Any]:
        state = self.state if self.state is not None else self._zeros()
        carried = [distributed.gather_rows(self.dist, s.detach()).cpu() for s in state]  # (L, B x world, ...) each
        c = self.corpus
        return {
            "tokenizer": self.tok.to_state(),
            "carried_state": carried,
            "world": self.dist.world,
            "steps_per_epoch": self.steps_per_epoch,
            "corpus": {"chars_train": c.chars_train, "chars_val": c.chars_val, "tokens": len(c.ids)},
        }

    def restore(self, ck: dict[str, Any], epoch: int, batch_i: int) -> tuple[int, int]:
        carried = ck.get("carried_state")
        B, W = self.cfg.batch_size, self.dist.world
        fits = carried and all(s.dim() >= 2 and s.shape[1] == B * W for s in carried)
        zeros = self._zeros()
        fits = fits and len(carried) == len(zeros) and all(a.shape[0] == b.shape[0] and a.shape[2:] == b.shape[2:] for a, b in zip(carried, zeros))
        if ck.get("world", 1) == W and fits:
            rows = slice(self.dist.rank * B, (self.dist.rank + 1) * B)
            self.state = tuple(s[:, rows].to(self.device) for s in carried)
        else:
            # Another number of processes lays the streams out differently: keep the
            # place in the epoch, start the streams from a zero state.
            old = ck.get("steps_per_epoch") or self.steps_per_epoch
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
) -> tuple[float, float, int, float]:
    """(nats per token, bits per character, tokens, characters) over a split.

    The split is read as `streams` contiguous streams with the state carried along
    each, as char-rnn scores it (a stream starts cold once, not every window).
    With several processes each rank scores its share of the streams and the
    sums are added up, so every rank returns the same numbers.
    """
    was_training = model.training
    model.eval()
    sums = torch.zeros(3, dtype=sum_dtype(device), device=device)  # nats, characters, tokens
    state = None
    for x, y in eval_batches(ids, max_tokens, streams * dist.world, seq_len):
        rows = slice(dist.rank * streams, (dist.rank + 1) * streams)
        x = torch.from_numpy(x[rows]).to(device)
        y = torch.from_numpy(y[rows]).to(device)
        if x.numel() == 0:
            continue
        reset = (x == eos_id) if eos_id is not None else None
        with autocast(device, amp):
            logits, _, state = model(x, state, reset=reset)
        nll = torch.nn.functional.cross_entropy(logits.float().reshape(-1, logits.shape[-1]), y.reshape(-1), reduction="sum")
        sums[0] += nll.to(sums.dtype)
        sums[1] += char_lengths[y].sum()
        sums[2] += y.numel()
    model.train(was_training)
    total, chars, n = distributed.sum_(dist, sums).tolist()
    if n == 0:
        return math.nan, math.nan, 0, 0.0
    return total / n, total / max(chars, 1e-9) / LN2, int(n), chars


__all__ = ["LanguageModelling", "evaluate", "sum_dtype"]
