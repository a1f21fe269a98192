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
from charrnn.models.readout import BIAS_PENALTY, calibrate, fit_closed, fit_ridge, lda, gram_upper, memory_capacity, solve, symmetric, temperature
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
    m = tiny(H=20, layers=1, dtype=torch.float32, leak=1.0)  # fast units alone: a well-conditioned XᵀX
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
    # the head is s (X W) + d: a temperature and a bias per class minimising the cross-entropy over
    # the calibration slice (all 1,400 steps: less than one chunk), found here by L-BFGS from scratch
    y = Y.argmax(1)
    s = float(re.search(r"temperature ([\d.]+) and a bias per class", note).group(1))
    fitted = torch.cat([m.head.weight.detach().T, m.head.bias.detach()[None]]).double()  # (21, V)
    d = fitted[20] - s * W[20]
    torch.testing.assert_close(fitted[:20], s * W[:20], atol=2e-3 * float(s * W.abs().max()), rtol=0)
    theta = torch.tensor([1.0] + [0.0] * V, dtype=torch.float64, requires_grad=True)
    opt = torch.optim.LBFGS([theta], max_iter=500, tolerance_grad=1e-10, line_search_fn="strong_wolfe")
    S = X @ W

    def objective():
        opt.zero_grad()
        loss = torch.nn.functional.cross_entropy(theta[0] * S + theta[1:], y) + 0.5 * BIAS_PENALTY * theta[1:].square().sum()
        loss.backward()
        return loss

    best = float(opt.step(objective).detach())
    theta = theta.detach()
    assert s == pytest.approx(float(theta[0]), rel=0.02) and torch.allclose(d, theta[1:], atol=0.05 * (1 + float(d.abs().max())))
    ce = torch.nn.functional.cross_entropy(S * s + d, y)
    assert float(ce) + 0.5 * BIAS_PENALTY * float(d @ d) <= best + 1e-5
    bits = re.search(r"([\d.]+) bits/token on the last 1,400 of them", note)
    assert bits and float(bits.group(1)) == pytest.approx(float(ce) / math.log(2), abs=1.5e-3), note
    # XᵀX is summed in float32 chunks: the logits agree to float32's precision
    torch.testing.assert_close(X @ fitted, s * S + d, atol=5e-4 * float((s * S + d).abs().max()), rtol=0)


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
    assert " readout: " not in run.resumed.stderr  # fitted once, not again on resuming
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


def test_leak_rates_split_the_units_and_each_follows_the_book():
    """--leak 1,0.05: half the units fast, half slow, each by h = (1-a) h + a tanh(.)."""
    assert tiny(H=4, layers=1).core.leak.tolist() == [1.0] * 4  # the default: every unit fast
    m = tiny(H=10, layers=1, leak=(1.0, 0.05))
    assert m.core.options.leak == (1.0, 0.05)
    assert m.core.leak.tolist() == [1.0] * 5 + [0.05] * 5
    a = tiny(H=7, layers=1, leak=(1.0, 0.5, 0.2)).core.leak.tolist()
    assert a == [1.0, 1.0, 1.0, 0.5, 0.5, 0.2, 0.2]
    idx = torch.randint(V, (2, 6))
    with torch.no_grad():
        logits = m(idx)[0]
        U, W, b, _ = m.core.layer_params(0)
        h, x, rate = torch.zeros(2, 10, dtype=torch.float64), m.embed(idx), torch.tensor([1.0] * 5 + [0.05] * 5, dtype=torch.float64)
        out = []
        for t in range(6):
            h = (1 - rate) * h + rate * torch.tanh(b + h @ W.T + x[:, t] @ U.T)
            out.append(h)
        torch.testing.assert_close(m.head(torch.stack(out, 1)), logits, atol=1e-10, rtol=0)
    # a config written before several rates (leak = 1.0) still reads, as one rate
    assert ModelConfig(cell="esn", options={"leak": 0.7}).cell_options().leak == (0.7,)
    with pytest.raises(Exception, match=r"--leak takes rates in \(0, 1\]"):
        ModelConfig(cell="esn", options={"leak": (1.0, 0.0)}).cell_options()


def test_lda_is_the_gaussian_posterior_from_the_ridge_sums():
    torch.manual_seed(3)
    n, F, C = 900, 5, 4
    y = torch.randint(C, (n,))
    X = torch.randn(n, F, dtype=torch.float64) + 2.0 * torch.randn(C, F, dtype=torch.float64)[y]
    X1 = torch.cat([X, torch.ones(n, 1, dtype=torch.float64)], 1)
    Y = torch.nn.functional.one_hot(y, C).double()
    W, c = lda(X1.T @ X1, (X1.T @ Y).T, n, 1e-9)
    mu = torch.stack([X[y == k].mean(0) for k in range(C)])
    cov = sum((X[y == k] - mu[k]).T @ (X[y == k] - mu[k]) for k in range(C)) / n
    log_prior = torch.log((Y.sum(0) + 1) / (n + C))
    # the posterior of class-conditional Gaussians with a shared covariance, evaluated directly
    dens = torch.stack([torch.distributions.MultivariateNormal(mu[k], cov).log_prob(X) for k in range(C)], 1) + log_prior
    torch.testing.assert_close(torch.log_softmax(X @ W + c, 1), torch.log_softmax(dens, 1), atol=1e-6, rtol=1e-6)


def test_the_closed_readout_keeps_the_better_of_ridge_and_lda():
    m = tiny(H=16, layers=1, dtype=torch.float32)
    batches = [(torch.randint(V, (4, 9)), torch.randint(V, (4, 9)), None) for _ in range(30)]
    note = fit_closed(m, iter(batches), 1e-3, SUM, lambda: False)
    got = re.search(r"^(ridge|lda) readout: .*?([\d.]+) bits/token on the last .* \(ridge ([\d.]+), lda ([\d.]+): (ridge|lda) kept\)$", note)
    assert got, note
    kept, bits, ridge, lda_ = got.group(1), float(got.group(2)), float(got.group(3)), float(got.group(4))
    assert kept == got.group(5) == ("ridge" if ridge <= lda_ else "lda") and bits == min(ridge, lda_)
    for which in ("ridge", "lda"):
        assert fit_closed(m, iter(batches), 1e-3, SUM, lambda: False, which).startswith(f"{which} readout: ")


def test_the_readout_is_scored_in_fp32_under_bf16_autocast():
    """A closed-form readout's weights are large and cancel, and it reads small differences
    between states: in bf16 its logits would be noise, so the reservoir and the readout run in fp32."""
    m = tiny(H=40, layers=1, dtype=torch.float32, leak=(1.0, 0.05))
    with torch.no_grad():
        m.head.weight.mul_(1e3)  # the scale of an LDA readout over slow units
    idx = torch.randint(V, (2, 12))
    with torch.no_grad():
        exact = m(idx)[0]
        with torch.autocast("cpu", dtype=torch.bfloat16):
            out, _ = m.outputs(idx)
            fast = m(idx)[0]
        assert fast.dtype == out.dtype == torch.float32
        torch.testing.assert_close(fast, exact, atol=1e-5 * float(exact.abs().max()), rtol=0)  # the reservoir and the readout in fp32
    assert type(m.head).__name__ == "ExactReadout" and set(m.state_dict()) >= {"head.weight", "head.bias"}


def test_the_calibration_slice_is_a_full_chunk_not_a_short_remainder(monkeypatch):
    from charrnn.models import readout

    monkeypatch.setattr(readout, "CHUNK", 100)  # 40 batches of 35 steps: chunks of 105, a remainder of 35
    m = tiny(H=8, layers=1, dtype=torch.float32)
    batches = [(torch.randint(V, (5, 7)), torch.randint(V, (5, 7)), None) for _ in range(40)]
    assert "bits/token on the last 100 of them" in fit_closed(m, iter(batches), 1e-3, SUM, lambda: False, "ridge")
