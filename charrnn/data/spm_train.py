"""Training a sentencepiece model on a corpus' training split (see spm.py for the tokenizer).

The trainer runs in memory (model_writer to a BytesIO: no files in the user's
folders) with the settings that keep text lossless. Two things can make
sentencepiece refuse: a vocabulary too large for a small corpus (then it is
lowered, and the corpus line says so) and one too small for a large alphabet
(then the most frequent characters keep pieces of their own and the rest are
spelled in bytes: `own_characters`).
"""

from __future__ import annotations

import io
import re
from typing import Any, Callable, Iterable, Iterator

import numpy as np

from ..config import DEFAULT_SPM_VOCAB, DataConfig
from ..errors import ConfigError, CorpusError
from .spm import (
    BYTE_PIECES,
    EOD,
    MAX_SENTENCE_CHARS,
    MAX_TRAIN_CHARS,
    MIN_TRAIN_CHARS,
    NUM_THREADS,
    SETTINGS,
    WS,
    SentencePieceTokenizer,
    _sentencepiece,
)
from .tokenizer import EOS_CHAR


def factory(cfg: DataConfig) -> tuple[Callable[..., "SentencePieceTokenizer"], object]:
    """(factory, spec) for corpus.prepare: the factory trains on the training split."""
    _sentencepiece()
    spec = {"kind": "spm", "vocab_size": cfg.vocab_size, "type": cfg.spm_type, "settings": SETTINGS}

    def make(scanned: Any, train_text: Callable[[], Iterator[str]]) -> SentencePieceTokenizer:
        return train(train_text, scanned.counts, scanned.n_docs > 0, cfg.vocab_size, cfg.spm_type)

    return make, spec


def sentences(chunks: Iterable[str], keep: float = 1.0, own: "re.Pattern[str] | None" = None) -> Iterator[str]:
    """The lines of the text as the trainer sees them: no newlines, no end-of-document
    marks, U+2581 read as a space, long lines cut; with keep < 1 an even sample of lines;
    with `own` (a pattern of the characters that keep pieces) lines cut at every other
    character, so the trainer never sees the ones left to byte fallback."""
    acc = 0.0
    for chunk in chunks:
        for line in chunk.replace(EOS_CHAR, "\n").replace(WS, " ").split("\n"):
            if not line:
                continue
            acc += keep
            if acc < 1.0:
                continue
            acc -= 1.0
            for part in own.findall(line) if own is not None else [line]:
                for at in range(0, len(part), MAX_SENTENCE_CHARS):
                    yield part[at : at + MAX_SENTENCE_CHARS]


def _trainer_counts(counts: np.ndarray) -> np.ndarray:
    """Occurrences by code point as the trainer sees them: U+2581 read as a space,
    newlines and document marks gone."""
    c = np.asarray(counts, dtype=np.int64).copy()
    if len(c) > ord(WS):
        c[ord(" ")] += c[ord(WS)]
        c[ord(WS)] = 0
    c[[ord(EOS_CHAR), ord("\n")]] = 0  # never reach the trainer
    return c


def coverage(counts: np.ndarray, room: int) -> float:
    """The character coverage that keeps about `room` characters as pieces of their own
    (the rarer ones fall back to bytes), within sentencepiece's range [0.98, 1]."""
    c = _trainer_counts(counts).astype(np.float64)
    freq = np.sort(c[c > 0])[::-1]
    if len(freq) <= room or freq.sum() == 0:
        return 1.0
    cum = np.cumsum(freq) / freq.sum()
    # between what the top room-1 and the top room characters cover
    cov = (cum[room - 2] + cum[room - 1]) / 2 if room >= 2 else cum[0] / 2
    return float(min(1.0, max(0.98, cov)))


def own_characters(counts: np.ndarray, room: int) -> np.ndarray | None:
    """The code points that get pieces of their own, the `room` most frequent ones (ties
    to the lower code point), or None when every character fits. The rest are spelled
    as UTF-8 bytes. This is a character coverage chosen by count, for where
    sentencepiece's own gives out: it stops at 0.98, which on a large alphabet
    (Zipf-like, thousands of characters) still asks for more characters than a small
    vocabulary holds."""
    c = _trainer_counts(counts)
    present = np.flatnonzero(c)
    if len(present) <= room:
        return None
    order = np.lexsort((present, -c[present]))  # by count, descending; then by code point
    return np.sort(present[order[:room]])


def _pattern(codepoints: np.ndarray) -> "re.Pattern[str]":
    """Runs of these characters (a character class of them)."""
    return re.compile("[" + "".join(re.escape(chr(int(cp))) for cp in codepoints) + "]+")


def train(
    train_text: Callable[[], Iterator[str]],
    counts: np.ndarray,
    has_eos: bool,
    vocab_size: int | None,
    model_type: str = "unigram",
) -> "SentencePieceTokenizer":
    """Train a sentencepiece model on the text, in memory, and wrap it.

    `counts` (occurrences by code point) set the character coverage; `has_eos` adds
    the end-of-document piece. With vocab_size None the default is a soft limit,
    lowered (and said so) when the corpus cannot fill it; a size the user gave is a
    hard one, and a clear error when the corpus cannot fill it."""
    spm = _sentencepiece()
    meta = 2 if has_eos else 1  # <unk> (never produced: byte fallback), <eod>
    size = vocab_size or DEFAULT_SPM_VOCAB
    least = BYTE_PIECES + meta + 2
    if size < least:
        raise ConfigError(
            f"--vocab-size {size} is too small for sentencepiece with byte fallback: its {BYTE_PIECES} byte pieces "
            f"and special tokens alone take {BYTE_PIECES + meta}; pass --vocab-size 500 or more."
        )
    n_train = sum(len(line) for line in sentences(train_text()))
    if n_train < MIN_TRAIN_CHARS:
        raise CorpusError(
            f"the training split has {n_train:,} characters of text, too few to train a sentencepiece vocabulary "
            f"(at least {MIN_TRAIN_CHARS:,}); use a larger corpus or --tokenizer char."
        )
    keep = min(1.0, MAX_TRAIN_CHARS / n_train)
    room = max(1, (size - BYTE_PIECES - meta) // 2)  # characters of their own: half the rest, at most
    options = dict(
        model_type=model_type, vocab_size=size, hard_vocab_limit=vocab_size is not None,
        character_coverage=coverage(counts, room), byte_fallback=True,
        normalization_rule_name="identity", add_dummy_prefix=False, remove_extra_whitespaces=False,
        allow_whitespace_only_pieces=True, split_by_whitespace=True,
        unk_id=0, bos_id=-1, eos_id=-1, pad_id=-1, control_symbols=[EOD] if has_eos else [],
        max_sentence_length=4 * MAX_SENTENCE_CHARS, num_threads=NUM_THREADS, minloglevel=2,
    )  # fmt: skip
    out = io.BytesIO()
    try:
        try:
            spm.SentencePieceTrainer.train(sentence_iterator=sentences(train_text(), keep), model_writer=out, **options)
        except RuntimeError as e:
            if "required_chars" not in str(e):
                raise
            # Coverage 0.98 still asks for more characters than the vocabulary holds (a
            # large alphabet): keep the `room` most frequent and hide the rest from the trainer.
            out = io.BytesIO()
            own = own_characters(counts, room)
            options["character_coverage"] = 1.0
            pattern = _pattern(own) if own is not None else None
            spm.SentencePieceTrainer.train(sentence_iterator=sentences(train_text(), keep, pattern), model_writer=out, **options)
    except RuntimeError as e:
        raise _training_error(str(e), size) from None
    tok = SentencePieceTokenizer(out.getvalue(), model_type, requested=size)
    tok.bytes_spelled = tok.spelled_in_bytes(counts)
    if has_eos and tok.eos_id is None:  # pragma: no cover - sentencepiece always keeps control symbols
        raise CorpusError("sentencepiece dropped the end-of-document token; please report this.")
    return tok


def _training_error(msg: str, size: int) -> Exception:
    if m := re.search(r"Vocabulary size too high \(\d+\)\. Please set it to a value <= (\d+)", msg):
        most = int(m.group(1))
        return ConfigError(
            f"--vocab-size {size} is too large for this corpus: sentencepiece finds at most {most} pieces in its "
            f"training split; pass --vocab-size {most} or less, or use a larger corpus."
        )
    if m := re.search(r"smaller than required_chars\. \d+ vs (\d+)", msg):
        need = int(m.group(1)) + 100
        return ConfigError(f"--vocab-size {size} is too small for this corpus' characters; pass --vocab-size {need} or more.")
    if "sentences_.empty()" in msg:
        return CorpusError(
            "the training split has no text for sentencepiece to learn from; use a larger corpus or --tokenizer char."
        )
    detail = msg.strip().splitlines()[-1] if msg.strip() else "no reason given"
    return CorpusError(f"sentencepiece could not train on this corpus ({detail[:160]}); try --tokenizer char.")


# ----------------------------------------------------------------- tokenizer
