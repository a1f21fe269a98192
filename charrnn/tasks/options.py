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
from ..spec import P_CLASSIFY, P_SEQ2SEQ, option
from .lm_options import condition_option

# A new LSTM classifier (--task classify) takes these in place of config.py's defaults, in
# every precision, each one unless given: one label per document is a weak signal, and
# on standard-library code blocks a 1x128 LSTM at lr 1e-2 learned in 500 steps what it
# did not in 500 at 3e-3 (73.9% against 54.7%, bench/RESULTS.md, issue 24), at an
# eighth of the 2x256 model's cost a step. tasks/__init__.py names it for the task.
CLASSIFY_RECIPE: dict[str, object] = {"layers": 1, "hidden": 128, "embed": 32, "batch_size": 64, "lr": 1e-2}

POOLS = ("last", "mean", "max", "attn")


def bidirectional_option() -> bool:
    """--bidirectional, declared here once for both tasks that read a whole text (classify, seq2seq)."""
    return option(False, "Read the text both ways (section 10.3): a second core from its end; --task classify: the pool "
                  "reads both; --task seq2seq: the attention reads both.", panel=P_CLASSIFY, flag="--bidirectional")  # fmt: skip
ATTENTIONS = ("none", "dot", "additive")


def _decoders() -> tuple[str, ...]:
    from ..models import registry

    return registry.names()


@dataclass(frozen=True)
class ClassifyOptions:
    # max: measured best on standard-library code blocks (bench/RESULTS.md, issue 24); format-2
    # checkpoints that left it out meant "last" (training/checkpoint.py migrates them)
    pool: str = option("max", "What feeds the label's softmax: the final state, the mean of the states, their unit-by-unit max, or attention over them.",
                       panel=P_CLASSIFY, choices=POOLS)  # fmt: skip
    # validation and predict read the first ones
    max_chars: int = option(512, "Characters read per document (a random window in training, the first ones in validation).", panel=P_CLASSIFY)
    classes: int = 0  # how many labels (set from the data)
    bidirectional: bool = bidirectional_option()

    def validate(self) -> "ClassifyOptions":
        if not (isinstance(self.max_chars, int) and self.max_chars > 0):
            raise ConfigError(f"--max-chars must be a whole number > 0, got {self.max_chars}.")
        if self.classes < 0:
            raise ConfigError(f"the number of classes must be >= 0, got {self.classes}.")
        if not isinstance(self.bidirectional, bool):
            raise ConfigError(f"--bidirectional is on or off, got {self.bidirectional!r}.")
        return self


@dataclass(frozen=True)
class Seq2SeqOptions:
    attention: str = option("none", "none: the fixed-length context alone; dot or additive attention over the encoder's states.",
                            panel=P_SEQ2SEQ, choices=ATTENTIONS)  # fmt: skip
    # how the context C reaches the decoder: one option with the lm task's (declared there)
    condition: str = condition_option()
    decoder_cell: str | None = option(None, "The decoder's cell kind (default: --cell).", panel=P_SEQ2SEQ, choices=_decoders,
                                      metavar="KIND", show_default=False)  # fmt: skip
    sampling_prob: float = option(0.0, "Scheduled sampling: the chance, at each step, of feeding the decoder its own previous output "
                                  "instead of the true one.", panel=P_SEQ2SEQ)  # fmt: skip
    bidirectional: bool = bidirectional_option()

    def validate(self) -> "Seq2SeqOptions":
        from ..models import registry

        if self.decoder_cell is not None and self.decoder_cell not in registry.names(registry.SEQUENCE, "seq2seq"):
            registry.get(self.decoder_cell)  # an unknown kind: its own error
            fits = ", ".join(registry.names(registry.SEQUENCE, "seq2seq"))
            raise ConfigError(f"--decoder-cell {self.decoder_cell} does not fit a decoder; choose one of {fits}.")
        if not (0.0 <= self.sampling_prob <= 1.0 and math.isfinite(self.sampling_prob)):
            raise ConfigError(f"--sampling-prob must be in [0, 1], got {self.sampling_prob}.")
        if self.bidirectional and self.attention == "none":
            raise ConfigError("--bidirectional reads the source both ways for the attention: give --attention dot or additive.")
        return self
