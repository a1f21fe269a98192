"""The settings of the classification and encoder-decoder tasks (light: no torch).

Each is a frozen dataclass whose fields are `charrnn train` options (`--pool`,
`--attention`, ...): given ones travel in `ModelConfig.options`, missing ones
take the defaults here, and one given with a task it does not fit is a one-line
error (config.ModelConfig.validate). A field the user never sets (`classes`)
is filled in from the data when the run starts, so that a checkpoint's config
alone builds its model.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from ..errors import ConfigError

POOLS = ("last", "mean", "attn")
ATTENTIONS = ("none", "dot", "additive")
CONDITIONS = ("init", "input", "both")


@dataclass(frozen=True)
class ClassifyOptions:
    pool: str = "last"  # what feeds the softmax: the final state, the mean of the states, or attention over them
    max_chars: int = 512  # characters read per document (training: a random window; validation, predict: the first ones)
    classes: int = 0  # how many labels (set from the data)
    bidirectional: bool = False  # a second core reads each document backwards; the pool reads both (section 10.3)

    def validate(self) -> "ClassifyOptions":
        if self.pool not in POOLS:
            raise ConfigError(f"--pool must be one of {', '.join(POOLS)}, got {self.pool!r}.")
        if not (isinstance(self.max_chars, int) and self.max_chars > 0):
            raise ConfigError(f"--max-chars must be a whole number > 0, got {self.max_chars}.")
        if self.classes < 0:
            raise ConfigError(f"the number of classes must be >= 0, got {self.classes}.")
        if not isinstance(self.bidirectional, bool):
            raise ConfigError(f"--bidirectional is on or off, got {self.bidirectional!r}.")
        return self


@dataclass(frozen=True)
class Seq2SeqOptions:
    attention: str = "none"  # none: the fixed-length context C alone; dot or additive attention over the encoder's states
    condition: str = "both"  # how C reaches the decoder: its initial state, an input at every step, or both
    decoder_cell: str | None = None  # the decoder's kind (default: the encoder's, --cell)
    sampling_prob: float = 0.0  # scheduled sampling: the chance of feeding the model's own previous output in training

    def validate(self) -> "Seq2SeqOptions":
        from ..models import registry

        if self.attention not in ATTENTIONS:
            raise ConfigError(f"--attention must be one of {', '.join(ATTENTIONS)}, got {self.attention!r}.")
        if self.condition not in CONDITIONS:
            raise ConfigError(f"--condition must be one of {', '.join(CONDITIONS)}, got {self.condition!r}.")
        if self.decoder_cell is not None and self.decoder_cell not in registry.names(registry.SEQUENCE, "seq2seq"):
            registry.get(self.decoder_cell)  # an unknown kind: its own error
            fits = ", ".join(registry.names(registry.SEQUENCE, "seq2seq"))
            raise ConfigError(f"--decoder-cell {self.decoder_cell} does not fit a decoder; choose one of {fits}.")
        if not (0.0 <= self.sampling_prob <= 1.0 and math.isfinite(self.sampling_prob)):
            raise ConfigError(f"--sampling-prob must be in [0, 1], got {self.sampling_prob}.")
        return self
