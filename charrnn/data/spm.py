"""Sentencepiece subword tokens: lossless, self-contained, on the same scale as characters.

The sentencepiece model is trained in memory on the training split and its
serialized bytes travel inside the checkpoint. The settings make decoding
lossless, decode(encode(text)) == text for any text:

* normalization `identity`, no dummy prefix, extra whitespace kept: no character
  is ever changed, added or dropped (NFKC would turn "ﬁ" into "fi"; a dummy prefix
  would add a space at every line start that decoding must guess back);
* byte fallback: a character that is not a piece is spelled as its UTF-8 bytes
  (256 `<0xNN>` pieces), so text never seen in training still round-trips, and
  rare characters can be left to bytes: on a large alphabet (Chinese: thousands of
  characters) only the most frequent get pieces of their own (`own_characters`);
* a newline is the byte piece `<0x0A>` and sentencepiece sees one line at a time,
  so pieces never cross lines and newlines survive; a literal U+2581 (which
  sentencepiece uses for a space) is spelled as its three bytes; the end of a
  document is a control piece `<eod>`, only when the corpus has documents.

Decoding is done here from a table of each id's bytes, so a stream decoder can
hold back the first bytes of a character until its last byte arrives.

Bits per character stay exact: every id stands for a whole number of characters
(a piece for its length, the end-of-document token for the separator it replaced,
a byte piece for 1 if it starts a UTF-8 character and 0 if it continues one), so
summing `char_lengths()` over an encoded text gives its length exactly.
"""

from __future__ import annotations

import codecs
import re
from typing import Any, Iterable

import numpy as np

from ..errors import CheckpointError, ConfigError, UnknownCharactersError
from .tokenizer import EOS_CHAR

SETTINGS = 1  # bump when the training settings change: it keys the corpus cache
EOD = "<eod>"
WS = "\u2581"  # sentencepiece's visible space
BYTE_PIECES = 256
NUM_THREADS = 4  # fixed: unigram training with another thread count gives other pieces
MAX_SENTENCE_CHARS = 4096  # longer lines reach the trainer in pieces (it skips long sentences)
MAX_TRAIN_CHARS = 20_000_000  # larger training splits are subsampled, evenly, by line
MIN_TRAIN_CHARS = 1_000
_SPLIT = re.compile(f"([{EOS_CHAR}\n{WS}])")


def _sentencepiece() -> Any:
    try:
        import sentencepiece
    except ImportError:  # pragma: no cover - a dependency, but say so plainly if it is missing
        raise ConfigError("--tokenizer spm needs the sentencepiece package: pip install sentencepiece.") from None
    return sentencepiece


# ------------------------------------------------------------------ training


class SentencePieceTokenizer:
    """A trained sentencepiece model behind charrnn's tokenizer protocol."""

    kind = "spm"

    def __init__(self, model: bytes, model_type: str = "unigram", requested: int | None = None):
        spm = _sentencepiece()
        self.model = bytes(model)
        self.model_type = model_type
        self.requested = requested
        self.bytes_spelled: tuple[int, int, float] | None = None  # see spelled_in_bytes; known when trained here
        self.sp = spm.SentencePieceProcessor()
        self.sp.LoadFromSerializedProto(self.model)
        sp, n = self.sp, self.sp.get_piece_size()
        self._bytes: list[bytes] = []
        self._byte_id: dict[int, int] = {}
        lengths = np.zeros(n, dtype=np.float64)
        self._eos: int | None = None
        for i in range(n):
            piece = sp.id_to_piece(i)
            if sp.is_byte(i):
                b = int(piece[3:5], 16)  # "<0xE2>"
                self._byte_id[b] = i
                self._bytes.append(bytes([b]))
                lengths[i] = 0.0 if 0x80 <= b < 0xC0 else 1.0  # a continuation byte adds no character
            elif sp.is_control(i):
                if piece == EOD:
                    self._eos = i
                    lengths[i] = 1.0  # the separator it replaced
                self._bytes.append(b"")
            elif sp.is_unknown(i):
                self._bytes.append("\ufffd".encode())
                lengths[i] = 1.0
            else:
                text = piece.replace(WS, " ")
                self._bytes.append(text.encode("utf-8"))
                lengths[i] = len(text)
        if len(self._byte_id) != BYTE_PIECES:
            raise CheckpointError("this sentencepiece model has no byte fallback; charrnn cannot use it losslessly.")
        self._lengths = lengths
        self._newline = [self._byte_id[0x0A]]
        self._ws_bytes = [self._byte_id[b] for b in WS.encode()]
        # Without a space piece (a corpus with no spaces) sentencepiece spells a space
        # as the bytes of U+2581; those ids are turned into the byte of a space.
        self._space_fix = sp.piece_to_id(WS) == sp.unk_id()
        self._space = self._byte_id[0x20]

    # -------------------------------------------------------------- protocol

    @property
    def vocab_size(self) -> int:
        return len(self._bytes)

    @property
    def eos_id(self) -> int | None:
        return self._eos

    @property
    def note(self) -> str | None:
        """Said on the corpus line: the default vocabulary lowered to fit the corpus, and
        the characters spelled as bytes for want of room."""
        notes = []
        if self.requested and self.vocab_size < self.requested:
            notes.append(f"sentencepiece vocabulary lowered from {self.requested} to {self.vocab_size} to fit the corpus")
        if self.bytes_spelled and self.bytes_spelled[0]:
            n, of, share = self.bytes_spelled
            notes.append(f"{n:,} of its {of:,} characters ({share:.1%} of the text) spelled as UTF-8 bytes")
        return "; ".join(notes) or None

    def spelled_in_bytes(self, counts: np.ndarray) -> tuple[int, int, float]:
        """(characters spelled as byte pieces, distinct characters, their share of the text)
        for a corpus' occurrences by code point; newlines and document marks, always
        pieces of their own, count as neither."""
        c = np.asarray(counts, dtype=np.int64).copy()
        c[[ord(EOS_CHAR), ord("\n")]] = 0
        present = np.flatnonzero(c)
        is_byte = self.sp.is_byte
        spelled = [cp for cp in present if any(is_byte(i) for i in self._encode(chr(int(cp))))]
        total = int(c.sum())
        return len(spelled), len(present), float(c[spelled].sum() / total) if total else 0.0

    def encode_corpus(self, text: str) -> np.ndarray:
        """Corpus text (EOS_CHAR between documents) -> ids."""
        return np.asarray(self._encode(text), dtype=np.int64)

    def encode(self, text: str, unknown: str = "error") -> list[int]:
        """User text (a prime) -> ids. Byte fallback spells anything, so only NUL and
        unpaired surrogates (text that is not Unicode) count as unknown."""
        bad = {ch for ch in text if ch == EOS_CHAR or "\ud800" <= ch <= "\udfff"}
        if bad:
            if unknown != "skip":
                raise UnknownCharactersError(sorted(bad))
            text = "".join(ch for ch in text if ch not in bad)
        return self._encode(text)

    def _encode(self, text: str) -> list[int]:
        parts = _SPLIT.split(text)  # [segment, separator, segment, ..., segment]
        segments = [p for p in parts[::2] if p]
        encoded = self.sp.encode(segments, out_type=int) if segments else []
        if self._space_fix:
            encoded = [self._fix_spaces(e) for e in encoded]
        encoded = iter(encoded)
        ids: list[int] = []
        for k, part in enumerate(parts):
            if k % 2 == 0:
                if part:
                    ids.extend(next(encoded))
            elif part == "\n":
                ids.extend(self._newline)
            elif part == WS:
                ids.extend(self._ws_bytes)
            elif self._eos is not None:
                ids.append(self._eos)
            else:
                raise UnknownCharactersError([EOS_CHAR])  # a document mark, but no documents
        return ids

    def _fix_spaces(self, ids: list[int]) -> list[int]:
        """Inside one segment (no literal U+2581 there) its byte triple is a space."""
        ws, out, j, n = self._ws_bytes, [], 0, len(ids)
        while j < n:
            if ids[j : j + 3] == ws:
                out.append(self._space)
                j += 3
            else:
                out.append(ids[j])
                j += 1
        return out

    def decode(self, ids: Iterable[int]) -> str:
        table = self._bytes
        return b"".join(table[int(i)] for i in ids).decode("utf-8", errors="replace")

    def char_lengths(self) -> np.ndarray:
        return self._lengths.copy()

    def stream_decoder(self) -> "_SpmStream":
        return _SpmStream(self._bytes)

    def token_text(self, idx: int) -> str:
        """How one id looks on its own, for tables and heatmaps."""
        idx = int(idx)
        if idx == self._eos:
            return "<eod>"
        if self.sp.is_unknown(idx):
            return "<unk>"
        if self.sp.is_byte(idx):
            b = self._bytes[idx][0]
            return chr(b) if b < 0x80 else f"<0x{b:02X}>"
        return self._bytes[idx].decode("utf-8", errors="replace")

    def to_state(self) -> dict[str, Any]:
        return {
            "kind": self.kind,
            "model": self.model,
            "type": self.model_type,
            "requested_vocab_size": self.requested,
            "eos_id": self._eos,
            "settings": SETTINGS,
            "bytes_spelled": None if self.bytes_spelled is None else list(self.bytes_spelled),
        }

    @classmethod
    def from_state(cls, state: dict[str, Any]) -> "SentencePieceTokenizer":
        model = state.get("model")
        if not isinstance(model, (bytes, bytearray)) or not model:
            raise CheckpointError("the checkpoint's sentencepiece model is missing.")
        try:
            tok = cls(bytes(model), str(state.get("type", "unigram")), state.get("requested_vocab_size"))
        except (RuntimeError, OSError, ValueError, IndexError, KeyError):
            raise CheckpointError("the checkpoint's sentencepiece model is damaged.") from None
        spelled = state.get("bytes_spelled")
        if isinstance(spelled, (list, tuple)) and len(spelled) == 3:
            tok.bytes_spelled = (int(spelled[0]), int(spelled[1]), float(spelled[2]))
        return tok


class _SpmStream:
    """Decodes one id at a time; a character split over byte pieces appears when whole."""

    def __init__(self, table: list[bytes]):
        self.table = table
        self.dec = codecs.getincrementaldecoder("utf-8")(errors="replace")

    def push(self, idx: int) -> str:
        return self.dec.decode(self.table[idx])
