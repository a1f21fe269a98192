"""Training throughput of the chapter's other cells against the fused nn.RNN, same size.

Every kind trains through charrnn's own loop (Trainer) at the same layers x hidden,
embedding, batch and window; runs alternate between kinds, and the median chars/s
of each is divided by the vanilla RNN's (`--cell rnn`, PyTorch's fused nn.RNN):

- leaky: leaky units, delays 1 (the issue's target: >= 0.6x the fused nn.RNN);
- leaky 1,4,16: with skip connections through time;
- jordan (teacher forcing): every timestep independent, no loop over time (target: faster than the RNN);
- jordan --feedback model: the model's own output fed back, one step at a time.

An echo state network is left out: its first step is a one-pass ridge fit, not a training step.

    python bench/kind_throughput.py [--corpus FILE] [--steps 40] [--repeats 3]
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
from charrnn.training.trainer import Trainer  # noqa: E402

KINDS = {  # label: (cell, options)
    "rnn (fused nn.RNN)": ("rnn", {}),
    "leaky": ("leaky", {}),
    "leaky, delays 1,4,16": ("leaky", {"delays": (1, 4, 16)}),
    "jordan, teacher forcing": ("jordan", {"feedback": "target"}),
    "jordan, --feedback model": ("jordan", {"feedback": "model"}),
}


def run(label: str, corpus, data_cfg: DataConfig, args, out: Path) -> float:
    cell, options = KINDS[label]
    model = ModelConfig(cell=cell, layers=args.layers, hidden=args.hidden, embed=args.embed, dropout=0.0, options=options)
    cfg = TrainConfig(
        seq_len=args.seq_len, batch_size=args.batch_size, steps=args.steps, eval_every=10**9,
        final_eval_tokens=64, sample_chars=0, precision="fp32", device="cpu", seed=0,
    )  # fmt: skip
    t = Trainer(model, data_cfg, cfg, corpus, out)
    t0 = time.perf_counter()
    t.run()  # includes one final evaluation of 64 tokens and one checkpoint write, the same for every kind
    return args.steps * args.batch_size * args.seq_len / (time.perf_counter() - t0)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--corpus", type=Path, default=SHAKESPEARE)
    p.add_argument("--steps", type=int, default=40)
    p.add_argument("--repeats", type=int, default=3)
    p.add_argument("--layers", type=int, default=2)
    p.add_argument("--hidden", type=int, default=256)
    p.add_argument("--embed", type=int, default=64)
    p.add_argument("--batch-size", type=int, default=32)
    p.add_argument("--seq-len", type=int, default=64)
    p.add_argument("--threads", type=int, default=None)
    args = p.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    header("training throughput of the kinds against the fused nn.RNN")
    with tempfile.TemporaryDirectory() as tmp:
        corpus_path = args.corpus if args.corpus.exists() else words_corpus(Path(tmp) / "words.txt", 1_000_000)
        data_cfg = DataConfig(paths=(str(corpus_path),))
        corpus = prepare(data_cfg, Path(tmp) / "ck")
        print(f"corpus: {corpus_path} ({len(corpus.train):,} training tokens, vocabulary {corpus.tokenizer.vocab_size})")
        print(f"model: {args.layers}x{args.hidden}, embedding {args.embed}, batch {args.batch_size} x {args.seq_len}, fp32, "
              f"{args.steps} steps a run, {args.repeats} runs each, alternating")  # fmt: skip
        speeds: dict[str, list[float]] = {k: [] for k in KINDS}
        for k in KINDS:  # warm up allocators and kernels, not counted
            run(k, corpus, data_cfg, argparse.Namespace(**{**vars(args), "steps": 3}), Path(tmp) / "warm" / k)
        for r in range(args.repeats):
            for k in KINDS:
                speeds[k].append(run(k, corpus, data_cfg, args, Path(tmp) / f"run{r}" / k))
            print(f"  run {r + 1}: " + ", ".join(f"{k} {v[-1]:,.0f}" for k, v in speeds.items()) + " chars/s")
    base = median(speeds["rnn (fused nn.RNN)"])
    print(f"{'kind':<26} {'chars/s (median)':>17} {'/ rnn':>7}")
    for k, v in speeds.items():
        print(f"{k:<26} {median(v):>17,.0f} {median(v) / base:>7.2f}")
    print("targets: leaky >= 0.60x the fused nn.RNN; jordan with teacher forcing > 1.00x")


if __name__ == "__main__":
    main()
