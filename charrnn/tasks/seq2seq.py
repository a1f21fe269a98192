"""Encoder-decoder: read a source text, write its target (source<TAB>target pairs).

Data: a TSV of `source<TAB>target` lines or a built-in pair set (data/pairs.py,
data/examples.py), as characters with one end token. A step reads `--batch-size`
pairs of similar source length (data/bucket.py) with teacher forcing, or with
scheduled sampling (`--sampling-prob`); the model is models/seq2seq.py.

The loss is nats per target character (the end token counted as one), so the
curves read in bits per character like a language model's. Evaluation also
decodes greedily and reports the exact-match rate and the character error rate,
and, at the end, both by source length (tasks/reports.py: Seq2SeqReport): the
built-in sets hold out longer sources than any in training, where a fixed-length
context shows its bottleneck.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from ..config import DataConfig, ModelConfig, TrainConfig
from ..data.bucket import BucketBatcher, pad
from ..data.examples import PairData
from ..data.tokenizer import tokenizer_from_state
from ..models.seq2seq import IGNORE, Seq2Seq
from ..runtime import distributed
from ..runtime.hardware import autocast
from .base import Scores, Task
from .classify import rescale_position
from .decode import decode, edit_distance, length_edges, max_output
from .reports import LengthRow, Seq2SeqReport
from .seq2seq_use import Seq2SeqUse
from .state import CorpusFacts, PairFacts, Seq2SeqState, TaskState

LN2 = math.log(2.0)
EVAL_BATCH = 128  # pairs decoded at once
MISTAKES = 5  # wrong outputs kept in the final report


class Seq2SeqTask(Task):
    name = "seq2seq"
    Use = Seq2SeqUse  # predict (greedy, sampled, beam), the pairs shown while training, the TUI's probe (tasks/seq2seq_use.py)
    State = Seq2SeqState
    unit = "token"

    def __init__(self, model_cfg: ModelConfig, data_cfg: DataConfig, cfg: TrainConfig, data: PairData,
                 dist: distributed.Dist, device: torch.device, amp: torch.dtype | None):  # fmt: skip
        super().__init__(model_cfg, data_cfg, cfg, data, dist, device, amp)
        self.tok = data.tokenizer
        self.eos: int = self.tok.eos_id  # type: ignore[assignment]
        self.model_cfg = ModelConfig(**{**vars(model_cfg), "vocab_size": self.tok.vocab_size}).validate()
        self.opts = self.model_cfg.task_options()
        self.batcher = BucketBatcher(data.train_src.lengths, cfg.batch_size, cfg.seed, dist.rank, dist.world, what="pairs")
        self.steps_per_epoch = self.batcher.steps_per_epoch
        self.units_per_step = int(self.batcher.batch_size * dist.world * (data.train_tgt.lengths.mean() + 1))
        self.max_target = int(data.train_tgt.lengths.max())
        self.edges = length_edges(data.val_src.lengths, data.train_max + 1)

    @classmethod
    def open(cls, data_cfg: DataConfig, root: Any, resume: TaskState | None) -> PairData:
        from ..data.examples import open_pairs

        return open_pairs(data_cfg, root, tokenizer_from_state(resume.tokenizer) if resume is not None else None)  # type: ignore[arg-type]

    def summary(self) -> str:
        return self.data.summary()

    @classmethod
    def model_for(cls, model_cfg: ModelConfig) -> Seq2Seq:
        return Seq2Seq(model_cfg)

    # ------------------------------------------------------------ training

    def _tensors(self, src: list[np.ndarray], tgt: list[np.ndarray]) -> tuple[torch.Tensor, ...]:
        """Left-padded sources and their lengths; decoder inputs (the end token, then the target)
        and targets (the target, then the end token), right-padded."""
        x, x_len = pad(src, self.eos, left=True)
        y_in, _ = pad([np.concatenate([[self.eos], t]) for t in tgt], self.eos)
        y_out, _ = pad([np.concatenate([t, [self.eos]]) for t in tgt], IGNORE)
        return tuple(torch.from_numpy(a).to(self.device) for a in (x, x_len, y_in, y_out))

    def batch(self, epoch: int, i: int) -> tuple[torch.Tensor, ...]:
        rows = self.batcher.batch(epoch, i)
        return self._tensors([self.data.train_src[r] for r in rows], [self.data.train_tgt[r] for r in rows])

    def loss(self, net: nn.Module, batch: tuple[torch.Tensor, ...]) -> torch.Tensor:
        x, x_len, y_in, y_out = batch
        _, loss = net(x, x_len, y_in, y_out, self.opts.sampling_prob)
        return loss

    # ---------------------------------------------------------- evaluation

    @torch.inference_mode()
    def evaluate(self, model: nn.Module, final: bool) -> Scores | None:
        d = self.data
        if len(d.val_src) == 0:
            return None
        budget = self.cfg.final_eval_tokens if final else self.cfg.eval_tokens
        rows = np.arange(min(len(d.val_tgt), int(np.searchsorted(np.cumsum(d.val_tgt.lengths + 1), budget)) + 1))
        mine = rows[self.dist.rank :: self.dist.world]
        mine = mine[np.argsort(d.val_src.lengths[mine], kind="stable")]
        nb = len(self.edges) - 1
        sums = torch.zeros(2, dtype=torch.float64, device=self.device)  # nats, target tokens
        counts = torch.zeros(4, nb, dtype=torch.float64, device=self.device)  # per length bucket: pairs, exact, edits, target chars
        mistakes = []
        was_training = model.training
        model.eval()
        for at in range(0, len(mine), EVAL_BATCH):
            part = mine[at : at + EVAL_BATCH]
            x, x_len, y_in, y_out = self._tensors([d.val_src[r] for r in part], [d.val_tgt[r] for r in part])
            with autocast(self.device, self.amp):
                logits, _ = model(x, x_len, y_in)
            sums[0] += F.cross_entropy(logits.float().reshape(-1, logits.shape[-1]), y_out.reshape(-1), ignore_index=IGNORE, reduction="sum").double()
            sums[1] += (y_out != IGNORE).sum()
            outputs = decode(model, x, x_len, self.eos, self.max_len(int(x_len.max())))
            for r, o in zip(part, outputs):
                out, target = self.tok.decode(o.ids), self.tok.decode(d.val_tgt[r])
                b = min(int(np.searchsorted(self.edges, d.val_src.lengths[r], side="right")) - 1, nb - 1)
                counts[:, b] += torch.tensor([1.0, out == target, edit_distance(out, target), len(target)], dtype=torch.float64)
                if out != target and len(mistakes) < MISTAKES:
                    mistakes.append((self.tok.decode(d.val_src[r]), target, out))
        model.train(was_training)
        sums, counts = distributed.sum_(self.dist, sums), distributed.sum_(self.dist, counts).cpu().numpy()
        n, exact, edits, chars = counts.sum(1)
        metrics = {"exact_match": float(exact / n), "cer": float(edits / max(chars, 1))}
        longer = self.edges[:-1] > self.data.train_max  # buckets of lengths never seen in training
        if counts[0, longer].sum():
            metrics["exact_longer"] = float(counts[1, longer].sum() / counts[0, longer].sum())
        report = None
        if final:
            lengths = [LengthRow(int(self.edges[b]), int(self.edges[b + 1] - 1), int(counts[0, b]), float(counts[1, b] / counts[0, b]),
                                 float(counts[2, b] / max(counts[3, b], 1))) for b in range(nb) if counts[0, b]]  # fmt: skip
            report = Seq2SeqReport(int(n), metrics["exact_match"], metrics["cer"], tuple(lengths), self.data.train_max, tuple(mistakes))
        loss, tokens = float(sums[0]), float(sums[1])
        return Scores(loss / tokens, loss / tokens / LN2, int(tokens), tokens, metrics, report)

    def max_len(self, source_len: int) -> int:
        return max_output(self.max_target, source_len)

    # --------------------------------------------------------- checkpoints

    def checkpoint_state(self) -> Seq2SeqState:
        d = self.data
        chars = [int(r.lengths.sum()) for r in (d.train_src, d.train_tgt, d.val_src, d.val_tgt)]
        return Seq2SeqState(tokenizer=self.tok.to_state(), steps_per_epoch=self.steps_per_epoch, world=self.dist.world,
                            corpus=CorpusFacts(chars[0] + chars[1], chars[2] + chars[3], sum(chars)),
                            pairs=PairFacts(len(d.train_src), len(d.val_src), self.max_target, d.train_max))  # fmt: skip

    def restore(self, state: TaskState, epoch: int, batch_i: int) -> tuple[int, int]:
        return rescale_position(state, epoch, batch_i, self.steps_per_epoch)
