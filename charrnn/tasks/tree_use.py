"""A tree model put to use: `charrnn predict` (the root's label and every node's
value), a few validation trees with their answers while it trains, and the
TUI's frame of a probe tree (node states where the tree puts them).
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch
from torch import nn

from ..data.labels import LabelSet
from ..data.treedata import TreeData, TreeVocab
from ..errors import ConfigError
from .state import TreeState
from .use import SHOWN, Prediction, PredictOptions, Predictor, Use



class TreeUse(Use):
    """`task` is a tasks.tree.TreeTask: its trees, node vocabulary and classes."""

    @torch.inference_mode()
    def sample(self, model: nn.Module, step: int) -> str:
        """A few validation trees with the model's answers: '9 ✓ [MAX 2 9 ...]'."""
        t = self.task
        val, width = t.val, t.cfg.sample_chars
        k = min(SHOWN, len(val.texts))
        if k == 0:
            return ""
        was_training = model.training
        model.eval()
        idx = np.arange(k)
        logits, _ = model(t.levels(val, idx)[0])
        model.train(was_training)
        names = t.trees.classes
        lines = []
        for i, p in zip(idx, logits.argmax(1).tolist()):
            truth = names.label(int(val.labels[i]))
            mark = "✓" if names.label(p) == truth else f"✗ (true {truth})"
            line = f"{names.label(p)} {mark}  {val.texts[i]}"
            lines.append(line if len(line) <= width else line[: width - 1] + "…")
        return "\n".join(lines)

    def default_probe_text(self) -> str:
        return probe_tree(self.task.trees)

    def probe(self, model: nn.Module, text: str, step: int) -> Any:
        from ..inspect.treetrace import probe

        return probe(model, self.task.trees.vocab, self.task.trees.classes, text, step)

    @classmethod
    def predictor(cls, state: TreeState, model: nn.Module, opts: PredictOptions) -> Predictor:  # type: ignore[override]
        given = [flag for flag, on in (("--trace", opts.trace), ("--beam", opts.beam is not None), ("--top", opts.top != 1),
                 ("--attention-map", opts.attention_map), ("--temperature", opts.temperature is not None),
                 ("--seed", opts.seed is not None)) if on]  # fmt: skip
        if given:
            raise ConfigError(f"{', '.join(given)} {'does' if len(given) == 1 else 'do'} not fit a tree run; "
                              "predict prints its answer and the value it gives every node.")  # fmt: skip
        return TreePredictor(model, TreeVocab.from_state(state.tokenizer), LabelSet.from_state(state.labels))  # type: ignore[arg-type]


def probe_tree(trees: TreeData) -> str:
    """A small validation tree two or more levels deep (else the first one); a checkpoint
    keeps it too (TreeState.probe_tree), for `charrnn inspect` on a tree run."""
    split = trees.val if trees.val.texts else trees.train
    for i, text in enumerate(split.texts):
        if split.depth[i] >= 2 and split.nodes[i] <= 24:
            return text
    return split.texts[0] if split.texts else ""


class TreePredictor(Predictor):
    """`charrnn predict` on a tree run: the root's label, and every node's."""

    def __init__(self, model: nn.Module, vocab: TreeVocab, classes: LabelSet):
        self.model, self.vocab, self.classes = model, vocab, classes

    def predict(self, text: str) -> Prediction:
        from ..inspect.treetrace import read_tree, tree_activations

        acts = tree_activations(self.model, self.vocab, self.classes, read_tree(text), gradients=False)  # type: ignore[arg-type]
        pred = acts.predicted
        p = acts.probs.max(1)
        nodes = [
            {"label": acts.tokens[t], "depth": int(acts.depth[t]), "predicted": pred[t], "p": round(float(p[t]), 6),
             "value": acts.truth[t]}
            for t in range(len(acts.tokens))
        ]  # fmt: skip
        line = f"{pred[0]}  (p {p[0]:.3f})"
        return Prediction(line, acts, {"answer": pred[0], "p": round(float(p[0]), 6), "nodes": nodes})
