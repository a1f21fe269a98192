import math

import pytest
import torch

from charrnn.config import ModelConfig
from charrnn.models.lm import CharRNN

CELLS = ["rnn", "lstm", "gru"]


def tiny(cell, layers=2, V=13, dtype=torch.float32):
    return CharRNN(ModelConfig(cell=cell, layers=layers, hidden=24, embed=8, vocab_size=V, dropout=0.0)).to(dtype)


@pytest.mark.parametrize("cell", CELLS)
def test_initial_loss_is_log_vocab(cell):
    V = 40
    m = tiny(cell, V=V)
    idx = torch.randint(V, (8, 32))
    _, loss, _ = m(idx, targets=torch.randint(V, (8, 32)))
    assert abs(loss.item() - math.log(V)) < 0.02


@pytest.mark.parametrize("cell", CELLS)
def test_overfits_one_batch(cell):
    m = tiny(cell)
    idx = torch.randint(13, (4, 20))
    targets = torch.randint(13, (4, 20))
    opt = torch.optim.Adam(m.parameters(), lr=1e-2)
    for _ in range(300):
        _, loss, _ = m(idx, targets=targets)
        opt.zero_grad()
        loss.backward()
        opt.step()
    assert loss.item() < 0.05


@pytest.mark.parametrize("cell", CELLS)
def test_carried_state_equals_whole_prefix(cell):
    """Feeding a text step by step (and in chunks) with carried state gives the
    logits of one forward pass over all of it."""
    m = tiny(cell, dtype=torch.float64).eval()
    idx = torch.randint(13, (3, 30))
    whole, _, s_whole = m(idx)
    state, steps = None, []
    for t in range(30):
        logits, state = m.step(idx[:, t], state if state is not None else m.init_state(3))
        steps.append(logits)
    torch.testing.assert_close(torch.stack(steps, 1), whole, atol=1e-10, rtol=0)
    a, _, s = m(idx[:, :11])
    b, _, s = m(idx[:, 11:], s)
    torch.testing.assert_close(torch.cat([a, b], 1), whole, atol=1e-10, rtol=0)
    for x, y in zip(s, s_whole):
        torch.testing.assert_close(x, y, atol=1e-10, rtol=0)


@pytest.mark.parametrize("cell", CELLS)
def test_document_resets_match_zeroing_the_state(cell):
    """The packed-segment fused path equals stepping with the state zeroed at
    every document start; gradients flow through it."""
    m = tiny(cell, dtype=torch.float64).eval()
    idx = torch.randint(13, (3, 12))
    reset = torch.zeros(3, 12, dtype=torch.bool)
    reset[0, 4] = reset[1, 0] = reset[2, 3] = reset[2, 9] = True
    s0 = tuple(torch.randn_like(s) for s in m.init_state(3))
    logits, _, final = m(idx, s0, reset=reset)
    state, steps = s0, []
    for t in range(12):
        keep = (~reset[:, t]).double().view(1, 3, 1)
        logits_t, state = m.step(idx[:, t], tuple(s * keep for s in state))
        steps.append(logits_t)
    torch.testing.assert_close(torch.stack(steps, 1), logits, atol=1e-10, rtol=0)
    for x, y in zip(state, final):
        torch.testing.assert_close(x, y, atol=1e-10, rtol=0)
    m.train()
    _, loss, _ = m(idx, s0, targets=idx, reset=reset)
    loss.backward()
    assert all(p.grad is not None and torch.isfinite(p.grad).all() for p in m.parameters())


def test_state_dict_keys_are_pytorch_own():
    keys = set(tiny("lstm").state_dict())
    assert {"core.weight_ih_l0", "core.weight_hh_l1", "core.bias_ih_l1", "embed.weight", "head.weight"} <= keys
