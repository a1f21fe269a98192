"""The language model's own settings: conditioning on a label, and how a sequence ends.

Light (no torch): `tasks/__init__.py` registers them with the lm task, so
`charrnn train --condition ...` is checked like any kind's option, and they
travel in `ModelConfig.options`.

Conditioning on a context (section 10.2.4): each document's label (`--label-from`)
enters the model as a learned embedding, as an extra input at every step
(`input`), as the initial state h(0) at each document's start (`init`), or both.
With probability `label_dropout` a document is shown with the "no label" entry
instead, so the same model also samples unconditionally.

Ends of sequences (section 10.2.3), `length_model`:
    eos     an end-of-document token in the vocabulary (the softmax predicts it)
    halt    an extra Bernoulli output: p(the sequence ends after this token)
    length  an extra output predicting the length tau at the start; the remaining
            length is an input at every step
"""

from __future__ import annotations

import enum
from dataclasses import dataclass

from ..errors import ConfigError


class Condition(str, enum.Enum):
    input = "input"  # an extra input at every step
    init = "init"  # the initial state h(0) at each document's start
    both = "both"


class LengthModel(str, enum.Enum):
    eos = "eos"  # the softmax predicts an end-of-document token
    halt = "halt"  # an extra Bernoulli output: the sequence ends after this token
    length = "length"  # an extra output predicts the length first; the remaining length is an input


CONDITIONS = tuple(c.value for c in Condition)
LENGTH_MODELS = tuple(m.value for m in LengthModel)
CONDITION_FIELDS = ("condition", "label_dropout", "label_embed")  # the options that need labelled documents


@dataclass(frozen=True)
class LMOptions:
    condition: str = "both"  # input | init | both: where the label enters (labelled runs)
    label_dropout: float = 0.1  # share of documents trained with "no label"
    label_embed: int = 16  # width of the learned label embedding
    length_model: str = "eos"  # eos | halt | length
    labels: int = 0  # how many labels the model is conditioned on; set from the data (0: none)

    def validate(self) -> "LMOptions":
        if self.condition not in CONDITIONS:
            raise ConfigError(f"--condition must be one of {', '.join(CONDITIONS)}, got {self.condition!r}.")
        if not 0.0 <= self.label_dropout < 1.0:
            raise ConfigError(f"--label-dropout must be in [0, 1), got {self.label_dropout}.")
        if not (isinstance(self.label_embed, int) and self.label_embed > 0):
            raise ConfigError(f"--label-embed must be a whole number > 0, got {self.label_embed}.")
        if self.length_model not in LENGTH_MODELS:
            raise ConfigError(f"--length-model must be one of {', '.join(LENGTH_MODELS)}, got {self.length_model!r}.")
        if not (isinstance(self.labels, int) and self.labels >= 0):
            raise ConfigError(f"the model's label count must be a whole number >= 0, got {self.labels}.")
        return self

    @property
    def conditioned(self) -> bool:
        return self.labels > 0

    @property
    def label_input(self) -> bool:
        """The label is an extra input at every step."""
        return self.conditioned and self.condition in ("input", "both")

    @property
    def label_init(self) -> bool:
        """The label sets the initial state h(0) at each document's start."""
        return self.conditioned and self.condition in ("init", "both")
