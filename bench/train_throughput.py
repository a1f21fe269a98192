"""Training throughput: charrnn's loop against a plain PyTorch loop, same model and batch.

The plain loop is what one writes by hand: nn.Embedding -> nn.LSTM -> nn.Linear,
contiguous streams from a tensor, carried and detached state, AdamW, clipping.
charrnn's loop adds what the product needs (memmapped batches, the schedule, the
non-finite check, telemetry). Runs alternate, medians of chars/s are compared.

    python bench/train_throughput.py [--corpus FILE] [--steps 150] [--repeats 5]
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

import torch
from torch import nn

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import SHAKESPEARE, header, median, words_corpus  # noqa: E402

from charrnn.config import DataConfig, ModelConfig, TrainConfig  # noqa: E402
from charrnn.data.corpus import prepare  # noqa: E402
from charrnn.training.trainer import Trainer  # noqa: E402


class Plain(nn.Module):
    def __init__(self, V: int, E: int, H: int, L: int, cell: str):
        super().__init__()
        self.emb = nn.Embedding(V, E)
        self.rnn = {"lstm": nn.LSTM, "gru": nn.GRU, "rnn": nn.RNN}[cell](E, H, L, batch_first=True)
        self.out = nn.Linear(H, V)

    def forward(self, x, h):
        y, h = self.rnn(self.emb(x), h)
        return self.out(y), h


def plain_run(ids: torch.Tensor, V: int, args) -> float:
    """chars/s of a hand-written loop over `args.steps` steps."""
    torch.manual_seed(0)
    B, T = args.batch_size, args.seq_len
    m = Plain(V, args.embed, args.hidden, args.layers, args.cell)
    opt = torch.optim.AdamW(m.parameters(), lr=2e-3)
    n = (len(ids) // B) * B
    data = ids[:n].view(B, -1)  # (B, N/B): B contiguous streams
    h = None
    dtype = {"fp32": None, "bf16": torch.bfloat16}[args.precision]
    t0 = time.perf_counter()
    for i in range(args.steps):
        j = (i * T) % (data.shape[1] - T - 1)
        x, y = data[:, j : j + T], data[:, j + 1 : j + T + 1]
        with torch.autocast("cpu", dtype=dtype, enabled=dtype is not None):
            logits, h = m(x, h)
            loss = nn.functional.cross_entropy(logits.reshape(-1, V).float(), y.reshape(-1))
        h = tuple(s.detach().float() for s in h) if isinstance(h, tuple) else h.detach().float()
        opt.zero_grad(set_to_none=True)
        loss.backward()
        nn.utils.clip_grad_norm_(m.parameters(), 1.0)
        opt.step()
    loss.item()
    return args.steps * B * T / (time.perf_counter() - t0)


def charrnn_run(corpus, data_cfg: DataConfig, args, out: Path) -> float:
    model = ModelConfig(cell=args.cell, layers=args.layers, hidden=args.hidden, embed=args.embed, dropout=0.0)  # as the plain loop
    cfg = TrainConfig(
        seq_len=args.seq_len, batch_size=args.batch_size, steps=args.steps, eval_every=10**9,
        final_eval_tokens=64, sample_chars=0, precision=args.precision,
    )  # fmt: skip
    t = Trainer(model, data_cfg, cfg, corpus, out)
    t0 = time.perf_counter()
    t.run()  # includes one final evaluation of 64 tokens and one checkpoint write
    return args.steps * args.batch_size * args.seq_len / (time.perf_counter() - t0)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--corpus", type=Path, default=SHAKESPEARE)
    p.add_argument("--steps", type=int, default=150)
    p.add_argument("--repeats", type=int, default=5)
    p.add_argument("--cell", default="lstm")
    p.add_argument("--layers", type=int, default=2)
    p.add_argument("--hidden", type=int, default=256)
    p.add_argument("--embed", type=int, default=64)
    p.add_argument("--batch-size", type=int, default=32)
    p.add_argument("--seq-len", type=int, default=64)
    p.add_argument("--precision", default="fp32", choices=["fp32", "bf16"], help="both loops (CPU autocast for bf16)")
    p.add_argument("--threads", type=int, default=None)
    args = p.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    header("training throughput: charrnn vs a plain PyTorch loop")
    with tempfile.TemporaryDirectory() as tmp:
        corpus_path = args.corpus if args.corpus.exists() else words_corpus(Path(tmp) / "words.txt", 1_000_000)
        data_cfg = DataConfig(paths=(str(corpus_path),))
        corpus = prepare(data_cfg, Path(tmp) / "ck")
        ids = torch.from_numpy(corpus.train.astype("int64"))
        V = corpus.tokenizer.vocab_size
        print(f"corpus: {corpus_path} ({len(ids):,} training tokens, vocabulary {V})")
        print(f"model: {args.cell} {args.layers}x{args.hidden}, embedding {args.embed}, batch {args.batch_size} x {args.seq_len}, "
              f"{args.steps} steps a run, {args.repeats} runs each, alternating, {args.precision}")  # fmt: skip
        plain_run(ids, V, args)  # warm up allocators and oneDNN kernels
        plain, ours = [], []
        for r in range(args.repeats):
            plain.append(plain_run(ids, V, args))
            ours.append(charrnn_run(corpus, data_cfg, args, Path(tmp) / f"run{r}"))
            print(f"  run {r + 1}: plain {plain[-1]:,.0f} chars/s, charrnn {ours[-1]:,.0f} chars/s")
    ratio = median(ours) / median(plain)
    print(f"plain PyTorch loop: {median(plain):,.0f} chars/s (median)")
    print(f"charrnn train loop: {median(ours):,.0f} chars/s (median)")
    print(f"ratio charrnn / plain: {ratio:.3f}  (target >= 0.95)")


if __name__ == "__main__":
    main()
