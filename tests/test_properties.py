"""Property-based tests of every reader and parser: whatever bytes a user's files hold, a
reader gives a result or one charrnn error of one line (errors.py), never another exception.
Kept quick (a few dozen examples each, no deadline: a busy 2-core machine is slow)."""

from __future__ import annotations

import contextlib
import tempfile
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from charrnn.config import DataConfig
from charrnn.errors import CharRNNError

FAST = settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])

# what users' files hold: text with the characters parsers care about, and arbitrary bytes
TEXT = st.text(alphabet=st.sampled_from(list("ab z\t\n\r[]()%:,.-_0123456789MAXMINé☃\ufeff")), max_size=120)
FILES = st.one_of(TEXT.map(lambda s: s.encode("utf-8")), st.binary(max_size=120))


@contextlib.contextmanager
def a_file(data: bytes, name: str = "x.txt"):
    with tempfile.TemporaryDirectory() as d:
        p = Path(d) / "lab" / name
        p.parent.mkdir()
        p.write_bytes(data)
        yield p


@contextlib.contextmanager
def reading():
    """The body either finishes or raises one charrnn error with a one-line message."""
    try:
        yield
    except CharRNNError as e:
        assert str(e) and "\n" not in str(e), repr(e)


@FAST
@given(data=FILES, doc_sep=st.sampled_from([None, "line", "blank", "file", "%"]), encoding=st.sampled_from(["utf-8", "latin-1", "utf-16"]))
def test_corpus_reading_and_document_splitting(data, doc_sep, encoding):
    from charrnn.data.reading import iter_corpus
    from charrnn.data.tokenizer import EOS_CHAR

    with a_file(data) as p, reading():
        chunks = list(iter_corpus([p, p], DataConfig(paths=(str(p),), doc_sep=doc_sep, encoding=encoding), doc_sep))
        text = "".join(chunks)
        assert len(text) <= 2 * (2 * len(data) + 1)  # no more than the files' characters, each at most a document
        if doc_sep is None:
            assert EOS_CHAR not in text
        else:  # documents end with EOS, and none is empty
            assert f"{EOS_CHAR}{EOS_CHAR}" not in text and not text.startswith(EOS_CHAR)


@FAST
@given(data=FILES, source=st.sampled_from(["file", "folder", "prefix", "tsv"]), doc_sep=st.sampled_from([None, "line", "blank", "%"]))
def test_label_sources(data, source, doc_sep):
    from charrnn.data.labels import count_labels, iter_documents

    with a_file(data) as p, reading():
        docs = list(iter_documents([p], source, doc_sep))
        stats = count_labels(docs)
        assert stats.docs == len(docs) and all(d.label and "\n" not in d.label for d in docs)


@FAST
@given(data=FILES)
def test_tsv_pairs(data):
    from charrnn.data.pairs import iter_pairs

    with a_file(data, "p.tsv") as p, reading():
        for pair in iter_pairs(p):
            assert "\n" not in pair.source + pair.target


@settings(max_examples=150, deadline=None)
@given(text=TEXT)
def test_tree_syntax(text):
    from charrnn.data.trees import binarize, format_listops, format_sexpr, parse_tree, size

    with reading():
        tree = parse_tree(text)
        again = parse_tree(format_sexpr(tree) if text.lstrip().startswith("(") else format_listops(tree))
        assert again == tree  # what is read is what was written
        assert size(binarize(tree)) >= size(tree)


TREES = st.recursive(
    st.sampled_from(list("0123456789")),
    lambda kids: st.tuples(st.sampled_from(["MAX", "MIN", "SM", "MED"]), st.lists(kids, min_size=1, max_size=4)).map(
        lambda t: f"[{t[0]} " + " ".join(t[1]) + " ]"
    ),
    max_leaves=12,
)


@FAST
@given(tree=TREES)
def test_well_formed_trees_round_trip(tree):
    from charrnn.data.trees import format_listops, parse_tree

    assert format_listops(parse_tree(tree)) == " ".join(tree.split())


@FAST
@given(data=FILES)
def test_tree_files(data):
    from charrnn.data.trees import iter_tree_examples

    with a_file(data, "t.tsv") as p, reading():
        for ex in iter_tree_examples(p):
            assert ex.label and ex.line >= 1


# ------------------------------------------------------------- checkpoints, the cache


@pytest.fixture(scope="module")
def tiny_checkpoint(tmp_path_factory) -> bytes:
    from typer.testing import CliRunner

    from charrnn.cli import app
    from helpers import TINY, make_text

    root = tmp_path_factory.mktemp("ck")
    (root / "c.txt").write_text(make_text(60))
    r = CliRunner().invoke(app, ["train", str(root / "c.txt"), "--out", str(root / "r"), "--checkpoints", str(root), *TINY,
                                 "--steps", "1", "--device", "cpu", "--quiet", "--hidden", "8", "--embed", "4"])  # fmt: skip
    assert r.exit_code == 0, r.output
    return (root / "r" / "last.pt").read_bytes()


MUTATIONS = st.one_of(
    st.tuples(st.just("cut"), st.floats(0, 1)),
    st.tuples(st.just("flip"), st.lists(st.tuples(st.floats(0, 1), st.integers(1, 255)), min_size=1, max_size=8)),
    st.tuples(st.just("insert"), st.tuples(st.floats(0, 1), st.binary(min_size=1, max_size=16))),
)


def mutate(b: bytes, how) -> bytes:
    kind, arg = how
    if kind == "cut":
        return b[: int(arg * len(b))]
    if kind == "flip":
        a = bytearray(b)
        for at, x in arg:
            a[min(int(at * len(a)), len(a) - 1)] ^= x
        return bytes(a)
    at, extra = arg
    i = int(at * len(b))
    return b[:i] + extra + b[i:]


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(how=MUTATIONS)
def test_checkpoint_loader_on_mutated_bytes(tiny_checkpoint, how, tmp_path):
    from charrnn.training import checkpoint

    p = tmp_path / "last.pt"
    p.write_bytes(mutate(tiny_checkpoint, how))
    with reading():
        ck = checkpoint.load(p)
        checkpoint.model_from(ck, p)


@pytest.fixture(scope="module")
def built_cache(tmp_path_factory):
    from charrnn.data.corpus import prepare
    from helpers import make_text

    root = tmp_path_factory.mktemp("cache")
    (root / "c.txt").write_text(make_text(80))
    cfg = DataConfig(paths=(str(root / "c.txt"),), doc_sep="line")
    c = prepare(cfg, root)
    return cfg, root, np.asarray(c.ids).copy(), c.cache_dir


@FAST
@given(name=st.sampled_from(["ids.bin", "meta.json"]), keep=st.floats(0, 1), flip=st.booleans())
def test_cache_on_truncated_files(built_cache, name, keep, flip):
    from charrnn.data.corpus import prepare

    cfg, root, ids, folder = built_cache
    f = folder / name
    b = f.read_bytes()
    cut = b[: int(keep * len(b))]
    if flip and cut:
        cut = cut[:-1] + bytes([cut[-1] ^ 0x20])
    f.write_bytes(cut)
    c = prepare(cfg, root)  # never an exception: the cache is checked and rebuilt
    assert np.array_equal(np.asarray(c.ids), ids)
    assert (c.notice is not None) == (cut != b) or c.cached
