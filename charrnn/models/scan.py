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

On the 2-core AVX2 machine of bench/RESULTS.md this runs a 2x256 LSTM at about
0.7x the speed of oneDNN's fused kernel, against 0.6x for the generic unrolled
path (autograd through every step) and 0.45x for packed sequences. The state
runs in the parameters' dtype (fp32, or fp64 in the parity tests), whatever
autocast does outside: a half-precision recurrence would gain nothing here.

Tensors are time-major: xp (T, B, G), out (T, B, H), a layer's state (B, H).
`keep` is (T, B, 1) with 1 where the state flows on, and `cols` the steps
where some row resets (the others skip the multiplication).
"""

from __future__ import annotations

from typing import Any

import torch
from torch import Tensor


def _mask(keep: Tensor | None, cols: frozenset[int], t: int) -> Tensor | None:
    return keep[t] if keep is not None and t in cols else None  # (B, 1)


class _RNN(torch.autograd.Function):
    """a(t) = xp(t) + W h(t-1);  h(t) = tanh(a(t))  (eqs. 10.8-10.9; b is inside xp)."""

    @staticmethod
    def forward(ctx: Any, xp: Tensor, W: Tensor, h0: Tensor, keep: Tensor | None, cols: frozenset[int]) -> tuple[Tensor, Tensor]:  # type: ignore[override]
        T, B, H = xp.shape
        out = xp.new_empty(T, B, H)
        hprev = xp.new_empty(T, B, H)  # the h(t-1) each step read, after the reset
        h = h0
        for t in range(T):
            k = _mask(keep, cols, t)
            if k is not None:
                h = h * k
            hprev[t] = h
            h = torch.tanh(torch.addmm(xp[t], h, W.t()), out=out[t])
        ctx.save_for_backward(W, out, hprev, keep)
        ctx.cols = cols
        return out, h.clone()

    @staticmethod
    def backward(ctx: Any, dout: Tensor, dhT: Tensor | None) -> tuple[Tensor | None, ...]:  # type: ignore[override]
        W, out, hprev, keep = ctx.saved_tensors
        T, B, H = out.shape
        tanh_d = 1 - out * out  # (T, B, H): tanh'(a(t))
        da = torch.empty_like(out)
        dh = dout[T - 1] if dhT is None else dout[T - 1] + dhT
        for t in reversed(range(T)):
            torch.mul(dh, tanh_d[t], out=da[t])
            dh = _back_to(dout, t, da[t] @ W, _mask(keep, ctx.cols, t))
        dW = da.view(T * B, H).t() @ hprev.view(T * B, H)
        return da, dW, dh, None, None


class _LSTM(torch.autograd.Function):
    """PyTorch's gate order i, f, g, o:  c(t) = f * c(t-1) + i * g;  h(t) = o * tanh(c(t))  (lstm.py)."""

    @staticmethod
    def forward(ctx: Any, xp: Tensor, W: Tensor, h0: Tensor, c0: Tensor, keep: Tensor | None, cols: frozenset[int]) -> tuple[Tensor, ...]:  # type: ignore[override]
        T, B, G = xp.shape
        H = G // 4
        act = torch.empty_like(xp)  # (T, B, 4H): the gates after their nonlinearities
        cs = xp.new_empty(T + 1, B, H)  # cs[t]: the c(t-1) step t read (after the reset); cs[T]: the last c
        tcs = xp.new_empty(T, B, H)  # tanh(c(t))
        out = xp.new_empty(T, B, H)
        hprev = xp.new_empty(T, B, H)
        h, c = h0, c0
        for t in range(T):
            k = _mask(keep, cols, t)
            if k is not None:
                h, c = h * k, c * k
            hprev[t] = h
            cs[t] = c
            a = torch.addmm(xp[t], h, W.t(), out=act[t])
            a[:, : 2 * H].sigmoid_()  # i, f
            a[:, 2 * H : 3 * H].tanh_()  # g
            a[:, 3 * H :].sigmoid_()  # o
            i, f, g, o = a.chunk(4, 1)
            c = torch.addcmul(f * c, i, g)
            h = torch.mul(o, torch.tanh(c, out=tcs[t]), out=out[t])
        cs[T] = c
        ctx.save_for_backward(W, act, cs, tcs, hprev, keep)
        ctx.cols = cols
        return out, h.clone(), c.clone()

    @staticmethod
    def backward(ctx: Any, dout: Tensor, dhT: Tensor | None, dcT: Tensor | None) -> tuple[Tensor | None, ...]:  # type: ignore[override]
        W, act, cs, tcs, hprev, keep = ctx.saved_tensors
        T, B, G = act.shape
        H = G // 4
        i, f, g, o = act.chunk(4, 2)  # (T, B, H) each
        # what turns dL/dh(t) and dL/dc(t) into dL/d(pre-activations), for all t at once
        fac = torch.empty_like(act)  # (T, B, 4H)
        torch.mul(g, i * (1 - i), out=fac[..., :H])  # di_pre = dc * g * i'
        torch.mul(cs[:T], f * (1 - f), out=fac[..., H : 2 * H])  # df_pre = dc * c(t-1) * f'
        torch.mul(i, 1 - g * g, out=fac[..., 2 * H : 3 * H])  # dg_pre = dc * i * g'
        torch.mul(tcs, o * (1 - o), out=fac[..., 3 * H :])  # do_pre = dh * tanh(c) * o'
        dc_dh = o * (1 - tcs * tcs)  # (T, B, H): dc(t) += dh(t) * o * tanh'(c)
        da = torch.empty_like(act)
        dh = dout[T - 1] if dhT is None else dout[T - 1] + dhT
        dc = act.new_zeros(B, H) if dcT is None else dcT
        for t in reversed(range(T)):
            d = da[t]
            dc = torch.addcmul(dc, dh, dc_dh[t])
            torch.mul(dc.unsqueeze(1), fac[t, :, : 3 * H].view(B, 3, H), out=d[:, : 3 * H].view(B, 3, H))
            torch.mul(dh, fac[t, :, 3 * H :], out=d[:, 3 * H :])
            k = _mask(keep, ctx.cols, t)
            dc = dc * f[t] if k is None else dc * f[t] * k
            dh = _back_to(dout, t, d @ W, k)
        dW = da.view(T * B, G).t() @ hprev.view(T * B, H)
        return da, dW, dh, dc, None, None


class _GRU(torch.autograd.Function):
    """PyTorch's GRU (gru.py): r, z = sigmoid(xp + W h + b_hh); n = tanh(xp_n + r * (W_n h + b_hn));
    h(t) = (1 - z) * n + z * h(t-1). b_hh stays inside the loop because r multiplies it."""

    @staticmethod
    def forward(ctx: Any, xp: Tensor, W: Tensor, b_hh: Tensor, h0: Tensor, keep: Tensor | None, cols: frozenset[int]) -> tuple[Tensor, Tensor]:  # type: ignore[override]
        T, B, G = xp.shape
        H = G // 3
        rz = xp.new_empty(T, B, 2 * H)
        n = xp.new_empty(T, B, H)
        hn = xp.new_empty(T, B, H)  # W_n h(t-1) + b_hn
        out = xp.new_empty(T, B, H)
        hprev = xp.new_empty(T, B, H)
        h = h0
        for t in range(T):
            k = _mask(keep, cols, t)
            if k is not None:
                h = h * k
            hprev[t] = h
            gh = torch.addmm(b_hh, h, W.t())  # (B, 3H)
            r_z = torch.add(xp[t, :, : 2 * H], gh[:, : 2 * H], out=rz[t]).sigmoid_()
            hn[t] = gh[:, 2 * H :]
            n_t = torch.addcmul(xp[t, :, 2 * H :], r_z[:, :H], gh[:, 2 * H :], out=n[t]).tanh_()
            h = torch.addcmul(n_t, r_z[:, H:], h - n_t, out=out[t])  # n + z * (h - n)
        ctx.save_for_backward(W, rz, n, hn, hprev, keep)
        ctx.cols = cols
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
        for t in reversed(range(T)):
            torch.mul(dh.unsqueeze(1), fac[t], out=dgh[t])
            torch.mul(dh, dn_pre[t], out=dxn[t])
            back = torch.addmm(dh * z[t], dgh[t].view(B, 3 * H), W)  # through z * h(t-1) and W h(t-1)
            dh = _back_to(dout, t, back, _mask(keep, ctx.cols, t))
        dgh2 = dgh.view(T * B, 3 * H)
        dW = dgh2.t() @ hprev.view(T * B, H)
        db = dgh2.sum(0)
        dxp = torch.cat([dgh[:, :, 0], dgh[:, :, 1], dxn], 2)  # (T, B, 3H): r and z as above, n before r
        return dxp, dW, db, dh, None, None


def _back_to(dout: Tensor, t: int, dh_prev: Tensor, k: Tensor | None) -> Tensor:
    """dL/dh(t-1): what flows back through step t (times keep(t)), plus what the output at t-1 receives."""
    if k is not None:
        dh_prev = dh_prev * k
    return dh_prev + dout[t - 1] if t else dh_prev


def rnn_layer(xp: Tensor, W: Tensor, h0: Tensor, keep: Tensor | None = None, cols: frozenset[int] = frozenset()) -> tuple[Tensor, Tensor]:
    """(out (T, B, H), h(T)) for one vanilla RNN layer."""
    return _RNN.apply(xp, W, h0, keep, cols)  # type: ignore[no-any-return]


def lstm_layer(
    xp: Tensor, W: Tensor, h0: Tensor, c0: Tensor, keep: Tensor | None = None, cols: frozenset[int] = frozenset()
) -> tuple[Tensor, Tensor, Tensor]:
    """(out (T, B, H), h(T), c(T)) for one LSTM layer."""
    return _LSTM.apply(xp, W, h0, c0, keep, cols)  # type: ignore[no-any-return]


def gru_layer(
    xp: Tensor, W: Tensor, b_hh: Tensor, h0: Tensor, keep: Tensor | None = None, cols: frozenset[int] = frozenset()
) -> tuple[Tensor, Tensor]:
    """(out (T, B, H), h(T)) for one GRU layer."""
    return _GRU.apply(xp, W, b_hh, h0, keep, cols)  # type: ignore[no-any-return]
