"""A sequence classifier put to use: `charrnn predict` (a label and its probabilities,
`--trace` following them along the text), the validation documents shown with
their labels while training runs, and the TUI's frame of a probe document.

A document longer than the model's `--max-chars` is read from its start, as
validation reads it.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from ..data.examples import encode_texts
from ..data.labels import LabelSet
from ..data.tokenizer import tokenizer_from_state
from ..errors import ConfigError, TokenizerError
from .reports import ClassTrace
from .state import TaskState
from .use import Prediction, PredictOptions, Predictor, Use


class ClassifyUse(Use):
    """`task` is a tasks.classify.Classification: its documents, tokenizer, labels and --max-chars."""

    def sample(self, model: nn.Module, step: int) -> str:
        """A few validation documents with the label the model gives them."""
        t = self.task
        if not (rows := self.shown_rows(len(t.data.val), step)):
            return ""
        predictor = ClassifyPredictor(model, t.tok, t.labels, t.max_chars, PredictOptions())
        lines = []
        for r in rows:
            text = t.tok.decode(t.data.val[r][: t.max_chars])
            details = predictor.predict(text).details
            label, p = details.ranked()[0]
            truth = t.labels.label(int(t.data.val_y[r]))
            mark = "✓" if label == truth else f"✗ (is {truth})"
            lines.append(f"{label} {p:.2f} {mark}  {shorten(text)}")
        return "\n".join(lines)

    def default_probe_text(self) -> str:
        t = self.task
        split = t.data.val if len(t.data.val) else t.data.train
        return t.tok.decode(split[0][: min(t.max_chars, 160)])

    def probe(self, model: nn.Module, text: str, step: int) -> Any:
        from ..inspect.trace import Probe, activations, gradient_flow

        t = self.task
        text = text[: t.max_chars]
        acts = activations(model, t.tok, text, unknown="skip")
        flow = gradient_flow(model, t.tok, text, "skip", loss_of=lambda tr: F.cross_entropy(tr.logits[0, -1:].float(), tr.logits[0, -1:].argmax(-1)))
        prediction = ClassifyPredictor(model, t.tok, t.labels, t.max_chars, PredictOptions(trace=True)).predict(text)
        return Probe(step, acts, flow, task=t.name, prediction=prediction)

    @classmethod
    def predictor(cls, state: TaskState, model: nn.Module, opts: PredictOptions) -> Predictor:
        return ClassifyPredictor(model, tokenizer_from_state(state.tokenizer), LabelSet.from_state(state.labels),
                                 model.cfg.task_options().max_chars, opts)  # fmt: skip


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
