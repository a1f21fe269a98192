"""Trees: one label per tree, computed bottom-up by a recursive network (section 10.6).

Each example is `label<TAB>tree` (or a built-in set: listops); the model
(models/recursive.py) embeds every node's token, composes each node from its
children with a tree cell (`--cell recursive|treelstm|bintreelstm`), level by level over the
batch, and a linear head reads the root: the loss is the cross-entropy of the
root's label, in nats per tree. Scores add accuracy, overall and by the tree's
depth (its height), since the chapter's point is how composition copes with depth.

A batch is `--batch-size` trees drawn without replacement from a permutation of
the training split made from the seed and the epoch, so a resumed run draws
exactly the trees an uninterrupted one would. Evaluation scores a fixed prefix of
the validation split, as many trees as fit in --eval-tokens nodes during training
and --final-eval-tokens nodes at the end (all of it, for the built-in sets).
"""

from __future__ import annotations

import dataclasses
from typing import Any

import numpy as np
import torch
from torch import nn

from ..config import DataConfig, ModelConfig, TrainConfig
from ..data.labels import LabelSet
from ..data.treebatch import batch_flat
from ..data.treedata import TreeData, TreeSource, TreeSplit, TreeVocab
from ..models import registry
from ..models.recursive import TreeLevels, TreeNet
from ..runtime import distributed
from ..runtime.hardware import autocast
from .base import Scores, Task
from .state import CorpusFacts, SplitSizes, TreeState
from .tree_use import TreeUse, probe_tree

EVAL_TREES = 256  # trees scored in one batch


class TreeTask(Task):
    name = "tree"
    State = TreeState
    Use = TreeUse  # predict, the trees shown while training, the TUI's probe (tasks/tree_use.py)
    unit = "tree"
    bpc = False  # a label per tree: its loss is per tree, its accuracy in the metrics

    def __init__(self, model_cfg: ModelConfig, data_cfg: DataConfig, cfg: TrainConfig, data: TreeSource,
                 dist: distributed.Dist, device: torch.device, amp: torch.dtype | None):  # fmt: skip
        super().__init__(model_cfg, data_cfg, cfg, data, dist, device, amp)
        self.trees: TreeData = data.load(registry.get(model_cfg.cell).load().form_for(model_cfg))
        self.train, self.val = self.trees.train, self.trees.val
        options = {**model_cfg.options, "classes": len(self.trees.classes)}
        self.model_cfg = dataclasses.replace(model_cfg, vocab_size=self.trees.vocab.vocab_size, options=options).validate()
        n, per_rank = len(self.train), cfg.batch_size
        self.per_rank = min(per_rank, max(1, n // dist.world))
        self.steps_per_epoch = max(1, n // (self.per_rank * dist.world))
        self.units_per_step = self.per_rank * dist.world
        self._perm: tuple[int, np.ndarray] | None = None

    @classmethod
    def open(cls, data_cfg: DataConfig, root: Any, resume: TreeState | None) -> TreeSource:  # type: ignore[override]
        source = TreeSource.of(data_cfg, root)
        if resume is not None:
            source = dataclasses.replace(source, vocab=TreeVocab.from_state(resume.tokenizer),
                                         classes=LabelSet.from_state(resume.labels))  # fmt: skip
        return source

    def summary(self) -> str:
        t, v = self.train, self.val
        depths = f"depth {t.depth.min()}-{t.depth.max()}" + (f" / {v.depth.min()}-{v.depth.max()}" if len(v) else "")
        shape = {"joined": "; binarised for the recursive unit", "folded": "; arguments folded under their operator",
                 "folded-open": "; arguments folded under their operator, no closing node"}.get(self.trees.form, "")
        return (f"trees: {self.trees.source}: {len(t):,} train / {len(v):,} validation trees, {depths}, "
                f"{self.trees.vocab.vocab_size} node labels, {len(self.trees.classes)} classes{shape}")  # fmt: skip

    @classmethod
    def model_for(cls, model_cfg: ModelConfig) -> TreeNet:
        return TreeNet(model_cfg)

    def chars_per_unit(self) -> float:
        return float(self.train.chars.mean())  # chars/s counts the trees' text, as a sequence model would read it

    # ------------------------------------------------------------ training

    def levels(self, split: TreeSplit, idx: np.ndarray) -> tuple[TreeLevels, torch.Tensor]:
        """Trees `idx` of a split as one batch on the device, level by level, and their labels."""
        lv = TreeLevels.of(batch_flat([split.flats[i] for i in idx]), self.device)
        return lv, torch.from_numpy(split.labels[idx]).to(self.device)

    def batch(self, epoch: int, i: int) -> tuple[TreeLevels, torch.Tensor]:
        if self._perm is None or self._perm[0] != epoch:
            rng = np.random.default_rng([self.cfg.seed, epoch])
            self._perm = (epoch, rng.permutation(len(self.train)))
        B, r = self.per_rank, self.dist.rank
        start = (i * self.dist.world + r) * B
        return self.levels(self.train, self._perm[1][start : start + B])

    def loss(self, net: nn.Module, batch: tuple[TreeLevels, torch.Tensor]) -> torch.Tensor:
        lv, y = batch
        _, loss = net(lv, y)
        return loss

    # ---------------------------------------------------------- evaluation

    @torch.inference_mode()
    def evaluate(self, model: nn.Module, final: bool) -> Scores | None:
        val = self.val
        if len(val) == 0:
            return None
        budget = self.cfg.final_eval_tokens if final else self.cfg.eval_tokens
        n = max(1, int(np.searchsorted(np.cumsum(val.nodes), budget, side="right")))
        D = int(val.depth.max()) + 1
        sums = np.zeros(3 + 2 * D)  # nats, trees, characters, correct by depth, trees by depth
        was_training = model.training
        model.eval()
        chunks = range(0, n, EVAL_TREES)
        for j, lo in enumerate(chunks):
            if j % self.dist.world != self.dist.rank:
                continue
            idx = np.arange(lo, min(n, lo + EVAL_TREES))
            lv, y = self.levels(val, idx)
            with autocast(self.device, self.amp):
                logits, _ = model(lv)
            nll = torch.nn.functional.cross_entropy(logits.float(), y, reduction="sum")
            right = (logits.argmax(1) == y).cpu().numpy()
            depth = val.depth[idx]
            sums[:3] += (float(nll), len(idx), float(val.chars[idx].sum()))
            sums[3 : 3 + D] += np.bincount(depth, weights=right, minlength=D)
            sums[3 + D :] += np.bincount(depth, minlength=D)
        model.train(was_training)
        total = distributed.sum_(self.dist, torch.from_numpy(sums).to(self.device)).cpu().numpy()
        nats, trees, chars = total[:3]
        right, count = total[3 : 3 + D], total[3 + D :]
        metrics = {"accuracy": float(right.sum() / trees)}
        for d in np.flatnonzero(count):
            metrics[f"accuracy_depth_{d}"] = float(right[d] / count[d])
            metrics[f"trees_depth_{d}"] = float(count[d])
        return Scores(float(nats / trees), None, int(trees), float(chars), metrics)

    # --------------------------------------------------------- checkpoints

    def checkpoint_state(self) -> TreeState:
        return TreeState(tokenizer=self.trees.vocab.to_state(), labels=self.trees.classes.to_state(), world=self.dist.world,
                         steps_per_epoch=self.steps_per_epoch,
                         corpus=CorpusFacts(int(self.train.chars.sum()), int(self.val.chars.sum())),
                         trees=SplitSizes(len(self.train), len(self.val)), probe_tree=probe_tree(self.trees))  # fmt: skip

    def restore(self, state: TreeState, epoch: int, batch_i: int) -> tuple[int, int]:  # type: ignore[override]
        old = state.steps_per_epoch or self.steps_per_epoch
        if old != self.steps_per_epoch:  # another batch layout (processes): keep the place in the epoch
            batch_i = batch_i * self.steps_per_epoch // old
        if batch_i >= self.steps_per_epoch:
            epoch, batch_i = epoch + 1, 0
        return epoch, batch_i


__all__ = ["TreeTask"]
