"""An encoder-decoder put to use: answering one source at a time (`charrnn predict`),
the validation pairs shown with its outputs while it trains, and what the TUI's
activations screen shows of it.

The answer is the greedy output, a sampled one (`--temperature`), or the best of
a beam search (`--beam K`, with the K best and their log-probabilities kept for
`--top`). A model with attention also gives, for every character written, its
weights over the source's characters (`--attention-map`).
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from ..data.examples import encode_texts
from ..data.tokenizer import tokenizer_from_state
from ..errors import ConfigError, TokenizerError, UnknownCharactersError
from .classify_use import shorten
from .decode import beam, decode, max_output
from .reports import END, Beam, Decoded
from .state import PairFacts, Seq2SeqState
from .use import Prediction, PredictOptions, Predictor, Use


class Seq2SeqUse(Use):
    """`task` is a tasks.seq2seq.Seq2SeqTask: its pairs, tokenizer and longest target."""

    def sample(self, model: nn.Module, step: int) -> str:
        """A few validation sources with what the model writes for them (greedy)."""
        t = self.task
        if not (rows := self.shown_rows(len(t.data.val_src), step)):
            return ""
        predictor = Seq2SeqPredictor(model, t.tok, t.max_target, PredictOptions())
        lines = []
        for r in rows:
            source, target = t.tok.decode(t.data.val_src[r]), t.tok.decode(t.data.val_tgt[r])
            out = predictor.predict(source).line
            lines.append(f"{shorten(source, 40)} → {shorten(out, 40)} {'✓' if out == target else f'✗ (is {shorten(target, 40)})'}")
        return "\n".join(lines)

    def default_probe_text(self) -> str:
        t = self.task
        split = t.data.val_src if len(t.data.val_src) else t.data.train_src
        return t.tok.decode(split[0])

    def probe(self, model: nn.Module, text: str, step: int) -> Any:
        return probe(model, self.task.tok, self.task.max_target, text, step)

    @classmethod
    def predictor(cls, state: Seq2SeqState, model: nn.Module, opts: PredictOptions) -> Predictor:  # type: ignore[override]
        pairs = state.pairs or PairFacts()
        return Seq2SeqPredictor(model, tokenizer_from_state(state.tokenizer), int(pairs.max_target), opts)


class Seq2SeqPredictor(Predictor):
    def __init__(self, model: nn.Module, tok: Any, max_target: int, opts: PredictOptions):
        if opts.trace:
            raise ConfigError("--trace follows a classifier's answer along its text; for an encoder-decoder use --attention-map.")
        if opts.attention_map and model.attend is None:
            raise ConfigError("--attention-map needs a model trained with --attention dot or additive; this one reads only "
                              "the fixed-length context.")  # fmt: skip
        if opts.temperature is not None and opts.beam is not None:
            raise ConfigError("--temperature samples one output and --beam searches for the best; give one of them.")
        if opts.temperature is not None and not opts.temperature > 0:
            raise ConfigError(f"--temperature must be > 0 (greedy decoding is the default), got {opts.temperature}.")
        self.model, self.tok, self.max_target, self.opts = model, tok, max_target, opts
        self.gen = None
        if opts.temperature is not None:
            from .generate import new_seed

            self.gen = torch.Generator().manual_seed(opts.seed if opts.seed is not None else new_seed())

    def source(self, text: str, unknown: str = "error") -> torch.Tensor:
        """The source's ids, (1, S)."""
        try:
            ids = encode_texts(self.tok, [text], unknown)[0]
        except UnknownCharactersError as e:
            shown = " ".join(repr(c) for c in e.chars[:20])
            raise TokenizerError(f"the source has characters the model never saw in training: {shown}.") from None
        if len(ids) == 0:
            raise TokenizerError("the source is empty; give a few characters the model knows.")
        return torch.from_numpy(ids.astype(np.int64))[None].to(self.model.head.weight.device)

    @torch.no_grad()
    def predict(self, text: str) -> Prediction:
        from ..inspect.trace import evaluating

        src = self.source(text)
        S, eos, opts = src.shape[1], self.tok.eos_id, self.opts
        limit = max_output(self.max_target, S)
        beams: tuple[Beam, ...] = ()
        with evaluating(self.model) as model:
            if opts.beam is not None:
                hyps = beam(model, src, eos, opts.beam, limit)
                best = hyps[0]
                ids, logp, finished = list(best.ids), best.logp, best.finished
                rows = [x for x in best.extras if x is not None]
                attention = torch.stack(rows).numpy() if rows else None
                beams = tuple(Beam(self.tok.decode(h.ids), h.logp, h.score(), h.finished) for h in hyps[: opts.top])
                how = f"beam {opts.beam}"
            else:
                o = decode(model, src, torch.tensor([S], device=src.device), eos, limit, opts.temperature or 0.0, self.gen, attention=True)[0]
                ids, logp, finished, attention = o.ids, o.logp, o.finished, o.attention
                how = "greedy" if opts.temperature is None else f"sampled at temperature {opts.temperature:g}"
        output = self.tok.decode(ids)
        steps = tuple(self.tok.decode([i]) for i in ids) + ((END,) if finished else ())
        source = tuple(self.tok.decode([int(i)]) for i in src[0].tolist())
        details = Decoded(source, output, steps, logp, how, beams, attention)
        record: dict[str, Any] = {"output": output, "logp": logp, "finished": finished, "decoding": how}
        if beams:
            record["beams"] = [{"output": b.output, "logp": b.logp, "score": b.score, "finished": b.finished} for b in beams]
        if opts.attention_map and attention is not None:
            record["attention"] = [[round(float(v), 5) for v in row] for row in attention]
        return Prediction(output, details, record)


def probe(model: nn.Module, tok: Any, max_target: int, text: str, step: int) -> Any:
    """The TUI's frame: the encoder's signals over the source, the gradient of the greedy
    output's loss back through the encoder's states, and the output with its attention map."""
    from ..inspect.trace import Activations, Probe, evaluating, grad_norms

    predictor = Seq2SeqPredictor(model, tok, max_target, PredictOptions(attention_map=model.attend is not None))
    src = predictor.source(text, unknown="skip")
    prediction = predictor.predict(tok.decode(src[0].tolist()))
    ids = src[0].tolist()
    eos = tok.eos_id
    out = tok.encode(prediction.details.output) + ([eos] if prediction.details.steps[-1:] == (END,) else [])
    with evaluating(model), torch.enable_grad():
        tr, enc = model.trace(src)
        y_in = torch.tensor([[eos] + out[:-1]] if out else [[eos]], device=src.device)
        logits, _ = model.teacher(enc, y_in)
        loss = F.cross_entropy(logits[0].float(), torch.tensor(out or [eos], device=src.device), reduction="sum")
        flow = grad_norms(loss, {n: tr.steps[n] for n in model.kind.state if n in tr.steps})
    signals = {k: v[:, 0].detach().float().cpu().numpy() for k, v in tr.signals.items()}  # (L, S, H)
    tokens = tuple(tok.decode([i]) for i in ids)
    acts = Activations(tok.decode(ids), np.array(ids), tokens, model.cfg.cell, signals, np.zeros((len(ids), 0), np.float32),
                       offsets=np.arange(len(ids) + 1))  # fmt: skip
    return Probe(step, acts, flow, task="seq2seq", prediction=prediction)
