"""Jordan nets (--cell jordan): the previous output fed back, teacher-forced (parallel over
time, and so no more than a bigram model) or the model's own (sequential), and the
exposure bias between the two."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from helpers import KIND_ARGS, no_traceback, one_line_error

from charrnn.cli import app
from charrnn.config import ModelConfig
from charrnn.models.jordan import feeding
from charrnn.models.lm import CharRNN

V, E, H = 11, 6, 12


def tiny(layers=2, feedback="target", dtype=torch.float64):
    cfg = ModelConfig(cell="jordan", layers=layers, hidden=H, embed=E, vocab_size=V, dropout=0.0, options={"feedback": feedback})
    return CharRNN(cfg).to(dtype).eval()


def by_the_book(m, idx, h0, teacher):
    """h(t) = tanh(b + W o(t-1) + U x(t)), one step at a time; o(t-1) the one-hot previous
    target (= x(t) in a language model) or softmax of the model's previous output."""
    hs = [h0[k] for k in range(m.cfg.layers)]
    out = []
    for t in range(idx.shape[1]):
        o_prev = F.one_hot(idx[:, t], V).to(hs[0].dtype) if teacher else torch.softmax(m.head(hs[-1]), -1)
        x = m.embed(idx[:, t])
        for k in range(m.cfg.layers):
            U, W, b = m.core.layer_params(k)
            hs[k] = torch.tanh(b + o_prev @ W.T + x @ U.T)
            x = hs[k]
        out.append(m.head(x))
    return torch.stack(out, 1)


@pytest.mark.parametrize("feedback", ["target", "model"])
def test_the_equations_by_the_book(feedback):
    """Training's path is the equation, a step at a time, with either feedback; the sampler feeds
    back what was generated, so its steps are the teacher-forced path whatever the training
    feedback. (Trace and step parity for every kind: test_every_kind.py.)"""
    m = tiny(feedback=feedback)
    idx = torch.randint(V, (3, 9))
    s0 = tuple(torch.randn_like(s) * 0.5 for s in m.init_state(3))
    with torch.no_grad():
        logits = m(idx, s0)[0]
        torch.testing.assert_close(by_the_book(m, idx, s0[0], feedback == "target"), logits, atol=1e-10, rtol=0)
        tr = m.trace(idx, s0)
        torch.testing.assert_close(tr.logits, logits, atol=1e-10, rtol=0)  # the trace follows the training feedback
        layers, steps = m.split_state(s0), []
        for t in range(9):
            out, layers = m.step_layers(idx[:, t], layers)
            steps.append(out)
        with feeding(m, "target"):
            forced = m(idx, s0)[0]
    assert set(tr.signals) == {"h", "a", "fed"} and tr.signals["fed"].shape == (2, 3, 9, H)
    torch.testing.assert_close(torch.tanh(tr.signals["a"]), tr.signals["h"], atol=1e-12, rtol=0)
    torch.testing.assert_close(torch.stack(steps, 1), forced, atol=1e-10, rtol=0)
    assert m.core.feedback == feedback  # feeding() puts it back


def test_teacher_forcing_is_parallel_over_time_and_a_bigram_model():
    """Each position alone gives what the whole sequence gives, and the prediction after a
    token depends on that token only, never on what came before it."""
    m = tiny()
    idx = torch.randint(V, (2, 40))
    with torch.no_grad():
        whole = m(idx)[0]
        alone = torch.cat([m(idx[:, t : t + 1])[0] for t in range(40)], 1)
        torch.testing.assert_close(alone, whole, atol=1e-12, rtol=0)
        table = m(torch.arange(V)[None])[0][0]  # (V, V): the next-token logits after each token
        torch.testing.assert_close(whole, table[idx], atol=1e-12, rtol=0)
        with feeding(m, "model"):  # free running: the model's own guesses fed back instead
            free = m(idx)[0]
    assert (free - whole).abs().max() > 1e-3


def test_the_gradient_through_time_stops_at_the_output_under_teacher_forcing():
    from charrnn.data.tokenizer import CharTokenizer
    from charrnn.inspect.trace import gradient_flow

    tok = CharTokenizer("abcdefghijk")
    text = "abcabcabdkjhgfabc"
    for feedback in ("target", "model"):
        m = CharRNN(ModelConfig(cell="jordan", layers=1, hidden=H, embed=E, vocab_size=V, options={"feedback": feedback})).eval()
        g = gradient_flow(m, tok, text)["h"][0]
        assert g[-1] > 0
        assert (g[:-1] == 0).all() if feedback == "target" else (g[-8:-1] > 0).all()  # through the softmax: it fades fast


def test_runs_report_their_feedback_and_feed_back_the_previous_character(kind_run, runner, workdir, corpus_file, tmp_path):
    target, model = (kind_run("jordan", *args) for args in KIND_ARGS["jordan"])  # trained and resumed in conftest
    assert "feedback model" in runner.invoke(app, ["info", str(model.dir)]).stdout
    assert "target (teacher forcing" in runner.invoke(app, ["info", str(target.dir)]).stdout
    out = tmp_path / "j.json"
    r = runner.invoke(app, ["inspect", str(target.dir), "--text", "the cat sat. the dog ran.", "--what", "fed", "--json", str(out)])
    assert r.exit_code == 0 and "layer 0, unit" in r.stdout and ", fed, coloured by tanh(fed)" in r.stdout, r.output
    doc = json.loads(out.read_text())
    probs = np.array(doc["arrays"]["probs"])
    at_t = [i for i, c in enumerate(doc["text"]) if c == "t"]
    assert len(at_t) == 4 and np.allclose(probs[at_t], probs[at_t[0]], atol=1e-6)  # after a "t", whatever came before it
    one_line_error(runner.invoke(app, ["train", str(corpus_file), "--cell", "lstm", "--feedback", "model"]), "--feedback does not fit")
    no_traceback(r.output)
