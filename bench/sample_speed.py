"""Sampling speed: chars/s for 100 and 5,000 generated characters, and the step paths.

Generating one token at a time is latency-bound: what matters is the cost of one
step of a batch-1 model. Measured here, with the same weights:
  - nn.LSTM called once per step (oneDNN on, PyTorch's default),
  - nn.LSTM called once per step with oneDNN switched off,
  - charrnn's per-step cell functions (model.step_layers), which `charrnn sample` uses,
and then the whole `generate()` (sampling, decoding, stop handling) for 100 and
5,000 characters: the cost per character must stay flat as the text grows.

    python bench/sample_speed.py [--checkpoint RUN] [--repeats 5]
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import header, median  # noqa: E402

from charrnn.training import checkpoint  # noqa: E402
from charrnn.config import ModelConfig, SampleConfig  # noqa: E402
from charrnn.models.lm import CharRNN  # noqa: E402
from charrnn.tasks.generate import generate  # noqa: E402
from charrnn.data.tokenizer import CharTokenizer  # noqa: E402


def fused_steps(m: CharRNN, n: int, onednn: bool) -> float:
    idx = torch.zeros(1, 1, dtype=torch.long)
    state = m.init_state(1)
    with torch.inference_mode(), torch.backends.mkldnn.flags(enabled=onednn):
        t0 = time.perf_counter()
        for _ in range(n):
            logits, _, state = m(idx, state)
    return n / (time.perf_counter() - t0)


def cell_steps(m: CharRNN, n: int) -> float:
    idx = torch.zeros(1, dtype=torch.long)
    layers = m.split_state(m.init_state(1))
    with torch.inference_mode():
        t0 = time.perf_counter()
        for _ in range(n):
            logits, layers = m.step_layers(idx, layers)
    return n / (time.perf_counter() - t0)


def generate_speed(m: CharRNN, tok, n: int) -> float:
    cfg = SampleConfig(length=n, seed=0, stop_at_eos=False, temperature=1.0)
    t0 = time.perf_counter()
    text = "".join(generate(m, tok, cfg))
    return len(text) / (time.perf_counter() - t0)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--checkpoint", default=None, help="a run or checkpoint (default: a fresh 2x256 LSTM, 65 characters)")
    p.add_argument("--repeats", type=int, default=5)
    p.add_argument("--threads", type=int, default=None)
    args = p.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    header("sampling speed")
    if args.checkpoint:
        path = checkpoint.find(args.checkpoint)
        m, tok = checkpoint.model_from(checkpoint.load(path), path)
    else:
        tok = CharTokenizer("".join(chr(c) for c in range(32, 96)) + "\n")
        torch.manual_seed(0)
        m = CharRNN(ModelConfig(cell="lstm", layers=2, hidden=256, embed=64, vocab_size=tok.vocab_size)).eval()
    c = m.cfg
    print(f"model: {c.cell} {c.layers}x{c.hidden}, vocabulary {c.vocab_size}, batch 1; medians of {args.repeats} runs")
    runs: dict[str, list[float]] = {k: [] for k in ("fused", "fused-no-onednn", "cells", "gen100", "gen5000")}
    fused_steps(m, 200, True), cell_steps(m, 200)  # warm up
    for _ in range(args.repeats):
        runs["fused"].append(fused_steps(m, 1000, True))
        runs["fused-no-onednn"].append(fused_steps(m, 1000, False))
        runs["cells"].append(cell_steps(m, 1000))
        runs["gen100"].append(generate_speed(m, tok, 100))
        runs["gen5000"].append(generate_speed(m, tok, 5000))
    base = median(runs["fused"])
    print(f"nn.LSTM one step at a time (oneDNN on):   {base:>8,.0f} steps/s  1.00x")
    for key, label in (("fused-no-onednn", "nn.LSTM one step at a time, oneDNN off:"), ("cells", "charrnn per-step cells (step_layers):  ")):
        print(f"{label}  {median(runs[key]):>8,.0f} steps/s  {median(runs[key]) / base:.2f}x")
    g100, g5000 = median(runs["gen100"]), median(runs["gen5000"])
    print(f"charrnn generate(), 100 characters:       {g100:>8,.0f} chars/s  {g100 / base:.2f}x")
    print(f"charrnn generate(), 5,000 characters:     {g5000:>8,.0f} chars/s  {g5000 / base:.2f}x")
    print(f"cost per character, 5,000 vs 100: {g100 / g5000:.2f}x (flat = 1.00; generate's setup is spread over fewer characters at 100)")


if __name__ == "__main__":
    main()
