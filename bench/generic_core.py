"""The generic unrolled core against the fused PyTorch module, training the same model.

Kinds without a fused PyTorch module (leaky units, reservoirs, ...) train on
models/core.py's generic core: every timestep's input projection in one matrix
product before the time loop, then the kind's step function over time. This
trains one model (a 2x256 vanilla RNN by default) through charrnn's own Trainer
both ways, with `FusedCore.use_fused` switched off for the unrolled runs. Runs
alternate; medians of chars/s are compared.

    python bench/generic_core.py [--cell rnn] [--steps 150] [--repeats 5]
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import SHAKESPEARE, header, median, words_corpus  # noqa: E402

from charrnn.config import DataConfig, ModelConfig, TrainConfig  # noqa: E402
from charrnn.data.corpus import prepare  # noqa: E402
from charrnn.models.core import FusedCore  # noqa: E402
from charrnn.training.trainer import Trainer  # noqa: E402


def run(corpus, data_cfg: DataConfig, args, out: Path, fused: bool) -> float:
    FusedCore.use_fused = fused
    try:
        model = ModelConfig(cell=args.cell, layers=args.layers, hidden=args.hidden, embed=args.embed, dropout=args.dropout)
        cfg = TrainConfig(
            seq_len=args.seq_len, batch_size=args.batch_size, steps=args.steps, eval_every=10**9,
            final_eval_tokens=64, sample_chars=0, precision="fp32", seed=args.seed,
        )  # fmt: skip
        t = Trainer(model, data_cfg, cfg, corpus, out)
        t0 = time.perf_counter()
        t.run()
        return args.steps * args.batch_size * args.seq_len / (time.perf_counter() - t0)
    finally:
        FusedCore.use_fused = True


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--corpus", type=Path, default=SHAKESPEARE)
    p.add_argument("--cell", default="rnn", choices=["rnn", "lstm", "gru"])
    p.add_argument("--layers", type=int, default=2)
    p.add_argument("--hidden", type=int, default=256)
    p.add_argument("--embed", type=int, default=64)
    p.add_argument("--dropout", type=float, default=0.1)
    p.add_argument("--batch-size", type=int, default=32)
    p.add_argument("--seq-len", type=int, default=32)
    p.add_argument("--steps", type=int, default=150)
    p.add_argument("--repeats", type=int, default=5)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--threads", type=int, default=None)
    args = p.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    header("the generic unrolled core against the fused module (training throughput)")
    with tempfile.TemporaryDirectory() as tmp:
        corpus_path = args.corpus if args.corpus.exists() else words_corpus(Path(tmp) / "words.txt", 1_000_000)
        data_cfg = DataConfig(paths=(str(corpus_path),))
        corpus = prepare(data_cfg, Path(tmp) / "ck")
        print(f"corpus: {corpus_path}; model: {args.cell} {args.layers}x{args.hidden}, embedding {args.embed}, "
              f"batch {args.batch_size} x {args.seq_len}, fp32, {args.steps} steps a run, {args.repeats} runs each, alternating")  # fmt: skip
        run(corpus, data_cfg, args, Path(tmp) / "warm", fused=True)  # warm up allocators and kernels
        fused, unrolled = [], []
        for r in range(args.repeats):
            fused.append(run(corpus, data_cfg, args, Path(tmp) / f"f{r}", fused=True))
            unrolled.append(run(corpus, data_cfg, args, Path(tmp) / f"u{r}", fused=False))
            print(f"  run {r + 1}: fused {fused[-1]:,.0f} chars/s, generic unrolled {unrolled[-1]:,.0f} chars/s")
    print(f"fused nn.{args.cell.upper()}:    {median(fused):,.0f} chars/s (median)")
    print(f"generic unrolled core: {median(unrolled):,.0f} chars/s (median)")
    print(f"ratio unrolled / fused: {median(unrolled) / median(fused):.3f}  (target >= 0.6)")


if __name__ == "__main__":
    main()
