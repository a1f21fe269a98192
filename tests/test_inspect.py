"""The inspector: its analyses on planted signals, its pictures, and `charrnn inspect` as a user runs it."""

import json
import re

import numpy as np
import pytest
import torch
from rich.console import Console

from charrnn.inspect import view
from charrnn.cli import app
from charrnn.config import ModelConfig
from charrnn.errors import ConfigError
from charrnn.models.lm import CharRNN
from charrnn.inspect.export import FORMAT, VERSION, to_json
from charrnn.inspect.stats import (
    decay_per_step,
    find_units,
    match_mask,
    next_token_probs,
    roc_auc,
    saturation,
    top_predictions,
    unit_values,
)
from charrnn.inspect.trace import Activations, activations, gradient_flow
from charrnn.data.tokenizer import CharTokenizer
from helpers import TINY, no_traceback, one_line_error

ALPHABET = 'abcdefghijklmnopqrstuvwxyz "().\n'


def planted(text='he said "yes" (and "no") to it', L=2, H=6, seed=0):
    """Activations of a pretend LSTM whose layer 1 unit 4 is +1 inside quotes and
    whose forget gate 0/2 is shut inside them; everything else is noise."""
    rng = np.random.default_rng(seed)
    T = len(text)
    inside = np.zeros(T, bool)
    for m in re.finditer(r'"[^"]*"', text):
        inside[m.start() : m.end()] = True
    sig = {n: rng.uniform(0.2, 0.8, (L, T, H)).astype(np.float32) for n in ("h", "c", "input", "forget", "candidate", "output")}
    sig["h"][1, :, 4] = np.where(inside, 0.9, -0.1) + rng.normal(0, 0.01, T)
    sig["forget"][0, :, 2] = np.where(inside, 0.05, 0.95)
    vocab = tuple(ALPHABET)
    ids = np.array([vocab.index(ch) for ch in text])
    probs = rng.dirichlet(np.ones(len(vocab)), T).astype(np.float32)
    return Activations(text, ids, tuple(text), "lstm", sig, probs, vocab, np.arange(T + 1)), inside


# ---------------------------------------------------------------- analyses


def test_roc_auc_counts_pairs_and_halves_ties():
    rng = np.random.default_rng(1)
    X = rng.integers(0, 4, (25, 5)).astype(float)  # many ties
    inside = rng.random(25) < 0.4
    want = []
    for j in range(5):
        a, b = X[inside, j], X[~inside, j]
        want.append(((a[:, None] > b[None]).sum() + 0.5 * (a[:, None] == b[None]).sum()) / (len(a) * len(b)))
    np.testing.assert_allclose(roc_auc(X, inside), want, atol=1e-12)


def test_find_units_ranks_the_planted_units_with_their_signs():
    acts, inside = planted()
    assert (match_mask(acts, r'"[^"]*"') == inside).all()
    found = find_units(acts, inside, top=3)
    best = {(u.what, u.layer, u.unit): u for u in found[:2]}
    assert set(best) == {("h", 1, 4), ("forget", 0, 2)}
    assert best[("h", 1, 4)].score == 1.0 and best[("h", 1, 4)].auc == 1.0 and best[("h", 1, 4)].mean_in > 0.8
    assert best[("forget", 0, 2)].score == -1.0 and best[("forget", 0, 2)].mean_out == pytest.approx(0.95)
    assert abs(found[2].score) < 1.0
    only_h = find_units(acts, inside, what=["h"], top=1)
    assert (only_h[0].what, only_h[0].layer, only_h[0].unit) == ("h", 1, 4)


def test_match_mask_uses_the_first_group_and_token_offsets():
    acts, _ = planted("ab (cd) e")
    m = match_mask(acts, r"\((\w+)\)")  # the group: the letters, not the brackets
    assert "".join(ch for ch, x in zip(acts.text, m) if x) == "cd"
    # multi-character tokens: a token is inside when any of its characters is
    toks = Activations("ab (cd) e", np.arange(3), ("ab (", "cd) ", "e"), "lstm", acts.signals, acts.probs[:3], acts.vocab, np.array([0, 4, 8, 9]))
    assert match_mask(toks, r"\(").tolist() == [True, False, False]
    assert match_mask(toks, r"d\) ").tolist() == [False, True, False]
    with pytest.raises(ConfigError, match="matches nothing"):
        match_mask(acts, "z+")
    with pytest.raises(ConfigError, match="not a valid regular expression"):
        match_mask(acts, "(")


def test_unit_values_checks_names_and_ranges():
    acts, _ = planted()
    assert unit_values(acts, "h", 1, 4).shape == (len(acts.text),)
    for args, msg in [(("reset", 0, 0), "the lstm kind has no signal 'reset'"), (("h", 2, 0), "layers 0 to 1"), (("h", 0, 6), "units 0 to 5"), (("h", -1, 0), "--layer -1")]:
        with pytest.raises(ConfigError, match=re.escape(msg)):
            unit_values(acts, *args)


def test_predictions_and_probabilities_of_the_next_token():
    acts, _ = planted()
    top = top_predictions(acts, 3, k=4)
    p = acts.probs[3]
    assert [t.id for t in top] == list(np.argsort(-p)[:4]) and top[0].token == ALPHABET[top[0].id]
    assert top[0].prob == pytest.approx(p.max())
    nxt = next_token_probs(acts)
    assert np.isnan(nxt[0]) and nxt[5] == pytest.approx(acts.probs[4, acts.ids[5]])


def test_decay_per_step_recovers_a_geometric_rate():
    g = 0.3 * 0.7 ** np.arange(40.0)  # by distance
    assert decay_per_step(g[::-1]) == pytest.approx(0.7)
    assert decay_per_step(np.array([0.0, 0.0, 1.0])) is None


def test_saturation_fractions():
    acts, _ = planted()
    sat = saturation(acts)
    assert set(sat) == {"input", "forget", "output"} and sat["forget"].shape == (2, 6, 2)
    frac_inside = acts.signals["forget"][0, :, 2].__lt__(0.1).mean()
    assert sat["forget"][0, 2].tolist() == pytest.approx([frac_inside, 1 - frac_inside])
    h = acts.signals["h"][1, :, 4]  # 0.9 + noise inside the quotes, -0.1 + noise outside
    as_rnn = Activations(acts.text, acts.ids, acts.tokens, "rnn", {"h": acts.signals["h"], "a": acts.signals["c"]}, acts.probs)
    tanh_sat = saturation(as_rnn)  # no gates: the tanh state's tails, beyond -0.9 and 0.9
    assert set(tanh_sat) == {"h"} and tanh_sat["h"][1, 4].tolist() == pytest.approx([0.0, (h > 0.9).mean()])
    assert 0 < (h > 0.9).mean() < 1


def test_activations_read_the_text_from_the_start_of_document_state():
    tok = CharTokenizer("abc", eos=True)
    m = CharRNN(ModelConfig(cell="gru", layers=2, hidden=8, embed=4, vocab_size=tok.vocab_size)).eval()
    acts = activations(m, tok, "abcab")
    assert acts.tokens == tuple("abcab") and acts.vocab == ("a", "b", "c", "<eod>") and acts.offsets.tolist() == [0, 1, 2, 3, 4, 5]
    with torch.no_grad():
        logits, _, _ = m(torch.tensor([[tok.eos_id, 0, 1, 2, 0, 1]]))
    np.testing.assert_allclose(acts.probs, torch.softmax(logits[0, 1:], -1).numpy(), atol=1e-6)
    assert acts.signals["update"].shape == (2, 5, 8)


def test_json_holds_every_array_with_its_shape():
    acts, inside = planted()
    found = find_units(acts, inside, top=2)
    flow = {"h": np.abs(np.random.default_rng(0).normal(size=(2, len(acts.text) - 1))).astype(np.float32), "c": np.zeros((2, len(acts.text) - 1), np.float32)}
    doc = json.loads(to_json(acts, {"checkpoint": "x.pt"}, flow, found, '"[^"]*"', inside))
    assert doc["format"] == FORMAT and doc["version"] == VERSION and doc["indexing"] == "0-based"
    assert doc["text"] == acts.text and doc["tokens"] == list(acts.tokens) and doc["ids"] == acts.ids.tolist()
    assert doc["checkpoint"] == "x.pt" and doc["find"]["units"][0]["unit"] in (2, 4)
    arrays = doc["arrays"]
    for name, shape in doc["shapes"].items():
        assert list(np.array(arrays[name]).shape) == shape, name
    assert set(arrays) >= {"signals.h", "signals.forget", "probs", "saturation.forget", "gradients.h", "gradients.c", "find.inside"}
    np.testing.assert_allclose(np.array(arrays["signals.c"]), acts.signals["c"], rtol=1e-6)
    np.testing.assert_allclose(np.array(arrays["gradients.h"]), flow["h"], rtol=1e-6)
    assert arrays["next_token_prob"][0] is None  # nothing predicts the first token: NaN becomes null


# ----------------------------------------------------------------- pictures


def render(renderable, width=120):
    c = Console(width=width, record=True, color_system="truecolor", force_terminal=True)
    c.print(renderable)
    return c.export_text()


def test_colored_text_puts_each_token_on_its_value():
    t = view.colored_text(["a", "\n", "b"], [view.diverging(1.0), view.diverging(0.0), view.diverging(-1.0)], marks=[True, False, False])
    assert t.plain == "a↵\nb"
    styles = {t.plain[s.start : s.end]: s.style for s in t.spans}
    assert styles["a"].bgcolor.triplet == view.RED and styles["a"].underline
    assert styles["↵"].bgcolor.triplet == view.WHITE
    assert styles["b"].bgcolor.triplet == view.BLUE and not styles["b"].underline
    assert view.diverging(0.5).triplet == tuple(round((w + r) / 2) for w, r in zip(view.WHITE, view.RED))


def test_unit_view_scales_gates_and_cells():
    acts, _ = planted()
    np.testing.assert_allclose(view.scaled("gate", np.array([0.0, 0.5, 1.0])), [-1, 0, 1])
    np.testing.assert_allclose(view.scaled("free", np.array([3.0])), [np.tanh(3.0)])
    np.testing.assert_allclose(view.scaled("tanh", np.array([-0.5, 0.25])), [-0.5, 0.25])
    text = render(view.unit_view(acts, "c", 1, 4))
    assert text.splitlines()[0] == "layer 1, unit 4, c, coloured by tanh(c)"
    assert acts.text in text and "scale:  -1" in text


def test_gradient_view_rows_and_fit():
    g = (0.5 * 0.8 ** np.arange(30.0))[::-1].astype(np.float32)[None]  # (1, T) by position
    text = render(view.gradient_view({"h": g, "c": np.zeros_like(g)}, bar=10))
    lines = text.splitlines()
    assert lines[1].split() == ["T−t", "h", "layer", "0", "c", "layer", "0"]
    assert [ln.split()[0] for ln in lines[2:-2]] == ["0", "1", "2", "3", "4", "6", "9", "13", "19", "28", "29", "fit"]
    assert "██████████ 5.0e-01" in lines[2] and lines[2].endswith(" 0")
    assert [ln.split()[:3] for ln in lines if ln.startswith("fit")] == [["fit", "×0.800", "a"]]


def test_saturation_table_and_sparkline():
    assert view.spark(np.array([0.0, 0.05, 0.95, 1.0, 1.0])) == "▅        █"  # 2 and 3 units of 5: 8 * 2/3 rounds to 5
    acts, _ = planted()
    text = render(view.saturation_table(saturation(acts)))
    rows = [ln.split() for ln in text.splitlines() if ln.startswith(("input", "forget", "output"))]
    assert [r[:2] for r in rows] == [["input", "0"], ["input", "1"], ["forget", "0"], ["forget", "1"], ["output", "0"], ["output", "1"]]


# -------------------------------------------------------------------- CLI


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    """Two tiny real checkpoints, an LSTM and a vanilla RNN, trained through the CLI."""
    from helpers import make_text
    from typer.testing import CliRunner

    root = tmp_path_factory.mktemp("runs")
    corpus = root / "corpus.txt"
    corpus.write_text(make_text(), encoding="utf-8")
    runner = CliRunner()
    for cell in ("lstm", "rnn"):
        torch.manual_seed(0)
        args = ["train", str(corpus), "--steps", "20", "--cell", cell, "--name", cell, "--checkpoints", str(root), *TINY, "--quiet"]
        # one thread: on a busy two-core machine, two OpenMP threads make tiny fused RNN steps ~50x slower
        r = runner.invoke(app, args + ["--final-eval-tokens", "256", "--threads", "1"])
        assert r.exit_code == 0, r.output
    return root


def inspect(runner, runs, *args, cell="lstm"):
    r = runner.invoke(app, ["inspect", str(runs / cell / "best.pt"), *args])
    no_traceback(r.output)
    return r


TEXT = "The cat sat on the mat.\nA dog ran."


def test_inspect_overview(runner, runs):
    r = inspect(runner, runs, "--text", TEXT)
    assert r.exit_code == 0, r.output
    lines = r.stdout.splitlines()
    assert lines[0] == f"inspect {runs / 'lstm' / 'best.pt'}: lstm 1x32, step 20; {len(TEXT)} characters; layer 0, units 0-31 (0-based)"
    assert re.fullmatch(r"layer 0, unit \d+, h \(the unit that varies most here; choose one with --unit\)", lines[2])
    assert lines[3:5] == ["The cat sat on the mat.↵", "A dog ran."]
    assert lines[5].startswith("scale:  -1 ")
    assert "how expected each character was" in r.stdout and f"over {len(TEXT) - 1} predictions" in r.stdout
    assert f"next after position {len(TEXT) - 1} (…" in r.stdout and "the end of the text" in r.stdout
    rank_rows = [ln for ln in lines if re.match(r"^\s+[1-5]  \S+\s+\d+\.\d%", ln)]
    assert len(rank_rows) == 5
    assert [ln.split()[:2] for ln in lines if ln.startswith(("input ", "forget ", "output "))] == [["input", "0"], ["forget", "0"], ["output", "0"]]
    assert r.stderr == ""


def test_inspect_one_unit_and_predictions_along_the_text(runner, runs):
    r = inspect(runner, runs, "--text", "The cat", "--layer", "0", "--unit", "3", "--what", "forget", "--at", "all", "--top-k", "2")
    assert r.exit_code == 0, r.output
    assert "layer 0, unit 3, forget\n" in r.stdout and "scale:  0 shut " in r.stdout
    rows = [ln.split() for ln in r.stdout.splitlines() if re.match(r"^\s*\d+\s+\S", ln) and "%" in ln]
    assert [row[0] for row in rows] == [str(t) for t in range(7)]
    assert rows[0][1:3] == ["T", "h"] and rows[-1][1] == "t"  # read, next; the last has no next
    r = inspect(runner, runs, "--text", "The cat", "--at", "2", "--find", "cat")
    assert "next after position 2 (…The); the text goes on with ␣" in r.stdout


def test_inspect_find_and_gradients(runner, runs):
    r = inspect(runner, runs, "--text", TEXT, "--find", r"\b(cat|dog)\b", "--top", "4")
    assert r.exit_code == 0, r.output
    lines = r.stdout.splitlines()
    title = [ln for ln in lines if ln.startswith("units that separate")]
    assert title == [f"units that separate --find '\\b(cat|dog)\\b' (6 of {len(TEXT)} positions inside)"]
    ranked = [ln.split() for ln in lines if re.match(r"^[1-4]\s+0\s+\d+\s+\w+\s+[+-]\d\.\d{3}", ln)]
    assert len(ranked) == 4
    scores = [abs(float(row[4])) for row in ranked]
    assert scores == sorted(scores, reverse=True)
    assert any(ln.startswith("best: layer 0, unit ") for ln in lines)
    assert "sampled" not in r.stderr and "gate saturation" not in r.stdout  # --find alone shows just the ranking

    r = inspect(runner, runs, "--text", TEXT * 3, "--gradients", cell="rnn")
    assert r.exit_code == 0, r.output
    lines = r.stdout.splitlines()
    assert lines[2] == "gradient through time: ‖∂L_T/∂h_t‖, L_T the loss of the last character"
    assert lines[3].split() == ["T−t", "h", "layer", "0"]
    assert [ln.split()[0] for ln in lines[4:9]] == ["0", "1", "2", "3", "4"]
    assert re.match(r"fit\s+×\d\.\d{3} a step back", lines[-2])


def test_inspect_rnn_has_no_gates(runner, runs):
    r = inspect(runner, runs, "--text", TEXT, "--what", "a", "--unit", "0", cell="rnn")
    assert r.exit_code == 0, r.output
    assert "layer 0, unit 0, a, coloured by tanh(a)" in r.stdout
    assert "no gates in a vanilla RNN; saturation of h, where tanh's gradient vanishes" in r.stdout
    assert re.search(r"^h\s+0\s", r.stdout, re.MULTILINE)
    one_line_error(inspect(runner, runs, "--text", TEXT, "--what", "c", cell="rnn"), "the rnn kind has no signal 'c'", "h, a")


def test_inspect_json(runner, runs, tmp_path):
    r = inspect(runner, runs, "--text", TEXT, "--find", "cat", "--json", str(tmp_path / "x.json"), "--threads", "1")
    assert r.exit_code == 0, r.output
    doc = json.loads((tmp_path / "x.json").read_text(encoding="utf-8"))
    assert doc["format"] == "charrnn-inspect" and doc["version"] == 2 and doc["text"] == TEXT and len(doc["tokens"]) == len(TEXT)
    assert doc["step"] == 20 and doc["model_config"]["cell"] == "lstm" and doc["find"]["pattern"] == "cat"
    T = len(TEXT)
    assert doc["shapes"]["signals.forget"] == [1, T, 32] and doc["shapes"]["probs"][0] == T and doc["shapes"]["gradients.c"] == [1, T - 1]
    assert sum(doc["arrays"]["find.inside"]) == 1 * 3
    assert f"wrote {tmp_path / 'x.json'}" in r.stderr


def test_inspect_reads_files_and_samples_when_given_no_text(runner, runs, tmp_path):
    f = tmp_path / "t.txt"
    f.write_bytes(("the cat sat\r\n" * 10).encode())
    r = inspect(runner, runs, "--file", str(f), "--max-chars", "30")
    assert r.exit_code == 0 and "reading the first 30 of 120 characters" in r.stderr
    assert "; 30 characters;" in r.stdout.splitlines()[0] and "␍" not in r.stdout
    a = inspect(runner, runs, "--seed", "3")
    b = inspect(runner, runs, "--seed", "3")
    assert a.exit_code == 0 and a.stdout == b.stdout
    assert re.fullmatch(r"no --text or --file: reading \d+ characters sampled from the model \(--seed 3 to repeat\)\n", a.stderr)


@pytest.mark.parametrize(
    "args, fragments",
    [
        (["--text", ""], ["the text is empty"]),
        (["--text", "Zebra ☃"], ["never saw", "'☃'", "--unknown skip"]),
        (["--text", "ab", "--file", "x.txt"], ["--text or --file, not both"]),
        (["--text", "The cat", "--unit", "32"], ["--unit 32 is out of range", "units 0 to 31 (0-based)"]),
        (["--text", "The cat", "--layer", "1"], ["--layer 1 is out of range", "layers 0 to 0 (0-based)"]),
        (["--text", "The cat", "--what", "update"], ["the lstm kind has no signal 'update'"]),
        (["--text", "The cat", "--at", "7"], ["--at 7 is out of range", "0 to 6"]),
        (["--text", "The cat", "--at", "middle"], ["--at takes a position"]),
        (["--text", "The cat", "--find", "(("], ["is not a valid regular expression"]),
        (["--text", "The cat", "--find", "dog"], ["matches nothing in the text"]),
        (["--text", "The cat", "--find", "[a-zT ]"], ["matches the whole text"]),
        (["--text", "T", "--gradients"], ["at least two tokens"]),
        (["--text", "The", "--top-k", "0"], ["--top-k must be at least 1"]),
        (["--text", "The", "--threads", "0"], ["--threads must be at least 1"]),
        (["--file", "no-such.txt"], ["no-such.txt", "No such file"]),
    ],
)
def test_inspect_errors(runner, runs, args, fragments):
    one_line_error(inspect(runner, runs, *args), *fragments)


def test_inspect_bad_file_and_missing_checkpoint(runner, runs, tmp_path):
    bad = tmp_path / "bad.txt"
    bad.write_bytes(b"ab\xffcd")
    one_line_error(inspect(runner, runs, "--file", str(bad)), "not valid UTF-8 at byte 2")
    one_line_error(runner.invoke(app, ["inspect", str(tmp_path / "nothing"), "--text", "a"]), "no checkpoint or run")
    one_line_error(runner.invoke(app, ["inspect", "--checkpoints", str(tmp_path), "--text", "a"]), "no runs under")


def test_gradient_flow_of_a_real_checkpoint_is_finite(runs):
    from charrnn.training import checkpoint

    model, tok = checkpoint.model_from(checkpoint.load(runs / "lstm" / "best.pt"))
    flow = gradient_flow(model, tok, TEXT)
    assert set(flow) == {"h", "c"} and flow["h"].shape == (1, len(TEXT) - 1) and np.isfinite(flow["c"]).all()


def test_subword_tokens_map_back_to_their_characters():
    """With sentencepiece, a token spans several characters: offsets, --find and the
    coloured text all follow the characters of the text."""
    from charrnn.data import spm_train as spm
    from helpers import make_text

    text = make_text(200) + "你好 世界\n" * 20
    tok = spm.train(lambda: iter([text]), np.bincount([ord(c) for c in text]), False, 300)
    m = CharRNN(ModelConfig(cell="lstm", layers=1, hidden=8, embed=4, vocab_size=tok.vocab_size)).eval()
    s = "The cat sat 你好 on the mat"
    acts = activations(m, tok, s)
    assert acts.text == s and acts.offsets[-1] == len(s) and len(acts.tokens) < len(s)
    assert "".join(acts.tokens) == s and [s[a:b] for a, b in zip(acts.offsets[:-1], acts.offsets[1:])] == list(acts.tokens)
    inside = match_mask(acts, "你好")
    assert "".join(t for t, x in zip(acts.tokens, inside) if x).strip() == "你好"
    assert view.colored_text(acts.tokens, [view.diverging(0.0)] * len(acts.tokens)).plain == s
    assert render(view.header("x.pt", acts, "lstm")).startswith(f"inspect x.pt: lstm; {len(acts.tokens)} tokens;")
