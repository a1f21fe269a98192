"""The per-step path against the fused one, and the vanilla RNN against the book.

Parity: `CharRNN.trace` (cells.py, one step and one layer at a time) and the
fused `nn.RNN` / `nn.LSTM` / `nn.GRU` give the same logits, the same h and c at
every timestep and layer, and gates that explain the fused states through the
equations PyTorch documents; fp32 to 1e-5, fp64 to 1e-10, from a zero and a
random initial state, after an optimizer step and after a checkpoint round trip.

The textbook check: the forward pass and BPTT gradients of section 10.2.2
(eq. 10.17-10.28), written in numpy float64 from the equations alone, against
autograd on CharRNN.
"""

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from charrnn.training import checkpoint
from charrnn.config import ModelConfig
from charrnn.models.lm import CharRNN
from charrnn.inspect.stats import decay_per_step
from charrnn.inspect.trace import gradient_flow
from charrnn.data.tokenizer import CharTokenizer
from charrnn.tasks.state import LMState

CELLS = ["rnn", "lstm", "gru"]
ATOL = {torch.float32: 1e-5, torch.float64: 1e-10}
V, E, H = 11, 6, 12


def tiny(cell, layers=2, dtype=torch.float64, **kw):
    return CharRNN(ModelConfig(cell=cell, layers=layers, hidden=H, embed=E, vocab_size=V, **kw)).to(dtype).eval()


def close(a, b, atol):
    torch.testing.assert_close(a, b, atol=atol, rtol=0)


def start_state(m, B, nonzero):
    s = m.init_state(B)
    return tuple(torch.randn_like(x) * 0.8 for x in s) if nonzero else s


def documented_step(cell, x, h, c, p):
    """One step of the documented equations of torch.nn.RNN / LSTM / GRU, written
    from PyTorch's docs (not from cells.py): the names of the gates are checked
    against these."""
    W_i, W_h, b_i, b_h = p
    if cell == "rnn":
        a = x @ W_i.T + b_i + h @ W_h.T + b_h
        return {"a": a, "h": torch.tanh(a)}
    if cell == "lstm":
        Wii, Wif, Wig, Wio = W_i.chunk(4)
        Whi, Whf, Whg, Who = W_h.chunk(4)
        bii, bif, big, bio = b_i.chunk(4)
        bhi, bhf, bhg, bho = b_h.chunk(4)
        i = torch.sigmoid(x @ Wii.T + bii + h @ Whi.T + bhi)
        f = torch.sigmoid(x @ Wif.T + bif + h @ Whf.T + bhf)
        g = torch.tanh(x @ Wig.T + big + h @ Whg.T + bhg)
        o = torch.sigmoid(x @ Wio.T + bio + h @ Who.T + bho)
        c = f * c + i * g
        return {"input": i, "forget": f, "candidate": g, "output": o, "c": c, "h": o * torch.tanh(c)}
    Wir, Wiz, Win = W_i.chunk(3)
    Whr, Whz, Whn = W_h.chunk(3)
    bir, biz, bin_ = b_i.chunk(3)
    bhr, bhz, bhn = b_h.chunk(3)
    r = torch.sigmoid(x @ Wir.T + bir + h @ Whr.T + bhr)
    z = torch.sigmoid(x @ Wiz.T + biz + h @ Whz.T + bhz)
    n = torch.tanh(x @ Win.T + bin_ + r * (h @ Whn.T + bhn))
    return {"reset": r, "update": z, "new": n, "h": (1 - z) * n + z * h}


@torch.no_grad()
def assert_parity(m, idx, s0, atol):
    B, T = idx.shape
    L = m.cfg.layers
    logits, _, final = m(idx, s0)
    tr = m.trace(idx, s0)
    close(tr.logits, logits, atol)
    assert set(tr.signals) == set(m.kind.signal_names)
    for name, sig in tr.signals.items():
        assert sig.shape == (L, B, T, H), name
        assert len(tr.steps[name]) == L and len(tr.steps[name][0]) == T
    for got, want in zip(tr.state, final):
        close(got, want, atol)
    # Every timestep and every layer: the fused module's state after each prefix.
    fused = [m(idx[:, : t + 1], s0)[2] for t in range(T)]  # [t] -> state tuple of (L, B, H)
    x_emb = m.embed(idx)  # (B, T, E)
    for t in range(T):
        for k in range(L):
            for j, name in enumerate(m.kind.state):
                close(tr.signals[name][k, :, t], fused[t][j][k], atol)
            # the recorded gates are the ones that turn the fused state at t-1 into the fused state at t
            x = x_emb[:, t] if k == 0 else fused[t][0][k - 1]
            prev = s0 if t == 0 else fused[t - 1]
            h_prev = prev[0][k]
            c_prev = prev[1][k] if m.cfg.cell == "lstm" else None
            want = documented_step(m.cfg.cell, x, h_prev, c_prev, m.core.layer_params(k))
            for name, value in want.items():
                close(tr.signals[name][k, :, t], value, atol)


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64], ids=["fp32", "fp64"])
@pytest.mark.parametrize("nonzero", [False, True], ids=["zero-state", "random-state"])
@pytest.mark.parametrize("layers", [1, 2, 3])
@pytest.mark.parametrize("cell", CELLS)
def test_trace_matches_fused(cell, layers, nonzero, dtype):
    m = tiny(cell, layers, dtype)
    idx = torch.randint(V, (2, 7))
    assert_parity(m, idx, start_state(m, 2, nonzero), ATOL[dtype])


@pytest.mark.parametrize("cell", CELLS)
def test_parity_after_optimizer_steps_and_checkpoint_round_trip(cell, tmp_path):
    m = tiny(cell, 2, torch.float32)
    m.train()
    opt = torch.optim.AdamW(m.parameters(), lr=0.05)
    idx = torch.randint(V, (3, 10))
    before = {k: v.clone() for k, v in m.state_dict().items()}
    for _ in range(3):
        _, loss, _ = m(idx[:, :-1], targets=idx[:, 1:])
        opt.zero_grad()
        loss.backward()
        opt.step()
    m.eval()
    assert not torch.equal(before["core.weight_hh_l1"], m.state_dict()["core.weight_hh_l1"])
    s0 = start_state(m, 3, True)
    for dtype in (torch.float32, torch.float64):
        assert_parity(m.to(dtype), idx, tuple(s.to(dtype) for s in s0), ATOL[dtype])
    m.float()

    tok = CharTokenizer("abcdefghijk")
    assert tok.vocab_size == V
    checkpoint.save(tmp_path / "last.pt", checkpoint.Checkpoint(model_config=m.cfg, weights=m.state_dict(),
                                                                task=LMState(tokenizer=tok.to_state()), step=3))  # fmt: skip
    m2, tok2 = checkpoint.model_from(checkpoint.load(tmp_path / "last.pt"))
    assert tok2.vocab_size == V
    with torch.no_grad():
        torch.testing.assert_close(m2(idx, s0)[0], m(idx, s0)[0], atol=0, rtol=0)  # same weights, bit for bit
        close(m2.trace(idx, s0).logits, m(idx, s0)[0], ATOL[torch.float32])
    assert_parity(m2, idx, s0, ATOL[torch.float32])
    assert_parity(m2.double(), idx, tuple(s.double() for s in s0), ATOL[torch.float64])


@pytest.mark.parametrize("cell", CELLS)
def test_gradients_agree_through_both_paths(cell):
    """Backpropagating through the per-step path gives the fused path's gradients,
    so gradients taken from a trace are the model's own."""
    m = tiny(cell, 2)
    idx = torch.randint(V, (2, 8))
    s0 = start_state(m, 2, True)
    grads = []
    for run in (lambda: m(idx[:, :-1], s0)[0], lambda: m.trace(idx[:, :-1], s0).logits):
        m.zero_grad()
        F.cross_entropy(run().reshape(-1, V), idx[:, 1:].reshape(-1)).backward()
        grads.append({n: p.grad.clone() for n, p in m.named_parameters()})
    for n in grads[0]:
        close(grads[1][n], grads[0][n], 1e-10)


def test_trace_drops_out_between_layers_in_training_mode():
    m = tiny("lstm", 2, dropout=0.5)
    idx = torch.randint(V, (2, 6))
    ev = m.trace(idx)
    m.train()
    tr = m.trace(idx)
    close(tr.signals["h"][0], ev.signals["h"][0], 1e-12)  # layer 0 reads the embedding, never dropped
    assert not torch.allclose(tr.signals["h"][1], ev.signals["h"][1])


# ------------------------------------------------------------------ the book


def book_rnn(U, W, b, Vw, c, xs, ys, h0, weights):
    """Forward and BPTT for a(t) = b + W h(t-1) + U x(t), h(t) = tanh(a(t)),
    o(t) = c + V h(t), yhat(t) = softmax(o(t)), L = sum_t weights[t] L(t), in numpy."""
    T = len(xs)
    hs, yhats, L = [h0], [], 0.0
    for t in range(T):
        a = b + W @ hs[-1] + U @ xs[t]
        hs.append(np.tanh(a))
        o = c + Vw @ hs[-1]
        yhat = np.exp(o - o.max()) / np.exp(o - o.max()).sum()
        yhats.append(yhat)
        L += weights[t] * -np.log(yhat[ys[t]])
    h = hs[1:]  # h[t] is h(t) for t = 0..T-1; hs[t] is h(t-1)
    # dL/do(t) = yhat(t) - e_y(t)
    go = [weights[t] * (yhats[t] - np.eye(len(c))[ys[t]]) for t in range(T)]
    gh = [None] * T
    gh[T - 1] = Vw.T @ go[T - 1]  # dL/dh(tau) = V^T dL/do(tau)
    for t in range(T - 2, -1, -1):  # dL/dh(t) = W^T diag(1 - h(t+1)^2) dL/dh(t+1) + V^T dL/do(t)
        gh[t] = W.T @ ((1 - h[t + 1] ** 2) * gh[t + 1]) + Vw.T @ go[t]
    da = [(1 - h[t] ** 2) * gh[t] for t in range(T)]  # diag(1 - h(t)^2) dL/dh(t)
    return {
        "loss": L,
        "h": np.array(h),
        "dh": np.array(gh),
        "c": sum(go),  # dL/dc = sum_t dL/do(t)
        "b": sum(da),  # dL/db = sum_t diag(1 - h(t)^2) dL/dh(t)
        "V": sum(np.outer(go[t], h[t]) for t in range(T)),  # sum_t dL/do(t) h(t)^T
        "W": sum(np.outer(da[t], hs[t]) for t in range(T)),  # sum_t diag(1 - h(t)^2) dL/dh(t) h(t-1)^T
        "U": sum(np.outer(da[t], xs[t]) for t in range(T)),  # sum_t diag(1 - h(t)^2) dL/dh(t) x(t)^T
        "x": np.array([U.T @ da[t] for t in range(T)]),  # dL/dx(t), for the embedding rows
    }


def rnn_with_identity_embedding(V_=7, H_=5):
    """embed == vocab with an identity embedding: x(t) is the one-hot e_x(t), as in the book."""
    m = CharRNN(ModelConfig(cell="rnn", layers=1, hidden=H_, embed=V_, vocab_size=V_, dropout=0.0)).double()
    with torch.no_grad():
        m.embed.weight.copy_(torch.eye(V_, dtype=torch.float64))
        m.head.weight.normal_(0, 0.7)  # larger than the near-zero init, so every term matters
        m.head.bias.normal_(0, 0.3)
        m.core.weight_hh_l0.normal_(0, 0.6)
    return m


def book_params(m):
    c = m.core
    return [t.detach().numpy() for t in (c.weight_ih_l0, c.weight_hh_l0, c.bias_ih_l0 + c.bias_hh_l0, m.head.weight, m.head.bias)]


def test_textbook_bptt_for_the_vanilla_rnn():
    V_, H_, T = 7, 5, 9
    m = rnn_with_identity_embedding(V_, H_)
    idx = torch.randint(V_, (1, T + 1))
    x, y = idx[:, :-1], idx[:, 1:]
    h0 = torch.randn(1, 1, H_, dtype=torch.float64) * 0.5
    xs = np.eye(V_)[x[0].numpy()]
    book = book_rnn(*book_params(m), xs, y[0].numpy(), h0[0, 0].numpy(), np.ones(T))

    # autograd through the fused path: L = sum_t L(t)
    logits, _, _ = m(x, (h0,))
    loss = F.cross_entropy(logits[0], y[0], reduction="sum")
    loss.backward()
    c = m.core
    assert abs(loss.item() - book["loss"]) < 1e-10
    for name, grad in [("U", c.weight_ih_l0.grad), ("W", c.weight_hh_l0.grad), ("V", m.head.weight.grad), ("c", m.head.bias.grad)]:
        np.testing.assert_allclose(grad.numpy(), book[name], atol=1e-10, rtol=0, err_msg=name)
    # PyTorch keeps two biases; each one's gradient is the book's dL/db
    np.testing.assert_allclose(c.bias_ih_l0.grad.numpy(), book["b"], atol=1e-10, rtol=0)
    np.testing.assert_allclose(c.bias_hh_l0.grad.numpy(), book["b"], atol=1e-10, rtol=0)
    # the embedding row of each character collects dL/dx(t) of the steps that read it
    want = np.zeros((V_, V_))
    np.add.at(want, x[0].numpy(), book["x"])
    np.testing.assert_allclose(m.embed.weight.grad.numpy(), want, atol=1e-10, rtol=0)

    # and dL/dh(t), the recursion itself, through the per-step path's own tensors
    tr = m.trace(x, (h0,))
    np.testing.assert_allclose(tr.signals["h"][0, 0].detach().numpy(), book["h"], atol=1e-12, rtol=0)
    loss = F.cross_entropy(tr.logits[0], y[0], reduction="sum")
    dh = torch.autograd.grad(loss, tr.steps["h"][0])
    np.testing.assert_allclose(torch.stack(dh)[:, 0].numpy(), book["dh"], atol=1e-10, rtol=0)


def test_gradient_flow_is_the_book_gradient_of_the_last_loss():
    """probe.gradient_flow(...) = |dL_T/dh(t)| with L_T the loss of the last
    prediction alone: the book's recursion with dL/do(t) = 0 for t < T."""
    V_, H_ = 7, 5
    m = rnn_with_identity_embedding(V_, H_)
    tok = CharTokenizer("abcdefg")
    text = "abacabadgfecab"
    ids = np.array(tok.encode(text))
    T = len(ids) - 1
    w = np.zeros(T)
    w[-1] = 1.0
    book = book_rnn(*book_params(m), np.eye(V_)[ids[:-1]], ids[1:], np.zeros(H_), w)
    flow = gradient_flow(m, tok, text)
    assert set(flow) == {"h"} and flow["h"].shape == (1, T)
    np.testing.assert_allclose(flow["h"][0], np.linalg.norm(book["dh"], axis=1), rtol=1e-5, atol=1e-12)


def test_gradient_flow_of_the_top_layer_matches_the_fused_path():
    """For every cell: |dL_T/dh_t| of the top layer from the trace equals the
    gradient of the fused path's L_T with respect to the state it starts from at t."""
    tok = CharTokenizer("abcdefghijk")
    text = "abcabkdjeifhgaa"
    ids = torch.tensor([tok.encode(text)])
    T = ids.shape[1] - 1
    for cell in CELLS:
        m = tiny(cell, 2)
        flow = gradient_flow(m, tok, text)["h"]  # (L, T)
        assert flow.shape == (2, T)
        want = []
        for t in range(T):
            with torch.no_grad():
                state = m(ids[:, : t + 1])[2]  # the fused state after reading token t
            state = tuple(s.clone().requires_grad_(True) for s in state)
            if t == T - 1:
                logits = m.head(state[0][-1])  # the loss reads the top h at its own step
            else:
                logits = m(ids[:, t + 1 : T], state)[0][:, -1]
            loss = F.cross_entropy(logits, ids[:, T])
            (g,) = torch.autograd.grad(loss, state[0])
            want.append(float(g[-1].norm()))  # the top layer: its state feeds nothing else at step t
        np.testing.assert_allclose(flow[-1], want, rtol=1e-5, atol=1e-12, err_msg=cell)


def test_lstm_and_gru_gradients_outlive_the_vanilla_rnns():
    """Section 10.7 on freshly initialised models: 40 steps back, the RNN's gradient
    has all but vanished; the gated cells keep more of it, and an LSTM whose forget
    gates start open (bias 1, as section 10.10.1 recommends) keeps orders of magnitude more."""
    tok = CharTokenizer("abcdefghijklmnopqrstuvwxyz .")
    text = ("the quick brown fox jumps over the lazy dog. " * 2)[:60]
    back = 40
    for seed in range(3):
        flows = {}
        for cell in CELLS:
            torch.manual_seed(seed)
            m = CharRNN(ModelConfig(cell=cell, layers=1, hidden=32, embed=16, vocab_size=tok.vocab_size))
            flows[cell] = gradient_flow(m, tok, text)["h"][0][::-1]  # by distance T - t
            if cell == "lstm":
                with torch.no_grad():
                    m.core.bias_ih_l0[32:64] += 1.0  # forget-gate rows: i, f, g, o
                flows["lstm, forget bias 1"] = gradient_flow(m, tok, text)["h"][0][::-1]
        at = {k: float(v[back]) for k, v in flows.items()}
        assert at["lstm"] > 5 * at["rnn"] and at["gru"] > 5 * at["rnn"], (seed, at)
        assert at["lstm, forget bias 1"] > 1e3 * at["rnn"], (seed, at)
        rates = {k: decay_per_step(v[::-1]) for k, v in flows.items()}
        assert rates["rnn"] < rates["gru"] < 1 and rates["rnn"] < rates["lstm"] < rates["lstm, forget bias 1"] < 1, rates


def test_the_tui_probe_is_activations_and_gradient_flow_from_one_pass():
    """trace.probe (one traced pass under autograd, the TUI's frame) gives what
    activations() and gradient_flow() give separately, for every cell."""
    from charrnn.inspect.trace import activations, probe

    tok = CharTokenizer("abcdefghijk")
    text = "abcabkdjeifhgaa"
    for cell in CELLS:
        m = tiny(cell, 2)
        p = probe(m, tok, text, step=7)
        acts, flow = activations(m, tok, text), gradient_flow(m, tok, text)
        assert p.step == 7 and set(p.grad_flow) == set(flow) and set(p.acts.signals) == set(acts.signals)
        for n in flow:
            np.testing.assert_allclose(p.grad_flow[n], flow[n], rtol=1e-6, atol=1e-12, err_msg=f"{cell} {n}")
        for n in acts.signals:
            np.testing.assert_allclose(p.acts.signals[n], acts.signals[n], rtol=1e-6, atol=1e-12, err_msg=f"{cell} {n}")
        np.testing.assert_allclose(p.acts.probs, acts.probs, rtol=1e-6, atol=1e-12)
