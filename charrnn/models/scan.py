"""Backpropagation through time by hand: one layer's recurrence as one autograd node.

Training on documents zeroes a row's state just before it reads the first token
of a document (core.py). The fused modules cannot do that in the middle of a
sequence; when many timesteps hold a document start, charrnn runs the
recurrence one step at a time instead, with the state multiplied by keep(t)
(0 for a row that starts a document at t, else 1). Recording every elementwise
operation of every step for autograd costs more than the arithmetic, so each
layer's whole time loop is one `torch.autograd.Function` whose backward pass is
the chapter's back-propagation through time (section 10.2.2) written out:

    forward      s(t) = f(x(t), keep(t) * s(t-1))              for t = 1 .. T
    backward     dL/ds(t-1) = keep(t) * (ds(t)/ds(t-1))^T dL/ds(t)   + what the output at t-1 receives
                 dL/dW = sum_t (dL/da(t))^T h(t-1)                  (one matrix product after the loop)

The input's share of the pre-activations (U x + b) comes in already projected
for all T steps (`xp`, one matrix product, see core.py), and its gradient
leaves as one tensor, so autograd takes U and b from there. Everything that
does not depend on the incoming gradient (the derivatives of the gates) is
computed for all T steps at once before the backward loop.

What keeps it near the fused kernel's speed (issue 16): the recurrent weight is
packed once per layer for MKL's packed GEMM where PyTorch has it (`times_transposed`:
a step's (B, H) x (H, 4H) product a fifth faster than addmm), and in the LSTM every
per-step view is cut once before the loop (`unbind`) rather than indexed in it, c(t)
is written straight into the saved buffer and h(t-1) rebuilt from the outputs in the
backward pass (no per-step copies), and a reset rides on operations the step does
anyway (k W h(t-1) = W (k h(t-1)) in the step's own addcmul; f stored as f k). On the
2-core AVX-512 Xeon of bench/RESULTS.md an LSTM layer's forward and backward take
about 1.08x the fused oneDNN kernel's time; training on documents runs at 0.78-0.95x
the speed of the same corpus carried through (fp32; the fused baseline's own speed
moves by a fifth between runs). Under bf16 autocast the fused kernel uses the CPU's
AMX units and runs about 2.4x its fp32 speed; the scan's matrix products then run in bf16
too (`mm`, chosen by documents.product_dtype: the recurrent product forward and backward,
the weight gradient, and the input projection before the loop). The GRU and RNN keep their
gates and state in fp32 here; the LSTM runs on bf16 buffers (scan_bf16.py: h, xp and dL/da
in bf16 where they feed a product, oneDNN's products on a weight packed once, the gates
through a step's fp32 scratch), which took training on documents under bf16 from
0.62-0.68x the carried-through speed to the figures of bench/RESULTS.md (issue 25, "the LSTM
scan on bf16 buffers"). What is left there is the forward pass: about ten small operations
a step against the fused kernel's one call (its backward pass already matches the fused
one's). The GRU and RNN scans beat oneDNN's fused GRU and RNN here (1.09-1.14x, 1.04x; fp32).

Tensors are time-major: xp (T, B, G), out (T, B, H), a layer's state (B, H).
`keep` is (T, B, 1) with 1 where the state flows on, and `cols` the steps
where some row resets (the others skip the multiplication).
"""

from __future__ import annotations

from typing import Any, Callable

import torch
import torch.nn.functional as F
from torch import Tensor

from .scan_bf16 import lstm_layer_bf16


def times_transposed(M: Tensor, rows: int, mm: torch.dtype | None = None) -> Callable[..., Tensor]:
    """x (rows, k) -> x M^T (+ a bias (n,)) for an M (n, k) that stays fixed through a scan:
    MKL's packed GEMM where PyTorch has it (fp32 on a CPU; M packed once, then a step's
    small product runs about a fifth faster than addmm's), else a plain product.
    With `mm` (bf16) the product runs in that dtype, M cast once, x at each call, and
    the result comes back in it: adding it into an fp32 buffer promotes it."""
    if mm is not None and mm != M.dtype:
        Mm = M.to(mm)
        return lambda x, bias=None: F.linear(x.to(mm), Mm, None if bias is None else bias.to(mm))
    if M.device.type == "cpu" and M.dtype == torch.float32 and getattr(torch._C, "has_mkl", False):
        try:
            packed = torch.ops.mkl._mkl_reorder_linear_weight(M, rows)
            return lambda x, bias=None: torch.ops.mkl._mkl_linear(x, packed, M, bias, rows)
        except (AttributeError, RuntimeError):  # a build without these operators
            pass
    Mt = M.t().contiguous()  # (k, n): read row by row, a quarter faster than M.t()
    return lambda x, bias=None: x @ Mt if bias is None else torch.addmm(bias, x, Mt)


def _mask(keep: Tensor | None, cols: frozenset[int], t: int) -> Tensor | None:
    return keep[t] if keep is not None and t in cols else None  # (B, 1)


class _RNN(torch.autograd.Function):
    """a(t) = xp(t) + W h(t-1);  h(t) = tanh(a(t))  (eqs. 10.8-10.9; b is inside xp)."""

    @staticmethod
    def forward(ctx: Any, xp: Tensor, W: Tensor, h0: Tensor, keep: Tensor | None, cols: frozenset[int], mm: torch.dtype | None) -> tuple[Tensor, Tensor]:  # type: ignore[override]
        T, B, H = xp.shape
        out = xp.new_empty(T, B, H)
        hprev = xp.new_empty(T, B, H)  # the h(t-1) each step read, after the reset
        h = h0
        Wh = times_transposed(W, B, mm)
        for t in range(T):
            k = _mask(keep, cols, t)
            if k is not None:
                h = h * k
            hprev[t] = h
            h = torch.tanh(torch.add(xp[t], Wh(h), out=out[t]), out=out[t])
        ctx.save_for_backward(W, out, hprev, keep)
        ctx.cols, ctx.mm = cols, mm
        return out, h.clone()

    @staticmethod
    def backward(ctx: Any, dout: Tensor, dhT: Tensor | None) -> tuple[Tensor | None, ...]:  # type: ignore[override]
        W, out, hprev, keep = ctx.saved_tensors
        T, B, H = out.shape
        tanh_d = 1 - out * out  # (T, B, H): tanh'(a(t))
        da = torch.empty_like(out)
        dh = dout[T - 1] if dhT is None else dout[T - 1] + dhT
        WtT = times_transposed(W.t().contiguous(), B, ctx.mm)  # d -> d W
        for t in reversed(range(T)):
            torch.mul(dh, tanh_d[t], out=da[t])
            dh = _back_to(dout, t, WtT(da[t]), _mask(keep, ctx.cols, t))
        dW = _product(da.view(T * B, H).t(), hprev.view(T * B, H), ctx.mm)
        return da, dW, dh, None, None, None


class _LSTM(torch.autograd.Function):
    """PyTorch's gate order i, f, g, o:  c(t) = f * c(t-1) + i * g;  h(t) = o * tanh(c(t))  (lstm.py).
    Every per-step view is cut once before its loop (`unbind`), not indexed inside it."""

    @staticmethod
    def forward(ctx: Any, xp: Tensor, W: Tensor, h0: Tensor, c0: Tensor, keep: Tensor | None, cols: frozenset[int], mm: torch.dtype | None) -> tuple[Tensor, ...]:  # type: ignore[override]
        T, B, G = xp.shape
        H = G // 4
        Wh = times_transposed(W, B, mm)
        act = torch.empty_like(xp)  # (T, B, 4H): the gates after their nonlinearities, f times keep
        cs = xp.new_empty(T + 1, B, H)  # cs[0] = c(0), cs[t + 1] = c(t), before any reset
        tcs = xp.new_empty(T, B, H)  # tanh(c(t))
        out = xp.new_empty(T, B, H)  # h(t), before any reset
        cs[0] = c0
        i, f, g, o = (v.unbind(0) for v in act.view(T, B, 4, H).unbind(2))
        sig_if, tanh_g, sig_o = act[..., : 2 * H].unbind(0), act[..., 2 * H : 3 * H].unbind(0), act[..., 3 * H :].unbind(0)
        xs, acts, c_out, tc_out, h_out = xp.unbind(0), act.unbind(0), cs[1:].unbind(0), tcs.unbind(0), out.unbind(0)
        keeps = keep.unbind(0) if keep is not None and cols else ()
        h, c = h0, c0
        for t in range(T):
            reset = keeps and t in cols
            if reset:  # W (k h) = k (W h), and f is kept as f k: what the backward pass reads
                torch.addcmul(xs[t], Wh(h), keeps[t], out=acts[t])
            else:
                torch.add(xs[t], Wh(h), out=acts[t])
            sig_if[t].sigmoid_()
            tanh_g[t].tanh_()
            sig_o[t].sigmoid_()
            if reset:
                f[t].mul_(keeps[t])
            c = torch.addcmul(f[t] * c, i[t], g[t], out=c_out[t])
            h = torch.mul(o[t], torch.tanh(c, out=tc_out[t]), out=h_out[t])
        ctx.save_for_backward(W, act, cs, tcs, out, h0, keep)
        ctx.cols, ctx.mm = cols, mm
        return out, h.clone(), c.clone()

    @staticmethod
    def backward(ctx: Any, dout: Tensor, dhT: Tensor | None, dcT: Tensor | None) -> tuple[Tensor | None, ...]:  # type: ignore[override]
        W, act, cs, tcs, out, h0, keep = ctx.saved_tensors
        T, B, G = act.shape
        H = G // 4
        cols = ctx.cols if keep is not None else frozenset()
        # the h(t-1) each step read, after the reset, for all t at once; c(t-1) is needed only
        # where f(t) is not zero, so where it was not reset
        hprev = torch.cat([h0.unsqueeze(0), out[: T - 1]])  # (T, B, H)
        if cols:
            hprev = hprev * keep
        cprev = cs[:T]
        i, f, g, o = act.chunk(4, 2)  # (T, B, H) each
        # what turns dL/dh(t) and dL/dc(t) into dL/d(pre-activations), for all t at once:
        # s' = s - s^2 for the sigmoid gates, computed over all four and then g's replaced by tanh' = 1 - g^2
        fac = torch.addcmul(act, act, act, value=-1)  # (T, B, 4H)
        torch.addcmul(i, i * g, g, value=-1, out=fac[..., 2 * H : 3 * H])  # dg_pre = dc * i * (1 - g^2)
        fac[..., :H].mul_(g)  # di_pre = dc * g * i'
        fac[..., H : 2 * H].mul_(cprev)  # df_pre = dc * c(t-1) * f'
        fac[..., 3 * H :].mul_(tcs)  # do_pre = dh * tanh(c) * o'
        dc_dh = torch.addcmul(o, o * tcs, tcs, value=-1).unbind(0)  # dc(t) += dh(t) * o * (1 - tanh(c)^2)
        fk = f.unbind(0)  # dc(t-1) = dc(t) * f(t) * keep(t): f was stored times keep
        da = torch.empty_like(act)
        fac_icg, fac_o = fac[..., : 3 * H].view(T, B, 3, H).unbind(0), fac[..., 3 * H :].unbind(0)
        d_icg, d_o, das = da[..., : 3 * H].view(T, B, 3, H).unbind(0), da[..., 3 * H :].unbind(0), da.unbind(0)
        douts, keeps = dout.unbind(0), keep.unbind(0) if cols else ()
        dh = douts[T - 1] if dhT is None else douts[T - 1] + dhT
        dc = act.new_zeros(B, H) if dcT is None else dcT
        WtT = times_transposed(W.t().contiguous(), B, ctx.mm)  # d -> d W
        for t in reversed(range(T)):
            dc = torch.addcmul(dc, dh, dc_dh[t])
            torch.mul(dc.unsqueeze(1), fac_icg[t], out=d_icg[t])
            torch.mul(dh, fac_o[t], out=d_o[t])
            dc = dc * fk[t]
            back = WtT(das[t])  # through W h(t-1)
            if t in cols:
                dh = torch.addcmul(douts[t - 1], back, keeps[t]) if t else back * keeps[t]
            else:
                dh = back + douts[t - 1] if t else back
        dW = _product(da.view(T * B, G).t(), hprev.reshape(T * B, H), ctx.mm)
        return da, dW, dh, dc, None, None, None


class _GRU(torch.autograd.Function):
    """PyTorch's GRU (gru.py): r, z = sigmoid(xp + W h + b_hh); n = tanh(xp_n + r * (W_n h + b_hn));
    h(t) = (1 - z) * n + z * h(t-1). b_hh stays inside the loop because r multiplies it."""

    @staticmethod
    def forward(ctx: Any, xp: Tensor, W: Tensor, b_hh: Tensor, h0: Tensor, keep: Tensor | None, cols: frozenset[int], mm: torch.dtype | None) -> tuple[Tensor, Tensor]:  # type: ignore[override]
        T, B, G = xp.shape
        H = G // 3
        rz = xp.new_empty(T, B, 2 * H)
        n = xp.new_empty(T, B, H)
        hn = xp.new_empty(T, B, H)  # W_n h(t-1) + b_hn
        out = xp.new_empty(T, B, H)
        hprev = xp.new_empty(T, B, H)
        h = h0
        Wh = times_transposed(W, B, mm)
        for t in range(T):
            k = _mask(keep, cols, t)
            if k is not None:
                h = h * k
            hprev[t] = h
            gh = Wh(h, b_hh)  # (B, 3H)
            r_z = torch.add(xp[t, :, : 2 * H], gh[:, : 2 * H], out=rz[t]).sigmoid_()
            hn[t] = gh[:, 2 * H :]
            n_t = torch.addcmul(xp[t, :, 2 * H :], r_z[:, :H], gh[:, 2 * H :], out=n[t]).tanh_()
            h = torch.addcmul(n_t, r_z[:, H:], h - n_t, out=out[t])  # n + z * (h - n)
        ctx.save_for_backward(W, rz, n, hn, hprev, keep)
        ctx.cols, ctx.mm = cols, mm
        return out, h.clone()

    @staticmethod
    def backward(ctx: Any, dout: Tensor, dhT: Tensor | None) -> tuple[Tensor | None, ...]:  # type: ignore[override]
        W, rz, n, hn, hprev, keep = ctx.saved_tensors
        T, B, H = n.shape
        r, z = rz.chunk(2, 2)
        dn_pre = (1 - z) * (1 - n * n)  # (T, B, H): d n_pre = dh * (1 - z) * tanh'
        # d(W h + b_hh) for r, z, n, per unit of dh: one broadcast product a step
        fac = torch.empty(T, B, 3, H, dtype=n.dtype, device=n.device)
        torch.mul(dn_pre * hn, r * (1 - r), out=fac[:, :, 0])  # r
        torch.mul(hprev - n, z * (1 - z), out=fac[:, :, 1])  # z
        torch.mul(dn_pre, r, out=fac[:, :, 2])  # W_n h + b_hn
        dgh = torch.empty(T, B, 3, H, dtype=n.dtype, device=n.device)
        dxn = torch.empty_like(n)
        dh = dout[T - 1] if dhT is None else dout[T - 1] + dhT
        WtT = times_transposed(W.t().contiguous(), B, ctx.mm)  # d -> d W
        for t in reversed(range(T)):
            torch.mul(dh.unsqueeze(1), fac[t], out=dgh[t])
            torch.mul(dh, dn_pre[t], out=dxn[t])
            back = torch.addcmul(WtT(dgh[t].view(B, 3 * H)), dh, z[t])  # through W h(t-1) and z * h(t-1)
            dh = _back_to(dout, t, back, _mask(keep, ctx.cols, t))
        dgh2 = dgh.view(T * B, 3 * H)
        dW = _product(dgh2.t(), hprev.view(T * B, H), ctx.mm)
        db = dgh2.sum(0)
        dxp = torch.cat([dgh[:, :, 0], dgh[:, :, 1], dxn], 2)  # (T, B, 3H): r and z as above, n before r
        return dxp, dW, db, dh, None, None, None


def _product(a: Tensor, b: Tensor, mm: torch.dtype | None) -> Tensor:
    """a @ b, in `mm` where given (the result back in a's dtype)."""
    return a @ b if mm is None else (a.to(mm) @ b.to(mm)).to(a.dtype)


def _back_to(dout: Tensor, t: int, dh_prev: Tensor, k: Tensor | None) -> Tensor:
    """dL/dh(t-1): what flows back through step t (times keep(t)), plus what the output at t-1 receives."""
    if not t:
        return dh_prev if k is None else dh_prev * k
    return dh_prev + dout[t - 1] if k is None else torch.addcmul(dout[t - 1], dh_prev, k)


def rnn_layer(
    xp: Tensor, W: Tensor, h0: Tensor, keep: Tensor | None = None, cols: frozenset[int] = frozenset(),
    mm: torch.dtype | None = None,
) -> tuple[Tensor, Tensor]:
    """(out (T, B, H), h(T)) for one vanilla RNN layer; its matrix products in `mm` where given."""
    return _RNN.apply(xp.to(W.dtype).contiguous(), W, h0, keep, cols, mm)  # type: ignore[no-any-return]


def lstm_layer(
    xp: Tensor, W: Tensor, h0: Tensor, c0: Tensor, keep: Tensor | None = None, cols: frozenset[int] = frozenset(),
    mm: torch.dtype | None = None,
) -> tuple[Tensor, Tensor, Tensor]:
    """(out (T, B, H), h(T), c(T)) for one LSTM layer; its matrix products in `mm` where given:
    in bf16, the layer runs on bf16 buffers (scan_bf16.py) and its output is bf16."""
    if mm == torch.bfloat16:
        return lstm_layer_bf16(xp, W, h0, c0, keep, cols)
    return _LSTM.apply(xp.to(W.dtype).contiguous(), W, h0, c0, keep, cols, mm)  # type: ignore[no-any-return]


def gru_layer(
    xp: Tensor, W: Tensor, b_hh: Tensor, h0: Tensor, keep: Tensor | None = None, cols: frozenset[int] = frozenset(),
    mm: torch.dtype | None = None,
) -> tuple[Tensor, Tensor]:
    """(out (T, B, H), h(T)) for one GRU layer; its matrix products in `mm` where given."""
    return _GRU.apply(xp.to(W.dtype).contiguous(), W, b_hh, h0, keep, cols, mm)  # type: ignore[no-any-return]
