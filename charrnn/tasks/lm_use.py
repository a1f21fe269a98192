"""A language model put to use while it trains: a sampled text at each evaluation,
and the TUI's frames of a probe text traced through the per-step path.

A language model answers no `charrnn predict` (that is `charrnn sample`), so
the base `Use.predictor` refuses it.
"""

from __future__ import annotations

from typing import Any

import torch
from torch import nn

from ..config import SampleConfig
from .use import Use


class LMUse(Use):
    """`task` is a tasks.lm.LanguageModelling: its corpus, tokenizer, labels and settings."""

    def __init__(self, task: Any):
        super().__init__(task)
        self.probe_label: str | None = None  # the label the TUI's activations screen traces under (None: no label)

    def sample(self, model: nn.Module, step: int) -> str:
        from .generate import eos_text, sample_text

        t = self.task
        # Its own generator: sampling never touches the training RNG, so a resumed
        # run trains on exactly the numbers an uninterrupted one would.
        gen = torch.Generator().manual_seed(t.cfg.seed + step)
        scfg = SampleConfig(temperature=0.8, length=t.cfg.sample_chars)
        label = None if t.labels is None else (step // t.cfg.eval_every) % len(t.labels)  # each label in turn
        was_training = model.training
        try:
            text = sample_text(model, t.tok, scfg, gen, eos_text(t.data_cfg.doc_sep), label=label)
        finally:
            model.train(was_training)
        return text if label is None else f"[{t.labels.label(label)}] {text}"

    def default_probe_text(self, n: int = 96) -> str:
        """A slice of the validation split (else of the training split), from a line start."""
        corpus, tok = self.task.corpus, self.task.tok
        ids = corpus.val if len(corpus.val) > 1 else corpus.train
        text = tok.decode(ids[: 4 * n])
        start = text.find("\n") + 1 if "\n" in text[: 2 * n] else 0
        return text[start : start + n] or text[:n]

    def probe(self, model: nn.Module, text: str, step: int) -> Any:
        from ..inspect.trace import probe

        labels = self.task.labels
        label = self.probe_label if labels is not None and self.probe_label in labels else None
        return probe(model, self.task.tok, text, step, label=None if label is None else labels.index(label),
                     labels=labels.names if labels is not None else ())  # fmt: skip
