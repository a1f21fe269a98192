"""A readout fitted in closed form over a fixed recurrent core, in one streaming pass.

An echo state network's reservoir never changes, so its readout is a linear
regression from the reservoir's state to the next token: ridge regression from
the top layer's h, with a constant 1 for the bias, to the one-hot target y:

    X = [h(t); 1] for every timestep     Y = one-hot(y(t))
    W = (XᵀX / N + λ I')⁻¹ XᵀY / N         (I' leaves the bias unpenalised)

One pass runs the core over the training split (streams, the state carried,
reset at document starts) and accumulates XᵀX ((H+1)² numbers) and XᵀY
((H+1) x V): memory does not grow with the corpus. XᵀX is symmetric, so only
its upper block triangle is multiplied (8 column blocks), in float32 over
chunks of about 4,096 timesteps, summed in float64: with 2,001 features on 2
cores that ran at 18.7k timesteps/s against 7.3k for the full product.

Regression scores are not probabilities, and a regression onto one-hot targets
is additive in probability: a letter remembered from 50 steps back must raise
that letter's score at every step of the gap, where the answer is a dot, so the
least-squares fit learns to ignore the memory. So the same sums also give
linear discriminant analysis (LDA): class means μ_c = (XᵀY)_c / n_c and the
pooled within-class covariance Σ = (XᵀX - Σ_c n_c μ_c μ_cᵀ) / N, whose Gaussian
model's posterior is a softmax of a linear function of h,

    score_c(h) = hᵀ Σ⁻¹ μ_c - μ_cᵀ Σ⁻¹ μ_c / 2 + log π_c,

additive in log-probability: "a remembered c" and "the copy comes now" multiply.
On longrange-copy (gap 48, a 1,000-unit reservoir with slow units) ridge scored
0.427 bits/char and LDA 0.389 (no memory: 0.433); on prose ridge is the better
(3.80 against 3.94 from 300 units, before any gradient step), and after 1,000
gradient steps from each (tinyshakespeare, 2x256) 3.441 against 3.453 bits/char,
so ridge stays the default; `--readout closed` fits both and keeps the one with
the lower cross-entropy on the last chunk of the pass, `--readout lda` LDA alone.

Each is calibrated on that chunk: a temperature s and a bias per class d_c,
minimising the cross-entropy of softmax(s · scores + d) (convex in (s, d):
Newton's method), so that bits per character are honest from the first
evaluation; gradient training then refines the head as an ordinary softmax
readout. The bias alone took ridge from 0.518 to 0.469 bits/char on the copy.
"""

from __future__ import annotations

import math
import time
from typing import Any, Callable, Iterable

import torch
from torch import Tensor, nn

CHUNK = 4096  # timesteps per XᵀX update (and the calibration slice)
BLOCKS = 8  # column blocks of XᵀX; only the upper triangle of blocks is multiplied
NEWTON_STEPS = 30  # fixed, so that every process of a distributed run takes the same ones
BIAS_PENALTY = 1e-3  # per timestep, on the calibration's class biases: a class absent from the slice keeps a finite one


def gram_upper(G: Tensor, X: Tensor, blocks: int = BLOCKS) -> None:
    """G += the upper block triangle of XᵀX (X (N, F) float32, G (F, F) float64)."""
    F = X.shape[1]
    edges = [round(i * F / blocks) for i in range(blocks + 1)]
    for i in range(blocks):
        lo, hi = edges[i], edges[i + 1]
        if hi > lo:
            G[lo:hi, lo:] += (X[:, lo:hi].t() @ X[:, lo:]).double()


def symmetric(G: Tensor) -> Tensor:
    """The full matrix from gram_upper's sums: every element on or above the diagonal is there."""
    return torch.triu(G) + torch.triu(G, 1).t()


def solve(xtx: Tensor, xty: Tensor, n: float, lam: float) -> Tensor:
    """(F, V) ridge weights from the sums (the last feature is the constant 1)."""
    A = xtx / n
    idx = torch.arange(A.shape[0] - 1)
    A[idx, idx] += lam
    B = xty.t() / n  # (F, V)
    try:
        return torch.cholesky_solve(B, torch.linalg.cholesky(A))
    except RuntimeError:  # not positive definite (a unit that never moved, say): least squares still answers
        return torch.linalg.lstsq(A, B).solution


def temperature(S: Tensor, y: Tensor, reduce: Callable[[Tensor], Tensor]) -> tuple[float, float]:
    """The s > 0 minimising the mean cross-entropy of softmax(s S) for targets y, and that
    mean (nats). S (N, V) float64. Newton's method on a convex function of one number,
    the sums taken over every process."""
    s = 1.0
    for _ in range(NEWTON_STEPS):
        p = torch.softmax(s * S, 1)
        mean = (p * S).sum(1)  # E_p[S]
        var = (p * S * S).sum(1) - mean**2
        g = reduce(torch.stack([(mean - S[torch.arange(len(y)), y]).sum(), var.sum(), torch.tensor(float(len(y)), dtype=S.dtype, device=S.device)]))
        if float(g[2]) == 0:
            return 1.0, math.nan
        step = float(g[0]) / max(float(g[1]), 1e-12)
        s = min(max(s - step, s / 4), s * 4)  # a damped Newton step: s stays positive
    ce = torch.logsumexp(s * S, 1) - s * S[torch.arange(len(y)), y]
    tot = reduce(torch.stack([ce.sum(), torch.tensor(float(len(y)), dtype=S.dtype, device=S.device)]))
    return s, float(tot[0]) / max(float(tot[1]), 1.0)


def lda(xtx: Tensor, xty: Tensor, n: float, lam: float) -> tuple[Tensor, Tensor]:
    """Linear discriminant analysis from the ridge's sums (the last feature the constant 1, so
    xty[:, -1] counts each class): -> (F-1, V) weights and (V,) biases of the Gaussian posterior.
    Σ gains λ times its mean variance on the diagonal (a unit that never moved stays solvable)."""
    F = xtx.shape[0] - 1
    count = xty[:, F]  # (V,)
    mu = xty[:, :F] / count.clamp(min=1.0)[:, None]  # (V, F)
    cov = (xtx[:F, :F] - (mu.t() * count) @ mu) / n  # the pooled within-class covariance
    idx = torch.arange(F)
    cov[idx, idx] += lam * float(cov.diagonal().mean().clamp(min=1e-12))
    try:
        W = torch.cholesky_solve(mu.t().contiguous(), torch.linalg.cholesky(cov))  # (F, V)
    except RuntimeError:
        W = torch.linalg.lstsq(cov, mu.t()).solution
    prior = torch.log((count + 1.0) / (n + len(count)))  # add-one: a class never seen keeps a finite score
    return W, prior - 0.5 * (mu * W.t()).sum(1)


def calibrate(S: Tensor, y: Tensor, reduce: Callable[[Tensor], Tensor]) -> tuple[float, Tensor, float]:
    """The s > 0 and the class biases d minimising the mean cross-entropy of softmax(s S + d) for
    targets y (with a small penalty on d), and that mean (nats): `temperature` for s, then
    Newton's method on (s, d) together, a step halved until the loss falls, the sums taken over
    every process. S (N, V) float64."""
    s, _ = temperature(S, y, reduce)
    V, rows = S.shape[1], torch.arange(len(y))
    d = torch.zeros(V, dtype=S.dtype, device=S.device)
    onehot = torch.zeros_like(S)
    onehot[rows, y] = 1.0

    def loss(s: float, d: Tensor) -> tuple[float, float]:
        z = s * S + d
        ce = (torch.logsumexp(z, 1) - z[rows, y]).sum()
        tot = reduce(torch.stack([ce, torch.tensor(float(len(y)), dtype=S.dtype, device=S.device)]))
        n = max(float(tot[1]), 1.0)
        return float(tot[0]) / n + 0.5 * BIAS_PENALTY * float(d @ d), n

    best, n = loss(s, d)
    for _ in range(NEWTON_STEPS):
        p = torch.softmax(s * S + d, 1)
        r = p - onehot  # dCE/dz
        ps = (p * S).sum(1, keepdim=True)  # E_p[S]
        g = torch.cat([(r * S).sum().reshape(1), r.sum(0)])  # d/ds, d/dd
        h_ss = (p * S * S).sum() - (ps * ps).sum()
        h_sd = (p * S - p * ps).sum(0)  # (V,)
        h_dd = torch.diag(p.sum(0)) - p.t() @ p
        Hm = torch.zeros(V + 1, V + 1, dtype=S.dtype, device=S.device)
        Hm[0, 0], Hm[0, 1:], Hm[1:, 0], Hm[1:, 1:] = h_ss, h_sd, h_sd, h_dd
        sums = reduce(torch.cat([g, Hm.reshape(-1)]))
        g, Hm = sums[: V + 1] / n, sums[V + 1 :].reshape(V + 1, V + 1) / n
        g[1:] += BIAS_PENALTY * d
        Hm[1:, 1:] += BIAS_PENALTY * torch.eye(V, dtype=S.dtype, device=S.device)
        step = torch.linalg.solve(Hm + 1e-9 * torch.eye(V + 1, dtype=S.dtype, device=S.device), g)
        t = 1.0
        for _ in range(20):
            s2, d2 = s - t * float(step[0]), d - t * step[1:]
            if s2 > 0:
                new, _ = loss(s2, d2)
                if new <= best:
                    break
            t /= 2
        else:
            break
        if best - new < 1e-12:
            s, d, best = s2, d2, new
            break
        s, d, best = s2, d2, new
    return s, d, best - 0.5 * BIAS_PENALTY * float(d @ d)


@torch.no_grad()
def fit_ridge(
    model: nn.Module, batches: Iterable[tuple[Tensor, Tensor, Tensor | None]], lam: float,
    reduce: Callable[[Tensor], Tensor], should_stop: Callable[[], bool],
) -> str:
    """Set model.head to the calibrated ridge readout of model.core's states; returns a line for the log."""
    return fit_closed(model, batches, lam, reduce, should_stop, "ridge")


@torch.no_grad()
def fit_closed(
    model: nn.Module, batches: Iterable[tuple[Tensor, Tensor, Tensor | None]], lam: float,
    reduce: Callable[[Tensor], Tensor], should_stop: Callable[[], bool], which: str = "closed",
) -> str:  # fmt: skip
    """Set model.head to a calibrated closed-form readout of model.core's states, fitted in one
    pass: `which` is ridge, lda or closed (both, the one with the lower cross-entropy on the last
    chunk kept); returns a line for the log."""
    core, head = model.core, model.head
    dev = head.weight.device
    H, V = core.out_size, head.out_features
    xtx = torch.zeros(H + 1, H + 1, dtype=torch.float64, device=dev)
    xty = torch.zeros(V, H + 1, dtype=torch.float64, device=dev)
    chunk: list[Tensor] = []
    targets: list[Tensor] = []
    rows, n, stopped, state = 0, 0, False, None
    cal_X, cal_y = torch.zeros(0, H + 1, device=dev), torch.zeros(0, dtype=torch.long, device=dev)
    was_training = model.training
    model.eval()
    t0 = time.monotonic()
    for x, y, reset in batches:
        if state is None:
            state = model.init_state(x.shape[0], dev, torch.float32)
        out, state = core(model.embed(x), state, reset)  # (B, T, H)
        X = torch.cat([out.reshape(-1, H).float(), torch.ones(out.shape[0] * out.shape[1], 1, device=dev)], 1)  # (B*T, H+1)
        xty.index_add_(0, y.reshape(-1), X.double())  # row y(t) of XᵀY (stored transposed) gains X(t)
        chunk.append(X)
        targets.append(y.reshape(-1))
        rows += len(X)
        if rows >= CHUNK:
            cal_X, cal_y = torch.cat(chunk), torch.cat(targets)
            gram_upper(xtx, cal_X)
            n, rows, chunk, targets = n + len(cal_X), 0, [], []
        if should_stop():
            stopped = True
            break
    if chunk:
        X, y = torch.cat(chunk), torch.cat(targets)
        gram_upper(xtx, X)
        n += len(X)
        # the calibration slice: the last CHUNK timesteps, not a short remainder (256 of tinyshakespeare's)
        cal_X, cal_y = torch.cat([cal_X, X])[-max(CHUNK, len(X)) :], torch.cat([cal_y, y])[-max(CHUNK, len(y)) :]
    model.train(was_training)
    sums = reduce(torch.tensor([float(n)], dtype=torch.float64, device=dev))
    total = int(sums[0])
    if total == 0:
        return "ridge readout: no training steps were read before the run stopped; the readout starts from its initialisation."
    reduce(xtx)
    reduce(xty)
    G = symmetric(xtx)
    fits = {}  # name -> (H+1, V): the scores' weights, the constant's row last
    if which in ("ridge", "closed"):
        fits["ridge"] = solve(G.clone(), xty, total, lam)
    if which in ("lda", "closed"):
        W, c = lda(G, xty, total, lam)
        fits["lda"] = torch.cat([W, c[None]])
    X = cal_X.double()
    scored = {k: (W, *calibrate(X @ W, cal_y, reduce)) for k, W in fits.items()}  # name -> (W, s, d, ce)
    name = min(scored, key=lambda k: scored[k][3])
    W, s, d, ce = scored[name]
    head.weight.copy_((s * W[:H]).t().to(head.weight.dtype))
    head.bias.copy_((s * W[H] + d).to(head.bias.dtype))
    took = time.monotonic() - t0
    early = ", stopped early by the run's limit" if stopped else ""
    both = f" (ridge {scored['ridge'][3] / math.log(2):.3f}, lda {scored['lda'][3] / math.log(2):.3f}: {name} kept)" if len(scored) > 1 else ""
    return (
        f"{name} readout: {total:,} timesteps of {H:,}-unit states in one pass ({took:.0f} s{early}), λ {lam:g}; "
        f"temperature {s:.2f} and a bias per class, {ce / math.log(2):.3f} bits/token on the last {len(cal_y):,} of them{both}"
    )


@torch.no_grad()
def memory_capacity(
    step: Callable[[Any, Tensor], tuple[Any, Tensor]], state: Any, batch: int, max_delay: int, samples: int,
    washout: int = 100, seed: int = 0, lam: float = 1e-7,
) -> tuple[float, Tensor]:  # fmt: skip
    """Jaeger's short-term memory capacity (2001): drive a network, state, h(t) = step(state,
    u(t)), with u(t) i.i.d. uniform in (-1, 1) (`batch` streams side by side), and for every
    delay k = 1 .. max_delay fit the best linear reconstruction y_k(t) = w_k [h(t); 1] of
    u(t-k) (least squares, a ridge λ relative to each feature's scale), then

        MC = sum over k of MC_k,   MC_k = r²(u(t-k), y_k(t)),

    the squared correlation measured on streams the readouts were not fitted on (fitted
    and scored on the same ones, every MC_k would gain about H/N by chance). For N units
    MC <= N (Jaeger's bound; a linear delay line of N units holds the N - 1 inputs before
    the present one). Half the streams fit, half score, `samples` timesteps each half after
    `washout` (at least max_delay). Returns MC and every MC_k."""
    g = torch.Generator().manual_seed(seed)
    warm = max(washout, max_delay)
    T = warm + -(-2 * samples // batch)  # timesteps per stream
    u = torch.rand(T, batch, generator=g, dtype=torch.float64).mul_(2).sub_(1)  # (T, B)
    half = batch // 2
    sums: list[list[Tensor]] = [[], []]  # per half: XᵀX, XᵀY, Σ y²; memory does not grow with the samples
    chunk: list[Tensor] = []

    def add(rows: list[Tensor], t: int) -> None:
        X = torch.stack(rows)  # (C, B, H+1)
        lag = torch.stack([u[t - len(rows) + 1 - k : t + 1 - k] for k in range(1, max_delay + 1)], 2)  # (C, B, K): u(t-k)
        for j, part in enumerate((slice(0, half), slice(half, batch))):
            x, y = X[:, part].reshape(-1, X.shape[2]), lag[:, part].reshape(-1, max_delay)
            new = [x.t() @ x, x.t() @ y, y.square().sum(0)]
            sums[j] = new if not sums[j] else [a + b for a, b in zip(sums[j], new)]

    for t in range(T):
        state, h = step(state, u[t])
        if t >= warm:
            chunk.append(torch.cat([h.double(), torch.ones(batch, 1, dtype=torch.float64, device=h.device)], 1).cpu())
            if len(chunk) == 64 or t == T - 1:
                add(chunk, t)
                chunk = []
    n = (T - warm) * half
    (fit_xx, fit_xy, _), (xx, xy, yy) = sums
    A = fit_xx / n
    A += lam * torch.diag(A.diagonal().clamp(min=1e-12))  # the penalty relative to each feature's own size
    W = torch.linalg.lstsq(A, fit_xy / n).solution  # (H+1, K): the readout of each delay
    m = (T - warm) * (batch - half)
    # on the scoring half, from its sums alone (the constant feature is the last one): pred = X W
    s_p, s_y = W.t() @ xx[-1], xy[-1]  # Σ pred, Σ y
    s_pp, s_py = ((xx @ W) * W).sum(0), (xy * W).sum(0)  # Σ pred², Σ pred·y
    cov, var_p, var_y = s_py / m - s_p * s_y / m**2, s_pp / m - (s_p / m) ** 2, yy / m - (s_y / m) ** 2
    r2 = (cov.square() / (var_p * var_y).clamp(min=1e-300)).clamp(0.0, 1.0)
    return float(r2.sum()), r2
