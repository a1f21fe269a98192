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

from dataclasses import dataclass
from typing import Any

from ..errors import ConfigError
from ..spec import P_ENDS, option


# where the label enters: an extra input at every step, the initial state h(0) at each document's start, or both
CONDITIONS = ("input", "init", "both")
# eos: the softmax predicts an end-of-document token; halt: an extra Bernoulli output, the sequence ends
# after this token; length: an extra output predicts the length first, the remaining length is an input
LENGTH_MODELS = ("eos", "halt", "length")
CONDITION_FIELDS = ("condition", "label_dropout", "label_embed")  # the options that need labelled documents


def condition_option() -> Any:
    """--condition, declared here once for both tasks that take a context (lm and seq2seq)."""
    return option(
        "both", "Where a context enters (section 10.2.4): an extra input at every step, the initial state h(0), or both. "
        "--task lm: a document's label (--label-from); --task seq2seq: the encoder's summary of the source.",
        panel=P_ENDS, choices=CONDITIONS)  # fmt: skip


@dataclass(frozen=True)
class LMOptions:
    condition: str = condition_option()
    label_dropout: float = option(0.1, "Share of documents trained with no label, so the model also samples without one.", panel=P_ENDS)
    label_embed: int = option(16, "Width of the learned label embedding.", panel=P_ENDS)
    length_model: str = option(
        "eos", "How a document ends: an end token (eos), an extra halt output, or a predicted length with the remaining length as an input.",
        panel=P_ENDS, choices=LENGTH_MODELS)  # fmt: skip
    labels: int = 0  # how many labels the model is conditioned on; set from the data (0: none)

    def validate(self) -> "LMOptions":
        if not 0.0 <= self.label_dropout < 1.0:
            raise ConfigError(f"--label-dropout must be in [0, 1), got {self.label_dropout}.")
        if not (isinstance(self.label_embed, int) and self.label_embed > 0):
            raise ConfigError(f"--label-embed must be a whole number > 0, got {self.label_embed}.")
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
