"""What looking inside costs: the per-step trace against the fused forward, on one text.

    python bench/trace_cost.py [--cells lstm,gru,rnn] [--layers 2] [--hidden 256] [--chars 256] [--threads N]

For each cell, over the same text of --chars characters (batch 1, eval mode, CPU):
  fused      model(idx) under no_grad: the fused nn.LSTM / nn.GRU / nn.RNN, the baseline
  trace      model.trace(idx) under no_grad: cells.py one step and one layer at a time, every signal kept
  acts       probe.activations(): the trace plus softmax and the copy to numpy, what `charrnn inspect` reads
  gradflow   probe.gradient_flow(): the trace under autograd and one backward to every h_t (and c_t)
Medians over --repeats after warm-up; the ratio trace/fused is measured in the same run.
The target of issue 4: a 256-character trace of a 2x256 LSTM well under 100 ms on a CPU.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from _common import header  # noqa: E402
from charrnn.config import ModelConfig  # noqa: E402
from charrnn.models.lm import CharRNN  # noqa: E402
from charrnn.inspect.trace import activations, gradient_flow  # noqa: E402
from charrnn.data.tokenizer import CharTokenizer  # noqa: E402

TARGET_MS = 100.0


def median_ms(fn, repeats: int, warmup: int = 3) -> float:
    for _ in range(warmup):
        fn()
    times = []
    for _ in range(repeats):
        t = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t)
    return 1e3 * statistics.median(times)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--cells", default="lstm,gru,rnn")
    ap.add_argument("--layers", type=int, default=2)
    ap.add_argument("--hidden", type=int, default=256)
    ap.add_argument("--embed", type=int, default=64)
    ap.add_argument("--vocab", type=int, default=100)
    ap.add_argument("--chars", type=int, default=256)
    ap.add_argument("--repeats", type=int, default=15)
    ap.add_argument("--threads", type=int, default=None, help="torch CPU threads (default: torch's choice)")
    args = ap.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)

    header("Inspector: trace cost (issue 4)")
    load = ", ".join(f"{x:.2f}" for x in os.getloadavg()) if hasattr(os, "getloadavg") else "?"
    print(f"load average at the start: {load} (other work on the machine slows every column)")
    print(f"text: {args.chars} characters, batch 1; model {args.layers}x{args.hidden}, embedding {args.embed}, vocabulary {args.vocab}; "
          f"medians of {args.repeats}")  # fmt: skip
    print()
    head = f"{'cell':5} {'fused ms':>9} {'trace ms':>9} {'trace/fused':>12} {'trace us/char':>14} {'acts ms':>8} {'gradflow ms':>12}"
    print(head)
    print("-" * len(head))

    chars = [chr(c) for c in range(0x21, 0x21 + args.vocab)]
    tok = CharTokenizer(chars)
    g = torch.Generator().manual_seed(0)
    ids = torch.randint(args.vocab, (1, args.chars), generator=g)
    text = tok.decode(ids[0].tolist())
    verdict = None
    for cell in args.cells.split(","):
        torch.manual_seed(0)
        model = CharRNN(ModelConfig(cell=cell, layers=args.layers, hidden=args.hidden, embed=args.embed, vocab_size=args.vocab)).eval()
        with torch.no_grad():
            fused = median_ms(lambda m=model: m(ids), args.repeats)
            trace = median_ms(lambda m=model: m.trace(ids), args.repeats)
        acts = median_ms(lambda m=model: activations(m, tok, text), args.repeats)
        flow = median_ms(lambda m=model: gradient_flow(m, tok, text), max(3, args.repeats // 3), warmup=1)
        print(f"{cell:5} {fused:9.1f} {trace:9.1f} {trace / fused:12.2f} {1e3 * trace / args.chars:14.0f} {acts:8.1f} {flow:12.1f}")
        if cell == "lstm":
            verdict = trace
    if verdict is not None:
        ok = "yes" if verdict < TARGET_MS else "NO"
        print(f"\n{args.chars}-character trace of a {args.layers}x{args.hidden} LSTM: {verdict:.1f} ms (target < {TARGET_MS:.0f} ms: {ok})")


if __name__ == "__main__":
    main()
