"""Tokenizers: text <-> integer ids.

Every tokenizer speaks the same small protocol, so training, sampling and the
checkpoint never ask which one they hold:

    vocab_size, eos_id (None when the corpus has no documents),
    encode(text, unknown) -> list[int], decode(ids) -> str,
    char_lengths() -> float array (characters each id stands for, for bits/char),
    stream_decoder() -> an object whose .push(id) returns the new text,
    to_state() -> a plain dict (stored inside checkpoints), tokenizer_from_state().

Inside the corpus pipeline the end-of-document symbol travels as the NUL
character (binary files, the only place NUL appears, are refused on the way in);
the tokenizer turns it into its own `eos_id`.
"""

from __future__ import annotations

import importlib
from typing import Any, Iterable, Protocol

import numpy as np

from ..errors import CheckpointError, UnknownCharactersError

EOS_CHAR = "\x00"


class StreamDecoder(Protocol):
    def push(self, idx: int) -> str: ...


class Tokenizer(Protocol):
    kind: str

    @property
    def vocab_size(self) -> int: ...

    @property
    def eos_id(self) -> int | None: ...

    def encode(self, text: str, unknown: str = "error") -> list[int]: ...

    def decode(self, ids: Iterable[int]) -> str: ...

    def char_lengths(self) -> np.ndarray: ...

    def stream_decoder(self) -> StreamDecoder: ...

    def to_state(self) -> dict[str, Any]: ...


class CharTokenizer:
    """One id per character, sorted by code point; the end-of-document id comes last."""

    kind = "char"

    def __init__(self, chars: Iterable[str], eos: bool = False):
        self.chars: tuple[str, ...] = tuple(sorted(set(chars) - {EOS_CHAR}))
        self.has_eos = eos
        self.stoi = {ch: i for i, ch in enumerate(self.chars)}
        if eos:
            self.stoi[EOS_CHAR] = len(self.chars)
        self._itos = list(self.chars) + ([""] if eos else [])
        # code points in id order (EOS as 0 at the end) for vectorised encoding
        self._cps = np.array([ord(c) for c in self.chars] + ([0] if eos else []), dtype=np.int64)
        self._lut: np.ndarray | None = None

    @classmethod
    def from_codepoints(cls, codepoints: Iterable[int]) -> "CharTokenizer":
        cps = set(int(c) for c in codepoints)
        return cls((chr(c) for c in cps if c != 0), eos=0 in cps)

    @property
    def vocab_size(self) -> int:
        return len(self.chars) + int(self.has_eos)

    @property
    def eos_id(self) -> int | None:
        return len(self.chars) if self.has_eos else None

    def encode(self, text: str, unknown: str = "error") -> list[int]:
        ids, missing = [], []
        for ch in text:
            i = self.stoi.get(ch) if ch != EOS_CHAR else None
            if i is None:
                missing.append(ch)
            else:
                ids.append(i)
        if missing and unknown != "skip":
            raise UnknownCharactersError(sorted(set(missing)))
        return ids

    def encode_codepoints(self, cps: np.ndarray) -> np.ndarray:
        """Vectorised encode of a code point array (NUL = end of document); raises on unknowns."""
        if self._lut is None:
            top = int(self._cps.max(initial=0)) + 1
            self._lut = np.full(top, -1, dtype=np.int64)
            self._lut[self._cps] = np.arange(len(self._cps))
        lut = self._lut
        inside = cps < len(lut)
        ids = np.where(inside, lut[np.where(inside, cps, 0)], -1)
        if (ids < 0).any():
            bad = np.unique(cps[ids < 0])
            raise UnknownCharactersError([chr(int(c)) for c in bad])
        return ids

    def decode(self, ids: Iterable[int]) -> str:
        itos = self._itos
        return "".join(itos[int(i)] for i in ids)

    def char_lengths(self) -> np.ndarray:
        # an end-of-document token stands for the separator it replaced: one character
        return np.ones(self.vocab_size, dtype=np.float64)

    def stream_decoder(self) -> "_CharStream":
        return _CharStream(self._itos)

    def token_text(self, idx: int) -> str:
        """How one id looks on its own, for tables and heatmaps."""
        if self.has_eos and idx == self.eos_id:
            return "<eod>"
        return self._itos[idx]

    def to_state(self) -> dict[str, Any]:
        return {"kind": self.kind, "chars": list(self.chars), "eos": self.has_eos}

    @classmethod
    def from_state(cls, state: dict[str, Any]) -> "CharTokenizer":
        return cls(state["chars"], eos=bool(state["eos"]))


class _CharStream:
    def __init__(self, itos: list[str]):
        self.itos = itos

    def push(self, idx: int) -> str:
        return self.itos[idx]


# kind -> class, or "module:Class" imported the first time a state of that kind is
# read (so sentencepiece loads only for a model that needs it)
_KINDS: dict[str, Any] = {
    "char": CharTokenizer,
    "spm": "charrnn.data.spm:SentencePieceTokenizer",
    "tree": "charrnn.data.treedata:TreeVocab",  # the labels of a tree set's nodes (--task tree)
}


def register_tokenizer(kind: str, cls: Any) -> None:
    _KINDS[kind] = cls


def tokenizer_from_state(state: Any) -> Tokenizer:
    kind = state.get("kind") if isinstance(state, dict) else None
    cls = _KINDS.get(kind) if isinstance(kind, str) else None
    if cls is None:
        raise CheckpointError(f"the checkpoint's tokenizer ({kind!r}) is not one this charrnn knows.")
    if isinstance(cls, str):
        module, _, name = cls.partition(":")
        cls = _KINDS[kind] = getattr(importlib.import_module(module), name)
    return cls.from_state(state)
