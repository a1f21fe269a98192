"""Generated long-range corpora: deterministic, parseable, and their exact entropy and
memory figures checked by hand, against the text itself and against an n-gram model."""

from __future__ import annotations

import math

import numpy as np
import pytest

from charrnn.baselines.ngram import reference as ngram_reference
from charrnn.data.builtin import BUILTINS
from charrnn.config import DataConfig
from charrnn.data.corpus import prepare
from charrnn.data.longrange import GENERATORS, Brackets, Copy, reference, text_from_ids, write
from charrnn.data.reading import resolve_files
from charrnn.data.tokenizer import CharTokenizer

SMALL = {"brackets": Brackets(size=60_000), "copy": Copy(size=60_000)}


@pytest.mark.parametrize("name", ["brackets", "copy"])
def test_deterministic_from_the_seed(name):
    gen = SMALL[name]
    text = gen.text()
    assert text == gen.text() and text != type(gen)(size=gen.size, seed=1).text()
    assert gen.size <= len(text) < gen.size + 2_000 and text.endswith("\n")
    bits, dist = gen.walk(text)  # every line is one the generator writes
    assert len(bits) == len(text) and (dist > 32).sum() > 100


def test_brackets_look_as_described():
    text = Brackets(size=20_000).text()
    line = text.splitlines()[1]
    assert line[0] in "([{<" and line[1:3] == "aa" and line[-3:-1] == "aa" and line[-1] in ")]}>"
    assert set(text) <= set("()[]{}<>\n" + "abcdefghijklmnop")
    with pytest.raises(ValueError, match="line 2"):
        Brackets().walk("(aa)\n(aa]\n")


def test_copy_looks_as_described():
    lines = Copy(size=20_000).text().splitlines()
    assert all(x[:2] == x[-2:] and x[-3] == ":" and set(x[2:-3]) <= {"."} for x in lines)
    with pytest.raises(ValueError, match="line 1"):
        Copy().walk("ab...:ba\n")


def test_exact_figures_by_hand():
    # depth 1 only, run 2: "(aa)\n" = a 2-bit opener, then nothing to guess: 2 bits / 5 characters;
    # the closer stands 3 characters after its opener
    b = Brackets(max_depth=1)
    assert math.isclose(b.entropy_rate(), 2 / 5, rel_tol=1e-12)
    assert math.isclose(b.memory_bound(3), 2 / 5, rel_tol=1e-12)
    assert math.isclose(b.memory_bound(2), 4 / 5, rel_tol=1e-12)
    # one letter of two, gaps geometric with p = 1/2 (2 bits of length): 3 bits over 1 + 1 + 1 + 1 + 1 characters;
    # the copy is gap + 2 back, more than 3 with probability P(gap >= 2) = 1/4
    c = Copy(symbols="ab", width=1, mean_gap=1.0)
    assert math.isclose(c.entropy_rate(), 3 / 5, rel_tol=1e-12)
    assert math.isclose(c.memory_bound(3), (3 + 1 / 4) / 5, rel_tol=1e-12)
    assert math.isclose(c.memory_bound(0), 4 / 5, rel_tol=1e-12)


@pytest.mark.parametrize("name", ["brackets", "copy"])
def test_exact_figures_match_a_generated_text(name):
    gen = GENERATORS[name]  # the built-in settings, 300 KB
    ref = reference(gen, gen.text(), memory=(8, 32, 64))
    assert ref.perfect == pytest.approx(gen.entropy_rate(), rel=0.03)
    for k in (8, 32, 64):
        assert ref.memory[k] == pytest.approx(gen.memory_bound(k), rel=0.03)
    # remembering matters: 32 characters of memory lose at least 15% on a perfect model
    assert gen.memory_bound(32) > 1.15 * gen.entropy_rate()
    assert gen.memory_bound(0) > gen.memory_bound(8) > gen.memory_bound(32) > gen.memory_bound(128) > gen.entropy_rate()


@pytest.mark.parametrize("name", ["brackets", "copy"])
def test_a_five_gram_meets_the_four_character_memory_bound(name, tmp_path):
    # an order-5 n-gram sees 4 characters: it cannot beat the 4-character bound, and with
    # enough text it comes close, because the local structure fits in 4 characters
    gen = GENERATORS[name]
    (tmp_path / "c.txt").write_text(gen.text())
    c = prepare(DataConfig(paths=(str(tmp_path / "c.txt"),), doc_sep="line"), tmp_path)
    val_text = text_from_ids(c.val, c.tokenizer)
    ref = reference(gen, val_text, memory=(4,))
    _, scores = ngram_reference(c.train, c.val, c.tokenizer)
    five = scores[4]
    assert five.chars == ref.chars
    assert ref.memory[4] - 0.005 < five.bits_per_char < ref.memory[4] + 0.03, (five, ref)
    assert scores[0].bits_per_char > five.bits_per_char


def test_text_from_ids_round_trips():
    text = "ab:ab\nc.:c\n"
    tok = CharTokenizer(text.replace("\n", ""), eos=True)
    ids = [tok.eos_id if ch == "\n" else tok.stoi[ch] for ch in text]
    assert text_from_ids(np.array(ids), tok) == text
    assert text_from_ids(np.array(ids[:-1]), tok) == text[:-1]


def test_builtin_corpora_are_written_once(tmp_path):
    assert {"longrange-brackets", "longrange-copy"} <= set(BUILTINS)
    files, sep = resolve_files(DataConfig(paths=("longrange-copy",)), tmp_path)
    assert sep == "line" and len(files) == 1 and files[0].parent == tmp_path / "corpora"
    stamp = files[0].stat().st_mtime_ns
    again, _ = resolve_files(DataConfig(paths=("longrange-copy",)), tmp_path)
    assert again == files and again[0].stat().st_mtime_ns == stamp  # not rewritten: the corpus cache stays valid
    assert files[0].read_text() == Copy().text()
    assert write("copy", tmp_path / "x") != write("brackets", tmp_path / "x")


def test_train_and_list_through_the_cli(runner, workdir):
    from charrnn.cli import app
    from helpers import TINY, no_traceback

    listed = runner.invoke(app, ["corpora"])
    assert "longrange-brackets" in listed.stdout and "longrange-copy" in listed.stdout
    r = runner.invoke(app, ["train", "longrange-brackets", *TINY, "--steps", "5", "--device", "cpu", "--quiet", "--name", "lr"])
    assert r.exit_code == 0, r.output
    no_traceback(r.output)
    assert "3,045 documents, vocabulary 25" in r.stderr and "split by documents" in r.stderr
    assert (workdir / "checkpoints" / "lr" / "last.pt").is_file()
