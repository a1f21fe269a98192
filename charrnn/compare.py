"""Model kinds side by side on one corpus: what `charrnn compare` trains and measures.

Every kind trains on the same split (the corpus is opened once), for the same
budget, alone, each as an ordinary run in `<root>/<name>/<cell>` (sample it,
inspect it, resume it). Optionally each is sized to about the same number of
*trained* parameters (`params`): its hidden size is searched on PyTorch's meta
device, so no weights are drawn. An echo state network trains only its readout,
so matching its trained parameters would take a reservoir of thousands of units;
it is held to at most ESN_MAX_UNITS (the size its one-pass readout fit was
measured at) and the row says so.

For each model: trained and total parameters, training chars/s, validation
bits/char (the run's final evaluation), how many steps back the gradient
|dL_T/dh_t| of the top layer has fallen 1000x (inspect's measurement, averaged
over a few validation windows), and a short sample. A Jordan net also reports
its free-running loss (its own output fed back instead of the known previous
target): the gap is the exposure bias. Reference rows: count-based n-gram
models of order 1 to 5 (baselines/ngram.py), and on the built-in long-range
corpora the generator's own bits/char and what a model with a limited memory
cannot beat (data/longrange.py).
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch

from .config import DataConfig, ModelConfig, SampleConfig, TrainConfig
from .errors import ConfigError
from .models import registry
from .training import plan
from .training.telemetry import BaseSink, EvalEvent, MessageEvent

ESN_MAX_UNITS = 2000
GRAD_WINDOWS, GRAD_TOKENS = 4, 256  # validation windows the gradient reach is averaged over, and their length
SAMPLE_CHARS = 60


@dataclass(frozen=True)
class Row:
    """One line of the table and of the JSON file."""

    kind: str  # "model" | "ngram" | "reference"
    name: str  # the cell, "3-gram", "perfect", ...
    val_bpc: float | None
    trained_params: int | None = None
    params: int | None = None
    chars_per_s: float | None = None
    steps: int | None = None
    val_loss: float | None = None  # nats per token
    grad_reach: int | None = None  # steps back at which the gradient has fallen 1000x; None: not within grad_span
    grad_span: int | None = None
    sample: str = ""
    run: str | None = None
    model: str | None = None  # the model's one-line summary
    notes: dict[str, Any] = field(default_factory=dict)


def trained_params(cfg: ModelConfig) -> tuple[int, int]:
    """(trained, total) parameters of a model config, counted on the meta device (no weights drawn)."""
    from .models.lm import CharRNN

    with torch.device("meta"):
        m = CharRNN(cfg)
    return m.num_params(trainable=True), m.num_params()


def size_for(cfg: ModelConfig, target: int) -> tuple[int, str]:
    """The hidden size whose trained parameters come closest to `target`, and a note if capped."""
    lo, hi = 1, 16384
    while lo < hi:  # the smallest hidden size reaching the target
        mid = (lo + hi) // 2
        if trained_params(ModelConfig(**{**vars(cfg), "hidden": mid}))[0] >= target:
            hi = mid
        else:
            lo = mid + 1
    below = max(lo - 1, 1)
    near = min((lo, below), key=lambda h: abs(trained_params(ModelConfig(**{**vars(cfg), "hidden": h}))[0] - target))
    if cfg.cell == "esn" and near > ESN_MAX_UNITS:
        return ESN_MAX_UNITS, f"capped at {ESN_MAX_UNITS:,} units (matching the trained parameters would take {near:,})"
    return near, ""


def configs(cells: tuple[str, ...], base: ModelConfig, options: dict[str, Any], vocab_size: int, params: int | None) -> list[tuple[ModelConfig, str]]:
    """A model config per cell: the base settings, the kind options that cell owns, sized to `params` if given."""
    for k in options:
        if not any(k in registry.get(c).option_fields() for c in cells):
            raise ConfigError(f"--{k.replace('_', '-')} fits none of the cells compared ({', '.join(cells)}).")
    out = []
    for cell in cells:
        own = {k: v for k, v in options.items() if k in registry.get(cell).option_fields()}
        cfg = ModelConfig(**{**vars(base), "cell": cell, "options": own, "vocab_size": vocab_size}).validate()
        note = ""
        if params is not None:
            hidden, note = size_for(cfg, params)
            cfg = ModelConfig(**{**vars(cfg), "hidden": hidden})
        out.append((ModelConfig(**{**vars(cfg), "vocab_size": 0}), note))
    return out


def gradient_reach(model: Any, ids: Any) -> tuple[int | None, int]:
    """Steps back at which |dL_T/dh_t| (the top layer) has fallen 1000x, from the mean norm over
    GRAD_WINDOWS windows of the ids; and the span measured (None: not within it)."""
    from .inspect.stats import reach
    from .inspect.trace import gradient_flow_ids

    n = min(GRAD_TOKENS, len(ids))
    if n < 3:
        return None, 0
    starts = np.linspace(0, len(ids) - n, GRAD_WINDOWS).astype(np.int64)
    flows = [gradient_flow_ids(model, np.asarray(ids[int(s) : int(s) + n]).astype(np.int64).tolist())["h"][-1] for s in starts]
    return reach(np.mean(flows, axis=0)), n - 2


@dataclass(frozen=True)
class DependencyGradient:
    """The gradient through time at a long-range corpus's own scale: the loss of characters
    that need memory (a copied letter, a closer), back to where their source stood."""

    distance: int  # the mean dependency, in steps
    ratio: float  # |dL_T/dh_(T-distance)| / |dL_T/dh_T|, top layer, mean over the windows
    reach: int | None  # steps back at which it has fallen 1000x; None: not within span
    span: int


def dependency_gradient(model: Any, ids: Any, text: str, gen: Any, windows: int = GRAD_WINDOWS) -> DependencyGradient | None:
    """`gradient_reach` with its windows ending on characters that need memory, each as long
    as 3x the mean dependency (at least GRAD_TOKENS): how far back the gradient of the
    loss that needs memory reaches, and how much of it is left at the mean dependency."""
    from .inspect.stats import reach
    from .inspect.trace import gradient_flow_ids

    mean, _ = gen.distances()
    span = max(GRAD_TOKENS, int(3 * mean))
    try:
        _, dist = gen.walk(text)
    except ValueError:
        return None
    ends = np.flatnonzero(dist[: len(ids)] > 0)
    ends = ends[ends >= span]
    if len(ends) == 0:
        return None
    picks = ends[np.linspace(0, len(ends) - 1, windows).astype(np.int64)]
    ids = np.asarray(ids).astype(np.int64)
    flows = [gradient_flow_ids(model, ids[int(e) - span : int(e) + 1].tolist())["h"][-1] for e in picks]  # (span,) each
    g = np.mean(flows, axis=0)[::-1]  # by distance back from the answer's input
    d = min(max(int(round(mean)) - 1, 1), len(g) - 1)  # h(T) has read the character before the answer
    return DependencyGradient(d, float(g[d] / g[0]) if g[0] > 0 else 0.0, reach(np.mean(flows, axis=0)), span)


def longrange_gradient(model: Any, data: DataConfig, corpus: Any) -> dict[str, Any]:
    """On a built-in long-range corpus, `dependency_gradient` as row notes (none elsewhere)."""
    from .data import longrange

    if len(data.paths) != 1 or not longrange.is_longrange(data.paths[0]) or Path(data.paths[0]).exists():
        return {}
    gen = longrange.parse(data.paths[0])
    g = dependency_gradient(model, corpus.val, longrange.text_from_ids(corpus.val, corpus.tokenizer), gen)
    return {} if g is None else {"dependency_gradient": {"distance": g.distance, "ratio": g.ratio, "reach": g.reach, "span": g.span}}


def free_running(model: Any, corpus: Any, tcfg: TrainConfig, device: torch.device) -> dict[str, float]:
    """A Jordan net's validation loss with the known previous target fed back and with its own
    output fed back (bits/char): their difference is the exposure bias."""
    from .models.jordan import feeding
    from .tasks.lm import evaluate

    tok = corpus.tokenizer
    lengths = torch.from_numpy(tok.char_lengths()).to(device, torch.float64)
    eos = tok.eos_id if tcfg.doc_state == "reset" else None
    out = {}
    for mode in ("target", "model"):
        with feeding(model, mode):
            _, bpc, _, _ = evaluate(model, corpus.val, lengths, tcfg.final_eval_tokens, tcfg.batch_size, tcfg.seq_len, eos, device)
        out[f"{mode}_fed_bpc"] = bpc
    out["exposure_bias_bpc"] = out["model_fed_bpc"] - out["target_fed_bpc"]
    return out


class _Last(BaseSink):
    """Keeps a run's last evaluation and its log lines."""

    def __init__(self) -> None:
        self.eval: EvalEvent | None = None
        self.messages: list[str] = []

    def on_eval(self, e: EvalEvent) -> None:
        self.eval = e

    def on_message(self, e: MessageEvent) -> None:
        self.messages.append(e.text)


def train_and_measure(
    cfg: ModelConfig, note: str, data: DataConfig, tcfg: TrainConfig, corpus: Any, run_dir: Path, root: Path,
    stop: threading.Event, sinks: list[Any] = (),  # type: ignore[assignment]
) -> Row:  # fmt: skip
    """Train one kind as an ordinary run, then measure it."""
    from .tasks.generate import eos_text, sample_text

    p = plan.new_run(data, cfg, tcfg, root, out_dir=run_dir)
    sink = _Last()
    trainer = plan.trainer(p, [sink, *sinks], stop, corpus)
    result = trainer.run()
    model = trainer.model.eval()
    notes: dict[str, Any] = {"note": note} if note else {}
    notes.update({"log": sink.messages} if sink.messages else {})
    if cfg.cell == "jordan":
        notes.update(free_running(model, corpus, tcfg, trainer.device))
    ids = corpus.val if len(corpus.val) > GRAD_TOKENS else corpus.train
    reach_, span = gradient_reach(model, ids)
    notes.update(longrange_gradient(model, data, corpus))
    gen = torch.Generator().manual_seed(tcfg.seed)
    text = sample_text(model, corpus.tokenizer, SampleConfig(length=SAMPLE_CHARS, temperature=0.8, seed=tcfg.seed), gen, eos_text(data.doc_sep))
    ev = sink.eval
    return Row(
        "model", cfg.cell, result.final_val_bpc, model.num_params(trainable=True), model.num_params(),
        ev.chars_per_s if ev is not None else None, result.step, result.final_val_loss, reach_, span, text,
        str(result.run_dir), trainer.model_cfg.summary(), notes,
    )  # fmt: skip


def ngram_rows(corpus: Any) -> list[Row]:
    from .baselines.ngram import reference

    t = time.monotonic()
    _, scores = reference(corpus.train, corpus.val, corpus.tokenizer)
    took = time.monotonic() - t
    names = {1: "unigram", 2: "bigram", 3: "trigram"}
    return [Row("ngram", names.get(s.order, f"{s.order}-gram"), s.bits_per_char, val_loss=s.nats_per_token,
                notes={"order": s.order, "smoothing": "interpolated Kneser-Ney", "fitted_s": round(took, 2)}) for s in scores]  # fmt: skip


def longrange_rows(data: DataConfig, corpus: Any, seq_len: int) -> list[Row]:
    """The generator's own bits/char and limited-memory bounds, when the corpus is a built-in long-range one
    (with its settings: longrange-copy:gap=200): no memory, 4 characters, 32 and the TBPTT window."""
    from .data import longrange

    if len(data.paths) != 1 or not longrange.is_longrange(data.paths[0]) or Path(data.paths[0]).exists():
        return []
    gen = longrange.parse(data.paths[0])
    try:
        ref = longrange.reference(gen, longrange.text_from_ids(corpus.val, corpus.tokenizer), memory=tuple(sorted({0, 4, 32, seq_len})))
    except ValueError:  # split or read another way than the generator writes: no exact figures
        return []
    rows = [Row("reference", "perfect", ref.perfect, notes={"what": "the generator's own bits/char on the validation text"})]
    for k, bpc in sorted(ref.memory.items(), reverse=True):
        what = {0: "no memory: every remembered character guessed", 4: "what a 5-gram sees"}.get(k, "a 32-step window")
        what = "the TBPTT window, --seq-len" if k == seq_len else what
        name = "no memory" if k == 0 else f"memory {k}"
        rows.append(Row("reference", name, bpc, notes={"what": f"the best any model remembering {k} characters can do ({what})"}))
    return rows
