import numpy as np
import pytest

from charrnn.data import reading as reading_mod
from charrnn.config import DataConfig
from charrnn.data.corpus import prepare, token_dtype
from charrnn.data.tokenfile import TokenFile
from charrnn.data.reading import iter_corpus, resolve_files
from charrnn.errors import CorpusError
from charrnn.data.tokenizer import EOS_CHAR, CharTokenizer


def text_of(files, sep=None, **kw):
    return "".join(iter_corpus(files, DataConfig(**kw), sep))


def test_bom_dropped_and_newlines_normalised(tmp_path):
    p = tmp_path / "a.txt"
    p.write_bytes(b"\xef\xbb\xbfone\r\ntwo\rthree\n")
    assert text_of([p]) == "one\ntwo\nthree\n"


def test_crlf_split_across_chunks(tmp_path, monkeypatch):
    monkeypatch.setattr(reading_mod, "CHUNK_BYTES", 4)
    p = tmp_path / "a.txt"
    p.write_bytes(b"abc\r\ndef\r\r\nghi\r")
    assert text_of([p]) == "abc\ndef\n\nghi\n"


def test_multibyte_characters_across_chunks(tmp_path, monkeypatch):
    monkeypatch.setattr(reading_mod, "CHUNK_BYTES", 3)
    text = "añb€c😀d\n"
    p = tmp_path / "a.txt"
    p.write_text(text, encoding="utf-8")
    assert text_of([p]) == text


def test_invalid_utf8_names_file_and_byte_offset(tmp_path, monkeypatch):
    monkeypatch.setattr(reading_mod, "CHUNK_BYTES", 7)
    p = tmp_path / "bad.txt"
    p.write_bytes(b"hello world, caf\xe9 au lait\n")
    with pytest.raises(CorpusError) as e:
        text_of([p])
    msg = str(e.value)
    assert "bad.txt" in msg and "byte 16" in msg and "--encoding" in msg and "--errors replace" in msg


def test_errors_replace_and_other_encodings(tmp_path):
    p = tmp_path / "latin.txt"
    p.write_bytes("café\n".encode("latin-1"))
    assert text_of([p], encoding="latin-1") == "café\n"
    assert text_of([p], errors="replace") == "caf\ufffd\n"


def test_binary_file_is_refused(tmp_path):
    p = tmp_path / "img.png"
    p.write_bytes(b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR")
    with pytest.raises(CorpusError, match="binary"):
        text_of([p])


def test_utf16_text_is_not_mistaken_for_binary(tmp_path):
    p = tmp_path / "u16.txt"
    p.write_text("hello\n", encoding="utf-16")
    assert text_of([p], encoding="utf-16") == "hello\n"


FORTUNES = "First fortune.\n%\nSecond\nfortune, two lines.\n%\n%\nThird.\n"


@pytest.mark.parametrize(
    "sep, text, expected",
    [
        ("line", "a b\n\nc\nd\n", ["a b", "c", "d"]),
        ("blank", "p1 l1\np1 l2\n\n  \n\np2\n", ["p1 l1\np1 l2", "p2"]),
        ("%", FORTUNES, ["First fortune.", "Second\nfortune, two lines.", "Third."]),
        ("file", "all\n\nof it\n", ["all\n\nof it\n"]),
    ],
)
def test_documents(tmp_path, sep, text, expected):
    p = tmp_path / "d.txt"
    p.write_text(text)
    out = text_of([p], sep)
    assert out.endswith(EOS_CHAR)
    assert out.split(EOS_CHAR)[:-1] == expected


def test_documents_end_at_file_ends_and_files_stay_on_separate_lines(tmp_path):
    a, b = tmp_path / "a.txt", tmp_path / "b.txt"
    a.write_text("no newline at end")
    b.write_text("second\n")
    assert text_of([a, b]) == "no newline at end\nsecond\n"
    assert text_of([a, b], "line") == f"no newline at end{EOS_CHAR}second{EOS_CHAR}"


def test_folder_glob_skips_hidden(tmp_path):
    (tmp_path / "src").mkdir()
    (tmp_path / "src" / "a.py").write_text("a = 1\n")
    (tmp_path / "src" / "b.txt").write_text("no\n")
    (tmp_path / "src" / ".hidden.py").write_text("no\n")
    files, _ = resolve_files(DataConfig(paths=(str(tmp_path / "src"),), glob="*.py"), tmp_path)
    assert [f.name for f in files] == ["a.py"]
    with pytest.raises(CorpusError, match="no files"):
        resolve_files(DataConfig(paths=(str(tmp_path / "src"),), glob="*.rs"), tmp_path)


def test_missing_path_lists_builtins(tmp_path):
    with pytest.raises(CorpusError, match="pydoc-topics"):
        resolve_files(DataConfig(paths=(str(tmp_path / "nope.txt"),)), tmp_path)


def test_builtin_corpora_resolve_without_downloading(tmp_path):
    files, sep = resolve_files(DataConfig(paths=("pydoc-topics",)), tmp_path)
    assert len(files) == 1 and files[0].stat().st_size > 100_000 and sep is None
    files, sep = resolve_files(DataConfig(paths=("stdlib-small",)), tmp_path)
    assert len(files) > 50 and all(f.suffix == ".py" for f in files) and sep == "file"


def test_prepare_split_cache_and_dtype(tmp_path, corpus_file):
    cfg = DataConfig(paths=(str(corpus_file),))
    c = prepare(cfg, tmp_path / "ck")
    text = corpus_file.read_text()
    assert not c.cached and c.ids.dtype == np.uint8 and isinstance(c.ids, TokenFile)
    assert c.tokenizer.decode(c.train) + c.tokenizer.decode(c.val) == text
    assert c.chars_val == round(len(text) * 0.1) and c.split_by == "position"
    again = prepare(cfg, tmp_path / "ck")
    assert again.cached and again.cache_dir == c.cache_dir
    assert np.array_equal(np.asarray(again.ids), np.asarray(c.ids))
    # touching the file invalidates the cache
    corpus_file.write_text(text + "More.\n")
    assert not prepare(cfg, tmp_path / "ck").cached


def test_split_keeps_whole_documents(tmp_path):
    p = tmp_path / "docs.txt"
    p.write_text("\n".join(f"document number {i}" for i in range(50)) + "\n")
    c = prepare(DataConfig(paths=(str(p),), doc_sep="line"), tmp_path / "ck")
    assert c.split_by == "documents" and c.n_docs == 50
    eos = c.tokenizer.eos_id
    assert c.train[-1] == eos and c.val[-1] == eos
    assert c.tokenizer.decode(c.val[:-1]).startswith("document number")


def test_empty_corpus(tmp_path):
    p = tmp_path / "empty.txt"
    p.write_text("")
    with pytest.raises(CorpusError, match="empty"):
        prepare(DataConfig(paths=(str(p),)), tmp_path / "ck")
    p.write_text("\n\n\n")
    with pytest.raises(CorpusError, match="empty"):
        prepare(DataConfig(paths=(str(p),), doc_sep="line"), tmp_path / "ck")


def test_given_tokenizer_rejects_new_characters(tmp_path, corpus_file):
    tok = CharTokenizer("abc")
    with pytest.raises(CorpusError, match="vocabulary"):
        prepare(DataConfig(paths=(str(corpus_file),)), tmp_path / "ck", tokenizer=tok)


def test_token_dtype_by_vocabulary():
    assert token_dtype(256) == np.uint8
    assert token_dtype(257) == np.uint16
    assert token_dtype(70_000) == np.uint32


def test_large_vocabulary_uses_uint16(tmp_path):
    p = tmp_path / "cjk.txt"
    p.write_text("".join(chr(0x4E00 + i) for i in range(400)) * 3 + "\n")
    c = prepare(DataConfig(paths=(str(p),)), tmp_path / "ck")
    assert c.ids.dtype == np.uint16 and c.tokenizer.vocab_size == 401
