"""Sentencepiece tokens: lossless round trips, exact bits/char, documents, stop strings,
checkpoints, and the errors a user can cause. Real sentencepiece models throughout,
trained in memory on generated corpora with a small vocabulary."""

from __future__ import annotations

import json
import math
import random
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from charrnn.training import checkpoint
from charrnn.cli import app
from charrnn.config import DataConfig, ModelConfig, SampleConfig
from charrnn.data.corpus import factory_for, prepare
from charrnn.data.reading import iter_corpus, resolve_files
from charrnn.errors import CheckpointError, UnknownCharactersError
from charrnn.models.lm import CharRNN
from charrnn.tasks.generate import generate, sample_text
from charrnn.data.spm import SentencePieceTokenizer
from charrnn.data.spm_train import coverage, own_characters
from charrnn.data.tokenizer import EOS_CHAR, tokenizer_from_state
from helpers import TINY, WORDS, one_line_error, scripted

# words from several scripts: CJK, emoji (with a skin-tone modifier), combining marks,
# Greek, and sentencepiece's own space mark used as an ordinary character
EXOTIC = ["你好", "世界", "東京", "😀", "👍🏽", "café", "e\u0301te", "n\u0303o", "naïve", "Ωμέγα", "a▁b"]


def mixed_text(n_lines: int = 500, seed: int = 0) -> str:
    """Lines of words joined by single and repeated spaces and tabs, with blank lines,
    indented lines and trailing spaces: everything a lossless tokenizer must keep."""
    rng = random.Random(seed)
    lines = []
    for _ in range(n_lines):
        r = rng.random()
        if r < 0.08:
            lines.append("" if r < 0.05 else "   ")
            continue
        words = [rng.choice(WORDS) if rng.random() < 0.85 else rng.choice(EXOTIC) for _ in range(rng.randint(2, 9))]
        line = words[0]
        for w in words[1:]:
            line += rng.choice([" ", " ", " ", "  ", "\t", "    "]) + w
        if r > 0.9:
            line = "\t" + line
        elif r > 0.85:
            line = "    " + line + " "
        lines.append(line)
    return "\n".join(lines) + "\n"


def build(tmp_path: Path, text: str, vocab: int | None = 320, spm_type: str = "unigram", **data):
    p = tmp_path / "mixed.txt"
    p.write_text(text, encoding="utf-8")
    cfg = DataConfig(paths=(str(p),), tokenizer="spm", vocab_size=vocab, spm_type=spm_type, **data).validate()
    factory, spec = factory_for(cfg)
    return prepare(cfg, tmp_path / "ck", factory=factory, tok_spec=spec), cfg


@pytest.fixture(scope="module")
def mixed(tmp_path_factory):
    """(corpus, text) for one generated multi-script corpus, trained once for the module."""
    tmp = tmp_path_factory.mktemp("mixed")
    text = mixed_text()
    corpus, _ = build(tmp, text)
    return corpus, text


@pytest.fixture(scope="module")
def tok(mixed) -> SentencePieceTokenizer:
    return mixed[0].tokenizer


# ----------------------------------------------------------------- lossless


@pytest.mark.parametrize("spm_type", ["unigram", "bpe"])
def test_corpus_round_trips_and_bits_per_char_count_exactly(tmp_path, spm_type):
    text = mixed_text(seed=1)
    corpus, _ = build(tmp_path, text, vocab=330, spm_type=spm_type)
    tok = corpus.tokenizer
    assert tok.kind == "spm" and tok.vocab_size == 330 and tok.eos_id is None
    ids = np.asarray(corpus.ids)
    assert tok.decode(ids) == text
    assert 1.2 < len(text) / len(ids) < 4  # subwords: fewer tokens than characters
    # every id stands for a whole number of characters: the sums are the split sizes
    lengths = tok.char_lengths()
    assert lengths[np.asarray(corpus.train)].sum() == corpus.chars_train
    assert lengths[np.asarray(corpus.val)].sum() == corpus.chars_val
    assert tok.decode(corpus.train) + tok.decode(corpus.val) == text


def test_unseen_text_round_trips_through_byte_fallback(tok):
    unseen = "Zebra ☃ ∮ Ünïcödé ß ḱ 🦜🧪 ﷽ 𝔘 \x01\x7f\u200b\u2028\ufeff\U0010ffff  \t\t tail ▁▁ ▁"
    for text in [unseen, "", " ", "\n", "\n\n\t\n", "▁", "   leading and trailing   ", EXOTIC[6] * 3]:
        ids = tok.encode(text)
        assert tok.decode(ids) == text
        assert tok.char_lengths()[ids].sum() == len(text)
    ids = tok.encode("☃")
    assert len(ids) == 3 and [tok.token_text(i) for i in ids] == ["<0xE2>", "<0x98>", "<0x83>"]


def test_random_unicode_round_trips(tok):
    rng = random.Random(5)
    ranges = [(1, 0x7F), (0x80, 0x7FF), (0x800, 0xD7FF), (0xE000, 0xFFFF), (0x10000, 0x10FFFF)]
    for _ in range(300):
        chars = []
        for _ in range(rng.randint(0, 30)):
            lo, hi = rng.choice(ranges)
            chars.append(rng.choice([chr(rng.randint(lo, hi)), " ", "\n", "\t", "▁", rng.choice(WORDS)]))
        text = "".join(chars)
        assert tok.decode(tok.encode(text)) == text


def test_streaming_decode_matches_decode_and_waits_for_whole_characters(tok):
    text = "the 😀 cat\tsat  你好\n▁ e\u0301"
    ids = tok.encode(text)
    d = tok.stream_decoder()
    pieces = [d.push(i) for i in ids]
    assert "".join(pieces) == text == tok.decode(ids)
    emoji = tok.encode("😀")
    d = tok.stream_decoder()
    assert [d.push(i) for i in emoji] == (["", "", "", "😀"] if len(emoji) == 4 else ["😀"])


def test_nul_and_lone_surrogates_are_the_only_unknowns(tok):
    with pytest.raises(UnknownCharactersError, match="--unknown skip"):
        tok.encode("a\x00b")
    with pytest.raises(UnknownCharactersError):
        tok.encode("a\udcffb")
    assert tok.decode(tok.encode("a\x00b\udcff", unknown="skip")) == "ab"


def test_settings_are_lossless_ones(tok):
    spec = tok.sp  # the loaded model reports what it was trained with
    assert spec.piece_to_id("<0x0A>") != spec.unk_id()  # byte fallback
    assert tok.decode(tok.encode("ﬁ ①  Ａ")) == "ﬁ ①  Ａ"  # no NFKC: nothing is rewritten
    assert tok.encode("\n")[0] == tok.sp.piece_to_id("<0x0A>")


def test_a_corpus_without_spaces_still_spells_spaces(tmp_path):
    """With no space piece, sentencepiece spells a space as U+2581's bytes, the very
    bytes that stand for a literal U+2581: the two must still decode apart."""
    rng = random.Random(8)
    han = "你好世界我们他是的不了在有人"
    text = "\n".join("".join(rng.choice(han) for _ in range(rng.randint(5, 30))) for _ in range(200))
    tok = build(tmp_path, text + "\n", vocab=300)[0].tokenizer
    assert tok.sp.piece_to_id("\u2581") == tok.sp.unk_id()  # no space piece
    for s in ["a b", "你 好▁世  ▁", " ▁ "]:
        assert tok.decode(tok.encode(s)) == s
    assert tok.encode(" ") == [tok.sp.piece_to_id("<0x20>")]


def test_coverage_keeps_rare_characters_for_byte_fallback():
    counts = np.zeros(0x4E10, dtype=np.int64)
    counts[ord("a")], counts[ord(" ")], counts[0x4E00:0x4E10] = 10_000, 5_000, 10
    assert coverage(counts, room=40) == 1.0
    assert 0.98 <= coverage(counts, room=2) < 1.0


def test_the_most_frequent_characters_keep_pieces_the_rest_go_to_bytes():
    counts = np.zeros(0x4E10, dtype=np.int64)
    counts[ord("a")], counts[ord(" ")], counts[0x4E00:0x4E10] = 10_000, 5_000, 10
    counts[ord("\n")], counts[ord(EOS_CHAR)], counts[0x2581] = 99_999, 99_999, 6_000  # never pieces; U+2581 is a space
    assert own_characters(counts, room=40) is None
    assert own_characters(counts, room=2).tolist() == [ord(" "), ord("a")]  # the space leads with U+2581's count
    assert own_characters(counts, room=4).tolist() == [ord(" "), ord("a"), 0x4E00, 0x4E01]  # ties: lower code point


def cjk_corpus(n_docs: int = 300, alphabet: int = 2000, seed: int = 0) -> str:
    """Four-line 'poems' of CJK characters drawn with a Zipf-like frequency from an
    alphabet of about 2,000, between lines holding just %, as fortune files are."""
    rng = random.Random(seed)
    chars = [chr(0x4E00 + 7 * i) for i in range(alphabet)]
    weights = [1 / (i + 1) for i in range(alphabet)]
    docs = ["\n".join("".join(rng.choices(chars, weights, k=5)) + rng.choice("，。") for _ in range(4)) for _ in range(n_docs)]
    return "\n%\n".join(docs) + "\n"


def test_a_large_alphabet_trains_at_a_small_vocabulary_and_round_trips(runner, workdir):
    text = cjk_corpus(n_docs=2000)
    distinct = set(text) - {"\n", "%"}
    assert len(distinct) > 1900
    (workdir / "tang.txt").write_text(text, encoding="utf-8")
    r = train(runner, "tang.txt", "--tokenizer", "spm", "--vocab-size", "800", "--doc-sep", "%", "--steps", "3", "--device", "cpu", "--name", "t")
    assert r.exit_code == 0, r.output
    line = next(x for x in r.stderr.splitlines() if x.startswith("corpus:"))
    m = re.search(r"vocabulary 800; .*; ([\d,]+) of its ([\d,]+) characters \(([\d.]+)% of the text\) spelled as UTF-8 bytes", line)
    assert m, line
    spelled, of = int(m[1].replace(",", "")), int(m[2].replace(",", ""))
    assert of == len(distinct) and 1000 < spelled < of and 5 < float(m[3]) < 50
    ck = checkpoint.load(workdir / "checkpoints" / "t" / "last.pt")
    tok = tokenizer_from_state(ck.task.tokenizer)
    assert tok.vocab_size == 800 and tok.bytes_spelled[:2] == (spelled, of)
    docs = text.split("\n%\n")
    for doc in docs[:50] + ["".join(sorted(distinct))]:  # every character of the alphabet, pieces and bytes
        ids = tok.encode(doc)
        assert tok.decode(ids) == doc
        assert tok.char_lengths()[ids].sum() == len(doc)  # bits/char: each id's characters count exactly
    rare = min(distinct, key=text.count)
    assert [tok.token_text(i)[:3] for i in tok.encode(rare)] == ["<0x"] * 3
    # the whole encoded corpus: lossless, and its ids count the characters of each split exactly
    (cache,) = (workdir / "checkpoints" / ".cache").glob("*/meta.json")
    meta = json.loads(cache.read_text())
    ids = np.fromfile(cache.parent / "ids.bin", dtype=np.dtype(meta["dtype"]))
    cfg = DataConfig(paths=("tang.txt",), doc_sep="%")
    files, sep = resolve_files(cfg, workdir)
    assert tok.decode(ids) == "".join(iter_corpus(files, cfg, sep)).replace(EOS_CHAR, "")
    lengths = tok.char_lengths()
    assert lengths[ids[: meta["split"]]].sum() == meta["chars_train"] and lengths[ids[meta["split"] :]].sum() == meta["chars_val"]


# ---------------------------------------------------------------- documents


def test_documents_end_with_the_eod_token(tmp_path):
    text = mixed_text(seed=2)
    corpus, cfg = build(tmp_path, text, doc_sep="blank")
    tok = corpus.tokenizer
    assert tok.eos_id is not None and tok.token_text(tok.eos_id) == "<eod>"
    ids = np.asarray(corpus.ids)
    assert (ids == tok.eos_id).sum() == corpus.n_docs > 10
    files, sep = resolve_files(cfg, tmp_path)
    stream = "".join(iter_corpus(files, cfg, sep))
    assert tok.decode(ids) == stream.replace(EOS_CHAR, "")
    assert tok.char_lengths()[ids].sum() == len(stream) == corpus.chars_train + corpus.chars_val
    assert tok.encode_corpus(f"a{EOS_CHAR}b").tolist() == tok.encode("a") + [tok.eos_id] + tok.encode("b")


# ------------------------------------------------------------ sampling, state


def tiny_model(tok):
    return CharRNN(ModelConfig(cell="gru", layers=1, hidden=16, embed=8, vocab_size=tok.vocab_size)).eval()


def test_same_seed_same_text_and_unseen_prime(tok):
    m = tiny_model(tok)
    cfg = dict(prime="Zebra ☃ 🦜", length=120, temperature=1.0, stop_at_eos=False)
    a = sample_text(m, tok, SampleConfig(**cfg, seed=3))
    b = sample_text(m, tok, SampleConfig(**cfg, seed=3))
    c = sample_text(m, tok, SampleConfig(**cfg, seed=4))
    assert a == b != c
    assert a.startswith("Zebra ☃ 🦜") and len(a) <= len("Zebra ☃ 🦜") + 120


def test_stop_strings_across_piece_boundaries(tok, monkeypatch):
    text = "the cat sat 你好 on the mat and ran"
    ids = tok.encode(text)
    pieces = [tok.token_text(i) for i in ids]
    stop = "at 你"  # spans a word piece, a space and byte pieces of one character
    starts = np.cumsum([0] + [len(tok.decode([i])) for i in ids])
    at = text.index(stop)
    assert not any(s <= at and at + len(stop) <= s + len(p) for s, p in zip(starts, pieces)), "the stop must span pieces"
    m = tiny_model(tok)
    scripted(monkeypatch, ids + ids)
    assert sample_text(m, tok, SampleConfig(length=200, stop=(stop,))) == text[:at]
    scripted(monkeypatch, ids + ids)
    out = list(generate(m, tok, SampleConfig(length=200, stop=("mat and", "zzz"))))
    assert "".join(out) == text[: text.index("mat and")] and len(out) > 1  # streamed, not all at the end
    scripted(monkeypatch, ids + ids)
    assert sample_text(m, tok, SampleConfig(length=13, stop=("never",))) == text[:13]  # --length counts characters


# ---------------------------------------------------------------- checkpoint


def test_state_round_trip_and_damage(tok):
    state = tok.to_state()
    assert isinstance(state["model"], bytes) and state["kind"] == "spm"
    back = tokenizer_from_state(state)
    assert back.vocab_size == tok.vocab_size and back.encode("the 你好 ▁") == tok.encode("the 你好 ▁")
    assert np.array_equal(back.char_lengths(), tok.char_lengths())
    with pytest.raises(CheckpointError, match="damaged"):
        tokenizer_from_state({**state, "model": b"not a model"})
    with pytest.raises(CheckpointError, match="not one this charrnn knows"):
        tokenizer_from_state({"kind": "wordpiece"})


def train(runner, *args):
    return runner.invoke(app, ["train", *args, *TINY, "--quiet"])


@pytest.fixture
def mixed_file(workdir):
    p = workdir / "mixed.txt"
    p.write_text(mixed_text(seed=3), encoding="utf-8")
    return p


def test_cli_train_sample_info_resume_on_another_machine(runner, workdir, mixed_file):
    r = train(runner, str(mixed_file), "--tokenizer", "spm", "--vocab-size", "320", "--steps", "10", "--name", "s")
    assert r.exit_code == 0, r.output
    assert "tokens, " in r.stderr and "chars/token" in r.stderr and "vocabulary 320" in r.stderr
    # nothing but the run and the corpus cache: sentencepiece trained in memory
    made = sorted(str(p.relative_to(workdir)) for p in workdir.rglob("*") if p.is_file())
    assert [m for m in made if not m.startswith("checkpoints/.cache/")] == [
        "checkpoints/s/best.pt", "checkpoints/s/config.toml", "checkpoints/s/last.pt", "checkpoints/s/metrics.jsonl", "mixed.txt",
    ]  # fmt: skip
    assert {Path(m).name for m in made if m.startswith("checkpoints/.cache/")} == {"ids.bin", "meta.json"}

    i = runner.invoke(app, ["info", "s"])
    assert i.exit_code == 0 and "320 (sentencepiece unigram with byte fallback" in i.stdout
    assert "chars/token" in i.stdout and "nats/token" in i.stdout and "bits/char" in i.stdout
    j = json.loads(runner.invoke(app, ["info", "s", "--json"]).stdout)
    assert j["tokenizer"] == "spm" and j["vocab_size"] == 320 and 1.2 < j["chars_per_token"] < 4
    # one scale: nats/token = bits/char x ln 2 x characters per scored token
    ratio = j["best_val_loss"] / (j["best_val_bpc"] * math.log(2))
    assert j["chars_per_token"] * 0.75 < ratio < j["chars_per_token"] * 1.25

    # the checkpoint alone is enough: move it away and drop everything else
    lone = workdir / "elsewhere" / "model.pt"
    lone.parent.mkdir()
    (workdir / "checkpoints" / "s" / "best.pt").rename(lone)
    a = runner.invoke(app, ["sample", str(lone), "--seed", "5", "--length", "60", "--prime", "Zebra ☃ the"])
    b = runner.invoke(app, ["sample", str(lone), "--seed", "5", "--length", "60", "--prime", "Zebra ☃ the"])
    assert a.exit_code == 0, a.output
    assert a.stdout == b.stdout and a.stdout.startswith("Zebra ☃ the") and len(a.stdout) <= len("Zebra ☃ the") + 61

    r = runner.invoke(app, ["train", "--resume", "s", "--steps", "15", "--quiet"])
    assert r.exit_code == 0, r.output
    assert "resuming at step 10" in r.stderr and "done at step 15" in r.stderr
    ck = checkpoint.load(workdir / "checkpoints" / "s" / "last.pt")
    assert ck.task.tokenizer["kind"] == "spm" and ck.step == 15


def test_default_vocabulary_is_lowered_and_said_so(runner, workdir):
    p = workdir / "small.txt"
    p.write_text(mixed_text(n_lines=60, seed=4), encoding="utf-8")
    r = train(runner, str(p), "--tokenizer", "spm", "--steps", "2", "--name", "d")
    assert r.exit_code == 0, r.output
    assert "sentencepiece vocabulary lowered from 1024 to" in r.stderr


@pytest.mark.parametrize(
    "lines, args, fragments",
    [
        (60, ["--tokenizer", "spm", "--vocab-size", "5000"], ["--vocab-size 5000 is too large", "or less"]),
        (60, ["--tokenizer", "spm", "--vocab-size", "100"], ["--vocab-size 100 is too small", "500 or more"]),
        (8, ["--tokenizer", "spm", "--vocab-size", "300"], ["too few to train a sentencepiece", "--tokenizer char"]),
        (60, ["--vocab-size", "300"], ["--vocab-size is for --tokenizer spm"]),
        (60, ["--spm-type", "bpe"], ["--spm-type is for --tokenizer spm"]),
    ],
)
def test_clear_errors(runner, workdir, lines, args, fragments):
    p = workdir / "c.txt"
    p.write_text(mixed_text(n_lines=lines, seed=6), encoding="utf-8")
    one_line_error(train(runner, str(p), "--steps", "2", *args), *fragments)
    assert not any(workdir.glob("checkpoints/*/last.pt"))


def test_help_and_char_models_never_import_sentencepiece():
    code = (
        "import sys; from charrnn.cli import app; app(['train', '--help'], standalone_mode=False); "
        "import charrnn.data.corpus, charrnn.training.checkpoint; print('sentencepiece' in sys.modules)"
    )
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert r.stdout.strip().endswith("False"), r.stdout + r.stderr


def test_sentencepiece_training_prints_nothing(tmp_path, capfd):
    build(tmp_path, mixed_text(n_lines=80, seed=7), vocab=None)
    out, err = capfd.readouterr()
    assert out == "" and err == ""


def test_inspector_reads_pieces(tok):
    from charrnn.inspect.trace import activations

    text = "the 你 cat"
    model = tiny_model(tok)
    acts = activations(model, tok, text)
    ids = tok.encode(text)
    assert acts.tokens == tuple(tok.token_text(i) for i in ids) and acts.text == text
    assert acts.offsets is not None and acts.offsets[-1] == len(text)
    # the distributions after each piece are the fused forward's, read from the start-of-document piece
    start = [tok.eos_id] if tok.eos_id is not None else []
    with torch.no_grad():
        logits = model(torch.tensor([start + ids]))[0][0, len(start):]  # (T, V)
    np.testing.assert_allclose(acts.probs, torch.softmax(logits, -1).numpy(), atol=1e-6)
