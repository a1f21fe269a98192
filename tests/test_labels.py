"""Labelled documents (charrnn/data/labels.py): sources, line numbers, errors, label sets, statistics."""

from __future__ import annotations

import random
from pathlib import Path

import pytest

from charrnn.data import reading as reading_mod
from charrnn.config import DataConfig
from charrnn.data.labels import (
    Document,
    LabelSet,
    LabelStats,
    count_labels,
    guess_source,
    iter_documents,
    labelled_chunks,
)
from charrnn.errors import CheckpointError, ConfigError, CorpusError
from charrnn.data.reading import iter_corpus, iter_lines, resolve_files
from charrnn.data.tokenizer import EOS_CHAR


def write(path: Path, text: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(text.encode("utf-8"))
    return path


def docs_of(files, source, doc_sep=None):
    return [(d.label, d.text, d.path.name, d.line) for d in iter_documents(files, source, doc_sep)]


@pytest.fixture(params=[1 << 22, 5], ids=["big-chunks", "5-byte-chunks"])
def chunks(request, monkeypatch):
    """Every reading test runs twice: with whole files in one chunk and with tiny chunks."""
    monkeypatch.setattr(reading_mod, "CHUNK_BYTES", request.param)


def test_file_names_label_documents_split_by_line(tmp_path, chunks):
    a = write(tmp_path / "keats.txt", "ode to a nightingale\n\nto autumn\n")
    b = write(tmp_path / "blake.md", "the tyger\n")
    assert docs_of([a, b], "file", "line") == [
        ("keats", "ode to a nightingale", "keats.txt", 1),
        ("keats", "to autumn", "keats.txt", 3),
        ("blake", "the tyger", "blake.md", 1),
    ]


def test_folder_names_label_whole_files(tmp_path, chunks):
    write(tmp_path / "reviews" / "pos" / "1.txt", "great film\nloved it\n")
    write(tmp_path / "reviews" / "neg" / "2.txt", "dull\n")
    files, _ = resolve_files(DataConfig(paths=(str(tmp_path / "reviews"),)), tmp_path)
    assert docs_of(files, "folder") == [("neg", "dull\n", "2.txt", 1), ("pos", "great film\nloved it\n", "1.txt", 1)]


def test_prefix_documents_between_blank_lines_name_their_first_line(tmp_path, chunks):
    p = write(tmp_path / "c.txt", "\n\npoem\tRoses are red\nviolets\tblue\n\n\n  prose \tOnce upon\na time\n")
    assert docs_of([p], "prefix", "blank") == [
        ("poem", "Roses are red\nviolets\tblue", "c.txt", 3),
        ("prose", "Once upon\na time", "c.txt", 7),
    ]


def test_prefix_with_a_literal_separator(tmp_path, chunks):
    p = write(tmp_path / "f.txt", "a\tone\n%\nb\ttwo\nmore\n%\n")
    assert docs_of([p], "prefix", "%") == [("a", "one", "f.txt", 1), ("b", "two\nmore", "f.txt", 3)]


def test_tsv_lines_crlf_blank_lines_and_tabs_in_the_text(tmp_path, chunks):
    p = tmp_path / "t.tsv"
    p.write_bytes(b"spam\tbuy now\r\n\r\nham\tsee you\tat 5\r\nham\tok")
    assert docs_of([p], "tsv") == [
        ("spam", "buy now", "t.tsv", 1),
        ("ham", "see you\tat 5", "t.tsv", 3),
        ("ham", "ok", "t.tsv", 4),
    ]
    assert guess_source([p]) == "tsv" and guess_source([p, tmp_path / "x.txt"]) is None


def test_line_numbers_stay_right_over_many_documents(tmp_path, monkeypatch):
    monkeypatch.setattr(reading_mod, "CHUNK_BYTES", 64)
    lines = [f"l{i % 3}\ttext {i}" if i % 7 else "" for i in range(1, 3001)]
    p = write(tmp_path / "big.tsv", "\n".join(lines) + "\n")
    docs = list(iter_documents([p], "tsv"))
    assert [d.line for d in docs] == [i for i in range(1, 3001) if i % 7]
    assert all(d.text == f"text {d.line}" and d.label == f"l{d.line % 3}" for d in docs)


@pytest.mark.parametrize("sep", ["line", "blank", "%", None])
def test_documents_and_their_lines_are_the_lm_pipelines(tmp_path, chunks, sep):
    rng = random.Random(7)
    lines = [rng.choice(["", "  ", "%", "alpha beta", "gamma", " delta ", "x"]) for _ in range(300)]
    p = write(tmp_path / "mix.txt", "\n".join(lines) + "\n")
    docs = list(iter_documents([p], "file", sep))
    stream = "".join(iter_corpus([p], DataConfig(), sep or "file"))
    assert [d.text for d in docs] == stream.split(EOS_CHAR)[:-1]
    assert len(docs) == 1 if sep is None else len(docs) > 20
    for d in docs:
        assert d.label == "mix" and lines[d.line - 1] == d.text.split("\n")[0]
        assert d.line == 1 or sep is not None


@pytest.mark.parametrize(
    "text, sep, line, fragment",
    [
        ("a\tok\nno tab here\n", "line", 2, "no tab after the label (each document must begin label<TAB>text)"),
        ("a\tok\n\nfirst line\nsecond\tline\n", "blank", 3, "no tab after the label"),
        ("a\tok\n\tno label\n", "line", 2, "the label is empty"),
        ("a\tok\n  \tno label\n", "line", 2, "the label is empty"),
        ("a\tok\nb\t   \n", "line", 2, "the label 'b' has no text after its tab"),
        ("x" * 150 + "\ttext\n", "line", 1, "a label of 150 characters"),
    ],
)
def test_prefix_errors_name_file_and_line(tmp_path, chunks, text, sep, line, fragment):
    p = write(tmp_path / "c.txt", text)
    with pytest.raises(CorpusError) as e:
        list(iter_documents([p], "prefix", sep))
    assert str(e.value).startswith(f"{p}:{line}: ") and fragment in str(e.value)
    assert "\n" not in str(e.value)


def test_tsv_without_tab_says_each_line(tmp_path):
    p = write(tmp_path / "t.tsv", "a\tok\nnothing\n")
    with pytest.raises(CorpusError, match=r"t\.tsv:2: no tab after the label \(each line is label<TAB>text\)\."):
        list(iter_documents([p], "tsv"))


def test_a_whole_file_without_tab_fails_before_it_is_read(tmp_path, monkeypatch):
    monkeypatch.setattr(reading_mod, "CHUNK_BYTES", 50)
    p = write(tmp_path / "book.txt", "x" * 10_000)
    read = []
    real = reading_mod.iter_file_text

    def counting(*args):
        for chunk in real(*args):
            read.append(len(chunk))
            yield chunk

    monkeypatch.setattr("charrnn.data.labels.iter_file_text", counting)
    with pytest.raises(CorpusError, match=r"book\.txt:1: no tab after the label"):
        list(iter_documents([p], "prefix"))
    assert sum(read) <= 200  # stopped within a few chunks, not after 10,000 characters


def test_unusable_file_name_label(tmp_path):
    p = write(tmp_path / "a\tb.txt", "text\n")
    with pytest.raises(CorpusError, match="its file name gives the label 'a\\\\tb'"):
        list(iter_documents([p], "file"))


def test_bad_source_or_separator(tmp_path):
    with pytest.raises(ConfigError, match="--label-from must be one of file, folder, prefix, tsv, got 'name'"):
        list(iter_documents([], "name"))
    with pytest.raises(ConfigError, match="one document a line; --doc-sep blank does not apply"):
        list(iter_documents([], "tsv", "blank"))


def test_undecodable_text_names_the_byte(tmp_path):
    p = tmp_path / "t.tsv"
    p.write_bytes(b"a\tcaf\xe9\n")
    with pytest.raises(CorpusError, match="not valid UTF-8 at byte 5"):
        list(iter_documents([p], "tsv"))


def test_iter_lines_numbers_every_line(tmp_path, chunks):
    p = tmp_path / "l.txt"
    p.write_bytes(b"one\r\n\r\nthree\rfour")
    assert list(iter_lines(p)) == [(1, "one"), (2, ""), (3, "three"), (4, "four")]


# -------------------------------------------------------------- label sets


def test_label_set_is_sorted_and_stable():
    labels = LabelSet(["pos", "neg", "pos", "neutral"])
    assert labels.names == ("neg", "neutral", "pos") and len(labels) == 3
    assert [labels.index(x) for x in ("neg", "neutral", "pos")] == [0, 1, 2]
    assert labels.label(2) == "pos" and "neg" in labels and "x" not in labels
    assert LabelSet(["neutral", "pos", "neg"]) == labels


def test_unknown_label_lists_the_known_ones():
    with pytest.raises(ConfigError) as e:
        LabelSet("cab").index("x")
    assert str(e.value) == "unknown label 'x'; known: a, b, c"
    many = LabelSet(f"l{i:02d}" for i in range(25))
    with pytest.raises(ConfigError, match=r"known: l00, l01, .*, l19 and 5 more$"):
        many.index("zz")


def test_label_set_state_round_trip_and_damage():
    labels = LabelSet(["b", "a"])
    assert labels.to_state() == {"labels": ["a", "b"]}
    assert LabelSet.from_state(labels.to_state()) == labels
    for bad in (None, {}, {"labels": "ab"}, {"labels": ["b", "a"]}, {"labels": ["a", "a"]}, {"labels": ["a", 3]}, {"labels": [""]}):
        with pytest.raises(CheckpointError, match="label set is damaged"):
            LabelSet.from_state(bad)


def test_too_few_labels():
    assert LabelSet(["a", "b"]).require(2, "--task classify").names == ("a", "b")
    with pytest.raises(CorpusError) as e:
        LabelSet(["pos"]).require(2, "--task classify")
    assert str(e.value).startswith("the corpus has only 1 label (pos); --task classify needs at least 2. Check --label-from")
    with pytest.raises(CorpusError, match="the corpus has only 0 labels; conditioning needs at least 2"):
        LabelSet([]).require(2, "conditioning")


# --------------------------------------------------------------- statistics


def test_label_stats_count_documents_and_characters(tmp_path):
    p = write(tmp_path / "t.tsv", "b\tabc\na\tx\nb\tde\n")
    stats = count_labels(iter_documents([p], "tsv"))
    assert {k: (c.docs, c.chars) for k, c in stats.counts().items()} == {"a": (1, 1), "b": (2, 5)}
    assert (stats.docs, stats.chars) == (3, 6)
    assert stats.labels() == LabelSet(["a", "b"])
    assert stats.summary() == "2 labels: a 1 docs / 1 chars, b 2 docs / 5 chars"
    assert stats.summary(most=1) == "2 labels: a 1 docs / 1 chars, and 1 more"
    again = LabelStats.from_state(stats.to_state())
    assert again.counts() == stats.counts()
    with pytest.raises(CheckpointError, match="label statistics are damaged"):
        LabelStats.from_state({"a": [1]})


def test_labelled_chunks_keep_documents_whole():
    docs = [Document(label, text, Path("x"), i + 1) for i, (label, text) in enumerate([("b", "hello"), ("a", "hi"), ("b", "a longer one")])]
    labels = LabelSet(["a", "b"])
    one = list(labelled_chunks(docs, labels))
    assert one == [(f"hello{EOS_CHAR}hi{EOS_CHAR}a longer one{EOS_CHAR}", [1, 0, 1])]
    small = list(labelled_chunks(docs, labels, chunk_chars=6))
    assert small == [(f"hello{EOS_CHAR}", [1]), (f"hi{EOS_CHAR}a longer one{EOS_CHAR}", [0, 1])]
    with pytest.raises(ConfigError, match="unknown label 'b'; known: a"):
        list(labelled_chunks(docs, LabelSet(["a"])))
