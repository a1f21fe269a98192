"""Speed to quality: validation loss after a wall-clock budget, on tinyshakespeare.

Runs, in one process each and one after the other on an otherwise idle machine:
  - `charrnn train tinyshakespeare.txt --time B` with no other option, for each budget B;
  - the plain PyTorch reference loop of issue 6 (2x256 LSTM, batch 32, sequence 50,
    Adam 2e-3 with cosine decay to 2e-4 over the budget, fp32) for the same budget.
Each model is then scored on the validation split (the last 10% by position) two ways:
  carried:  the split read as 32 contiguous streams, the state carried along each
            (as char-rnn scores it);
  windows:  independent 64-character windows, each from a zero state, every position
            scored (as nanoGPT's shakespeare_char recipe scores its transformer).

The plain loop always trains in fp32 (the issue-6 reference); `--precision` sets what
charrnn trains in (`auto`: bf16 autocast on a CPU with native bf16, else fp32), and
the precision the run really used is printed beside its scores.

    python bench/quality.py [--corpus FILE] [--budgets 1m,2m,3m] [--threads 2] [--precision auto|fp32|bf16] [--skip-plain]
"""

from __future__ import annotations

import argparse
import json
import math
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import torch
from torch import nn

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import SHAKESPEARE, header  # noqa: E402

from charrnn.training import checkpoint  # noqa: E402
from charrnn.config import parse_duration  # noqa: E402


def carried_loss(step, ids: torch.Tensor, streams: int = 32, T: int = 64) -> float:
    """`step(x, state) -> (logits, state)`; the split as `streams` carried streams."""
    n = len(ids) // streams
    d = ids[: n * streams].view(streams, n)
    total, count, state = 0.0, 0, None
    with torch.inference_mode():
        for j in range(0, n - 1, T):
            t = min(T, n - 1 - j)
            logits, state = step(d[:, j : j + t], state)
            total += nn.functional.cross_entropy(logits.reshape(-1, logits.shape[-1]), d[:, j + 1 : j + t + 1].reshape(-1), reduction="sum").item()
            count += streams * t
    return total / count


def window_loss(step, ids: torch.Tensor, window: int = 64, batch: int = 256) -> float:
    """Independent windows of `window` characters from a zero state; every position scored."""
    n = (len(ids) - 1) // window
    x = ids[: n * window].view(n, window)
    y = ids[1 : n * window + 1].view(n, window)
    total = 0.0
    with torch.inference_mode():
        for i in range(0, n, batch):
            logits, _ = step(x[i : i + batch], None)
            total += nn.functional.cross_entropy(logits.reshape(-1, logits.shape[-1]), y[i : i + batch].reshape(-1), reduction="sum").item()
    return total / (n * window)


def score_charrnn(run: Path, text: str) -> tuple[float, float, dict]:
    ck = checkpoint.load(run / "last.pt")
    model, tok = checkpoint.model_from(ck)
    split = round(len(text) * 0.9)
    val = torch.tensor(tok.encode(text[split:]))

    def step(x, state):
        logits, _, state = model(x, state)
        return logits, state

    return carried_loss(step, val), window_loss(step, val), ck


class Plain(nn.Module):
    def __init__(self, V: int):
        super().__init__()
        self.emb = nn.Embedding(V, 64)
        self.rnn = nn.LSTM(64, 256, 2, batch_first=True)
        self.out = nn.Linear(256, V)

    def forward(self, x, h=None):
        y, h = self.rnn(self.emb(x), h)
        return self.out(y), h


def plain_reference(text: str, budget: float) -> tuple[float, float, int]:
    """The issue's reference loop, trained for `budget` seconds of wall-clock time."""
    torch.manual_seed(1337)
    chars = sorted(set(text))
    stoi = {c: i for i, c in enumerate(chars)}
    data = torch.tensor([stoi[c] for c in text])
    split = round(len(data) * 0.9)
    train, val = data[:split], data[split:]
    B, T, V = 32, 50, len(chars)
    m = Plain(V)
    opt = torch.optim.Adam(m.parameters(), lr=2e-3)
    n = len(train) // B
    d = train[: n * B].view(B, n)
    h, i, steps = None, 0, 0
    t0 = time.monotonic()
    while (elapsed := time.monotonic() - t0) < budget:
        lr = 2e-4 + 0.5 * (2e-3 - 2e-4) * (1 + math.cos(math.pi * elapsed / budget))
        for g in opt.param_groups:
            g["lr"] = lr
        if (i + 1) * T + 1 > n:
            i, h = 0, None
        x, y = d[:, i * T : (i + 1) * T], d[:, i * T + 1 : (i + 1) * T + 1]
        i += 1
        logits, h = m(x, h)
        h = tuple(s.detach() for s in h)
        loss = nn.functional.cross_entropy(logits.reshape(-1, V), y.reshape(-1))
        opt.zero_grad(set_to_none=True)
        loss.backward()
        nn.utils.clip_grad_norm_(m.parameters(), 5.0)
        opt.step()
        steps += 1
    m.eval()
    return carried_loss(m, val), window_loss(m, val), steps


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--corpus", type=Path, default=SHAKESPEARE)
    p.add_argument("--budgets", default="1m,2m,3m")
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--precision", default="auto", choices=["auto", "fp32", "bf16"], help="charrnn's (the plain loop is fp32)")
    p.add_argument("--skip-plain", action="store_true")
    p.add_argument("extra", nargs="*", help="more `charrnn train` options, after --")
    args = p.parse_args()
    torch.set_num_threads(args.threads)
    header("speed to quality on tinyshakespeare")
    text = args.corpus.read_text(encoding="utf-8")
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for b in args.budgets.split(","):
            cmd = [sys.executable, "-m", "charrnn", "train", str(args.corpus), "--time", b, "--quiet",
                   "--threads", str(args.threads), "--precision", args.precision, "--checkpoints", tmp, "--name", f"q{b}",
                   *args.extra]  # fmt: skip
            print("$ charrnn " + " ".join(cmd[3:]), flush=True)
            t0 = time.monotonic()
            r = subprocess.run(cmd, capture_output=True, text=True)
            if r.returncode != 0:
                raise SystemExit(r.stderr)
            wall = time.monotonic() - t0
            carried, windows, ck = score_charrnn(Path(tmp) / f"q{b}", text)
            curve = [json.loads(line) for line in (Path(tmp) / f"q{b}" / "metrics.jsonl").read_text().splitlines()]
            at = {m: min(curve, key=lambda c: abs(c["elapsed_s"] - 60 * m))["val_loss"] for m in (1, 2, 3) if 60 * m <= curve[-1]["elapsed_s"] + 5}
            used = ck.trained_precision or "?"
            print(f"  {ck.step:,} steps in {wall:.0f} s wall ({used}); carried {carried:.4f}, windows {windows:.4f} nats/char; "
                  f"in-run curve: {', '.join(f'{m} min {v:.3f}' for m, v in at.items())}", flush=True)  # fmt: skip
            rows.append((f"charrnn {used.split()[0]}", b, carried, windows, ck.step))
            if not args.skip_plain:
                pc, pw, steps = plain_reference(text, parse_duration(b))
                print(f"  plain reference loop, {b}: {steps:,} steps; carried {pc:.4f}, windows {pw:.4f} nats/char", flush=True)
                rows.append(("plain fp32", b, pc, pw, steps))
    print("\nbudget  who            steps   carried  windows  (nats/char; bits/char = nats / ln 2)")
    for who, b, c, w, s in rows:
        print(f"{b:>6}  {who:<13} {s:>6,}  {c:7.4f}  {w:7.4f}   ({c / math.log(2):.3f} / {w / math.log(2):.3f} bits/char)")
    ours = {b: (c, w) for who, b, c, w, _ in rows if who.startswith("charrnn")}
    plain = {b: (c, w) for who, b, c, w, _ in rows if who.startswith("plain")}
    for b in ours:
        if b in plain:
            (oc, ow), (pc, pw) = ours[b], plain[b]
            print(f"{b}: charrnn - plain = {oc - pc:+.4f} nats/char carried, {ow - pw:+.4f} windows")


if __name__ == "__main__":
    main()
