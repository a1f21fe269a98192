"""Sampling: the loop's cost over the bare step, and N samples as one batch against one stream.

Two figures of issue 16, each against a baseline measured in the same run:
  - the sampling loop: generate() (picking with temperature / top-k / top-p, stop
    strings, decoding) in characters a second, against the bare batch-1 step it
    calls (model.step_layers) in steps a second; target within 10% (>= 0.90x);
  - batched sampling: generate_batch() of N streams (`charrnn sample --num N`) in
    characters a second of all N together, against one stream; target >= 0.8 N x.
    Beside it, the ceiling: the bare step for N rows against the bare step for one
    (tokens a second), which no sampling loop can pass; on a CPU a batch of 32 rows
    makes the step compute-bound, and the ceiling sits far below 0.8 N.

    python bench/sample_batch.py [--repeats 5] [--length 1000] [--device cpu] [--max-n 32] [--entropy 1.5] [--clock wall|cpu]

The model is untrained, its output layer scaled so that its next-token distribution
has about `--entropy` bits (1.5: a character model trained on English prose): an
untrained one is uniform (6 bits), under which a top-k/top-p draw falls outside the
allowed set far more often than a trained model's (sampler.py works the allowed set
out only then), and its cost would not be a trained model's. The step's arithmetic
does not depend on the scale.
"""

from __future__ import annotations

import argparse
import math
import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import header, median  # noqa: E402

from charrnn.config import ModelConfig, SampleConfig  # noqa: E402
from charrnn.data.tokenizer import CharTokenizer  # noqa: E402
from charrnn.models.lm import CharRNN  # noqa: E402
from charrnn.tasks.generate import generate, generate_batch  # noqa: E402


clock = time.perf_counter  # --clock cpu: time.process_time, this process's CPU seconds


def bare_steps(m: CharRNN, n: int, device: torch.device, rows: int = 1) -> float:
    """Steps a second of the bare step for `rows` streams (tokens a second: rows times that)."""
    idx = torch.zeros(rows, dtype=torch.long, device=device)
    layers = m.split_state(m.init_state(rows))
    with torch.inference_mode():
        t0 = clock()
        for _ in range(n):
            logits, layers = m.step_layers(idx, layers)
        if device.type == "cuda":
            torch.cuda.synchronize()
    return n / (clock() - t0)


def sharpen(m: CharRNN, bits: float, device: torch.device) -> float:
    """Scale the output layer so that softmax(logits) over a random text has about `bits`
    bits of entropy on average (bisection on the scale); the entropy reached."""
    with torch.inference_mode():
        out, _ = m.outputs(torch.randint(m.cfg.vocab_size, (1, 400), generator=torch.Generator().manual_seed(0)).to(device))
        logits = m.head(out)[0].float()

        def entropy(c: float) -> float:
            logp = torch.log_softmax(logits * c, -1)
            return float(-(logp.exp() * logp).sum(-1).mean()) / math.log(2)

        lo, hi = 1.0, 1e4
        for _ in range(60):
            mid = math.sqrt(lo * hi)
            lo, hi = (mid, hi) if entropy(mid) > bits else (lo, mid)
        m.head.weight.mul_(lo)
        m.head.bias.mul_(lo)
    return entropy(lo)


def loop_speed(m: CharRNN, tok, cfg: SampleConfig) -> float:
    t0 = clock()
    text = "".join(generate(m, tok, cfg, torch.Generator().manual_seed(0)))
    return len(text) / (clock() - t0)


def batch_speed(m: CharRNN, tok, cfg: SampleConfig, n: int) -> float:
    t0 = clock()
    texts = generate_batch(m, tok, cfg, n, torch.Generator().manual_seed(0))
    return sum(map(len, texts)) / (clock() - t0)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--repeats", type=int, default=5)
    p.add_argument("--length", type=int, default=1000)
    p.add_argument("--layers", type=int, default=2)
    p.add_argument("--hidden", type=int, default=256)
    p.add_argument("--device", default="cpu")
    p.add_argument("--max-n", type=int, default=32)
    p.add_argument("--threads", type=int, default=None)
    p.add_argument("--entropy", type=float, default=1.5, help="bits of the next-token distribution (0: leave the model as it is)")
    p.add_argument("--clock", choices=("wall", "cpu"), default="wall",
                   help="cpu: this process's CPU seconds (with one thread, far steadier than wall time on a shared machine)")
    args = p.parse_args()
    global clock
    if args.clock == "cpu":
        clock = time.process_time
    if args.threads:
        torch.set_num_threads(args.threads)
    header("sampling: loop over bare step; N streams as one batch over one stream")
    device = torch.device(args.device)
    tok = CharTokenizer("".join(chr(c) for c in range(32, 96)) + "\n")
    torch.manual_seed(0)
    m = CharRNN(ModelConfig(cell="lstm", layers=args.layers, hidden=args.hidden, embed=64, vocab_size=tok.vocab_size)).to(device).eval()
    bits = sharpen(m, args.entropy, device) if args.entropy > 0 else float("nan")
    print(f"model: lstm {args.layers}x{args.hidden}, vocabulary {tok.vocab_size}, {device}, next-token entropy {bits:.2f} bits; "
          f"{args.length} characters a sample; medians of {args.repeats} runs, alternating")  # fmt: skip
    plain = SampleConfig(length=args.length, temperature=0.8, stop_at_eos=False)
    full = SampleConfig(length=args.length, temperature=0.8, top_k=40, top_p=0.95, stop=("\n\n\n", "THE END"), stop_at_eos=False)
    ns = [n for n in (1, 2, 4, 8, 16, 32, 64) if n <= args.max_n]
    runs: dict[str, list[float]] = {k: [] for k in ("bare", "plain", "full", *[f"n{n}" for n in ns], *[f"b{n}" for n in ns])}
    bare_steps(m, 200, device), loop_speed(m, tok, plain), batch_speed(m, tok, plain, 4)  # warm up
    for _ in range(args.repeats):
        runs["bare"].append(bare_steps(m, args.length, device))
        runs["plain"].append(loop_speed(m, tok, plain))
        runs["full"].append(loop_speed(m, tok, full))
        for n in ns:
            runs[f"n{n}"].append(batch_speed(m, tok, plain, n))
            runs[f"b{n}"].append(n * bare_steps(m, args.length, device, n))
    base = median(runs["bare"])
    print(f"\nbare step, batch 1 (model.step_layers):          {base:>9,.0f} steps/s  1.00x")
    for key, what in (("plain", "generate(), temperature 0.8:                    "), ("full", "generate(), + top-k 40, top-p 0.95, 2 stop strings:")):
        each = sorted(v / b for v, b in zip(runs[key], runs["bare"]))  # each repeat against its own bare step
        print(f"{what} {median(runs[key]):>6,.0f} chars/s  {median(runs[key]) / base:.3f}x; run by run {median(each):.3f}x "
              f"({each[0]:.3f}-{each[-1]:.3f})")
    one, bare_one = median(runs["n1"]), median(runs["b1"])
    print("\nN streams as one batch; the ceiling: the bare step for N rows, in tokens/s, over the bare step for one")
    print(f"{'N':>4} {'chars/s (all N)':>16} {'x one stream':>13} {'/ N':>6} {'ceiling':>9}")
    for n in ns:
        v = median(runs[f"n{n}"])
        print(f"{n:>4} {v:>16,.0f} {v / one:>13.2f} {v / one / n:>6.2f} {median(runs[f'b{n}']) / bare_one:>8.2f}x")


if __name__ == "__main__":
    main()
