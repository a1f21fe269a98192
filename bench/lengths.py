"""How a sequence ends: the end token (eos), a halt output and a length output, compared.

Two corpora cut from tinyshakespeare: the speakers' names, one item a line
(short items: "First Citizen", "KING RICHARD III"), and the speeches, one
document a paragraph (--doc-sep blank: tens to thousands of characters). For
each corpus and each --length-model the same LSTM trains for the same number
of steps (not wall time: the figures hold on a busy machine), then samples
`--samples` documents with the end handling on and a cap of `--cap` characters.
Reported per model: validation bits/char (metrics.jsonl's final val_bpc, the
end model's share included: the same data's probability, factorised another
way), the generated lengths' quantiles beside the data's, the Jensen-Shannon
divergence between the two length distributions (bits, over log-spaced length
bins: 0 = the same, 1 = disjoint), and the share of samples cut by the cap.

    python bench/lengths.py [CORPUS] [--steps 400] [--hidden 64] [--samples 200] [--cap 2000]
"""

from __future__ import annotations

import argparse
import json
import math
import re
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import SHAKESPEARE, header  # noqa: E402

KINDS = ("eos", "halt", "length")
QUANTILES = (0.1, 0.5, 0.9, 0.99)


def names_and_speeches(src: Path, folder: Path) -> tuple[Path, Path]:
    """The speakers' names (one a line) and the speeches (blank-line separated), without the names."""
    text = src.read_text(encoding="utf-8")
    names, speeches = [], []
    for para in re.split(r"\n\s*\n", text):
        lines = para.strip("\n").split("\n")
        if lines and re.fullmatch(r"[A-Z][A-Za-z' ]+:", lines[0]):
            names.append(lines[0][:-1])
            lines = lines[1:]
        if lines and "".join(lines).strip():
            speeches.append("\n".join(lines))
    a, b = folder / "names.txt", folder / "speeches.txt"
    a.write_text("\n".join(names) + "\n", encoding="utf-8")
    b.write_text("\n\n".join(speeches) + "\n", encoding="utf-8")
    return a, b


def doc_lengths(path: Path, sep: str) -> np.ndarray:
    text = path.read_text(encoding="utf-8").rstrip("\n")
    docs = text.split("\n") if sep == "line" else text.split("\n\n")
    return np.array([len(d) for d in docs])


def js_bits(a: np.ndarray, b: np.ndarray) -> float:
    """Jensen-Shannon divergence (bits) of two samples of lengths, over bins of width x1.25 in length."""
    top = max(a.max(), b.max(), 1)
    edges = np.unique(np.concatenate([[0, 1, 2, 3, 4, 5], np.ceil(5 * 1.25 ** np.arange(1, math.log(top / 5 + 1, 1.25) + 2))]))
    p = np.histogram(a, edges)[0] / len(a)
    q = np.histogram(b, edges)[0] / len(b)
    m = (p + q) / 2

    def kl(x: np.ndarray) -> float:
        keep = x > 0
        return float((x[keep] * np.log2(x[keep] / m[keep])).sum())

    return (kl(p) + kl(q)) / 2


def train(corpus: Path, sep: str, kind: str, root: Path, args: argparse.Namespace) -> dict:
    name = f"{corpus.stem}-{kind}"
    cmd = [sys.executable, "-m", "charrnn", "train", str(corpus), "--doc-sep", sep, "--length-model", kind,
           "--cell", "lstm", "--layers", "1", "--hidden", str(args.hidden), "--embed", "32", "--seq-len", "64",
           "--batch-size", "16", "--steps", str(args.steps), "--eval-every", str(args.steps), "--seed", "0",
           "--final-eval-tokens", "40000", "--device", "cpu", "--precision", "fp32", "--quiet", "--checkpoints", str(root), "--name", name]  # fmt: skip
    subprocess.run(cmd, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    lines = (root / name / "metrics.jsonl").read_text().splitlines()
    final = [json.loads(x) for x in lines if json.loads(x).get("final")][-1]
    return {"run": root / name, "val_bpc": final["val_bpc"]}


def sample_lengths(run: Path, args: argparse.Namespace) -> np.ndarray:
    import torch

    from charrnn.config import SampleConfig
    from charrnn.tasks.generate import sample_text
    from charrnn.training import checkpoint

    ck = checkpoint.load(run / "last.pt")
    model, tok = checkpoint.model_from(ck, run)
    cfg = SampleConfig(length=args.cap, num=1, seed=0, temperature=1.0)
    gen = torch.Generator().manual_seed(1)
    return np.array([len(sample_text(model, tok, cfg, gen)) for _ in range(args.samples)])


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("corpus", nargs="?", type=Path, default=SHAKESPEARE)
    ap.add_argument("--steps", type=int, default=400)
    ap.add_argument("--hidden", type=int, default=64)
    ap.add_argument("--samples", type=int, default=200)
    ap.add_argument("--cap", type=int, default=2000)
    ap.add_argument("--threads", type=int, default=2)
    args = ap.parse_args()
    import torch

    torch.set_num_threads(args.threads)
    header("bench/lengths.py: eos token vs halt output vs length output")
    print(f"models: lstm 1x{args.hidden}, {args.steps} steps of 16x64 tokens each, fp32; {args.samples} samples per model, "
          f"temperature 1, cap --length {args.cap}")  # fmt: skip
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        names, speeches = names_and_speeches(args.corpus, root)
        for corpus, sep in ((names, "line"), (speeches, "blank")):
            data = doc_lengths(corpus, sep)
            print(f"\n## {corpus.stem} (--doc-sep {sep}): {len(data)} documents, mean length {data.mean():.1f}")
            qs = " | ".join(f"q{int(q * 100):<4}" for q in QUANTILES)
            print(f"| model  | val bits/char | JS div (bits) | capped | mean   | {qs} |")
            print("|--------|---------------|---------------|--------|--------|" + "------:|" * len(QUANTILES))
            print(f"| data   |               |               |        | {data.mean():6.1f} | "
                  + " | ".join(f"{np.quantile(data, q):5.0f}" for q in QUANTILES) + " |")  # fmt: skip
            for kind in KINDS:
                r = train(corpus, sep, kind, root, args)
                gen = sample_lengths(r["run"], args)
                capped = float((gen >= args.cap).mean())
                print(f"| {kind:<6} | {r['val_bpc']:13.3f} | {js_bits(gen, data):13.3f} | {capped:6.1%} | {gen.mean():6.1f} | "
                      + " | ".join(f"{np.quantile(gen, q):5.0f}" for q in QUANTILES) + " |", flush=True)  # fmt: skip


if __name__ == "__main__":
    main()
