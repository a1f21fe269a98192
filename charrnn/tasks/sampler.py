"""Drawing the next token: temperature, top-k and top-p by the Gumbel-max trick.

A token is drawn from softmax(o / T) restricted to an allowed set A (the k most likely
tokens, and/or the smallest set of the most likely whose mass reaches p) as

    i = argmax_{j in A}  o_j / T + g_j,      g_j = -log e_j,   e_j ~ Exp(1)

(the Gumbel-max trick: Gumbel 1954; Maddison, Tarlow and Minka 2014). P(i = j) is
exactly softmax(o / T)_j renormalised over A, with no softmax computed: one scaling,
one addition and one argmax a token, in numpy, whose small operations cost a fraction
of torch's per-call dispatch (the sampling loop's overhead over the model step was a
third of it, issue 16).

The e_j are torch's exponential draws from the run's generator, the very numbers
torch.multinomial draws for one sample (it takes argmax p_j / e_j, the same argmax
in exact arithmetic): a seed gives the text it always gave, except where two
candidates tie to within float rounding (`tests/test_sampler.py` counts how rarely).
They are drawn a block of tokens at a time (1, 2, 4, ... up to about a million
numbers): torch's CPU generator gives the same stream drawn in blocks as drawn one
token at a time (tested), so only the generator's position after the last token
differs, by the unused rest of the block.
"""

from __future__ import annotations

import numpy as np
import torch
from torch import Tensor

MAX_BLOCK = 1 << 20  # numbers drawn at once, at most (4 MB of float32)


def as_numpy(logits: Tensor) -> np.ndarray:
    """Logits of any device and dtype as a float32 numpy array (a view where they already are one)."""
    t = logits.detach()
    if t.device.type != "cpu" or t.dtype != torch.float32:
        t = t.float().cpu()
    return t.numpy()


def allowed(y: np.ndarray, top_k: int | None, top_p: float | None) -> np.ndarray | None:
    """Which tokens may be drawn, over the last axis of scaled logits y (..., V): the k
    largest (ties with the k-th kept), and of those the smallest set of the largest whose
    softmax mass reaches top_p (ties with the last one kept). None: every token."""
    V = y.shape[-1]
    keep = None
    if top_k is not None and top_k < V:
        keep = y >= np.partition(y, V - top_k, axis=-1)[..., V - top_k : V - top_k + 1]  # the k-th largest
    if top_p is not None and top_p < 1.0:
        z = y if keep is None else np.where(keep, y, -np.inf)
        desc = np.sort(z, axis=-1)[..., ::-1].astype(np.float64)
        mass = np.exp(desc - desc[..., :1])
        mass /= mass.sum(-1, keepdims=True)
        before = np.cumsum(mass, -1) - mass  # the mass of the tokens more likely than this one
        n = (before < top_p).sum(-1, keepdims=True)  # >= 1: the most likely has nothing before it
        within = y >= np.take_along_axis(desc, n - 1, -1).astype(y.dtype)
        keep = within if keep is None else keep & within
    return keep


def distribution(logits: Tensor, temperature: float, top_k: int | None = None, top_p: float | None = None) -> Tensor:
    """The distribution a token is drawn from, over the last dimension of logits (..., V):
    softmax(logits / T) over the allowed tokens, zero elsewhere; at temperature 0, all
    the mass on the most likely. A float32 CPU tensor."""
    x = as_numpy(logits)
    if temperature == 0:
        return torch.nn.functional.one_hot(torch.as_tensor(x.argmax(-1)), x.shape[-1]).float()
    y = x / np.float32(temperature)
    keep = allowed(y, top_k, top_p)
    z = y if keep is None else np.where(keep, y, -np.inf)
    e = np.exp(z - z.max(-1, keepdims=True))
    return torch.from_numpy((e / e.sum(-1, keepdims=True)).astype(np.float32))


class Sampler:
    """Draws token ids with the run's temperature, top-k, top-p and generator.

    From logits (`one`, `rows`), or, given the model's output layer, from its input
    (`ids_top`, `rows_top`): then the scaling and the noise ride on the output layer's
    own matrix product, o / T + g = h W'^T + (b' + g) with W' = W / T and b' = b / T,
    the noisy bias drawn a block of tokens at a time, so that a plain draw adds one
    argmax to the model's step. A Sampler draws from logits or from the layer's input,
    not both."""

    def __init__(self, temperature: float, top_k: int | None, top_p: float | None, gen: torch.Generator,
                 head: torch.nn.Linear | None = None):  # fmt: skip
        self.greedy, self.top_k, self.top_p, self.gen = temperature == 0, top_k, top_p, gen
        self.truncated = top_k is not None or top_p is not None
        self.temperature = np.float32(temperature)
        self.raw = np.empty((0, 0), np.float32)  # rows (tokens) of Gumbel noise g drawn and not yet used
        self.at, self.block = 0, 1  # the next unused row; how many tokens' worth the next draw takes (doubling)
        self.weight = self.bias = self.noisy = None
        self.inputs: dict[int, Tensor] = {}
        self.quick: bool | None = None  # ids_top's all-torch test of a truncated draw: decided on first use (a CPU fp32 head)
        # scratch rows for the one-row allowed-set test (sized on first use; no allocation a token)
        self._above, self._e, self._y = np.empty(0, bool), np.empty(0, np.float32), np.empty(0, np.float32)
        if head is not None:
            w, b = head.weight.detach(), head.bias.detach()
            scale = 1.0 if temperature in (0, 1) else 1.0 / temperature
            self.weight, self.bias = (w * scale).t(), b * scale  # (H, V), (V,)
            self.noisy = self.bias.new_empty(0, b.shape[0])  # b' + g for each row of self.raw, on the head's device
            self.noisy_rows: list[Tensor] = []

    def _take(self, rows: int, width: int) -> int:
        """The index of the first of `rows` unused rows of noise, drawing more when they run out."""
        at = self.at
        if at + rows > len(self.raw):
            left = len(self.raw) - at
            target = max(rows, min(self.block * rows, MAX_BLOCK // width))  # rows on hand once drawn
            self.block *= 2
            log_e = torch.empty(target - left, width).exponential_(1, generator=self.gen).log_()  # e = 0 (once in 2^24): g = inf
            if self.bias is not None:  # the noisy bias b' + g for those rows, on the head's device
                noisy = torch.sub(self.bias, log_e.to(self.bias.device, self.bias.dtype))
                self.noisy = torch.cat([self.noisy[at:], noisy]) if left else noisy
                self.noisy_rows = list(self.noisy.unbind(0))  # the same rows as views: a list index costs nothing
            if self.bias is None or self.truncated:  # g itself, for the allowed set and for logits
                fresh = log_e.neg_().numpy()
                self.raw = np.concatenate([self.raw[at:], fresh]) if left else fresh
                if self.bias is not None:  # the same rows as torch views, for the head path's quick test
                    self.raw_rows = list(torch.from_numpy(self.raw).unbind(0))
            else:
                self.raw = np.empty((target, 0), np.float32)  # only its length counts: rows drawn
            at = 0
        self.at = at + rows
        return at

    def _draw(self, x: np.ndarray) -> np.ndarray | np.intp:
        if self.greedy:
            return x.argmax(-1)
        y = x if self.temperature == 1 else x / self.temperature
        rows = 1 if y.ndim == 1 else y.shape[0]
        at = self._take(rows, y.shape[-1])
        return self._truncate(y, y + self.raw[at : at + rows].reshape(y.shape))

    def _truncate(self, y: np.ndarray, s: np.ndarray) -> np.ndarray | np.intp:
        """argmax over the allowed tokens of s = y + g. For one row the unrestricted argmax
        is the answer whenever it is allowed (the maximum over a set, found in a subset, is
        the subset's), which a draw usually is: only otherwise is the allowed set worked out."""
        i = s.argmax(-1)
        if not self.truncated or y.ndim == 1 and self._allowed_one(y, int(i)):
            return i
        keep = allowed(y, self.top_k, self.top_p)
        return i if keep is None else np.where(keep, s, -np.inf).argmax(-1)

    def _scratch(self, V: int) -> None:
        if self._y.shape[0] < V:
            self._above, self._e, self._y = np.empty(V, bool), np.empty(V, np.float32), np.empty(V, np.float32)
            self._s_t = torch.empty(1, V)  # o / T + g of one row, written by addmm where numpy reads it
            self._s = self._s_t.numpy()[0]

    def _allowed_one(self, y: np.ndarray, i: int) -> bool:
        """Whether `allowed` lets token i of one row of scaled logits y (V,) through, without
        working it out for the whole row: fewer than k tokens lie above it, and their mass
        (among the k largest, ties kept) is below p; the most likely token always passes.
        Most draws stop at the first test (a trained model's draw is mostly its most likely
        token); the k-th largest is found only when the mass of all V tokens cannot settle it."""
        self._scratch(y.shape[0])
        above = np.greater(y, y[i], out=self._above[: y.shape[0]])
        n = np.count_nonzero(above)
        if n == 0:
            return True
        k, p, V = self.top_k, self.top_p, y.shape[0]
        if k is not None and n >= k:
            return False
        if p is None or p >= 1.0:
            return True
        e = np.exp(np.subtract(y, y.max(), out=self._e[:V]), out=self._e[:V])
        mass, total = e[above].sum(), e.sum()
        if mass >= p * total or k is None or k >= V:  # the k largest hold less than all V: no k-th needed
            return bool(mass < p * total)
        return bool(mass < p * e[y >= np.partition(y, V - k)[V - k]].sum())

    def one(self, logits: Tensor) -> int:
        """A token id from logits (V,) or (1, V)."""
        return int(self._draw(as_numpy(logits).reshape(-1)))

    def rows(self, logits: Tensor) -> np.ndarray:
        """A token id for each row of logits (B, V) -> (B,) int64."""
        return self._draw(as_numpy(logits)).astype(np.int64)

    def ids_top(self, top: Tensor) -> Tensor:
        """`rows_top` for one row (1, H) -> (1,), the shape of the model's next input."""
        if self.quick:  # the hot path of a truncated draw, set up by the first one (below)
            at = self.at
            if at < len(self.raw):
                self.at = at + 1
            else:
                at = self._take(1, self.bias.shape[0])
            # The usual draw is the most likely token, always allowed: told by torch's argmax of
            # s = o / T + g and of y = s - g (the very numbers the numpy test reads), no numpy
            # call, which after a model step costs several times its microbenchmark (cold
            # caches: the step touches only torch's code). Otherwise the numpy test decides.
            torch.addmm(self.noisy_rows[at], top, self.weight, out=self._s_row)
            torch.sub(self._s_row, self.raw_rows[at], out=self._y_row)
            i, j = self._pair.argmax(-1).tolist()
            if i != j:
                i = int(self._truncate(self._pair_np[1], self._pair_np[0]))
            t = self.inputs.get(i)
            return t if t is not None else self._input(i, top.device)
        if self.greedy:
            return self.rows_top(top)
        at = self._take(1, self.bias.shape[0])
        if not self.truncated:
            return torch.addmm(self.noisy_rows[at], top, self.weight).argmax(-1)  # (1, V) -> (1,)
        V = self.bias.shape[0]
        if self.quick is None:  # from the next draw on, the hot path above
            self.quick = top.device.type == "cpu" and top.dtype == self.weight.dtype == torch.float32
            self._pair = torch.empty(2, V)  # o / T + g and o / T of one row; numpy reads the same memory
            self._pair_np, self._s_row, self._y_row = self._pair.numpy(), self._pair[:1], self._pair[1:]
        self._scratch(V)
        if top.device.type == "cpu" and top.dtype == self.weight.dtype == torch.float32:
            s = torch.addmm(self.noisy_rows[at], top, self.weight, out=self._s_t)  # lands in numpy's row: no copy
            s = self._s[:V]
        else:
            s = as_numpy(torch.addmm(self.noisy_rows[at], top, self.weight))[0]
        y = np.subtract(s, self.raw[at], out=self._y[:V])
        return self._input(int(self._truncate(y, s)), top.device)

    def _input(self, i: int, device: torch.device) -> Tensor:
        """Token id i as a model input (1,), made once and kept."""
        t = self.inputs.get(i)
        if t is None:
            t = self.inputs[i] = torch.tensor([i], device=device)
        return t

    def rows_top(self, top: Tensor) -> Tensor:
        """A token id for each row of the output layer's input top (B, H) -> (B,) int64 on its device."""
        if self.greedy:
            return torch.addmm(self.bias, top, self.weight).argmax(-1)
        B = top.shape[0]
        at = self._take(B, self.bias.shape[0])
        s = torch.addmm(self.noisy[at : at + B], top, self.weight)  # o / T + g: (B, V)
        if not self.truncated:
            return s.argmax(-1)
        s = as_numpy(s)
        i = self._truncate(s - self.raw[at : at + B], s)
        return torch.from_numpy(np.asarray(i, np.int64).reshape(B)).to(top.device)
