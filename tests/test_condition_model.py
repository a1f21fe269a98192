"""The conditioned model and the end models: one set of weights, two paths, held equal.

The training path (`forward` / `nats`: the fused module or the generic unrolled
core over a whole batch, documents restarting inside it from h(0) of their
label) against the per-step path (`start_state` + `step_top`, one token at a
time, as sampling runs it), in fp64 to 1e-10: logits, final states, and every
position's nats, which the per-step side computes from the chapter's equations
(softmax, Bernoulli halt, categorical length) by hand.
"""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F

from charrnn.config import ModelConfig
from charrnn.models import ends as ends_mod
from charrnn.models import registry
from charrnn.models.lm import CharRNN

V, E, H, C = 9, 5, 7, 3
EOS = V - 1
ATOL = 1e-10


def model(cell, condition="both", length="eos", labels=C, layers=2, fused=True, seed=0):
    torch.manual_seed(seed)
    opts = {"length_model": length}
    if labels:
        opts.update(labels=labels, condition=condition, label_embed=4)
    m = CharRNN(ModelConfig(cell=cell, layers=layers, hidden=H, embed=E, vocab_size=V, dropout=0.0, options=opts))
    if m.ends is not None:
        m.ends.setup(EOS, halt_weight=6.0)
    for p in m.parameters():  # nonzero everywhere, so every part shows in the outputs
        torch.nn.init.normal_(p, std=0.4)
    if hasattr(m.core, "use_fused"):
        m.core.use_fused = fused
    return m.double().eval()


def batch(B=3, T=11, seed=1):
    """Ids with documents starting inside rows (EOS inputs), the label of each step's
    document, and the remaining length of each step's document."""
    g = torch.Generator().manual_seed(seed)
    idx = torch.randint(EOS, (B, T), generator=g)
    idx[0, 3] = idx[0, 8] = idx[1, 0] = idx[2, 5] = EOS
    targets = torch.cat([idx[:, 1:], torch.randint(EOS, (B, 1), generator=g)], 1)
    targets[0, 7] = targets[2, 4] = EOS  # documents ending just before the next start
    labels = torch.randint(C + 1, (B, T), generator=g)  # C is "no label"
    remaining = torch.randint(0, 90, (B, T), generator=g)
    return idx, targets, labels, remaining


def per_step(m, idx, targets, labels, remaining, reset, s0):
    """Logits, nats and final state token by token through step_top, restarting each
    row from start_state(label) at its resets; the nats from the equations."""
    B, T = idx.shape
    logits = torch.zeros(B, T, V, dtype=torch.float64)
    nats = torch.zeros(B, T, dtype=torch.float64)
    finals = []
    for b in range(B):
        layers = m.split_state(tuple(s[:, b : b + 1] for s in s0))
        for t in range(T):
            lab = labels[b, t : t + 1]
            if reset[b, t]:
                layers = m.split_state(m.start_state(1, lab))
            rem = remaining[b, t : t + 1]
            top, layers = m.step_top(idx[b, t : t + 1], layers, lab, rem)
            z = m.head(top)[0]
            if m.ends is not None:
                z = z.clone()
                z[EOS] = -math.inf
            logits[b, t] = z
            y = int(targets[b, t])
            if m.ends is None:
                nats[b, t] = -F.log_softmax(z, -1)[y]
                continue
            n = 0.0 if y == EOS else -F.log_softmax(z, -1)[y]
            if m.ends.kind == "halt" and idx[b, t] != EOS:
                p = torch.sigmoid(m.ends.halt(top)[0, 0] - m.ends.log_w)  # calibrated: log 6 taken back off
                n = n - (torch.log(p) if y == EOS else torch.log1p(-p))
            if m.ends.kind == "length" and idx[b, t] == EOS:
                tau = int(rem)
                logit = m.ends.prior + (m.ends.by_label(lab)[0] if m.ends.by_label is not None else 0)
                k = int(ends_mod.bin_of(torch.tensor(tau)))
                n = n - (F.log_softmax(logit, -1)[k] - math.log(ends_mod.WIDTHS[k]))
            nats[b, t] = n
        finals.append(m.join_state(layers))
    final = tuple(torch.cat([f[j] for f in finals], 1) for j in range(len(finals[0])))
    return logits, nats, final


CASES = [("input", "eos"), ("init", "eos"), ("both", "eos"), ("both", "halt"), ("both", "length"), ("input", "length"),
         (None, "halt"), (None, "length")]  # fmt: skip


@pytest.mark.parametrize("condition,length", CASES, ids=[f"{c}-{k}" for c, k in CASES])
@pytest.mark.parametrize("fused", [True, False], ids=["fused", "unrolled"])
@pytest.mark.parametrize("cell", ["rnn", "lstm", "gru"])
def test_training_path_equals_per_step_path(cell, fused, condition, length):
    m = model(cell, condition or "both", length, labels=C if condition else 0, fused=fused)
    idx, targets, labels, remaining = batch()
    reset = idx == EOS
    s0 = tuple(torch.randn_like(s) * 0.5 for s in m.init_state(idx.shape[0]))
    with torch.no_grad():
        logits, loss, final = m(idx, s0, targets, reset, labels, remaining)
        nats, final2 = m.nats(idx, targets, s0, reset, labels, remaining)
        want_logits, want_nats, want_final = per_step(m, idx, targets, labels, remaining, reset, s0)
    torch.testing.assert_close(logits, want_logits, atol=ATOL, rtol=0)
    torch.testing.assert_close(nats, want_nats, atol=ATOL, rtol=0)
    for got, got2, want in zip(final, final2, want_final):
        torch.testing.assert_close(got, want, atol=ATOL, rtol=0)
        torch.testing.assert_close(got2, want, atol=ATOL, rtol=0)
    if length == "eos":
        torch.testing.assert_close(loss.double(), nats.mean(), atol=1e-6, rtol=0)  # the plain loss is summed in fp32
    elif length == "length":
        torch.testing.assert_close(loss, nats.mean(), atol=ATOL, rtol=0)  # nothing weighted: the same sum
    else:
        assert float(loss) > float(nats.mean())  # the halt positives weighted 6x in training


def test_a_generic_kind_is_conditioned_around_its_core():
    """A kind with no fused module (the toy of test_kinds, registered here) gets the
    label input, h(0) and the end model from the model around it."""
    from test_kinds import TOY

    registry.register(TOY)
    try:
        m = model("toy", "both", "length")
        idx, targets, labels, remaining = batch()
        reset = idx == EOS
        s0 = m.init_state(idx.shape[0])
        with torch.no_grad():
            logits, _, final = m(idx, s0, targets, reset, labels, remaining)
            nats, _ = m.nats(idx, targets, s0, reset, labels, remaining)
            want_logits, want_nats, want_final = per_step(m, idx, targets, labels, remaining, reset, s0)
        torch.testing.assert_close(logits, want_logits, atol=ATOL, rtol=0)
        torch.testing.assert_close(nats, want_nats, atol=ATOL, rtol=0)
        torch.testing.assert_close(final[0], want_final[0], atol=ATOL, rtol=0)
    finally:
        del registry.KINDS["toy"]


@pytest.mark.parametrize("cell", ["lstm", "gru"])
def test_trace_follows_the_label_and_reports_p_halt(cell):
    """trace() from start_state(label) gives the per-step path's logits, and p(halt)."""
    m = model(cell, "both", "halt")
    idx = torch.tensor([[EOS, 1, 2, 3, 4, 5]])
    lab = torch.full_like(idx, 2)
    with torch.no_grad():
        tr = m.trace(idx, m.start_state(1, lab[:, 0]), lab)
        logits, _, _ = m(idx, None, reset=idx == EOS, labels=lab)
    torch.testing.assert_close(tr.logits, logits, atol=ATOL, rtol=0)
    assert tr.halt is not None and tr.halt.shape == (1, 6)
    with torch.no_grad():
        other = m.trace(idx, m.start_state(1, torch.tensor([0])), torch.zeros_like(idx))
    assert not torch.allclose(other.logits, tr.logits)  # the label matters


def test_the_label_moves_both_the_input_and_the_start_state():
    idx = torch.tensor([[EOS, 1, 2, 3]])
    for condition in ("input", "init"):
        m = model("lstm", condition)
        with torch.no_grad():
            a = m(idx, None, reset=idx == EOS, labels=torch.zeros_like(idx))[0]
            b = m(idx, None, reset=idx == EOS, labels=torch.ones_like(idx))[0]
            none = m(idx, None, reset=idx == EOS)[0]  # no labels given: the "no label" row
            c = m(idx, None, reset=idx == EOS, labels=torch.full_like(idx, C))[0]
        assert not torch.allclose(a, b), condition
        torch.testing.assert_close(none, c, atol=0, rtol=0)
    assert model("lstm", "input").context.init is None
    assert model("lstm", "init").context.input_size == 0


def test_length_bins_cover_every_length_once():
    lows, widths = ends_mod.LOWS, ends_mod.WIDTHS
    assert list(lows[:65]) == list(range(65)) and (widths[:65] == 1).all()
    n = torch.arange(0, 5000)
    b = ends_mod.bin_of(n)
    assert (torch.as_tensor(lows)[b] <= n).all() and (n < torch.as_tensor(lows + widths)[b]).all()
    assert int(ends_mod.bin_of(torch.tensor(10**9))) == ends_mod.BINS - 1


def test_draw_length_respects_the_prime():
    m = model("gru", None, "length", labels=0)
    with torch.no_grad():
        m.ends.prior.fill_(-30.0)
        m.ends.prior[ends_mod.bin_of(torch.tensor(7))] = 30.0  # almost surely 7
    g = torch.Generator().manual_seed(0)
    assert {m.ends.draw_length(None, g) for _ in range(20)} == {7}
    assert all(m.ends.draw_length(None, g, at_least=9) >= 9 for _ in range(20))


def test_plain_models_keep_their_parameter_names():
    m = CharRNN(ModelConfig(cell="lstm", layers=1, hidden=H, embed=E, vocab_size=V))
    assert m.context is None and m.ends is None
    assert not any(k.startswith(("context", "ends")) for k in m.state_dict())


@pytest.mark.parametrize("path", ["spans", "steps", "packed"])
def test_every_document_path_restarts_from_the_labels_h0(monkeypatch, path):
    """documents.py's three plans for windows with document starts inside (the hand-written
    scan restarts from zeros only, so with h(0) that plan hands over to packed sequences)."""
    from charrnn.models import documents

    monkeypatch.setattr(documents, "PATH", path)
    assert_restarts_from_h0(model("lstm", "init", "eos"))


@pytest.mark.parametrize("cell", ["leaky", "esn"])
def test_the_chapters_other_cells_restart_from_the_labels_h0(cell):
    assert_restarts_from_h0(model(cell, "both", "eos", layers=1))


def assert_restarts_from_h0(m):
    """The training path over a batch with documents starting inside rows equals the per-step path."""
    idx, targets, labels, remaining = batch()
    reset = idx == EOS
    s0 = tuple(torch.randn_like(s) * 0.5 for s in m.init_state(idx.shape[0]))
    with torch.no_grad():
        logits, _, final = m(idx, s0, targets, reset, labels, remaining)
        want_logits, _, want_final = per_step(m, idx, targets, labels, remaining, reset, s0)
    torch.testing.assert_close(logits, want_logits, atol=ATOL, rtol=0)
    for got, want in zip(final, want_final):
        torch.testing.assert_close(got, want, atol=ATOL, rtol=0)


def test_a_jordan_net_takes_its_label_as_an_input_only():
    from charrnn.errors import ConfigError

    with pytest.raises(ConfigError, match="--condition input"):
        model("jordan", "both", "eos", layers=1)
    assert model("jordan", "input", "eos", layers=1).context is not None
