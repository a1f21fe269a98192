"""The atlas (inspect --atlas) and search by example (--select): annotations, the
parallel-stream reader against the per-step trace, AUC by ranks, the shifted baseline,
the search's choice of units and matches, and the command."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from helpers import TINY, no_traceback, one_line_error

from charrnn.cli import app
from charrnn.config import ModelConfig
from charrnn.inspect import annotations as an
from charrnn.inspect.atlas import _Sample, run
from charrnn.inspect.atlasview import scatter
from charrnn.inspect.search import choose, matches, parse_span, search
from charrnn.inspect.stats import roc_auc
from charrnn.inspect.stream import chunks, windows
from charrnn.errors import ConfigError
from charrnn.models.lm import CharRNN


def ann(text: str) -> dict[str, np.ndarray]:
    return {a.name: a.values for a in an.builtin(text)}


def marks(v: np.ndarray) -> str:
    return "".join("#" if x else "." for x in v)


# ------------------------------------------------------------- annotations


def test_annotations_of_prose_and_code():
    text = 'def f(x):  # a "c"\n    s = "it\'s" + x[1]\nHe said "don\'t (go)".\n'
    a = ann(text)
    line3 = text.index("He")
    assert marks(a["inside double quotes"][line3:]) == '........###########...'
    assert marks(a["inside single quotes"]) == "." * len(text)  # apostrophes in it's and don't do not open quotes
    assert marks(a["inside parentheses"][:10]) == ".....###.."  # the opener is inside, the closer too (it is read inside)
    assert a["bracket depth"][text.index("[1]") + 1] == 1
    assert marks(a["inside a comment"][:19]) == "...........#######."
    s = text.index('"it')
    assert marks(a["inside a string"][s - 1 : s + 7]) == ".#####.."  # from the opening quote up to the closing one
    assert list(a["position in line"][:4]) == [0, 1, 2, 3] and a["position in line"][text.index("    s")] == 0
    assert a["chars to line end"][text.index(":")] == len('  # a "c"')
    assert list(a["indentation depth"][text.index("    s") : text.index("    s") + 6]) == [1, 2, 3, 4, 4, 4]
    assert a["indentation depth"][line3 + 3] == 0
    assert marks(a["start of word"][:9]) == "#...#.#.."
    assert list(a["position in word"][:5]) == [1, 2, 3, 0, 1]
    assert a["after newline"][0] and a["after newline"][text.index("    s")] and not a["after newline"][1]
    assert a["digit"].sum() == 1 and a["upper case"].sum() == 1


def test_a_user_annotation_and_its_errors():
    a = an.regex("kw", r"\b(def|class)\b", "def f(): class")
    assert marks(a.values) == "###......#####" and a.measure == an.AUC
    assert an.parse("kw=a=b") == ("kw", "a=b")
    with pytest.raises(ConfigError, match="NAME=REGEX"):
        an.parse("nothing")
    with pytest.raises(ConfigError, match="not a valid regular expression"):
        an.regex("x", "(", "text")


# ------------------------------------------------------------- the reader


@pytest.mark.parametrize("cell", ["lstm", "gru", "rnn", "leaky", "jordan"])
def test_the_stream_reader_equals_the_per_step_trace(cell):
    torch.manual_seed(0)
    model = CharRNN(ModelConfig(cell=cell, layers=2, hidden=12, embed=8, vocab_size=20)).eval().double()
    ids = np.random.default_rng(0).integers(0, 20, 300)
    with torch.no_grad():
        tr = model.trace(torch.as_tensor(ids)[None], tuple(s.double() for s in model.start_state(1, None)))
    ref = {n: v[:, 0].permute(1, 0, 2).numpy() for n, v in tr.signals.items()}  # (T, L, H)
    # one stream; three, each warmed up past its start (a leaky unit's tau of 100 steps remembers the padding before the text)
    for streams, warmup, fused in ((1, 0, False), (1, 0, True)) + (((3, 300, False), (3, 300, True)) if cell != "leaky" else ()):
        got = {n: np.full_like(v, np.nan) for n, v in ref.items()}
        for ch in chunks(model, ids, streams=streams, warmup=warmup, steps=7, fused=fused):
            for n, v in ch.signals.items():
                got[n][ch.pos] = v.numpy()
        for n in ref:
            np.testing.assert_allclose(got[n], ref[n], atol=1e-5, err_msg=f"{cell} {n}, {streams} streams, fused {fused}")
    (w,) = windows(model, ids, [(250, 290)], context=250)
    for n in ref:
        np.testing.assert_allclose(w[n], ref[n][250:290], atol=1e-5)


def test_the_fused_layers_and_the_per_step_path_agree():
    torch.manual_seed(1)
    model = CharRNN(ModelConfig(cell="lstm", layers=2, hidden=16, embed=8, vocab_size=20)).eval()
    ids = np.random.default_rng(1).integers(0, 20, 500)
    a = {n: np.zeros((500, 2, 16), np.float32) for n in model.kind.signal_names}
    b = {n: np.zeros((500, 2, 16), np.float32) for n in model.kind.signal_names}
    for out, fused in ((a, True), (b, False)):
        for ch in chunks(model, ids, streams=4, fused=fused):
            for n, v in ch.signals.items():
                out[n][ch.pos] = v.numpy()
    for n in a:
        np.testing.assert_allclose(a[n], b[n], atol=1e-5)


# ------------------------------------------------------------- scores


def test_auc_by_ranks_equals_the_pairwise_auc():
    rng = np.random.default_rng(0)
    S, U = 3000, 40
    X = rng.normal(size=(S, U)).astype(np.float16).astype(np.float32)
    X[:, :5] = np.round(X[:, :5])  # heavy ties
    M = rng.random((S, 3)) < [0.05, 0.3, 0.6]
    X[M[:, 0], 7] += 1.5  # a unit that tracks the first annotation
    smp = _Sample(S, S, U, seed=0)
    smp.add(torch.as_tensor(X), np.arange(S))  # row i of the sample holds position smp.pos[i]
    got = smp.auc(M[smp.pos]).numpy()
    want = np.stack([roc_auc(X.astype(np.float64), M[:, a]) for a in range(3)])
    np.testing.assert_allclose(got[:, 5:], want[:, 5:], atol=2e-4)
    np.testing.assert_allclose(got[:, :5], want[:, :5], atol=0.03)  # ties broken at random, not counted half
    assert got[0, 7] > 0.8


def test_the_atlas_finds_what_a_unit_tracks_and_its_baseline_does_not():
    """Unit 5 of an RNN is made to read "a digit": the atlas finds it, far above the
    shifted baseline; an annotation no unit can know (every 7th position) is not explained."""
    torch.manual_seed(0)
    rng = np.random.default_rng(0)
    vocab = list("abcdefgh 0123456789\n")
    text = "".join(rng.choice(vocab, 4000))
    ids = np.array([vocab.index(c) for c in text])
    model = CharRNN(ModelConfig(cell="rnn", layers=1, hidden=32, embed=8, vocab_size=len(vocab))).eval()
    with torch.no_grad():
        model.embed.weight[:, 0] = torch.tensor([3.0 if c.isdigit() else -3.0 for c in vocab])
        model.core.weight_ih_l0[5] = 0.0
        model.core.weight_ih_l0[5, 0] = 1.0
        model.core.weight_hh_l0[5] = 0.0
    anns = [a for a in an.builtin(text) if a.name in ("digit", "position in line")]
    seventh = an.Annotation("seventh", "", an.AUC, np.arange(len(text)) % 7 == 0)
    at = run(model, [(a, a.values) for a in anns + [seventh]], ids, tuple(text), sample=2000)
    by = {f.name: f for f in at.findings}
    assert by["digit"].best[0].score > 0.9 and by["digit"].baseline < 0.7 and by["digit"].explained
    assert not by["seventh"].explained and by["seventh"].best[0].score < 0.65
    assert by["position in line"].measure == "r" and by["position in line"].excerpt is not None
    assert sum(sum(c) for c in at.unexplained.values()) < 32 and at.tokens == len(text)
    assert set(at.saturation) == {"h"} and at.saturation["h"].shape == (1, 32, 2)


# ------------------------------------------------------------- search


def test_search_chooses_units_on_in_the_span_and_off_around_it():
    v = -np.ones((10, 1, 4))
    v[4:7, 0, 0] = 1  # on in the span only: chosen
    v[3:7, 0, 1] = 1  # on in the margin too: not
    v[4:7, 0, 2] = 0.2  # under the threshold: not
    v[5:7, 0, 3] = 1  # off in part of the span: not
    assert choose(v, (14, 17), 10, 0.3, 1) == [(0, 0)]
    count = np.array([0, 2, 2, 0, 2, 2, 2, 0, 1, 2, 2, 2, 2, 0])
    found = matches(count, 2, (4, 7), tuple("abcdefghijklmn"))
    assert [(m.start, m.end) for m in found] == [(1, 3), (9, 13)]  # the selection itself left out; closest length first
    assert [(m.start, m.end) for m in matches(count, 2, (4, 7), tuple("abcdefghijklmn"), share=0.5)] == [(1, 3), (8, 13)]
    with pytest.raises(ConfigError, match="START:END"):
        parse_span("3-5", 10)
    with pytest.raises(ConfigError, match="outside the text"):
        parse_span("8:12", 10)


def test_search_over_a_text_finds_the_other_places():
    torch.manual_seed(0)
    vocab = list("xyz.")
    text = "xyzxyz." * 60
    ids = np.array([vocab.index(c) for c in text])
    model = CharRNN(ModelConfig(cell="gru", layers=1, hidden=16, embed=4, vocab_size=4)).eval()
    s = search(model, ids, tuple(text), (7, 8), threshold=0.0, margin=1)
    assert s.units, "some unit is on at a lone x and off around it"
    assert len(s.matches) == 10  # the best ten of many
    at_x = [m for m in s.matches if any(p % 7 == 0 for p in range(m.start, m.end))]  # an x after a full stop, as selected
    assert len(at_x) >= 8, s.matches


def test_braille_scatter_puts_the_corners_where_they_belong():
    grid = scatter({"a": np.array([[0.0, 0.0]]), "b": np.array([[1.0, 1.0]])}, width=4, height=2)
    assert grid[1][0] == (chr(0x2800 + 0x40), "a") and grid[0][3] == (chr(0x2800 + 0x08), "b")


# ------------------------------------------------------------- the command


def test_inspect_atlas_on_a_run_and_its_validation_split(runner, workdir, corpus_file):
    r = runner.invoke(app, ["train", str(corpus_file), *TINY, "--steps", "20", "--device", "cpu", "--quiet", "--name", "t"])
    assert r.exit_code == 0, r.output
    r = runner.invoke(app, ["inspect", "t", "--atlas", "--atlas-chars", "800", "--annotate", "vowel=[aeiou]", "--select", "10:11", "--threshold", "0", "--margin", "0",
                            "--json", "a.json", "--html", "a.html", "--max-chars", "300"])  # fmt: skip
    assert r.exit_code == 0, r.output
    no_traceback(r.output)
    assert "the run's validation split (800 of 1,0" in r.stdout and "annotations no unit explains:" in r.stdout
    assert "units that explain nothing known:" in r.stdout and "saturation: each unit a dot" in r.stdout
    assert "search 10:11" in r.stdout and "other places where they are on together" in r.stdout
    doc = json.loads((workdir / "a.json").read_text())
    names = [a["name"] for a in doc["atlas"]["annotations"]]
    assert "vowel" in names and "inside double quotes" not in names  # the toy corpus has no quotes: nothing to score
    assert {a["measure"] for a in doc["atlas"]["annotations"]} == {"auc", "r"}
    assert doc["search"]["span"] == [10, 11] and doc["atlas"]["positions"] == 800 and doc["search"]["matches"]
    page = (workdir / "a.html").read_text(encoding="utf-8")
    assert 'id="atlas"' in page and 'id="scatter"' in page and "<circle" in page and 'id="search"' in page


def test_atlas_errors_are_one_line(runner, workdir, corpus_file):
    r = runner.invoke(app, ["train", str(corpus_file), *TINY, "--steps", "2", "--device", "cpu", "--quiet", "--name", "t"])
    assert r.exit_code == 0, r.output
    one_line_error(runner.invoke(app, ["inspect", "t", "--atlas", "--annotate", "novalue"]), "NAME=REGEX")
    one_line_error(runner.invoke(app, ["inspect", "t", "--atlas", "--annotate", "x=("]), "not a valid regular expression")
    one_line_error(runner.invoke(app, ["inspect", "t", "--select", "5:2", "--text", "The cat sat."]), "--select 5:2")
    one_line_error(runner.invoke(app, ["inspect", "t", "--select", "1:3", "--what", "nope", "--text", "The cat."]), "no signal 'nope'")
    one_line_error(runner.invoke(app, ["inspect", "t", "--atlas-chars", "0", "--atlas"]), "--atlas-chars")
    one_line_error(runner.invoke(app, ["inspect", "t", "--threshold", "0.2", "--text", "The cat."]), "--threshold")


def test_a_tree_run_says_the_atlas_is_for_sequence_models(runner, workdir):
    r = runner.invoke(app, ["train", "listops:train=200,val=50", "--task", "tree", "--cell", "treelstm", "--steps", "2", "--hidden", "16",
                            "--layers", "1", "--quiet", "--device", "cpu", "--name", "tree"])  # fmt: skip
    assert r.exit_code == 0, r.output
    one_line_error(runner.invoke(app, ["inspect", "tree", "--atlas"]), "the atlas is for sequence models")
