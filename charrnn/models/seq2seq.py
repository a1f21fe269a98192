"""The encoder-decoder (sequence-to-sequence) architecture (section 10.4, figure 10.12).

An encoder RNN reads the source x(1..n_x); its final state (every layer, every
state tensor) is the context C. A decoder RNN writes the target y(1..n_y) one
character at a time, conditioned on C in one of the chapter's ways (as in
conditioning on a fixed context, section 10.2.4):

    init     its initial state:         s(0) = tanh(b + W C)
    input    an extra input every step:  x'(t) = [E y(t-1); C]
    both     the two together (the default)

    d(t) = decoder(x'(t), s(t-1))
    o(t) = c + V d(t)                               without attention
    o(t) = c + V tanh(W_c [d(t); a(t)])             with attention a(t) (attention.py; Luong et al. 2015)
    P(y(t) | y(<t), x) = softmax(o(t))

Any kind in the registry serves either side (`--cell`, `--decoder-cell`); the
two share one embedding table, since they share one character set. The decoder's
first input and the end of every target is the end-of-text token.

Training is teacher forcing: the decoder reads the true previous character, so
the whole target runs through the decoder's fused path in one call and the
attention for all steps is one batched product. Scheduled sampling (Bengio et al.
2015) instead feeds, with probability p at each step, a character drawn from the
model's own previous output, which needs the step-by-step path (it skips the
dropout between layers, as sampling does).

Sources are left-padded: the encoder's state is zeroed just before each source's
first character (the core's `reset`), so its final state is the source's own,
whatever the padding, for every kind; attention masks the padding out.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from ..config import ModelConfig
from . import registry
from .attention import Attention
from .base import Model
from .core import CoreTrace, LayerState, State

IGNORE = -100  # target padding: scored by nobody


@dataclass(frozen=True)
class Encoded:
    out: Tensor  # (B, S, He) the encoder's top-layer states
    mask: Tensor  # (B, S) True where there is a source character
    context: Tensor  # (B, |C|) the final state, every layer and state tensor
    keys: Tensor | None  # (B, S, Hd) for attention

    def rows(self, idx: Tensor) -> "Encoded":
        """The same encodings for the batch rows `idx` (beam search keeps K copies of one source)."""
        return Encoded(self.out[idx], self.mask[idx], self.context[idx], None if self.keys is None else self.keys[idx])


def decoder_config(cfg: ModelConfig) -> ModelConfig:
    """The decoder's own config: the decoder kind (default the encoder's), with the options it knows."""
    cell = cfg.task_options().decoder_cell or cfg.cell
    encoder_only = set(registry.get(cfg.cell).option_fields()) - set(registry.get(cell).option_fields())
    owned = set(cfg.options) - encoder_only
    return ModelConfig(**{**vars(cfg), "cell": cell, "options": {k: v for k, v in cfg.options.items() if k in owned}})


def _size(core: nn.Module, layers: int) -> int:
    """How many numbers a whole state of this core holds per batch row."""
    return layers * sum(math.prod(shape) for shape in core.state_shapes())


class Seq2Seq(Model):
    def __init__(self, cfg: ModelConfig):
        super().__init__()
        cfg.validate()
        if cfg.vocab_size < 2:
            raise ValueError("ModelConfig.vocab_size must be set from the tokenizer")
        self.cfg, self.opts = cfg, cfg.task_options()
        self.kind: registry.Kind = registry.get(cfg.cell)  # the encoder's: what the inspector traces
        dec_cfg = decoder_config(cfg)
        self.dec_kind = registry.get(dec_cfg.cell)
        self.embed = nn.Embedding(cfg.vocab_size, cfg.embed)
        self.encoder = self.kind.load()(cfg, cfg.embed)
        # --bidirectional (section 10.3): a second encoder reads the source from its end; the
        # attention reads [h(t); g(t)], what came before t and what comes after it
        self.back = self.kind.load()(cfg, cfg.embed) if self.opts.bidirectional else None
        self.ctx_size = _size(self.encoder, cfg.layers)
        self.feed_context = self.opts.condition in ("input", "both")
        self.decoder = self.dec_kind.load()(dec_cfg, cfg.embed + (self.ctx_size if self.feed_context else 0))
        self.bridge = nn.Linear(self.ctx_size, _size(self.decoder, cfg.layers)) if self.opts.condition in ("init", "both") else None
        He, Hd = self.encoder.out_size * (2 if self.back is not None else 1), self.decoder.out_size
        self.attend = Attention(self.opts.attention, He, Hd) if self.opts.attention != "none" else None
        self.combine = nn.Linear(Hd + He, Hd) if self.attend is not None else None
        self.drop = nn.Dropout(cfg.dropout)
        self.head = nn.Linear(Hd, cfg.vocab_size)

    # ---------------------------------------------------------------- encoder

    def encode(self, src: Tensor, src_len: Tensor) -> Encoded:
        """src (B, S) left-padded, src_len (B,) -> the encodings the decoder reads."""
        B, S = src.shape
        start = S - src_len  # (B,) where each source begins
        reset = torch.zeros(B, S, dtype=torch.bool, device=src.device)
        reset[torch.arange(B, device=src.device), start] = True  # a zero state just before the first character
        p = self.head.weight
        x = self.embed(src)
        out, state = self.encoder(x, self.encoder.init_state(B, p.device, p.dtype), reset)  # (B, S, He)
        return self._encoded(self._both_ways(x, out), state, torch.arange(S, device=src.device)[None, :] >= start[:, None])

    def _both_ways(self, x: Tensor, out: Tensor) -> Tensor:
        """The forward encoder's states, and with --bidirectional the backward one's beside them:
        g(t) has read the source from its end back to t. The sources are left-padded, so the
        flipped rows start with their last character, from a zero state (the padding comes last)."""
        if self.back is None:
            return out
        p = self.head.weight
        g, _ = self.back(x.flip(1), self.back.init_state(x.shape[0], p.device, p.dtype))
        return torch.cat([out, g.flip(1).to(out.dtype)], -1)  # (B, S, 2He)

    def _encoded(self, out: Tensor, state: State, mask: Tensor) -> Encoded:
        B = out.shape[0]
        context = torch.cat([s.transpose(0, 1).reshape(B, -1) for s in state], 1)  # (B, |C|)
        return Encoded(out, mask, context, self.attend.keys(out) if self.attend is not None else None)

    def trace(self, src: Tensor) -> tuple[CoreTrace, Encoded]:
        """The encoder's per-step path over unpadded sources (B, S), every signal kept (under
        autograd), and the encodings the decoder reads from it."""
        p = self.head.weight
        x = self.embed(src)
        tr = self.encoder.trace(x, self.encoder.init_state(src.shape[0], p.device, p.dtype))
        return tr, self._encoded(self._both_ways(x, tr.out), tr.state, torch.ones(src.shape, dtype=torch.bool, device=src.device))

    # ---------------------------------------------------------------- decoder

    def decoder_state(self, enc: Encoded) -> State:
        """s(0): tanh(b + W C) cut into the decoder's state tensors (zeros without `init`)."""
        B = enc.context.shape[0]
        p = self.head.weight
        if self.bridge is None:
            return self.decoder.init_state(B, p.device, p.dtype)
        flat = torch.tanh(self.bridge(enc.context)).to(p.dtype)  # (B, L * Σ|s|)
        L, out, at = self.cfg.layers, [], 0
        for shape in self.decoder.state_shapes():
            n = L * math.prod(shape)
            out.append(flat[:, at : at + n].reshape(B, L, *shape).transpose(0, 1).contiguous())  # (L, B, ...)
            at += n
        return tuple(out)

    def _inputs(self, y: Tensor, enc: Encoded) -> Tensor:
        """y (B, T) previous characters -> the decoder's inputs (B, T, E [+ |C|])."""
        x = self.embed(y)
        if self.feed_context:
            x = torch.cat([x, enc.context[:, None, :].expand(-1, y.shape[1], -1).to(x.dtype)], -1)
        return x

    def _output(self, d: Tensor, enc: Encoded) -> tuple[Tensor, Tensor | None]:
        """d (B, T, Hd) decoder states -> logits (B, T, V) and the attention weights (B, T, S) if any."""
        if self.attend is None:
            return self.head(self.drop(d)), None
        a, alpha = self.attend(d, enc.keys, enc.out, enc.mask)  # (B, T, He), (B, T, S)
        h = torch.tanh(self.combine(torch.cat([d, a.to(d.dtype)], -1)))  # (B, T, Hd) the attentional state
        return self.head(self.drop(h)), alpha

    # ---------------------------------------------------------------- training

    def forward(
        self, src: Tensor, src_len: Tensor, y_in: Tensor, targets: Tensor | None = None, sampling_prob: float = 0.0
    ) -> tuple[Tensor, Tensor | None]:
        """Teacher forcing: src (B, S), src_len (B,), y_in (B, T) = the end token then the target,
        targets (B, T) = the target then the end token (IGNORE after it) -> logits (B, T, V), mean loss."""
        enc = self.encode(src, src_len)
        if self.training and sampling_prob > 0:
            logits = self._sampled(enc, y_in, sampling_prob)
        else:
            logits, _ = self.teacher(enc, y_in)
        loss = None
        if targets is not None:
            loss = F.cross_entropy(logits.reshape(-1, logits.shape[-1]).float(), targets.reshape(-1), ignore_index=IGNORE)
        return logits, loss

    def teacher(self, enc: Encoded, y_in: Tensor) -> tuple[Tensor, Tensor | None]:
        """The decoder over given inputs y_in (B, T) in one call -> logits (B, T, V), attention (B, T, S) or None."""
        d, _ = self.decoder(self._inputs(y_in, enc), self.decoder_state(enc))  # (B, T, Hd)
        return self._output(d, enc)

    def _sampled(self, enc: Encoded, y_in: Tensor, p: float) -> Tensor:
        """Scheduled sampling: step by step, each row reading (with probability p) a character
        drawn from its own previous output instead of the true one."""
        B, T = y_in.shape
        layers = self.decoder.split_state(self.decoder_state(enc))
        out, prev = [], None
        for t in range(T):
            y = y_in[:, t]
            if prev is not None:
                y = torch.where(torch.rand(B, device=y.device) < p, prev, y)
            top, layers = self.decoder.step(self._inputs(y[:, None], enc)[:, 0], layers)  # (B, Hd)
            logits, _ = self._output(top[:, None], enc)
            out.append(logits[:, 0])
            prev = torch.multinomial(torch.softmax(logits[:, 0].detach().float(), -1), 1)[:, 0]
        return torch.stack(out, 1)  # (B, T, V)

    # ---------------------------------------------------------------- decoding

    def start(self, src: Tensor, src_len: Tensor) -> tuple[Encoded, list[LayerState]]:
        """Encode for decoding: the encodings and the decoder's first per-layer state."""
        enc = self.encode(src, src_len)
        return enc, self.decoder.split_state(self.decoder_state(enc))

    def step(self, y: Tensor, layers: list[LayerState], enc: Encoded) -> tuple[Tensor, list[LayerState], Tensor | None]:
        """One output step: y (B,) the previous characters -> logits (B, V), the new
        per-layer state, and where the decoder looked, (B, S) (None without attention)."""
        top, layers = self.decoder.step(self._inputs(y[:, None], enc)[:, 0], layers)  # (B, Hd)
        logits, alpha = self._output(top[:, None], enc)
        return logits[:, 0], layers, None if alpha is None else alpha[:, 0]
