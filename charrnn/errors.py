"""One exception family, with messages written for the person at the terminal.

Everything a user can get wrong (a corpus, an option, a checkpoint file, a prime
text) raises a `CharRNNError` whose message is one or two plain sentences that
say what happened and what to do next. The CLI catches the family at the command
edge and prints the message; anything else is a bug and keeps its traceback.
"""

from __future__ import annotations


class CharRNNError(Exception):
    """Base class: a mistake or condition the user can act on."""


class ConfigError(CharRNNError):
    """An option or combination of options makes no sense."""


class CorpusError(CharRNNError):
    """The corpus cannot be read or is unsuitable for training."""


class TokenizerError(CharRNNError):
    """Text cannot be encoded with the model's vocabulary."""


class UnknownCharactersError(TokenizerError):
    def __init__(self, chars: list[str]):
        self.chars = chars
        shown = " ".join(repr(c) for c in chars[:20])
        more = f" and {len(chars) - 20} more" if len(chars) > 20 else ""
        super().__init__(
            f"the text has characters the model never saw in training: {shown}{more}. "
            "Remove them, or pass --unknown skip to drop them."
        )


class CheckpointError(CharRNNError):
    """A checkpoint file is missing, damaged, foreign or cannot be written."""


class ExportError(CharRNNError):
    """A model `charrnn export` cannot write in the format asked for."""


class RunBusyError(CharRNNError):
    """Another process is writing the run folder (training/runlock.py)."""


class TrainingError(CharRNNError):
    """Training cannot go on (for example the loss diverged)."""


class PeerLostError(TrainingError):
    """Another process of a distributed run stopped; every surviving rank says so."""
