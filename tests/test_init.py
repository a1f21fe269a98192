"""The initialisations for long-range memory, present after building: the leaky net's
identity start and its τ spread; an LSTM that keeps PyTorch's start (measured on prose)."""

from __future__ import annotations

import math

import pytest
import torch

from charrnn.config import ModelConfig
from charrnn.data.longrange import Copy
from charrnn.models.leaky import time_constants
from charrnn.models.lm import CharRNN
from charrnn.models.options import LeakyOptions


def build(cell, **kw):
    torch.manual_seed(0)
    return CharRNN(ModelConfig(cell=cell, layers=2, hidden=16, embed=8, vocab_size=10, **kw))


def test_the_lstm_keeps_pytorchs_start_and_keys():
    # a forget-gate bias of 1 measured worse on prose (models/lstm.py): the gates start as PyTorch's
    m = build("lstm")
    H = 16
    for k in range(2):
        b = getattr(m.core, f"bias_ih_l{k}") + getattr(m.core, f"bias_hh_l{k}")  # PyTorch adds its two biases
        assert b.abs().max() < 2 / math.sqrt(H) and b[H : 2 * H].abs().max() < 0.9
    assert [n for n, _ in m.core.named_parameters()] == [n for n, _ in torch.nn.LSTM(8, 16, 2).named_parameters()]


@pytest.mark.parametrize("delays", [(1,), (1, 4, 16), (4, 16)])
def test_the_leaky_net_starts_as_integrators_with_a_spread_of_time_constants(delays):
    m = build("leaky", options={"delays": delays})
    H, n = 16, len(delays)
    for W in m.core.W:
        j = delays.index(min(delays))
        assert torch.equal(W[:, j * H : (j + 1) * H], torch.eye(H))  # the shortest delay: the identity
        others = torch.cat([W[:, i * H : (i + 1) * H] for i in range(n) if i != j], 1) if n > 1 else torch.zeros(0)
        assert others.abs().max() <= 1 / math.sqrt(n * H) if n > 1 else True
    tau = m.core.unit_info()["tau"]
    opts = LeakyOptions()
    assert torch.allclose(tau[0], time_constants(H, opts.tau_max)) and tau[0].min() == pytest.approx(1.0)
    # the slowest units outlast the default copy corpus's mean dependency: a user need not know the right τ
    assert tau.max() == pytest.approx(opts.tau_max) and opts.tau_max >= Copy().distances()[0]
    ratios = (tau[0][1:] / tau[0][:-1]).tolist()
    assert ratios == pytest.approx([ratios[0]] * len(ratios), rel=1e-4)  # log-spaced


@pytest.mark.parametrize("cell", ["lstm", "gru"])
def test_chrono_spreads_the_keep_gates_memory_from_1_to_T_steps(cell):
    # Tallec and Ollivier (2018): keep-gate bias log(u), u ~ U(1, T - 1), so unit j holds its memory
    # for about 1 + u_j steps; an LSTM's input gate starts at -b_f; the hidden biases of those gates are 0
    T, H = 200.0, 256
    torch.manual_seed(0)
    m = CharRNN(ModelConfig(cell=cell, layers=2, hidden=H, embed=8, vocab_size=10, options={"chrono": T}))
    keep = slice(H, 2 * H)  # the forget gate (i, f, g, o) and the update gate (r, z, n) both sit second
    for k in range(2):
        b_ih, b_hh = getattr(m.core, f"bias_ih_l{k}"), getattr(m.core, f"bias_hh_l{k}")
        steps = 1 + b_ih[keep].exp()  # 1 / (1 - sigmoid(b)) = 1 + e^b
        assert steps.min() >= 2 - 1e-4 and steps.max() <= T + 1e-3
        assert steps.max() > 0.9 * T and steps.min() < 0.1 * T  # spread over the range, not bunched
        assert torch.all(b_hh[keep] == 0)
        if cell == "lstm":
            assert torch.equal(b_ih[:H], -b_ih[keep]) and torch.all(b_hh[:H] == 0)
    off = CharRNN(ModelConfig(cell=cell, layers=2, hidden=H, embed=8, vocab_size=10))
    assert off.core.bias_ih_l0[keep].abs().max() < 1 / math.sqrt(H) + 1e-6  # 0 (the default): PyTorch's start


def test_chrono_out_of_range_is_one_line(runner, workdir):
    from charrnn.cli import app

    corpus = workdir / "c.txt"
    corpus.write_text("abc " * 200)
    r = runner.invoke(app, ["train", str(corpus), "--cell", "lstm", "--chrono", "1", "--steps", "1", "--device", "cpu"])
    assert r.exit_code != 0 and r.output.strip().splitlines()[-1].startswith("error: --chrono takes 0 (off)")
    r = runner.invoke(app, ["train", str(corpus), "--cell", "rnn", "--chrono", "50", "--steps", "1", "--device", "cpu"])
    assert r.exit_code != 0 and r.output.strip() == "error: --chrono does not fit --cell rnn with --task lm (it is for --cell lstm, gru)."
