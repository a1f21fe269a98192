"""The document path (models/documents.py, models/scan.py): every plan is exact, and
every precision runs on it (issue 16: CUDA crashed under fp16/bf16 on a dtype mix)."""

import pytest
import torch

from charrnn.config import DataConfig, ModelConfig, TrainConfig
from charrnn.data.corpus import prepare
from charrnn.models import documents
from charrnn.models.lm import CharRNN
from charrnn.training.trainer import Trainer

CELLS = ["rnn", "lstm", "gru"]


def tiny(cell, dtype=torch.float64):
    return CharRNN(ModelConfig(cell=cell, layers=2, hidden=24, embed=8, vocab_size=13, dropout=0.0)).to(dtype)


def batch(B=4, T=14, seed=0):
    g = torch.Generator().manual_seed(seed)
    idx = torch.randint(13, (B, T), generator=g)
    reset = torch.rand(B, T, generator=g) < 0.15
    reset[0, 0] = reset[1, 5] = reset[2, 5] = reset[3, T - 1] = True  # t = 0, a shared column, the last step
    return idx, torch.roll(idx, -1, 1), reset


def run(m, path, idx, y, reset, s0):
    """logits, final state and gradients of one training step, `path` forced (None: the generic unrolled loop)."""
    m.zero_grad()
    m.core.use_fused = path is not None
    documents.PATH = path
    try:
        logits, loss, final = m(idx, s0, y, reset)
        loss.backward()
    finally:
        documents.PATH = None
        m.core.use_fused = True
    return logits.detach(), tuple(s.detach() for s in final), [p.grad.clone() for p in m.parameters()]


@pytest.mark.parametrize("cell", CELLS)
@pytest.mark.parametrize("path", documents.PATHS)
def test_every_path_equals_stepping_with_the_state_zeroed(cell, path):
    """Outputs, final state and every gradient equal the unrolled loop (state times keep(t)), in fp64."""
    torch.manual_seed(0)
    m = tiny(cell).train()
    idx, y, reset = batch()
    s0 = tuple(torch.randn_like(s) for s in m.init_state(4))
    want = run(m, None, idx, y, reset, s0)
    got = run(m, path, idx, y, reset, s0)
    torch.testing.assert_close(got[0], want[0], atol=1e-10, rtol=0)
    for a, b in zip(got[1], want[1]):
        torch.testing.assert_close(a, b, atol=1e-10, rtol=0)
    for a, b in zip(got[2], want[2]):
        torch.testing.assert_close(a, b, atol=1e-10, rtol=0)


def test_choice_depends_on_the_count_of_columns_with_a_start():
    cpu = torch.device("cpu")
    reset = torch.zeros(2, 32, dtype=torch.bool)
    reset[0, [3, 9]] = True
    assert documents.choose(reset, cpu, True) == ("spans", [3, 9])
    reset[1, 1:] = True
    assert documents.choose(reset, cpu, True)[0] == "steps"
    assert documents.choose(reset, torch.device("cuda"), True)[0] == "packed"
    three = torch.zeros(2, 32, dtype=torch.bool)
    three[0, [2, 4, 6]] = True
    assert documents.choose(three, cpu, True)[0] == "spans"
    with torch.autocast("cpu", dtype=torch.bfloat16):  # the scan on bf16 buffers pays sooner there (RECORDED)
        assert documents.choose(three, cpu, True)[0] == "steps"


def test_the_thresholds_are_the_recorded_crossing_points():
    """choose() reads documents.RECORDED (a bench --costs run) per device, precision and
    gradient: spans while they cost no more than the scan, up to the first count where they do."""
    assert documents.crossing({1: (5.0, 9.0), 2: (6.0, 9.0), 4: (9.5, 9.0), 8: (8.0, 9.0)}) == 2
    assert documents.crossing({1: (10.0, 9.0)}) == 0
    for key, costs in documents.RECORDED.items():
        assert documents.SPANS_UP_TO[key] == documents.crossing(costs)
    cpu = torch.device("cpu")
    for grad in (True, False):
        for amp in (None, torch.bfloat16):
            up_to = documents.SPANS_UP_TO[("cpu", "bf16" if amp else "fp32", grad)]
            reset = torch.zeros(2, 32, dtype=torch.bool)
            with torch.autocast("cpu", dtype=torch.bfloat16, enabled=amp is not None):
                reset[0, 1 : up_to + 1] = True
                assert documents.choose(reset, cpu, grad)[0] == "spans"
                reset[1, up_to + 1] = True
                assert documents.choose(reset, cpu, grad)[0] == "steps"


@pytest.mark.parametrize("cell", CELLS)
@pytest.mark.parametrize("path", documents.PATHS)
@pytest.mark.parametrize("amp", [None, torch.bfloat16, torch.float16])
def test_every_precision_on_every_path(cell, path, amp):
    """Under autocast (CPU here; the same code runs under CUDA's), with a carried state in
    half precision as a fused GPU module returns it and fp32 inputs, each path runs
    forward and backward, gives finite gradients and stays near the fp32 result."""
    torch.manual_seed(0)
    m = tiny(cell, torch.float32).train()
    idx, y, reset = batch()
    s0 = tuple(0.5 * torch.randn_like(s) for s in m.init_state(4))
    want = run(m, None, idx, y, reset, s0)
    half = tuple(s.to(amp or torch.float32) for s in s0)  # the mix that crashed on CUDA
    with torch.autocast("cpu", dtype=amp or torch.bfloat16, enabled=amp is not None):
        logits, final, grads = run(m, path, idx, y, reset, half)
    tol = 0.1 if amp is not None else 1e-5
    torch.testing.assert_close(logits.float(), want[0], atol=tol, rtol=tol)
    assert all(torch.isfinite(g).all() for g in grads)
    assert [s.shape for s in final] == [s.shape for s in s0]
    with torch.autocast("cpu", dtype=amp or torch.bfloat16, enabled=amp is not None):  # the next batch carries it
        m(idx, final, y, reset)[1].backward()


@pytest.mark.parametrize("precision", ["fp32", "bf16", "auto"])
def test_training_on_documents_in_every_precision(tmp_path, precision):
    """The Trainer on a corpus of documents (`--doc-sep %`) in each precision CPU offers
    (fp16 is refused on a CPU; its arithmetic is covered above)."""
    p = tmp_path / "f.txt"
    p.write_text("\n%\n".join(f"Fortune {i}: be {'kind' if i % 2 else 'brave'}." for i in range(200)) + "\n")
    data = DataConfig(paths=(str(p),), doc_sep="%")
    corpus = prepare(data, tmp_path / "ck")
    cfg = TrainConfig(seq_len=16, batch_size=4, steps=12, eval_every=6, eval_tokens=256, sample_chars=10, warmup=2,
                      precision=precision, device="cpu")  # fmt: skip
    r = Trainer(ModelConfig(cell="lstm", layers=2, hidden=16, embed=8), data, cfg, corpus, tmp_path / "run").run()
    assert r.step == 12 and r.final_val_loss == r.final_val_loss  # finite, not NaN


@pytest.mark.parametrize("cell", CELLS)
def test_the_scan_in_fp32_equals_stepping(cell):
    """In fp32 the scan takes MKL's packed products where PyTorch has them (fp64 above takes
    plain ones): outputs, final state and every gradient still equal the unrolled loop."""
    torch.manual_seed(0)
    m = tiny(cell, torch.float32).train()
    idx, y, reset = batch(B=5, T=20)
    s0 = tuple(torch.randn_like(s) for s in m.init_state(5))
    want = run(m, None, idx, y, reset, s0)
    got = run(m, "steps", idx, y, reset, s0)
    for a, b in zip([got[0], *got[1], *got[2]], [want[0], *want[1], *want[2]]):
        torch.testing.assert_close(a, b, atol=2e-5, rtol=1e-4)


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_a_packed_product_is_the_product(dtype):
    from charrnn.models.scan import times_transposed

    g = torch.Generator().manual_seed(0)
    M, x, b = (torch.randn(*shape, generator=g, dtype=dtype) for shape in [(40, 24), (7, 24), (40,)])
    mul = times_transposed(M, 7)
    tol = dict(atol=1e-5, rtol=1e-5) if dtype == torch.float32 else dict(atol=1e-12, rtol=0)
    torch.testing.assert_close(mul(x), x @ M.t(), **tol)
    torch.testing.assert_close(mul(x, b), x @ M.t() + b, **tol)
    torch.testing.assert_close(mul(x[:3]), x[:3] @ M.t(), **tol)  # fewer rows than it was packed for
    if dtype == torch.float32:  # in bf16 (the scan under bf16 autocast): bf16's rounding, the result in bf16
        bf = times_transposed(M, 7, torch.bfloat16)
        assert bf(x).dtype == torch.bfloat16
        torch.testing.assert_close(bf(x, b).float(), x @ M.t() + b, atol=0.05 * float((x @ M.t()).abs().max()), rtol=0)


@pytest.mark.parametrize("cell", CELLS)
def test_the_scan_under_bf16_takes_bf16_products_as_close_as_the_fused_module(cell):
    """Under bf16 autocast the scan's matrix products run in bf16, as the fused module's do
    (documents.product_dtype), its gates and cell state in fp32 (the LSTM's on bf16 buffers,
    scan_bf16.py). Outputs, final state and every gradient stay within 2% of each tensor's
    largest magnitude of the fp32 unrolled loop (measured for the LSTM: at most 0.5% for
    outputs and states, 1.5% for gradients, where the fused module in bf16 on the same batch,
    on spans, is off by 0.4% and 1.5%), and they differ from the fp32 scan's: the products are bf16."""
    torch.manual_seed(0)
    m = tiny(cell, torch.float32).train()
    idx, y, reset = batch(B=5, T=20)
    s0 = tuple(0.5 * torch.randn_like(s) for s in m.init_state(5))
    want = run(m, None, idx, y, reset, s0)
    fp32_scan = run(m, "steps", idx, y, reset, s0)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        assert documents.product_dtype(m.core, torch.device("cpu")) == torch.bfloat16
        got = run(m, "steps", idx, y, reset, s0)
    for a, b in zip([got[0], *got[1], *got[2]], [want[0], *want[1], *want[2]]):  # the logits are the head's, in bf16
        torch.testing.assert_close(a.float(), b, atol=0.02 * float(b.abs().max()), rtol=0)
    assert all(g.dtype == torch.float32 for g in got[2])
    assert float((got[0].float() - fp32_scan[0]).abs().max()) > 1e-4 * float(want[0].abs().max())
    assert documents.product_dtype(m.core, torch.device("cpu")) is None  # no autocast: fp32 products


def test_bf16_products_are_the_products(monkeypatch):
    """scan_bf16's products (oneDNN on a packed bf16 weight, or plain bf16 products where
    oneDNN cannot run them) are x M^T and x M^T + y, in bf16."""
    from charrnn.models import scan_bf16

    g = torch.Generator().manual_seed(0)
    M, x, y = (torch.randn(*shape, generator=g) for shape in [(40, 24), (7, 24), (7, 40)])
    xb, yb = x.bfloat16(), y.bfloat16()
    want = xb.float() @ M.bfloat16().float().t()
    tol = dict(atol=0.02 * float(want.abs().max()), rtol=0)
    for onednn in (None, False):  # False: the plain products, as on a GPU or a build without oneDNN
        monkeypatch.setattr(scan_bf16, "_onednn", onednn)
        mul, mul_plus = scan_bf16.bf16_products(M, 7)
        assert mul(xb).dtype == mul_plus(xb, yb).dtype == torch.bfloat16
        torch.testing.assert_close(mul(xb).float(), want, **tol)
        torch.testing.assert_close(mul_plus(xb, yb).float(), want + yb.float(), **tol)
        torch.testing.assert_close(mul(xb[:3]).float(), want[:3], **tol)  # fewer rows than it was packed for


def _lstm_layer_run(fn, xp, W, h0, c0, keep, cols, dout):
    xp, W, h0, c0 = (t.detach().clone().requires_grad_() for t in (xp, W, h0, c0))
    out, h, c = fn(xp, W, h0, c0, keep, cols)
    (out.float() * dout).sum().add_(h.float().sum()).add_(c.sum()).backward()
    return [out.detach().float(), h.detach().float(), c.detach()] + [t.grad for t in (xp, W, h0, c0)]


def test_the_bf16_lstm_scan_is_the_fp32_scan_in_bf16():
    """The LSTM scan on bf16 buffers (scan_bf16.py: xp, h and dL/da in bf16, gates and cell in
    fp32) against the fp32 scan with fp32 products, with starts at t = 0, in the middle and
    at the last step: output (bf16, as the fused module's under autocast), final state and
    the gradients of xp, W, h(0) and c(0) within 2% of each tensor's largest magnitude
    (measured: 0.9% at most). A row that starts a document restarts exactly: from t on it
    equals, bit for bit, a run of the rest of the window from zeros."""
    from charrnn.models.scan import lstm_layer
    from charrnn.models.scan_bf16 import lstm_layer_bf16

    g = torch.Generator().manual_seed(0)
    T, B, H = 12, 5, 16
    xp, W = torch.randn(T, B, 4 * H, generator=g), 0.3 * torch.randn(4 * H, H, generator=g)
    h0, c0, dout = 0.5 * torch.randn(B, H, generator=g), 0.5 * torch.randn(B, H, generator=g), torch.randn(T, B, H, generator=g)
    reset = torch.zeros(T, B, dtype=torch.bool)
    reset[0, 0] = reset[5, 1] = reset[5, 2] = reset[T - 1, 3] = reset[3, 4] = reset[8, 4] = True
    keep, cols = (~reset).unsqueeze(2).float(), frozenset(reset.any(1).nonzero().flatten().tolist())
    want = _lstm_layer_run(lstm_layer, xp, W, h0, c0, keep, cols, dout)
    got = _lstm_layer_run(lstm_layer_bf16, xp.bfloat16(), W, h0, c0, keep, cols, dout)
    for a, b in zip(got, want):
        torch.testing.assert_close(a.float(), b, atol=0.02 * float(b.abs().max()), rtol=0)
    out = lstm_layer_bf16(xp.bfloat16(), W, h0, c0, keep, cols)[0]
    assert out.dtype == torch.bfloat16
    rest = lstm_layer_bf16(xp[5:].bfloat16(), W, torch.zeros(B, H), torch.zeros(B, H))[0]
    assert torch.equal(out[5:, 1:3], rest[:, 1:3])
    assert not torch.equal(out[5:, 0], rest[:, 0])  # the row that carries its state does not
