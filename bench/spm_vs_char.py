"""Sentencepiece tokens against characters: one corpus, one wall-clock budget, about one size.

A char LSTM and a sentencepiece LSTM (vocabulary about 500) train for the same
time; the subword model's hidden size is chosen so that both have about the same
parameter count (its larger embedding and output layer cost parameters). Both
are scored on the same validation characters in bits per character (total nats /
characters / ln 2), then sample on the CPU: characters of text per second.

    python bench/spm_vs_char.py [CORPUS] [--time 2m] [--vocab-size 500] [--spm-type unigram]
"""

from __future__ import annotations

import argparse
import math
import os
import statistics
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import SHAKESPEARE, header  # noqa: E402

from charrnn.config import DataConfig, ModelConfig, SampleConfig, TrainConfig, parse_duration  # noqa: E402
from charrnn.data.corpus import factory_for, prepare  # noqa: E402
from charrnn.models.lm import CharRNN  # noqa: E402
from charrnn.tasks.generate import sample_text  # noqa: E402
from charrnn.training.telemetry import EvalEvent, ListSink  # noqa: E402
from charrnn.training.trainer import Trainer  # noqa: E402


@dataclass
class Row:
    name: str
    vocab: int
    hidden: int
    params: int
    chars_per_token: float
    steps: int
    cpu_s: float  # CPU time the process got while training: on a shared machine, its share
    train_chars_per_s: float
    val_loss: float
    val_bpc: float
    tokenizer_s: float
    model: CharRNN
    tok: Any
    sample_chars_per_s: float = math.nan
    sample: str = ""


def params(cfg: ModelConfig) -> int:
    return CharRNN(cfg).num_params()


def matched_hidden(base: ModelConfig, vocab: int, target: int) -> int:
    """The hidden size (a multiple of 8) whose model with `vocab` tokens is closest to `target` parameters."""
    sizes = range(8, 4 * base.hidden + 1, 8)
    return min(sizes, key=lambda h: abs(params(ModelConfig(**{**base.__dict__, "hidden": h, "vocab_size": vocab})) - target))


def train(name: str, data: DataConfig, model: ModelConfig, tcfg: TrainConfig, root: Path, match: int | None) -> Row:
    t0 = time.perf_counter()
    factory, spec = factory_for(data)
    corpus = prepare(data, root, factory=factory, tok_spec=spec)
    tok_s = time.perf_counter() - t0
    tok = corpus.tokenizer
    model = ModelConfig(**{**model.__dict__, "vocab_size": tok.vocab_size})
    if match is not None:
        model = ModelConfig(**{**model.__dict__, "hidden": matched_hidden(model, tok.vocab_size, match)})
    sink = ListSink()
    trainer = Trainer(model, data, tcfg, corpus, root / name, sinks=[sink])
    cpu0 = time.process_time()
    result = trainer.run()
    cpu_s = time.process_time() - cpu0
    cpt = (corpus.chars_train + corpus.chars_val) / len(corpus.ids)
    # characters of corpus per second over the optimizer steps (the final evaluation not counted)
    final = [e for e in sink.events if isinstance(e, EvalEvent) and e.final]
    train_cps = final[-1].chars_per_s if final else math.nan
    m = trainer.model.to("cpu").eval()
    return Row(
        name, tok.vocab_size, model.hidden, m.num_params(), cpt, result.step, cpu_s, train_cps,
        result.final_val_loss or math.nan, result.final_val_bpc or math.nan, tok_s, m, tok,
    )  # fmt: skip


def measure_sampling(rows: list[Row], chars: int, repeats: int) -> None:
    """Characters per second of `charrnn sample`'s loop, models taking turns (so a
    burst of load elsewhere hits both), median of `repeats`."""
    for r in rows:
        sample_text(r.model, r.tok, SampleConfig(length=50, seed=1, stop_at_eos=False))  # warm up
    speeds: dict[str, list[float]] = {r.name: [] for r in rows}
    for k in range(repeats):
        for r in rows:
            t0 = time.perf_counter()
            text = sample_text(r.model, r.tok, SampleConfig(length=chars, temperature=0.8, seed=k, stop_at_eos=False))
            speeds[r.name].append(len(text) / (time.perf_counter() - t0))
            if k == 0:
                r.sample = text
    for r in rows:
        r.sample_chars_per_s = statistics.median(speeds[r.name])


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("corpus", nargs="?", default=str(SHAKESPEARE))
    p.add_argument("--time", default="2m", help="training budget for each model (90s, 3m...)")
    p.add_argument("--vocab-size", type=int, default=500)
    p.add_argument("--spm-type", default="unigram", choices=["unigram", "bpe"])
    p.add_argument("--layers", type=int, default=2)
    p.add_argument("--hidden", type=int, default=256, help="the char model's; the spm model's is matched on parameters")
    p.add_argument("--embed", type=int, default=64)
    p.add_argument("--seq-len", type=int, default=64, help="timesteps (tokens) per window, both models")
    p.add_argument("--batch-size", type=int, default=32)
    p.add_argument("--sample-chars", type=int, default=3000)
    p.add_argument("--repeats", type=int, default=3, help="sampling runs per model, taking turns; the median counts")
    p.add_argument("--threads", type=int, default=None)
    args = p.parse_args()
    if not Path(args.corpus).is_file():
        sys.exit(f"no corpus at {args.corpus}; pass the path to tinyshakespeare.txt")
    if args.threads:
        torch.set_num_threads(args.threads)
    header("sentencepiece vs characters")
    load = ", ".join(f"{x:.2f}" for x in os.getloadavg())
    print(f"load average at the start: {load} (other work on the machine slows every figure)")
    budget = parse_duration(args.time)
    tcfg = TrainConfig(
        time=args.time, seq_len=args.seq_len, batch_size=args.batch_size, eval_every=10**9,
        sample_chars=0, device="cpu", seed=1337, final_eval_tokens=10**8,
    )  # fmt: skip
    base = ModelConfig(cell="lstm", layers=args.layers, hidden=args.hidden, embed=args.embed)
    print(f"corpus: {args.corpus}; budget {budget:.0f}s of training each; batch {args.batch_size} x {args.seq_len} tokens")
    rows = []
    with tempfile.TemporaryDirectory(prefix="charrnn-bench-") as tmp:
        root = Path(tmp)
        char = train("char", DataConfig(paths=(args.corpus,)), base, tcfg, root, None)
        rows.append(char)
        spm_data = DataConfig(paths=(args.corpus,), tokenizer="spm", vocab_size=args.vocab_size, spm_type=args.spm_type)
        rows.append(train(f"spm-{args.spm_type}", spm_data, base, tcfg, root, char.params))
    measure_sampling(rows, args.sample_chars, args.repeats)

    cols = [
        ("model", lambda r: r.name), ("vocab", lambda r: f"{r.vocab}"), ("hidden", lambda r: f"{r.hidden}"),
        ("params", lambda r: f"{r.params:,}"), ("chars/token", lambda r: f"{r.chars_per_token:.3f}"),
        ("steps", lambda r: f"{r.steps:,}"), ("CPU s", lambda r: f"{r.cpu_s:.0f}"),
        ("train chars/s", lambda r: f"{r.train_chars_per_s:,.0f}"),
        ("val nats/token", lambda r: f"{r.val_loss:.4f}"), ("val bits/char", lambda r: f"{r.val_bpc:.4f}"),
        ("sample chars/s", lambda r: f"{r.sample_chars_per_s:,.0f}"), ("tokenizer+encode s", lambda r: f"{r.tokenizer_s:.1f}"),
    ]  # fmt: skip
    print()
    print("| " + " | ".join(c for c, _ in cols) + " |")
    print("|" + "|".join("---" for _ in cols) + "|")
    for r in rows:
        print("| " + " | ".join(f(r) for _, f in cols) + " |")
    c, s = rows
    print()
    print(
        f"spm / char: bits/char {s.val_bpc / c.val_bpc:.3f}x, "
        f"sampling chars/s {s.sample_chars_per_s / c.sample_chars_per_s:.2f}x, "
        f"training chars/s {s.train_chars_per_s / c.train_chars_per_s:.2f}x, parameters {s.params / c.params:.3f}x"
    )
    print(f"load average at the end: {', '.join(f'{x:.2f}' for x in os.getloadavg())}")
    for r in rows:
        print(f"\n{r.name} sample (temperature 0.8, first 300 chars):\n{r.sample[:300]}")


if __name__ == "__main__":
    main()
