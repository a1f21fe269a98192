"""Peak memory of training on a 10 MB and a 500 MB corpus: it must not grow with the corpus.

Each corpus is generated, then `charrnn train` runs in a child process twice: once
cold (it encodes the corpus into the memmapped id cache) and once warm (it opens
the cache). The peak resident set size of each child is read from getrusage.

    python bench/memory.py [--small-mb 10] [--large-mb 500] [--steps 30]
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import header, words_corpus  # noqa: E402

# Runs one command and prints its peak RSS in kB: getrusage of the only child.
PEAK = "import resource, subprocess, sys; r = subprocess.run(sys.argv[1:]); " \
       "print(resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss); sys.exit(r.returncode)"  # fmt: skip


def train(corpus: Path, root: Path, steps: int) -> tuple[float, float]:
    cmd = [sys.executable, "-m", "charrnn", "train", str(corpus), "--steps", str(steps), "--eval-every", str(steps // 2),
           "--eval-tokens", "8192", "--final-eval-tokens", "8192", "--sample-chars", "0", "--quiet",
           "--checkpoints", str(root), "--name", f"m{time.monotonic_ns()}"]  # fmt: skip
    t0 = time.perf_counter()
    out = subprocess.run([sys.executable, "-c", PEAK, *cmd], capture_output=True, text=True)
    if out.returncode != 0:
        raise SystemExit(out.stderr)
    return int(out.stdout.strip().splitlines()[-1]) / 1024, time.perf_counter() - t0


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--small-mb", type=int, default=10)
    p.add_argument("--large-mb", type=int, default=500)
    p.add_argument("--steps", type=int, default=30)
    args = p.parse_args()
    header("peak memory against corpus size")
    results = {}
    with tempfile.TemporaryDirectory() as tmp:
        for mb in (args.small_mb, args.large_mb):
            corpus = words_corpus(Path(tmp) / f"corpus-{mb}mb.txt", mb * 1_000_000)
            cold, t_cold = train(corpus, Path(tmp) / "ck", args.steps)
            warm, t_warm = train(corpus, Path(tmp) / "ck", args.steps)
            results[mb] = (cold, warm)
            print(f"{mb:>5} MB corpus: peak RSS {cold:7.1f} MB encoding + training ({t_cold:5.1f} s), "
                  f"{warm:7.1f} MB from the cache ({t_warm:5.1f} s)")  # fmt: skip
            corpus.unlink()
    (sc, sw), (lc, lw) = results[args.small_mb], results[args.large_mb]
    print(f"difference {args.large_mb} MB - {args.small_mb} MB: {lc - sc:+.1f} MB encoding, {lw - sw:+.1f} MB from the cache "
          f"(target < 50 MB); ratio of peaks {max(lc, lw) / max(sc, sw):.3f}")  # fmt: skip
    print(json.dumps({"small_mb": args.small_mb, "large_mb": args.large_mb, "peaks_mb": results}))


if __name__ == "__main__":
    main()
