"""What checking the corpus cache costs: opening a cached 100 MB corpus with its size and
CRC-32 verified (as every run does) against the same open with the check skipped.

    python bench/cache_check.py [--mb 100] [--repeats 7] [--dir /tmp/charrnn-cache-bench]
"""

from __future__ import annotations

import argparse
import random
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import header  # noqa: E402


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--mb", type=int, default=100)
    p.add_argument("--repeats", type=int, default=7)
    p.add_argument("--dir", type=Path, default=Path("/tmp/charrnn-cache-bench"))
    args = p.parse_args()
    from charrnn.config import DataConfig
    from charrnn.data import corpus

    header("corpus cache: cached open with and without the size + CRC-32 check")
    args.dir.mkdir(parents=True, exist_ok=True)
    f = args.dir / f"corpus-{args.mb}mb.txt"
    if not f.exists():
        rng = random.Random(0)
        words = "the a cat dog sat ran on under mat log and quickly slowly big small red blue".split()
        with open(f, "w") as out:
            while out.tell() < args.mb * 1_000_000:
                out.write(" ".join(rng.choice(words) for _ in range(12)) + ".\n")
    cfg = DataConfig(paths=(str(f),))
    size = len(corpus.prepare(cfg, args.dir).ids)  # built once (uint8 ids: one byte a character)

    def timed() -> tuple[list[float], list[float]]:
        wall, cpu = [], []
        for _ in range(args.repeats):
            w, c = time.perf_counter(), time.process_time()
            assert corpus.prepare(cfg, args.dir).cached
            wall.append(time.perf_counter() - w)
            cpu.append(time.process_time() - c)
        return wall, cpu

    checked = timed()
    real, corpus.verify = corpus.verify, lambda path, record: None
    try:
        skipped = timed()
    finally:
        corpus.verify = real
    print(f"{size / 1e6:.0f} MB of ids, {args.repeats} repeats each, medians (range):")
    for name, (wall, cpu) in (("checked", checked), ("not checked (baseline)", skipped)):
        print(f"  {name:24s} {statistics.median(wall) * 1e3:7.1f} ms wall ({min(wall) * 1e3:.1f}-{max(wall) * 1e3:.1f}), "
              f"{statistics.median(cpu) * 1e3:6.1f} ms CPU")  # fmt: skip
    extra = statistics.median(checked[0]) - statistics.median(skipped[0])
    print(f"  the check adds {extra * 1e3:.0f} ms wall per run start, {extra / (size / 1e8) * 1e3:.0f} ms per 100 MB")


if __name__ == "__main__":
    main()
