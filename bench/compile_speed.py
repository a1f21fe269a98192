"""torch.compile against eager for charrnn's training step, on this CPU.

One training step as the loop does it (forward with the carried state, mean
cross-entropy, backward, clipping, AdamW), on random token ids, the state carried
and detached. The eager model and `torch.compile(model)` take turns; steps/s after
a warm-up, medians compared. The compile time is reported apart.

    python bench/compile_speed.py [--steps 100] [--repeats 3] [--precision fp32|bf16]
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import header, median  # noqa: E402

from charrnn.config import ModelConfig  # noqa: E402
from charrnn.models.lm import CharRNN  # noqa: E402


def steps_per_s(model, fwd, args, warmup: int) -> tuple[float, float]:
    """(steps/s over args.steps, seconds of the warm-up steps)."""
    torch.manual_seed(0)
    B, T, V = args.batch_size, args.seq_len, args.vocab
    opt = torch.optim.AdamW(model.parameters(), lr=1e-3)
    dtype = {"fp32": None, "bf16": torch.bfloat16}[args.precision]
    data = torch.randint(V, (B, 4096))
    state = None

    def step(i: int) -> None:
        nonlocal state
        j = (i * T) % (data.shape[1] - T - 1)
        x, y = data[:, j : j + T], data[:, j + 1 : j + T + 1]
        with torch.autocast("cpu", dtype=dtype, enabled=dtype is not None):
            _, loss, state = fwd(x, state, y)
        state = tuple(s.detach().float() for s in state)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()

    t0 = time.perf_counter()
    for i in range(warmup):
        step(i)
    warm = time.perf_counter() - t0
    t0 = time.perf_counter()
    for i in range(args.steps):
        step(warmup + i)
    return args.steps / (time.perf_counter() - t0), warm


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--steps", type=int, default=100)
    p.add_argument("--repeats", type=int, default=3)
    p.add_argument("--cell", default="lstm")
    p.add_argument("--layers", type=int, default=2)
    p.add_argument("--hidden", type=int, default=256)
    p.add_argument("--vocab", type=int, default=65)
    p.add_argument("--batch-size", type=int, default=32)
    p.add_argument("--seq-len", type=int, default=32)
    p.add_argument("--precision", default="fp32", choices=["fp32", "bf16"])
    args = p.parse_args()
    header("torch.compile vs eager: one training step")
    print(f"model: {args.cell} {args.layers}x{args.hidden}, vocabulary {args.vocab}; batch {args.batch_size} x {args.seq_len}; "
          f"{args.precision}; {args.steps} steps a run, {args.repeats} runs each, alternating")  # fmt: skip

    cfg = ModelConfig(cell=args.cell, layers=args.layers, hidden=args.hidden, embed=64, dropout=0.1, vocab_size=args.vocab)
    torch.manual_seed(0)
    eager = CharRNN(cfg).train()
    torch.manual_seed(0)
    plain = CharRNN(cfg).train()
    compiled = torch.compile(plain)
    _, compile_s = steps_per_s(plain, lambda x, s, y: compiled(x, s, y), argparse.Namespace(**{**vars(args), "steps": 1}), 3)
    print(f"compile (the first 3 steps, tracing and code generation included): {compile_s:.1f} s")
    e, c = [], []
    for r in range(args.repeats):
        e.append(steps_per_s(eager, lambda x, s, y: eager(x, s, y), args, 3)[0])
        c.append(steps_per_s(plain, lambda x, s, y: compiled(x, s, y), args, 3)[0])
        print(f"repeat {r + 1}: eager {e[-1]:.1f} steps/s, compiled {c[-1]:.1f} steps/s")
    print(f"median: eager {median(e):.1f} steps/s, compiled {median(c):.1f} steps/s; ratio compiled / eager = {median(c) / median(e):.3f}")


if __name__ == "__main__":
    main()
