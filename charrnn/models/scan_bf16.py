"""The LSTM scan of scan.py with bf16 buffers, for bf16 autocast (issue 25).

Under bf16 autocast the fused oneDNN LSTM runs its matrix products on the CPU's AMX
units, takes its input in bf16 and gives its output in bf16: about 2.4x its fp32
speed on the AMX Xeon of bench/RESULTS.md. The fp32 scan with bf16 products
(scan.py) spent most of a step converting between the two: h(t) to bf16 before each
product, the product's bf16 result promoted into fp32, and in the backward pass
each step's dL/da to bf16. Here everything that feeds a matrix product is kept in
bf16 where it is made, as the fused kernel keeps it:

    xp (the input's share, from the projection under autocast)     bf16 (T, B, 4H)
    a(t) = W h(t-1) + xp(t): one oneDNN call on W packed once, the
        sum a post-op inside it (fp32 there, rounded once)           bf16 (B, 4H)
    the gates, computed in a step's fp32 scratch, saved              bf16 (T, B, 4H)
    c(t) = f * c(t-1) + i * g                                        fp32 (T + 1, B, H)
    h(t) = o * tanh(c(t)), written straight into its buffer          bf16 (T + 1, B, H)
    dL/da(t), through a step's fp32 scratch into                     bf16 (T, B, 4H)
    dL/dh(t-1) = W^T dL/da(t) + dL/dout(t-1), one oneDNN call        bf16 (B, H)

The cell state and its gradient stay fp32 (the cell is a sum over time;
rounding it each step would drift). Memory, not arithmetic, sets a step's cost
here: on the 2-core Xeon of bench/RESULTS.md, writing a fresh (B, 4H) fp32 row
of a (T, B, 4H) buffer cost ~30 us where the same write into a row in the cache
costs ~4, so every per-step tensor that is not saved lives in a scratch row that
stays in the cache, what is saved is bf16 where it may be, tanh(c(t)) is computed
again in the backward pass rather than saved, and the backward pass derives each
step's factors from that step's gates (sixteen small operations) rather than
from passes over (T, B, 4H) tensors, as scan.py does in fp32. The result is exact
in the sense of scan.py (the state times keep(t) at a document start: a row that
starts a document restarts bit for bit) and bf16 in its rounding, within the fused
module's own distance from fp32 (tests/test_documents.py).

Where the time goes (2x256, batch 32 x 32, one thread, forward and backward of the
core, the machine shared): the backward pass is on par with the fused kernel's
(17-18 ms against 18-20), the forward is not (13-14 ms against 6): each layer's step
is one oneDNN product (~50 us in the loop) and about ten elementwise operations and
copies (~130 us with Python's share), where the fused kernel takes ~35 us a step.
Closing that needs fewer, fused operations a step (a compiled step kernel), or both
layers in one product a step (a wavefront over [h1(t-1), h2(t-2)]); a TorchScript
loop saved 12% of the forward in a trial.
"""

from __future__ import annotations

from typing import Any, Callable

import torch
import torch.nn.functional as F
from torch import Tensor

BF16 = torch.bfloat16
Product = Callable[..., Tensor]
_onednn: bool | None = None  # whether oneDNN's packed bf16 products run here; None until tried


def bf16_products(M: Tensor, rows: int) -> tuple[Product, Product]:
    """For an M (n, k) fixed through a scan: x (rows, k) bf16 -> x M^T, and (x, y) -> x M^T + y
    (y (rows, n) bf16), both in bf16. On a CPU with oneDNN, M is cast and packed once
    (`_reorder_linear_weight`) and each product is one `_linear_pointwise` call, the sum
    a post-op inside it: about 35 us for (32, 256) x (256, 1024), where F.linear takes 50
    and addmm 75. Elsewhere, plain bf16 products."""
    global _onednn
    Mb = M.detach().to(BF16).contiguous()
    if M.device.type == "cpu" and _onednn is not False and torch.backends.mkldnn.is_available():
        try:
            packed = torch.ops.mkldnn._reorder_linear_weight(Mb, rows)
            if _onednn is None:  # once: a build without these operators, or a CPU oneDNN has no bf16 kernel for, raises here
                torch.ops.mkldnn._linear_pointwise(Mb.new_zeros(1, Mb.shape[1]), packed, None, "none", [], "")
                _onednn = True
            return (
                lambda x: torch.ops.mkldnn._linear_pointwise(x, packed, None, "none", [], ""),
                lambda x, y: torch.ops.mkldnn._linear_pointwise.binary(x, y, packed, None, "add"),
            )
        except (AttributeError, RuntimeError):
            _onednn = False
    Mt = Mb.t()
    return (lambda x: F.linear(x, Mb)), (lambda x, y: torch.addmm(y, x, Mt))


class _LSTMBF16(torch.autograd.Function):
    """c(t) = f * c(t-1) + i * g;  h(t) = o * tanh(c(t)), gates in PyTorch's order i, f, g, o."""

    @staticmethod
    def forward(ctx: Any, xp: Tensor, W: Tensor, h0: Tensor, c0: Tensor, keep: Tensor | None, cols: frozenset[int]) -> tuple[Tensor, ...]:  # type: ignore[override]
        T, B, G = xp.shape
        H = G // 4
        _, Wh_plus = bf16_products(W, B)
        act = xp.new_empty(T, B, G)  # bf16: the gates after their nonlinearities, f times keep
        cs = c0.new_empty(T + 1, B, H)  # cs[0] = c(0), cs[t + 1] = c(t)
        hs = xp.new_empty(T + 1, B, H)  # bf16: hs[0] = h(0), hs[t + 1] = h(t), before any reset
        cs[0], hs[0] = c0, h0
        gates, tc = c0.new_empty(B, G), c0.new_empty(B, H)  # step t's, in fp32, in the cache
        i, f, g, o = gates.view(B, 4, H).unbind(1)
        xs, acts, c_out, h_in, h_out = xp.unbind(0), act.unbind(0), cs[1:].unbind(0), hs[:T].unbind(0), hs[1:].unbind(0)
        keeps = keep.to(BF16).unbind(0) if keep is not None and cols else ()
        keeps32 = keep.to(c0.dtype).unbind(0) if keeps else ()
        c = c0
        for t in range(T):
            reset = keeps and t in cols
            h = h_in[t] * keeps[t] if reset else h_in[t]  # W (k h) = k (W h)
            gates.copy_(Wh_plus(h, xs[t]))  # a(t) = W h(t-1) + xp(t): summed in fp32 inside the product, then bf16
            gates[:, : 2 * H].sigmoid_()
            g.tanh_()
            o.sigmoid_()
            if reset:
                f.mul_(keeps32[t])  # kept as f k: what the backward pass reads
            acts[t].copy_(gates)
            c = torch.addcmul(f * c, i, g, out=c_out[t])
            torch.mul(o, torch.tanh(c, out=tc), out=h_out[t])
        ctx.save_for_backward(W, act, cs, hs, keep)
        ctx.cols = cols
        return hs[1:], hs[T].to(c0.dtype), c.clone()

    @staticmethod
    def backward(ctx: Any, dout: Tensor, dhT: Tensor | None, dcT: Tensor | None) -> tuple[Tensor | None, ...]:  # type: ignore[override]
        W, act, cs, hs, keep = ctx.saved_tensors
        T, B, G = act.shape
        H = G // 4
        cols = ctx.cols if keep is not None else frozenset()
        hprev = hs[:T] * keep.to(BF16) if cols else hs[:T]  # the h(t-1) each step read, after the reset
        gates, tc = cs.new_empty(B, G), cs.new_empty(B, H)  # step t's, in fp32, in the cache
        i, f, g, o = gates.view(B, 4, H).unbind(1)  # f is f(t) keep(t)
        cprev, c_t, acts = cs[:T].unbind(0), cs[1:].unbind(0), act.unbind(0)
        da = hs.new_empty(T, B, G)  # bf16: dL/d(pre-activations)
        da_t = cs.new_empty(B, G)  # step t's, in fp32: one cast a step into da, not one per gate
        da_i, da_f, da_g, da_o = da_t.view(B, 4, H).unbind(1)
        das, douts = da.unbind(0), dout.to(BF16).contiguous().unbind(0)
        keeps = keep.to(BF16).unbind(0) if cols else ()
        dh = douts[T - 1] if dhT is None else douts[T - 1] + dhT
        dc = cs.new_zeros(B, H) if dcT is None else dcT
        WtT, WtT_plus = bf16_products(W.t(), B)  # d -> d W
        for t in reversed(range(T)):
            gates.copy_(acts[t])
            torch.tanh(c_t[t], out=tc)
            dho = dh * o
            q = dho * tc  # dL/dh o tanh(c)
            torch.addcmul(q, q, o, value=-1, out=da_o)  # dL/dh tanh(c) o (1 - o)
            dc = torch.addcmul(dc + dho, q, tc, value=-1)  # dL/dc(t) += dL/dh o (1 - tanh(c)^2)
            p = dc * i
            pg = p * g
            torch.addcmul(p, pg, g, value=-1, out=da_g)  # dL/dc i (1 - g^2)
            torch.addcmul(pg, pg, i, value=-1, out=da_i)  # dL/dc g i (1 - i)
            dc = dc * f  # dL/dc(t-1), through f k
            s = dc * cprev[t]
            torch.addcmul(s, s, f, value=-1, out=da_f)  # dL/dc c(t-1) f k (1 - f k): f' k, as k is 0 or 1
            das[t].copy_(da_t)
            if t in cols:
                back = WtT(das[t])  # through W h(t-1)
                dh = torch.addcmul(douts[t - 1], back, keeps[t]) if t else back * keeps[t]
            else:
                dh = WtT_plus(das[t], douts[t - 1]) if t else WtT(das[t])
        dW = (da.view(T * B, G).t() @ hprev.reshape(T * B, H)).to(W.dtype)
        return da, dW, dh.to(dc.dtype), dc, None, None


def lstm_layer_bf16(
    xp: Tensor, W: Tensor, h0: Tensor, c0: Tensor, keep: Tensor | None = None, cols: frozenset[int] = frozenset()
) -> tuple[Tensor, Tensor, Tensor]:
    """(out (T, B, H) bf16, h(T), c(T) in c0's dtype) for one LSTM layer: xp (T, B, 4H) in bf16
    or cast to it, W and the state in fp32."""
    return _LSTMBF16.apply(xp.to(BF16).contiguous(), W, h0, c0, keep, cols)  # type: ignore[no-any-return]
