"""Leaky units and skip connections through time (--cell leaky): the equations, the
paths held equal, the time constants, and a gradient that fades more slowly than a
vanilla RNN's."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest
import torch
from helpers import KIND_ARGS, no_traceback, one_line_error

from charrnn.cli import app
from charrnn.config import ModelConfig
from charrnn.errors import ConfigError
from charrnn.models.core import Unrolled
from charrnn.models.leaky import time_constants
from charrnn.models.lm import CharRNN
from charrnn.training import checkpoint

V, E, H = 11, 6, 12


def tiny(layers=2, dtype=torch.float64, **options):
    cfg = ModelConfig(cell="leaky", layers=layers, hidden=H, embed=E, vocab_size=V, dropout=0.0, options=options)
    return CharRNN(cfg).to(dtype).eval()


def by_the_book(m, idx, s0):
    """The equations of the module docstring, written out with the history in a plain list."""
    delays, L = m.core.delays, m.cfg.layers
    x = m.embed(idx)  # (B, T, E)
    for k in range(L):
        U, W, b, log_tau = m.core.layer_params(k)
        alpha = 1.0 / torch.exp(log_tau.clamp(min=0))
        hist = [s0[0][k], *s0[1][k].unbind(1)]  # h(t-1), h(t-2), ...
        Ws = W.split(H, dim=1)  # one (H, H) matrix per delay
        layer = []
        for t in range(idx.shape[1]):
            a = b + x[:, t] @ U.t() + sum(hist[d - 1] @ Wd.t() for d, Wd in zip(delays, Ws))
            h = (1 - alpha) * hist[0] + alpha * torch.tanh(a)
            hist = [h, *hist[:-1]]
            layer.append(h)
        x = torch.stack(layer, 1)
    return m.head(x)


OPTIONS = [{}, {"delays": (1, 3, 5)}, {"delays": (2, 4), "learn_tau": True, "tau_max": 20.0}]


@pytest.mark.parametrize("options", OPTIONS, ids=["plain", "skips", "no-length-one"])
def test_the_equations_by_the_book(options):
    """Training's path is the module docstring's equations; the state carries h(t-1) .. h(t-d_max+1).
    (The trace and the sampler's step are held to the same numbers for every kind in test_every_kind.py.)"""
    m = tiny(**options)
    idx = torch.randint(V, (3, 9))
    s0 = tuple(torch.randn_like(s) * 0.5 for s in m.init_state(3))
    with torch.no_grad():
        logits, _, final = m(idx, s0)
        torch.testing.assert_close(by_the_book(m, idx, s0), logits, atol=1e-10, rtol=0)
    assert final[1].shape == (2, 3, max(m.core.delays) - 1, H)
    assert set(m.trace(idx, s0).signals) == {"h", "candidate"}


def test_fast_training_path_equals_the_generic_one_with_document_resets():
    """LeakyCore.unrolled keeps its history in a list; the generic core's unrolled() steps
    the kind's recur(). Same outputs, final state and gradients, resets inside the batch."""
    m = tiny(delays=(1, 2, 4), learn_tau=True)
    idx, y = torch.randint(V, (3, 12)), torch.randint(V, (3, 12))
    reset = torch.zeros(3, 12, dtype=torch.bool)
    reset[0, 0] = reset[1, 5] = reset[2, 3] = reset[2, 9] = True
    s0 = tuple(torch.randn_like(s) for s in m.init_state(3))
    runs = []
    for generic in (False, True):
        m.zero_grad()
        m.core.unrolled = (lambda *a: Unrolled.unrolled(m.core, *a)) if generic else type(m.core).unrolled.__get__(m.core)
        logits, loss, final = m(idx, s0, y, reset)
        loss.backward()
        runs.append((logits, final, [p.grad.clone() for p in m.parameters()]))
    (la, fa, ga), (lb, fb, gb) = runs
    torch.testing.assert_close(lb, la, atol=1e-10, rtol=0)
    for x, z in zip(fa + tuple(ga), fb + tuple(gb)):
        torch.testing.assert_close(x, z, atol=1e-10, rtol=0)


def test_time_constants_are_log_spaced_and_fixed_unless_learned(tmp_path):
    tau = time_constants(5, 100.0)
    torch.testing.assert_close(tau, torch.tensor([1.0, 10 ** 0.5, 10.0, 10 ** 1.5, 100.0]))
    m = tiny(tau_max=100.0)
    info = m.core.unit_info()["tau"]
    assert info.shape == (2, H) and math.isclose(float(info[0, 0]), 1.0) and math.isclose(float(info[1, -1]), 100.0, rel_tol=1e-5)
    assert not any(p.requires_grad for p in m.core.log_tau)
    assert all(p.requires_grad for p in tiny(learn_tau=True).core.log_tau)
    with pytest.raises(ConfigError, match="--tau-max must be a number >= 1"):
        tiny(tau_max=0.5)
    with pytest.raises(ConfigError, match="--delays takes distinct whole numbers"):
        tiny(delays=(1, 1))


def test_the_gradient_fades_more_slowly_than_a_vanilla_rnns():
    """At initialisation, through inspect's own measurement: the slow units (tau up to 100)
    carry the gradient far further back than tanh(W h) alone does."""
    from charrnn.data.tokenizer import CharTokenizer
    from charrnn.inspect.stats import reach
    from charrnn.inspect.trace import gradient_flow

    text = "the cat sat on the mat and the dog ran under the log " * 2
    tok = CharTokenizer(text)
    reached = {}
    for cell in ("rnn", "leaky"):
        torch.manual_seed(0)
        m = CharRNN(ModelConfig(cell=cell, layers=1, hidden=32, embed=8, vocab_size=tok.vocab_size)).eval()
        reached[cell] = reach(gradient_flow(m, tok, text)["h"][0])
    assert reached["rnn"] is not None and reached["rnn"] < 20
    assert reached["leaky"] is None or reached["leaky"] > 3 * reached["rnn"], reached


def test_a_run_keeps_its_history_and_shows_its_time_constants(kind_run, runner, workdir, corpus_file, tmp_path):
    run = kind_run("leaky", *KIND_ARGS["leaky"][0])  # --delays 1,4 --tau-max 50, trained and resumed in conftest
    assert "model: leaky 1x32, embedding 16, dropout 0.1, delays 1,4, tau-max 50.0" in run.trained.stderr
    ck = checkpoint.load(run.dir / "last.pt")
    assert ck.task.carried_state[1].shape == (1, 4, 3, 32)  # h(t-2) .. h(t-4) of each stream
    assert ck.frozen == ["core.log_tau.0"]
    out = tmp_path / "lk.json"
    r = runner.invoke(app, ["inspect", str(run.dir), "--text", "The cat sat.", "--unit", "31", "--json", str(out)])
    assert r.exit_code == 0, r.output
    assert "layer 0, unit 31, h, τ 50" in r.stdout and "saturation of h" in r.stdout
    doc = json.loads(out.read_text())
    assert doc["dims"]["units.tau"] == ["layer", "unit"]
    assert np.allclose(doc["arrays"]["units.tau"][0][:1] + doc["arrays"]["units.tau"][0][-1:], [1.0, 50.0], rtol=1e-5)
    r = runner.invoke(app, ["info", str(run.dir)])
    assert "τ 1.0 to 50.0, median" in r.stdout and "(fixed, log-spaced)" in r.stdout
    one_line_error(runner.invoke(app, ["train", str(corpus_file), "--cell", "gru", "--tau-max", "9"]), "--tau-max does not fit --cell gru")
    one_line_error(runner.invoke(app, ["train", str(corpus_file), "--cell", "leaky", "--delays", "1,x"]), "--delays", "1,4,16", code=2)
    no_traceback(r.output)
