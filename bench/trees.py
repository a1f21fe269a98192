"""The chapter's comparison (section 10.6): tree models against a sequence LSTM on ListOps,
after the same number of steps of the same batch size, overall and by the depth of the tree.

A recursive net composes a tree bottom-up, so the path from any leaf to the answer
is as long as the tree is high; a sequence model reads the bracketed text one
character at a time and must hold every pending operator in its state. Each model
trains for the same number of steps (`--steps`, 64 trees a step) with the same threads,
so its accuracy does not depend on how busy the machine is; each row reports the CPU
seconds its training process used, which is the cost to set beside it (`--time` trains
for equal wall-clock time instead: run that under an exclusive lock). The data is the
built-in ListOps set: 50,000 training trees of depth 1-5, 2,000 validation trees of
depths 1-8, evenly (6-8 never occur in training).

    recursive    --task tree --cell recursive     the chapter's unit over left-binarised trees
    treelstm     --task tree --cell treelstm      the Child-Sum Tree-LSTM
    bintreelstm  --task tree --cell bintreelstm   the binary Tree-LSTM over arguments folded under their operator
    lstm       --task classify --cell lstm    the same trees as text, `[MAX 2 9 [MIN 4 7 ] 0 ]`, by character
    majority   the commonest training label, for every tree (the baseline every row is a ratio against)

Tree rows are scored by their run's own final evaluation (metrics.jsonl: the whole
validation split); the LSTM by `charrnn predict RUN --file VALIDATION --json` over the
same trees (read whole: `--max-chars` above the longest tree). When this charrnn has
no `--task classify`, its row is reported missing.

Threads: one by default. These models multiply matrices of a few hundred rows, which a
second thread does not speed up, and on a shared machine (the load far above the
cores) OpenMP's waiting threads spin: a Tree-LSTM step of 64 trees cost 25 ms of CPU
with one thread and 880 ms with two (measured under a load average of 13 on 2 cores).

Anchors: Nangia & Bowman (2018), ListOps: a Tree-LSTM given the true trees about 98.7%,
a sequential LSTM about 71.5%, the majority class about 17-21%.

    python bench/trees.py [--steps 600 | --time 3m] [--hidden 128] [--threads 1] [--seed 0] [--only bintreelstm,treelstm,lstm] [--root DIR]
"""

from __future__ import annotations

import argparse
import json
import re
import subprocess
import sys
import tempfile
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import header  # noqa: E402

from charrnn.data.listops import tree_set_files  # noqa: E402
from charrnn.data.trees import height, iter_tree_examples  # noqa: E402
from charrnn.tasks import TASKS  # noqa: E402

ROWS = ("recursive", "treelstm", "bintreelstm", "lstm")
TRAIN_DEPTH = 5  # the built-in set's training trees are at most this high; validation goes to 8
ANCHORS = {"bintreelstm": "98.7% (Tree-LSTM, true trees)", "treelstm": "98.7% (Tree-LSTM, true trees)", "lstm": "71.5%"}
ANSWER_KEYS = ("answer", "label", "prediction", "predicted")  # where predict --json may put a classifier's answer


@dataclass
class Row:
    name: str
    command: list[str]
    status: str = "ok"  # or why there is no result
    params: int = 0
    steps: int = 0
    chars_per_s: float = 0.0  # training speed in characters of bracketed text
    cpu_s: float = 0.0  # user + system CPU of the training process
    accuracy: float = float("nan")
    by_depth: dict[int, float] = field(default_factory=dict)


def train(row: Row, root: Path) -> str:
    """Train one row's model; its CPU time is what the finished child used (RUSAGE_CHILDREN)."""
    import resource

    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    p = subprocess.run(row.command, capture_output=True, text=True)
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    row.cpu_s = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    if p.returncode != 0:
        lines = [x for x in p.stderr.splitlines() if x.strip()]
        row.status = "failed: " + (lines[-1] if lines else f"exit {p.returncode}")
        return p.stderr
    m = re.search(r", ([\d,]+) parameters", p.stderr)
    row.params = int(m.group(1).replace(",", "")) if m else 0
    final = json.loads((root / row.name / "metrics.jsonl").read_text().splitlines()[-1])
    row.steps, row.chars_per_s = int(final["step"]), float(final["chars_per_s"])
    if "accuracy" in final and any(k.startswith("accuracy_depth_") for k in final):  # a tree run scores itself
        row.accuracy = float(final["accuracy"])
        row.by_depth = {int(k.rsplit("_", 1)[1]): float(v) for k, v in final.items() if k.startswith("accuracy_depth_")}
    return p.stderr


def predicted(run_dir: Path, texts_file: Path) -> list[str]:
    """Each validation tree's answer, from `charrnn predict --json` (a stream of JSON objects)."""
    p = subprocess.run([sys.executable, "-m", "charrnn", "predict", str(run_dir), "--file", str(texts_file), "--json"],
                       capture_output=True, text=True)  # fmt: skip
    if p.returncode != 0:
        raise RuntimeError(p.stderr.strip().splitlines()[-1] if p.stderr.strip() else f"predict: exit {p.returncode}")
    dec, text, i, out = json.JSONDecoder(), p.stdout, 0, []
    while True:
        while i < len(text) and text[i].isspace():
            i += 1
        if i >= len(text):
            return out
        obj, i = dec.raw_decode(text, i)
        key = next((k for k in ANSWER_KEYS if k in obj), None)
        if key is None:
            raise RuntimeError(f"predict --json gave no answer key ({', '.join(obj)})")
        out.append(str(obj[key]))


def score(row: Row, answers: list[str], labels: list[str], depths: list[int]) -> None:
    right = [a == y for a, y in zip(answers, labels)]
    row.accuracy = sum(right) / len(right)
    for d in sorted(set(depths)):
        idx = [i for i, x in enumerate(depths) if x == d]
        row.by_depth[d] = sum(right[i] for i in idx) / len(idx)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--steps", type=int, default=600, help="training steps per model (the same for every row)")
    ap.add_argument("--time", default=None, help="train each model for this wall-clock time instead of --steps")
    ap.add_argument("--hidden", type=int, default=128)
    ap.add_argument("--embed", type=int, default=64)
    ap.add_argument("--batch-size", type=int, default=64)
    ap.add_argument("--threads", type=int, default=1, help="threads per training (one: see the docstring)")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--only", default="bintreelstm,treelstm,lstm", help="rows to run, of " + ", ".join(ROWS))
    ap.add_argument("--root", type=Path, default=None, help="where runs and the data cache go (default: a temporary folder)")
    args = ap.parse_args()
    header(f"tree models against a sequence LSTM on ListOps, {'time ' + args.time if args.time else f'{args.steps} steps'} each, by depth")
    root = args.root or Path(tempfile.mkdtemp(prefix="charrnn-trees-"))
    root.mkdir(parents=True, exist_ok=True)
    train_tsv, val_tsv = tree_set_files("listops", root / ".cache" / "corpora")  # the files `charrnn train listops` reads
    train_labels = [e.label for e in iter_tree_examples(train_tsv)]
    val = list(iter_tree_examples(val_tsv))
    labels, depths = [e.label for e in val], [height(e.tree) for e in val]
    texts = root / "validation-trees.txt"
    texts.write_text("".join(line.split("\t", 1)[1] for line in val_tsv.read_text().splitlines(keepends=True)))
    top = Counter(train_labels).most_common(1)[0][0]
    majority = Row("majority", [], status="ok")
    score(majority, [top] * len(labels), labels, depths)

    common = ["--layers", "1", "--hidden", str(args.hidden), "--embed", str(args.embed), "--batch-size", str(args.batch_size),
              "--dropout", "0", "--seed", str(args.seed), *(["--time", args.time] if args.time else ["--steps", str(args.steps)]), "--threads", str(args.threads), "--device", "cpu", "--precision", "fp32",
              "--checkpoints", str(root), "--quiet"]  # fmt: skip
    base = [sys.executable, "-m", "charrnn", "train"]
    commands = {
        "recursive": base + ["listops", "--task", "tree", "--cell", "recursive", "--name", "recursive", *common],
        "treelstm": base + ["listops", "--task", "tree", "--cell", "treelstm", "--name", "treelstm", *common],
        "bintreelstm": base + ["listops", "--task", "tree", "--cell", "bintreelstm", "--name", "bintreelstm", *common],
        "lstm": base + [str(train_tsv), "--task", "classify", "--label-from", "tsv", "--cell", "lstm", "--name", "lstm", "--max-chars", "4096", *common],
    }
    rows = [Row(n, commands[n]) for n in ROWS if n in args.only.split(",")]
    print(f"data: {train_tsv.name} ({len(train_labels):,} trees), {val_tsv.name} ({len(val):,} trees, depths "
          f"{min(depths)}-{max(depths)}); majority label {top!r}")  # fmt: skip
    for row in rows:
        print("$ " + " ".join(row.command), flush=True)
        if row.name == "lstm" and "classify" not in TASKS:
            row.status = "missing: this charrnn has no --task classify"
            print(f"  {row.status}")
            continue
        t0 = time.monotonic()
        train(row, root)
        if row.status == "ok" and not row.by_depth:
            try:
                score(row, predicted(root / row.name, texts), labels, depths)
            except RuntimeError as e:
                row.status = f"failed: {e}"
        print(f"  {row.status}; {time.monotonic() - t0:.0f}s wall, {row.cpu_s:.0f}s CPU", flush=True)

    shown = [majority, *rows]
    ds = sorted(set(depths))
    print()
    print("| depth | trees | " + " | ".join(r.name for r in shown) + " |")
    print("|---:|---:|" + "---:|" * len(shown))
    count = Counter(depths)
    for d in ds:
        mark = "" if d <= 5 else " (deeper than training)"
        cells = [f"{r.by_depth[d]:.1%}" if d in r.by_depth else "–" for r in shown]
        print(f"| {d}{mark} | {count[d]} | " + " | ".join(cells) + " |")
    print(f"| all | {len(labels)} | " + " | ".join(f"{r.accuracy:.1%}" if r.status == "ok" else "–" for r in shown) + " |")
    print()
    def part(r: Row, deeper: bool) -> str:
        ds_ = [d for d in r.by_depth if (d > TRAIN_DEPTH) == deeper]
        if not ds_:
            return "–"
        return f"{sum(r.by_depth[d] * count[d] for d in ds_) / sum(count[d] for d in ds_):.1%}"

    print(f"| model | parameters | steps | chars/s trained | CPU s | depths 1-{TRAIN_DEPTH} (seen) | deeper | all | ÷ majority | paper |")
    print("|---|---:|---:|---:|---:|---:|---:|---:|---:|---|")
    print(f"| majority | | | | | {part(majority, False)} | {part(majority, True)} | {majority.accuracy:.1%} | 1.00x | |")
    for r in rows:
        if r.status != "ok":
            print(f"| {r.name} | {r.status} | | | | | | | | |")
            continue
        print(f"| {r.name} | {r.params:,} | {r.steps:,} | {r.chars_per_s / 1e3:.1f}k | {r.cpu_s:.0f} | {part(r, False)} | "
              f"{part(r, True)} | {r.accuracy:.1%} | {r.accuracy / majority.accuracy:.2f}x | {ANCHORS.get(r.name, '')} |")  # fmt: skip
    print(f"\nruns in {root}")


if __name__ == "__main__":
    main()
