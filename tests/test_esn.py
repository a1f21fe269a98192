"""Echo state networks (--cell esn): a reservoir scaled to its spectral radius and never
trained, the paths held equal, a ridge readout fitted in one pass, honest bits/char."""

from __future__ import annotations

import json
import math
import re

import pytest
import torch
from helpers import KIND_ARGS, no_traceback, one_line_error

from charrnn.cli import app
from charrnn.config import DataConfig, ModelConfig, TrainConfig
from charrnn.models.esn import spectral_radius
from charrnn.models.lm import CharRNN
from charrnn.models.readout import fit_ridge, gram_upper, memory_capacity, solve, symmetric, temperature
from charrnn.training import checkpoint

V, E = 11, 6
SUM = lambda t: t  # noqa: E731  (one process: nothing to add up)


def tiny(H=12, layers=2, dtype=torch.float64, **options):
    cfg = ModelConfig(cell="esn", layers=layers, hidden=H, embed=E, vocab_size=V, dropout=0.0, options=options)
    return CharRNN(cfg).to(dtype).eval()


def test_the_reservoir_is_sparse_scaled_and_frozen():
    m = tiny(H=60, layers=1, dtype=torch.float32, density=0.2, spectral_radius=0.9)
    W = m.core.W[0]
    assert spectral_radius(W) == pytest.approx(0.9, abs=1e-5)
    assert 0.15 < float((W != 0).float().mean()) < 0.25
    assert [n for n, p in m.named_parameters() if p.requires_grad] == ["head.weight", "head.bias"]
    assert m.num_params(trainable=True) == 60 * V + V


@pytest.mark.parametrize("leak", [1.0, 0.4])
def test_the_equations_by_the_book(leak):
    """Training's path is the module docstring's equation, a step at a time (the trace and the
    sampler's step are held to the same numbers for every kind in test_every_kind.py)."""
    m = tiny(leak=leak)
    idx = torch.randint(V, (3, 9))
    s0 = tuple(torch.randn_like(s) * 0.5 for s in m.init_state(3))
    with torch.no_grad():
        logits = m(idx, s0)[0]
        x = m.embed(idx)
        for k in range(2):
            U, W, b, _ = m.core.layer_params(k)
            h, layer = s0[0][k], []
            for t in range(9):
                h = (1 - leak) * h + leak * torch.tanh(b + h @ W.T + x[:, t] @ U.T)
                layer.append(h)
            x = torch.stack(layer, 1)
        torch.testing.assert_close(m.head(x), logits, atol=1e-10, rtol=0)


def test_the_sparse_product_equals_the_dense_one_and_follows_new_weights():
    m = tiny(H=600, layers=1, dtype=torch.float32, density=0.05)
    idx = torch.randint(V, (4, 10))
    with torch.no_grad():
        sparse = m(idx)[0]
    assert 0 in m.core._csr  # the CSR copy was used
    with torch.enable_grad():
        dense = m(idx, tuple(s.requires_grad_() for s in m.init_state(4)))[0]  # a gradient is wanted: the dense product
    torch.testing.assert_close(sparse, dense, atol=1e-5, rtol=1e-5)
    other = tiny(H=600, layers=1, dtype=torch.float32, density=0.05)
    m.load_state_dict(other.state_dict())
    with torch.no_grad():
        torch.testing.assert_close(m(idx)[0], other(idx)[0], atol=1e-5, rtol=1e-5)  # not the stale CSR copy


def test_gram_solve_and_temperature_by_hand():
    torch.manual_seed(1)
    X = torch.randn(300, 37)
    G = torch.zeros(37, 37, dtype=torch.float64)
    gram_upper(G, X[:170])
    gram_upper(G, X[170:])  # two chunks add up to one product
    torch.testing.assert_close(symmetric(G), (X.T @ X).double(), atol=1e-3, rtol=1e-5)
    X1 = torch.cat([X[:, :36], torch.ones(300, 1)], 1).double()
    y = torch.randint(5, (300,))
    Y = torch.nn.functional.one_hot(y, 5).double()
    W = solve(X1.T @ X1, Y.T @ X1, 300.0, 0.01)
    pen = torch.diag(torch.tensor([0.01] * 36 + [0.0], dtype=torch.float64))
    torch.testing.assert_close(W, torch.linalg.solve(X1.T @ X1 / 300 + pen, X1.T @ Y / 300))  # the bias is not penalised
    S = X1 @ W
    s, ce = temperature(S, y, SUM)
    grid = torch.linspace(0.1, 30, 3000, dtype=torch.float64)
    ces = torch.stack([torch.nn.functional.cross_entropy(g * S, y) for g in grid])
    assert s == pytest.approx(float(grid[ces.argmin()]), abs=0.02) and ce == pytest.approx(float(ces.min()), abs=1e-4)


def test_the_ridge_readout_is_the_least_squares_fit_over_every_step_of_the_pass():
    m = tiny(H=20, layers=1, dtype=torch.float32)
    batches = [(torch.randint(V, (5, 7)), torch.randint(V, (5, 7)), None) for _ in range(40)]  # one pass: 1,400 steps
    note = fit_ridge(m, iter(batches), 1e-3, SUM, lambda: False)
    assert note.startswith("ridge readout: 1,400 timesteps of 20-unit states in one pass")
    with torch.no_grad():  # the same features, gathered at once
        state, X, Y = None, [], []
        for x, y, _ in batches:
            out, state = m.core(m.embed(x), state if state is not None else m.init_state(5))
            X.append(out.reshape(-1, 20))
            Y.append(y.reshape(-1))
        X = torch.cat([torch.cat(X), torch.ones(1400, 1)], 1).double()
        Y = torch.nn.functional.one_hot(torch.cat(Y), V).double()
        pen = torch.diag(torch.tensor([1e-3] * 20 + [0.0], dtype=torch.float64))
        W = torch.linalg.solve(X.T @ X / 1400 + pen, X.T @ Y / 1400)  # (21, V)
    s = float(m.head.bias.detach().double().norm() / W[20].norm())  # the calibrated temperature
    # the temperature minimises the cross-entropy of the ridge scores over the calibration slice (all
    # 1,400 steps: less than one chunk), and the note reports that minimum in bits
    y = Y.argmax(1)
    grid = torch.linspace(0.5, 60, 2000, dtype=torch.float64)
    ces = torch.stack([torch.nn.functional.cross_entropy(g * (X @ W), y) for g in grid])
    assert s == pytest.approx(float(grid[ces.argmin()]), abs=0.05) and f"temperature {s:.2f}" in note
    bits = re.search(r"([\d.]+) bits/token on the last 1,400 of them", note)
    assert bits and float(bits.group(1)) == pytest.approx(float(ces.min()) / math.log(2), abs=1.5e-3), note
    # XᵀX is summed in float32 chunks: the weights agree to float32's precision times the system's
    # condition, and the logits they give, which is what matters, to float32's
    fitted = torch.cat([m.head.weight.detach().T, m.head.bias.detach()[None]]).double()  # (21, V)
    torch.testing.assert_close(fitted, s * W, atol=2e-3 * float(s * W.abs().max()), rtol=0)
    torch.testing.assert_close(X @ fitted, s * (X @ W), atol=1e-4 * float(s * (X @ W).abs().max()), rtol=0)


def test_training_never_touches_the_reservoir_and_the_ridge_start_pays(tmp_path, corpus_file):
    from charrnn.data.corpus import prepare
    from charrnn.training.trainer import Trainer
    from charrnn.training.telemetry import ListSink, MessageEvent

    data = DataConfig(paths=(str(corpus_file),))
    corpus = prepare(data, tmp_path / "ck")
    tcfg = TrainConfig(seq_len=16, batch_size=4, steps=10, eval_every=10, eval_tokens=512, sample_chars=0, device="cpu")
    losses = {}
    for readout in ("ridge", "gradient"):
        torch.manual_seed(0)
        model = ModelConfig(cell="esn", layers=1, hidden=64, embed=8, options={"readout": readout})
        sink = ListSink()
        t = Trainer(model, data, tcfg, corpus, tmp_path / readout, sinks=[sink])
        frozen = {n: p.detach().clone() for n, p in t.model.named_parameters() if not p.requires_grad}
        head = t.model.head.weight.detach().clone()
        result = t.run()
        assert set(frozen) == {"embed.weight", "core.U.0", "core.W.0", "core.b.0"}
        for n, p in t.model.named_parameters():
            assert torch.equal(p, frozen[n]) if n in frozen else not torch.equal(p, head), n
        notes = [e.text for e in sink.of(MessageEvent)]
        assert any(n.startswith("ridge readout:") for n in notes) == (readout == "ridge")
        ck = checkpoint.load(tmp_path / readout / "last.pt")
        assert sorted(ck.frozen) == sorted(frozen)
        losses[readout] = result.final_val_loss
    assert losses["ridge"] < losses["gradient"] - 0.3 and losses["ridge"] < math.log(30)


def test_a_run_fits_its_readout_once_and_reports_its_reservoir(kind_run, runner, workdir, corpus_file):
    run = kind_run("esn", *KIND_ARGS["esn"][0])  # --spectral-radius 0.9 --leak 0.7, trained and resumed in conftest
    assert "ridge readout: " in run.trained.stderr
    assert "reservoir: spectral radius 0.9, leak 0.7, memory capacity " in run.trained.stderr
    assert "model: esn 1x32, embedding 16, dropout 0.1, leak 0.7, spectral-radius 0.9" in run.trained.stderr
    assert "ridge readout" not in run.resumed.stderr  # fitted once, not again on resuming
    r = runner.invoke(app, ["info", str(run.dir)])
    assert "spectral radius, layer 0  0.9" in r.stdout and "frozen: 1,568 reservoir weights and the embedding" in r.stdout
    facts = json.loads(runner.invoke(app, ["info", str(run.dir), "--json"]).stdout)
    assert facts["kind"]["spectral radius, layer 0"] == pytest.approx(0.9, abs=1e-4)
    mc = float(facts["kind"]["memory capacity"].split()[0])
    assert 0 < mc <= 32 and facts["kind"]["memory capacity"].startswith(f"{mc:.1f} of 32 units (Jaeger's")
    assert facts["trained_parameters"] == 32 * facts["vocab_size"] + facts["vocab_size"]
    r = runner.invoke(app, ["inspect", str(run.dir), "--text", "The cat sat on the mat.", "--gradients"])
    assert r.exit_code == 0 and "÷1000" in r.stdout, r.output  # a frozen reservoir still has a gradient through time
    one_line_error(runner.invoke(app, ["train", str(corpus_file), "--cell", "esn", "--density", "0"]), "--density must be in (0, 1]")
    one_line_error(runner.invoke(app, ["train", str(corpus_file), "--cell", "rnn", "--ridge", "1"]), "--ridge does not fit --cell rnn")
    no_traceback(r.output)


def test_memory_capacity_of_a_delay_line_and_of_a_reservoir():
    # a linear delay line of N units holds exactly the N - 1 inputs before the present one
    N = 24

    def delay(h, u):
        h = torch.cat([u[:, None], h[:, :-1]], 1)
        return h, h

    mc, each = memory_capacity(delay, torch.zeros(8, N, dtype=torch.float64), 8, 2 * N, 3000)
    assert mc == pytest.approx(N - 1, abs=0.01) and each[: N - 1].min() > 0.999 and each[N - 1 :].max() < 0.01
    # a reservoir never exceeds its units (Jaeger's bound); a quieter input keeps tanh near-linear and remembers more
    loud, quiet = tiny(H=40, layers=1), tiny(H=40, layers=1, input_scaling=0.05)
    assert math.isnan(loud.core.memory_capacity)
    assert 0 < loud.core.measure_memory() < quiet.core.measure_memory() <= 40
    mc = quiet.core.memory_capacity
    assert type(quiet.core).memory_of(quiet.state_dict(), quiet.cfg) == pytest.approx(mc, rel=1e-9)  # from a checkpoint's weights: the same figure
    assert type(quiet.core).describe(quiet.state_dict(), quiet.cfg)["memory capacity"].startswith(f"{mc:.1f} of 40 units")
