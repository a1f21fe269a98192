"""Label fidelity: does a conditioned model write what its label asks for?

Three styles, one file each, one document a line, labelled by the file's name
(--label-from file): `names` (the speakers' names of tinyshakespeare), `verse`
(the lines of its speeches) and `words` (generated lines of common English
words, bench/_common.py). For each --condition (input, init, both) one LSTM
trains for a fixed number of steps (not wall time: the figures hold on a busy
machine) with --label-dropout 0.1, then samples `--samples` lines per label.
A character n-gram naive Bayes (charrnn.baselines.bayes), trained on the same
training lines, classifies each sample back; fidelity is the share classified
as the label it was generated for. Beside it: the classifier's accuracy on real
held-out lines (its ceiling), what the label is worth in validation bits/char
(metrics.jsonl: val_bpc with the true label, val_bpc_no_label with none), and
where the classifier puts unconditional samples.

Samples are drawn at `charrnn sample`'s default temperature (0.8, --temperature), what
a user gets from `charrnn sample RUN --label NAME`; fidelity at temperature 1 (the
model's own distribution, tails included) is printed beside it. The default budget,
2,000 steps of a 1x64 LSTM (about 100 CPU-seconds on one thread), is what the default
`charrnn train` budget of 3 minutes buys such a model on a quiet machine; at 400 steps
(the issue's first figures) no condition had learned to hold its label.

Every condition trains once per seed (--seeds, default 3); the table gives each
run and then each condition's median with the range over the seeds. CPU seconds
are the training process's (one thread by default: on a shared machine a second
thread spins more than it helps). Anchor: the chapter gives no figure; the issue
that asked for this bench measured input 98.7% and both 66.7% at one seed.

    python bench/labels.py [CORPUS] [--steps 2000] [--hidden 64] [--samples 100] [--temperature 0.8] [--seeds 3]
                           [--conditions input,init,both]
"""

from __future__ import annotations

import argparse
import json
import random
import statistics
import subprocess
import sys
import tempfile
from collections import Counter
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import SHAKESPEARE, header, words_corpus  # noqa: E402
from lengths import names_and_speeches  # noqa: E402

CONDITIONS = ("input", "init", "both")


def styles(src: Path, folder: Path, per: int = 6000) -> dict[str, list[str]]:
    """label -> its lines (as many for each label), written to folder/LABEL.txt."""
    (folder / "raw").mkdir()
    names, speeches = names_and_speeches(src, folder / "raw")
    rng = random.Random(0)
    pools = {
        "names": names.read_text(encoding="utf-8").splitlines(),
        "verse": [x for x in speeches.read_text(encoding="utf-8").splitlines() if x.strip()],
        "words": words_corpus(folder / "raw" / "words.txt", 400_000).read_text(encoding="utf-8").splitlines(),
    }
    out = {}
    (folder / "data").mkdir()
    for label, lines in pools.items():
        pick = [lines[i] for i in sorted(rng.sample(range(len(lines)), min(per, len(lines))))]
        (folder / "data" / f"{label}.txt").write_text("\n".join(pick) + "\n", encoding="utf-8")
        out[label] = pick
    return out


def train(data: Path, condition: str, root: Path, args: argparse.Namespace, seed: int = 0) -> dict:
    import resource

    name = f"labels-{condition}-{seed}"
    cmd = [sys.executable, "-m", "charrnn", "train", str(data), "--label-from", "file", "--doc-sep", "line",
           "--condition", condition, "--label-dropout", "0.1", "--cell", "lstm", "--layers", "1",
           "--hidden", str(args.hidden), "--embed", "32", "--seq-len", "64", "--batch-size", "16",
           "--steps", str(args.steps), "--eval-every", str(args.steps), "--seed", str(seed), "--final-eval-tokens", "40000",
           "--threads", str(args.threads),
           "--device", "cpu", "--precision", "fp32", "--quiet", "--checkpoints", str(root), "--name", name]  # fmt: skip
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    subprocess.run(cmd, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    final = [r for r in map(json.loads, (root / name / "metrics.jsonl").read_text().splitlines()) if r.get("final")][-1]
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    return {"run": root / name, "cpu_s": cpu, **final}


def samples(run: Path, label: str | None, n: int, seed: int, temperature: float) -> list[str]:
    import torch

    from charrnn.config import SampleConfig
    from charrnn.tasks.generate import label_index, sample_text
    from charrnn.training import checkpoint

    ck = checkpoint.load(run / "last.pt")
    model, tok = checkpoint.model_from(ck, run)
    cfg = SampleConfig(length=300, num=1, temperature=temperature)
    gen = torch.Generator().manual_seed(seed)
    at = label_index(ck.labels(), label)
    return [sample_text(model, tok, cfg, gen, label=at) for _ in range(n)]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("corpus", nargs="?", type=Path, default=SHAKESPEARE)
    ap.add_argument("--steps", type=int, default=2000)
    ap.add_argument("--hidden", type=int, default=64)
    ap.add_argument("--samples", type=int, default=100)
    ap.add_argument("--temperature", type=float, default=0.8, help="sampling temperature (charrnn sample's default); 1 is shown beside")
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--seeds", type=int, default=3, help="training runs per condition (seeds 0, 1, ...)")
    ap.add_argument("--conditions", default=",".join(CONDITIONS), help="which --condition options to train, comma-separated")
    args = ap.parse_args()
    import torch

    from charrnn.baselines.bayes import NaiveBayes

    torch.set_num_threads(args.threads)
    header("bench/labels.py: label fidelity of a conditioned LSTM, by --condition")
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        lines = styles(args.corpus, root)
        held = {lab: xs[-len(xs) // 10 :] for lab, xs in lines.items()}  # the classifier's own test lines
        nb = NaiveBayes().fit((lab, x) for lab, xs in lines.items() for x in xs[: -len(xs) // 10])
        ceiling = nb.evaluate((lab, x) for lab, xs in held.items() for x in xs).accuracy
        print(f"models: lstm 1x{args.hidden}, {args.steps} steps of 16x64 tokens, fp32, --label-dropout 0.1; "
              f"{args.samples} samples a label, temperature {args.temperature:g} (and 1)")  # fmt: skip
        print(f"classifier: character 1-3-gram naive Bayes, accuracy on real held-out lines {ceiling:.1%} "
              f"(chance {1 / len(lines):.1%})")  # fmt: skip
        print(f"\n| --condition | seed | fidelity | " + " | ".join(lines) + " | at T=1 | val bits/char (label) | (no label) | gain "
              "| no-label samples classified as | CPU s |")  # fmt: skip
        print("|---|---:|---:|" + "---:|" * len(lines) + "---:|---:|---:|---:|---|---:|")
        summary: dict[str, list[tuple[float, float]]] = {}
        for condition in args.conditions.split(","):
            for seed in range(args.seeds):
                r = train(root / "data", condition, root, args, seed)
                per, hot = {}, {}
                for k, label in enumerate(lines):
                    got = nb.predict(samples(r["run"], label, args.samples, k, args.temperature))
                    per[label] = sum(g == label for g in got) / len(got)
                    got = nb.predict(samples(r["run"], label, args.samples, k, 1.0))
                    hot[label] = sum(g == label for g in got) / len(got)
                free = Counter(nb.predict(samples(r["run"], None, args.samples, 99, args.temperature)))
                spread = ", ".join(f"{lab} {free[lab] / args.samples:.0%}" for lab in lines)
                fidelity, at_1 = sum(per.values()) / len(per), sum(hot.values()) / len(hot)
                summary.setdefault(condition, []).append((fidelity, r["val_bpc"], at_1, r["val_bpc_no_label"]))
                print(f"| {condition} | {seed} | {fidelity:.1%} | " + " | ".join(f"{v:.0%}" for v in per.values())
                      + f" | {at_1:.1%} | {r['val_bpc']:.3f} | {r['val_bpc_no_label']:.3f} | {r['label_gain_bpc']:.3f} | {spread} "
                      f"| {r['cpu_s']:.0f} |", flush=True)  # fmt: skip
        print(f"\n| --condition | seeds | fidelity at T={args.temperature:g}, median (range) | at T=1 | "
              "val bits/char with the label, median (range) | with no label |")  # fmt: skip
        print("|---|---:|---:|---:|---:|---:|")
        for condition, runs in summary.items():
            f, b, f1, nl = (sorted(x[i] for x in runs) for i in range(4))
            print(f"| {condition} | {len(runs)} | {statistics.median(f):.1%} ({f[0]:.1%}-{f[-1]:.1%}) | "
                  f"{statistics.median(f1):.1%} ({f1[0]:.1%}-{f1[-1]:.1%}) | {statistics.median(b):.3f} ({b[0]:.3f}-{b[-1]:.3f}) | "
                  f"{statistics.median(nl):.3f} ({nl[0]:.3f}-{nl[-1]:.3f}) |")  # fmt: skip
        print("target (issue 24): fidelity >= 95% for every condition; the classifier's ceiling is its accuracy on real lines above")


if __name__ == "__main__":
    main()
