"""What --tensorboard costs a run: the same training with and without the logs.

    python bench/tensorboard_cost.py [--steps 150] [--eval-every 50] [--repeats 3] [--mb 2]

Each repeat runs `charrnn train` twice on one generated corpus (default model, CPU, one
thread, --sample-chars 200), alternating which goes first: once plain (the baseline)
and once with --tensorboard, which adds the event file, a trace of the probe text and
its histograms at each evaluation, and the TensorBoard import itself. Reported: the
process's CPU seconds (user + system, from getrusage; less noisy than wall time on a
shared machine) and wall seconds, medians and spread, and the ratio of medians.
"""

from __future__ import annotations

import argparse
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _common import header, median, words_corpus  # noqa: E402


def one(corpus: Path, root: Path, name: str, args: argparse.Namespace, tb: bool) -> tuple[float, float]:
    cmd = [sys.executable, "-m", "charrnn", "train", str(corpus), "--steps", str(args.steps), "--eval-every", str(args.eval_every),
           "--sample-chars", "200", "--device", "cpu", "--threads", "1", "-q", "--checkpoints", str(root), "--name", name,
           *(["--tensorboard"] if tb else [])]  # fmt: skip
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    t = time.perf_counter()
    subprocess.run(cmd, check=True, capture_output=True)
    wall = time.perf_counter() - t
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    return after.ru_utime + after.ru_stime - before.ru_utime - before.ru_stime, wall


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--steps", type=int, default=150)
    ap.add_argument("--eval-every", type=int, default=50)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--mb", type=float, default=2.0)
    args = ap.parse_args()
    header("--tensorboard against a plain run")
    with tempfile.TemporaryDirectory() as d:
        root = Path(d)
        corpus = words_corpus(root / "corpus.txt", int(args.mb * 1e6))
        runs: dict[bool, list[tuple[float, float]]] = {False: [], True: []}
        for r in range(args.repeats):
            for tb in ((False, True) if r % 2 == 0 else (True, False)):
                runs[tb].append(one(corpus, root, f"{'tb' if tb else 'plain'}{r}", args, tb))
                print(f"  run {r + 1} {'tensorboard' if tb else 'plain      '}: {runs[tb][-1][0]:6.1f} CPU s, {runs[tb][-1][1]:6.1f} wall s")
    print(f"{args.steps} steps, an evaluation every {args.eval_every} (and the final one); medians of {args.repeats} (min-max)")
    for what, i in (("CPU seconds", 0), ("wall seconds", 1)):
        base, tb = (sorted(x[i] for x in runs[k]) for k in (False, True))
        print(f"  {what:12}  plain {median(base):6.1f} ({base[0]:.1f}-{base[-1]:.1f})   "
              f"tensorboard {median(tb):6.1f} ({tb[0]:.1f}-{tb[-1]:.1f})   ratio {median(tb) / median(base):.3f}x")  # fmt: skip


if __name__ == "__main__":
    main()
