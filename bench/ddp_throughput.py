"""Distributed training throughput: chars/s with 1 and 2 processes (torchrun, gloo on the CPU).

Both runs use all the machine's cores: 1 process x N threads against 2 processes
x N/2 threads. --batch-size is per process, so 2 processes train on twice the
tokens per step; the figure compared is the global chars/s charrnn reports.
With --device cuda (on a GPU machine) it also runs 1 GPU.

    python bench/ddp_throughput.py [--corpus FILE] [--steps 150] [--repeats 3]
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import SHAKESPEARE, header, median, words_corpus  # noqa: E402


def run(nproc: int, threads: int, corpus: Path, root: Path, steps: int, device: str, extra: list[str]) -> float:
    name = f"n{nproc}-{len(list(root.glob('*'))) if root.exists() else 0}"
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc-per-node", str(nproc), "-m", "charrnn",
           "train", str(corpus), "--steps", str(steps), "--eval-every", str(steps), "--eval-tokens", "2048",
           "--final-eval-tokens", "2048", "--sample-chars", "0", "--quiet", "--threads", str(threads), "--device", device,
           "--checkpoints", str(root), "--name", name, *extra]  # fmt: skip
    r = subprocess.run(cmd, capture_output=True, text=True, env={**os.environ, "OMP_NUM_THREADS": str(threads)})
    if r.returncode != 0:
        raise SystemExit(r.stderr[-3000:])
    last = (root / name / "metrics.jsonl").read_text().splitlines()[-1]
    return float(json.loads(last)["chars_per_s"])


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--corpus", type=Path, default=SHAKESPEARE)
    p.add_argument("--steps", type=int, default=150)
    p.add_argument("--repeats", type=int, default=3)
    p.add_argument("--device", default="cpu")
    p.add_argument("extra", nargs="*", help="more `charrnn train` options, after --")
    args = p.parse_args()
    header("distributed training throughput")
    cores = os.cpu_count() or 2
    with tempfile.TemporaryDirectory() as tmp:
        corpus = args.corpus if args.corpus.exists() else words_corpus(Path(tmp) / "words.txt", 1_000_000)
        root = Path(tmp) / "ck"
        if args.device == "cuda":
            gpu = [run(1, cores, corpus, root, args.steps, "cuda", args.extra) for _ in range(args.repeats)]
            print(f"1 process, 1 GPU: {median(gpu):,.0f} chars/s (median of {args.repeats})")
            return
        one, two = [], []
        for _ in range(args.repeats):
            one.append(run(1, cores, corpus, root, args.steps, "cpu", args.extra))
            two.append(run(2, max(1, cores // 2), corpus, root, args.steps, "cpu", args.extra))
            print(f"  1 x {cores} threads: {one[-1]:,.0f} chars/s; 2 x {max(1, cores // 2)} threads: {two[-1]:,.0f} chars/s")
    print(f"1 process : {median(one):,.0f} chars/s (median of {args.repeats})")
    print(f"2 processes: {median(two):,.0f} chars/s (median of {args.repeats}, global batch twice as large)")
    print(f"ratio 2 / 1: {median(two) / median(one):.2f}")


if __name__ == "__main__":
    main()
