"""Quality of the sequence-to-one and encoder-decoder tasks after a fixed number of steps.

Three parts, each one `charrnn train` process (CPU, fp32, one thread), scored from the
run's final record in metrics.jsonl. The figures depend on the step count and seed, not
on the machine's speed, so this runs under `cpulock -s`; the time each run took is
printed for reference only.

  dates     `charrnn train dates --task seq2seq --attention dot`: exact match and
            character error rate on the 2,000 held-out pairs (greedy decoding).
  reversal  `charrnn train reversal --task seq2seq`, once with --attention none (the
            chapter's fixed-length context) and once with --attention dot, the same
            steps and seed: exact match by source length side by side (validation
            sources run longer than any training one).
  numbers   `charrnn train numbers --task seq2seq --attention dot` (English number words ->
            digits) and `addition` (a+b -> the sum), over --seeds seeds: exact match on the
            held-out pairs whose sources are no longer than the longest training source
            (target: >= 99%), and on the longer ones, median and range over the seeds.
  addition  as numbers.
  balanced  `charrnn train balanced --task classify` (data/ordered.py: bracket strings, balanced
            or not, the same characters in both classes), over --seeds seeds: the RNN's accuracy
            beside the naive Bayes baseline, which sits near chance (target: RNN >= 95%).
  classify  `charrnn train --task classify --label-from folder` with the task's defaults on a
            real corpus: blank-line-separated blocks of the top-level modules of some Python
            standard-library packages, labelled by package, read through windows of 256
            characters; over --seeds seeds (from --first-seed): the validation accuracy after
            each quarter of the steps, beside the majority class and the character n-gram
            naive Bayes baseline that the run fits on the same split. The default 2,400
            steps are about 300 CPU-seconds on one thread (the target's 5 minutes).

    python bench/task_quality.py [--parts dates,reversal,numbers,addition,classify] [--dates-steps 2500]
                                 [--reversal-steps 1500] [--pairs-steps 3000] [--addition-steps 12000] [--balanced-steps 300]
                                 [--classify-steps 2400] [--seeds 3] [--first-seed 1337]
"""

from __future__ import annotations

import argparse
import json
import resource
import shlex
import shutil
import statistics
import subprocess
import sys
import sysconfig
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import header  # noqa: E402

COMMON = ["--device", "cpu", "--precision", "fp32", "--threads", "1", "-q", "--sample-chars", "0"]
SEQ2SEQ = ["--task", "seq2seq", "--layers", "1", "--hidden", "128", "--embed", "32", "--batch-size", "64", "--dropout", "0.0"]
BASELINE = "character 1-3-gram naive Bayes"
PACKAGES = ("asyncio", "email", "json", "logging", "unittest", "http", "multiprocessing", "importlib")


def train(args: list[str], out: Path) -> dict:
    """Run `charrnn train ARGS --out OUT` and return its final metrics record."""
    cmd = [sys.executable, "-m", "charrnn", "train", *args, *COMMON, "--out", str(out), "--checkpoints", str(out.parent)]
    print("$ charrnn train " + " ".join(a for a in [*args, *COMMON]), flush=True)
    t0 = time.perf_counter()
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    r = subprocess.run(cmd, capture_output=True, text=True, check=False)
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    if r.returncode != 0:
        sys.exit(f"charrnn train failed ({r.returncode}):\n{r.stderr[-3000:]}")
    finals = [json.loads(line) for line in (out / "metrics.jsonl").read_text().splitlines() if json.loads(line).get("final")]
    rec = finals[-1]
    evals = [json.loads(line) for line in (out / "metrics.jsonl").read_text().splitlines()]
    rec["curve"] = [(r["step"], r["accuracy"]) for r in evals if "accuracy" in r and not r.get("final")]  # classify: each evaluation
    rec["wall_s"] = time.perf_counter() - t0
    rec["cpu_s"] = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    return rec


def dates(work: Path, steps: int) -> None:
    rec = train(["dates", *SEQ2SEQ, "--attention", "dot", "--steps", str(steps), "--eval-every", str(steps)], work / "dates")
    rep = rec["report"]
    print(f"dates -> ISO, {steps} steps: exact match {rec['exact_match']:.1%} on {rep['pairs']:,} held-out pairs, "
          f"CER {rec['cer']:.2%}; on sources longer than any in training {rec.get('exact_longer', float('nan')):.1%} "
          f"({rec['wall_s']:.0f} s)\n")  # fmt: skip


def reversal(work: Path, steps: int) -> None:
    rows = {}
    for att in ("none", "dot"):
        rec = train(["reversal", *SEQ2SEQ, "--attention", att, "--steps", str(steps), "--eval-every", str(steps)], work / f"rev-{att}")
        rows[att] = rec
        print(f"  attention {att}: exact match {rec['exact_match']:.1%}, CER {rec['cer']:.2%} ({rec['wall_s']:.0f} s)")
    train_max = rows["none"]["report"]["train_max_source"]
    print(f"reversal, {steps} steps, exact match by source length (training sources up to {train_max} characters):")
    print(f"{'source':>8} {'pairs':>6} {'none':>7} {'dot':>7}")
    for a, b in zip(rows["none"]["report"]["by_source_length"], rows["dot"]["report"]["by_source_length"]):
        span = f"{a['lo']}-{a['hi']}" if a["hi"] > a["lo"] else str(a["lo"])
        mark = "  (longer than any training source)" if a["lo"] > train_max else ""
        print(f"{span:>8} {a['n']:>6} {a['exact']:>7.1%} {b['exact']:>7.1%}{mark}")
    none, dot = rows["none"]["exact_match"], rows["dot"]["exact_match"]
    print(f"overall: none {none:.1%}, dot {dot:.1%}\n")


def seen_lengths(rec: dict) -> tuple[float, float]:
    """Exact match on the held-out pairs whose sources are as long as training ones, and on the longer ones."""
    rep = rec["report"]
    rows, top = rep["by_source_length"], rep["train_max_source"]

    def share(rs: list[dict]) -> float:
        n = sum(r["n"] for r in rs)
        return sum(r["exact"] * r["n"] for r in rs) / n if n else float("nan")

    return share([r for r in rows if r["hi"] <= top]), share([r for r in rows if r["lo"] > top])


def spread(xs: list[float]) -> str:
    xs = sorted(xs)
    return f"{statistics.median(xs):.1%} ({xs[0]:.1%}-{xs[-1]:.1%})" if len(xs) > 1 else f"{xs[0]:.1%}"


def pairs(work: Path, name: str, steps: int, seeds: int, first: int = 1337) -> None:
    seen, longer, cpu = [], [], []
    for seed in range(seeds):
        # addition's carries come from the right of both operands: the encoder reads both ways (section 10.3)
        both = ["--bidirectional"] if name == "addition" else []
        rec = train([name, *SEQ2SEQ, "--attention", "dot", *both, "--steps", str(steps), "--eval-every", str(steps), "--seed", str(first + seed)],
                    work / f"{name}-{seed}")  # fmt: skip
        a, b = seen_lengths(rec)
        seen.append(a)
        longer.append(b)
        cpu.append(rec["cpu_s"])
        print(f"  seed {first + seed}: exact match {a:.1%} on training lengths, {b:.1%} longer, overall {rec['exact_match']:.1%} "
              f"({rec['cpu_s']:.0f} CPU s, {rec['wall_s']:.0f} s wall)")  # fmt: skip
    print(f"{name}, {steps} steps, {seeds} seed(s): exact match on sources of training lengths {spread(seen)}, longer "
          f"{spread([x for x in longer if x == x]) if any(x == x for x in longer) else '–'}; target >= 99% on training lengths; "
          f"baseline (copying the source) 0%; CPU s {statistics.median(cpu):.0f} a run\n")  # fmt: skip


def balanced(work: Path, steps: int, seeds: int) -> None:
    acc, base, cpu = [], [], []
    for seed in range(seeds):
        rec = train(["balanced", "--task", "classify", "--layers", "1", "--hidden", "64", "--embed", "16", "--lr", "1e-2",
                     "--pool", "last", "--batch-size", "32",
                     "--steps", str(steps), "--eval-every", str(steps), "--seed", str(1337 + seed)], work / f"balanced-{seed}")  # fmt: skip
        rep = rec["report"]
        acc.append(rep["accuracy"])
        base.append(rep["baseline"]["accuracy"])
        cpu.append(rec["cpu_s"])
    print(f"balanced vs unbalanced brackets, {steps} steps, {seeds} seed(s): LSTM 1x64 (last state) {spread(acc)}; "
          f"character 1-3-gram naive Bayes {spread(base)}; majority 50%; target >= 95%; CPU s {statistics.median(cpu):.0f} a run\n")  # fmt: skip


def stdlib_folder(work: Path) -> Path:
    """One folder per package holding copies of its top-level modules."""
    lib = Path(sysconfig.get_paths()["stdlib"])
    root = work / "stdlib-packages"
    for pkg in PACKAGES:
        (root / pkg).mkdir(parents=True, exist_ok=True)
        for f in sorted((lib / pkg).glob("*.py")):
            shutil.copy(f, root / pkg / f.name)
    return root


def classify(work: Path, steps: int, extra: list[str], seeds: list[int]) -> None:
    """`charrnn train --task classify` with its own defaults (the task's recipe: LSTM 1x128, --pool max,
    lr 1e-2, 64 blocks a step), blocks read through windows of 256 characters, evaluated four times."""
    data = stdlib_folder(work)
    acc, base, cpu, curves = [], [], [], []
    for seed in seeds:
        rec = train([str(data), "--task", "classify", "--label-from", "folder", "--glob", "*.py", "--doc-sep", "blank",
                     "--max-chars", "256", "--steps", str(steps), "--eval-every", str(max(1, steps // 4)), "--seed", str(seed), *extra],
                    work / f"classify-{seed}")  # fmt: skip
        rep = rec["report"]
        acc.append(rep["accuracy"])
        base.append(rep["baseline"]["accuracy"])
        cpu.append(rec["cpu_s"])
        curves.append(rec["curve"])
        print(f"  seed {seed}: accuracy {rep['accuracy']:.1%} ({', '.join(f'{a:.1%} at {s:,}' for s, a in rec['curve'])}); "
              f"{BASELINE} {rep['baseline']['accuracy']:.1%}; majority {rep['majority']:.1%} "
              f"({rec['cpu_s']:.0f} CPU s, {rec['wall_s']:.0f} s wall, {rec['cpu_s'] / steps * 1000:.0f} CPU ms a step)", flush=True)  # fmt: skip
    print(f"classify stdlib blocks by package ({len(rep['labels'])} labels, {rep['documents']:,} validation blocks), {steps} steps, "
          f"{len(seeds)} seed(s):")
    print(f"  RNN (charrnn's classify defaults{(' ' + ' '.join(extra)) if extra else ''}) accuracy {spread(acc)}; {BASELINE} "
          f"{spread(base)}; majority class {rep['majority']:.1%}; RNN / baseline {statistics.median(acc) / statistics.median(base):.2f}x; "
          f"target: RNN >= baseline within 5 minutes of training (300 CPU s on one thread); CPU s {statistics.median(cpu):.0f} a run\n")  # fmt: skip


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--parts", default="dates,reversal,numbers,addition,balanced,classify")
    ap.add_argument("--dates-steps", type=int, default=2500)
    ap.add_argument("--reversal-steps", type=int, default=1500)
    ap.add_argument("--pairs-steps", type=int, default=3000, help="steps of each numbers run")
    ap.add_argument("--addition-steps", type=int, default=12000,
                    help="steps of each addition run, --bidirectional (12,000: 98.7-99.6%% on training lengths, bench/RESULTS.md)")
    ap.add_argument("--seeds", type=int, default=3, help="runs (seeds) of numbers, addition, balanced and classify")
    ap.add_argument("--balanced-steps", type=int, default=300)
    ap.add_argument("--classify-steps", type=int, default=2400, help="steps of each classify run (2,400: about 300 CPU s on one thread)")
    ap.add_argument("--first-seed", type=int, default=1337, help="the seeds are FIRST, FIRST + 1, ... (--seeds of them)")
    ap.add_argument("--classify-args", default="", help="more `charrnn train` options for the classify part, e.g. '--bidirectional'")
    a = ap.parse_args()
    header("task quality: seq2seq and classify after a fixed number of steps (CPU, fp32, 1 thread; seeds from 1337 unless --first-seed)")
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        for part in a.parts.split(","):
            if part == "dates":
                dates(work, a.dates_steps)
            elif part == "reversal":
                reversal(work, a.reversal_steps)
            elif part in ("numbers", "addition"):
                pairs(work, part, a.addition_steps if part == "addition" else a.pairs_steps, a.seeds, a.first_seed)
            elif part == "balanced":
                balanced(work, a.balanced_steps, a.seeds)
            elif part == "classify":
                classify(work, a.classify_steps, shlex.split(a.classify_args), [a.first_seed + k for k in range(a.seeds)])
            else:
                sys.exit(f"unknown part {part!r}")


if __name__ == "__main__":
    main()
