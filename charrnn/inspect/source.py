"""The text the atlas and the search read: a text given, or a run's validation split
(read from the corpus cache beside the run, rebuilt from its files if need be), as
token ids with how each token reads and where it ends in the decoded text."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from ..errors import ConfigError, TokenizerError


@dataclass(frozen=True)
class Text_:
    ids: np.ndarray  # (N,)
    tokens: tuple[str, ...]  # how each reads
    text: str  # decoded
    last_char: np.ndarray  # (N,) index in `text` of each token's last character
    source: str  # where it came from, for the header


def read_text(data_cfg: Any, path: Path, model: Any, tok: Any, text: str | None, chars: int, unknown: str) -> Text_:
    """The text the atlas reads: the one given, or the run's validation split; at most `chars` tokens."""
    from .trace import _offsets, token_texts

    if text is not None:
        ids = tok.encode(text[:chars], unknown=unknown)
        source = "the text given"
    else:
        from ..data.corpus import factory_for, prepare

        if data_cfg is None or not data_cfg.paths:  # (data_cfg: the run's DataConfig, as its checkpoint holds it)
            raise ConfigError(f"{path} does not say what it was trained on; give the atlas a text with --text or --file.")
        factory, spec = factory_for(data_cfg)
        corpus = prepare(data_cfg, path.parent.parent, tokenizer=tok, factory=factory, tok_spec=spec)
        val = corpus.val
        if len(val) == 0:
            raise ConfigError(f"{path}'s corpus has no validation split to read; give a text with --text or --file.")
        ids = np.asarray(val[: min(chars, len(val))]).astype(np.int64).tolist()
        source = f"the run's validation split ({len(ids):,} of {len(val):,} tokens)"
    if len(ids) < 2:
        raise TokenizerError("the atlas needs a text of at least two tokens.")
    decoded = tok.decode(ids)
    offsets = _offsets(tok, ids, decoded)
    return Text_(np.asarray(ids, np.int64), token_texts(tok, ids), decoded, np.maximum(offsets[1:] - 1, 0), source)


