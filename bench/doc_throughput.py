"""Training throughput with documents: resetting the state at every document start
against carrying it through (the same corpus, the same tokens, the fused path).

Two generated corpora of the shapes issue 16 measured:
  - fortunes: documents of a median ~100 characters (lognormal), lines of words,
    separated by lines holding just '%' (--doc-sep %);
  - lines: one short item per line, 6 characters on average (--doc-sep line).
For each, charrnn's Trainer runs the same model and batch with `--doc-state reset`
(the document path, paths chosen per batch) and `--doc-state carry` (the
baseline: no resets, one fused call per window), alternating; medians of
tokens/s are compared. `--paths` adds runs with one path forced
(spans, steps, packed). `--costs` measures one training step and one evaluation
forward of each path against the number of timesteps holding a document start,
and prints the medians as documents.RECORDED takes them (the crossing points
documents.choose() reads).

    python bench/doc_throughput.py [--steps 60] [--repeats 5] [--paths spans,steps,packed] [--costs [--clock cpu]] [--device cuda]
"""

from __future__ import annotations

import argparse
import math
import random
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import header, median  # noqa: E402

from charrnn.config import DataConfig, ModelConfig, TrainConfig  # noqa: E402
from charrnn.data.corpus import prepare  # noqa: E402
from charrnn.models import documents  # noqa: E402
from charrnn.models.lm import CharRNN  # noqa: E402
from charrnn.runtime.hardware import autocast  # noqa: E402
from charrnn.training.trainer import Trainer  # noqa: E402

WORDS = ("the of and to in is was that for on as with by it his be at from this had not are but which or have an they "
         "one you were her all she there would their we him been has when who will more no if out so said what up its "
         "about into than them can only other new some could time these two may then do first any my now such like our").split()  # fmt: skip


def fortunes(path: Path, n_docs: int, seed: int = 0) -> Path:
    rng = random.Random(seed)
    docs = []
    for _ in range(n_docs):
        target = max(8, int(math.exp(rng.gauss(math.log(100), 0.6))))
        words: list[str] = []
        while sum(len(w) + 1 for w in words) < target:
            words.append(rng.choice(WORDS))
        text, line = [], ""
        for w in words:
            if len(line) + len(w) + 1 > 60:
                text.append(line)
                line = ""
            line = f"{line} {w}" if line else w.capitalize() if not text else w
        text.append(line + ".")
        docs.append("\n".join(text))
    path.write_text("\n%\n".join(docs) + "\n", encoding="utf-8")
    return path


def lines(path: Path, n_lines: int, seed: int = 0) -> Path:
    rng = random.Random(seed)
    letters = "abcdefghijklmnopqrstuvwxyz"
    items = ["".join(rng.choice(letters) for _ in range(max(1, min(14, round(rng.gauss(6, 2.5)))))) for _ in range(n_lines)]
    path.write_text("\n".join(items) + "\n", encoding="utf-8")
    return path


def run(corpus, data_cfg: DataConfig, args, out: Path, doc_state: str, path: str | None) -> float:
    """tokens/s of `args.steps` training steps (and one tiny final evaluation)."""
    model = ModelConfig(cell=args.cell, layers=args.layers, hidden=args.hidden, embed=args.embed)
    cfg = TrainConfig(
        seq_len=args.seq_len, batch_size=args.batch_size, steps=args.steps, eval_every=10**9, final_eval_tokens=64,
        sample_chars=0, precision=args.precision, device=args.device, doc_state=doc_state,
    )  # fmt: skip
    fp32_products = path == "fp32-products"  # the scan as it was before issue 25: fp32 products under bf16 too
    documents.PATH = None if fp32_products else path
    product_dtype = documents.product_dtype
    if fp32_products:
        documents.product_dtype = lambda core, device: None
    try:
        clock = time.process_time if args.clock == "cpu" else time.perf_counter
        t = Trainer(model, data_cfg, cfg, corpus, out)
        t0 = clock()
        t.run()
        return args.steps * args.batch_size * args.seq_len / (clock() - t0)
    finally:
        documents.PATH = None
        documents.product_dtype = product_dtype


def step_costs(args) -> None:
    """ms per training step of each path, by the number of timesteps (after the first) where some row starts a document."""
    torch.manual_seed(0)
    B, T = args.batch_size, args.seq_len
    device = torch.device(args.device)
    m = CharRNN(ModelConfig(cell=args.cell, layers=args.layers, hidden=args.hidden, embed=args.embed, vocab_size=65)).to(device)
    opt = m.configure_optimizers(1e-3, 0.1)
    idx, y = torch.randint(65, (B, T), device=device), torch.randint(65, (B, T), device=device)
    g = torch.Generator().manual_seed(1)

    def pattern(k: int) -> torch.Tensor:
        reset = torch.zeros(B, T, dtype=torch.bool)
        cols = torch.randperm(T - 1, generator=g)[:k] + 1
        for c in cols.tolist():
            reset[torch.randint(B, (max(1, B // 8),), generator=g), c] = True
        return reset.to(device)

    dtype = torch.bfloat16 if args.precision == "bf16" else None

    clock = time.process_time if args.clock == "cpu" else time.perf_counter

    def step(reset: torch.Tensor | None, path: str | None, grad: bool) -> float:
        documents.PATH = path
        t0 = clock()
        if grad:
            with autocast(device, dtype):
                _, loss, _ = m(idx, m.init_state(B), y, reset)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
        else:  # an evaluation's forward pass
            with torch.no_grad(), autocast(device, dtype):
                m(idx, m.init_state(B), y, reset)
        if device.type == "cuda":
            torch.cuda.synchronize()
        documents.PATH = None
        return (clock() - t0) * 1e3

    paths = ("spans", "steps", "packed")
    ks = [k for k in (1, 2, 3, 4, 5, 6, 8, 12, T - 1) if k < T]
    resets = {k: pattern(k) for k in ks}
    record = {}
    for grad in (True, False):
        for _ in range(2):
            step(None, None, grad), [step(resets[1], p, grad) for p in paths]
        res: dict[tuple[int, str], list[float]] = {(k, p): [] for k in [0, *ks] for p in paths}
        for _ in range(args.repeats):
            for k in [0, *ks]:
                for p in paths:
                    res[(k, p)].append(step(resets.get(k), p if k else None, grad))
        base = median(res[(0, "spans")])
        what = "one training step" if grad else "one evaluation forward (no gradient)"
        print(f"\n{what} ({args.cell} {args.layers}x{args.hidden}, batch {B} x {T}, {args.precision}), medians of {args.repeats} "
              f"({args.clock} ms); no document start: {base:.1f} ms")  # fmt: skip
        print("timesteps with a start   " + "".join(f"{p:>16}" for p in paths))
        for k in ks:
            print(f"{k:>24}   " + "".join(f"{median(res[(k, p)]):>9.1f} ms {base / median(res[(k, p)]):.2f}" for p in paths))
        key = ("cuda" if device.type == "cuda" else "cpu", args.precision, grad)
        record[key] = {k: (round(median(res[(k, "spans")]), 1), round(median(res[(k, "steps")]), 1)) for k in ks}
    print("\nfor documents.RECORDED (spans, steps ms by timesteps with a start):")
    for key, table in record.items():
        print(f"    {key!r}: {table!r},")


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--steps", type=int, default=60)
    p.add_argument("--repeats", type=int, default=5)
    p.add_argument("--cell", default="lstm")
    p.add_argument("--layers", type=int, default=2)
    p.add_argument("--hidden", type=int, default=256)
    p.add_argument("--embed", type=int, default=64)
    p.add_argument("--batch-size", type=int, default=32)
    p.add_argument("--seq-len", type=int, default=32)
    p.add_argument("--precision", default="fp32", choices=["fp32", "bf16"])
    p.add_argument("--paths", default="", help="also force these paths, comma-separated (spans,steps,packed; fp32-products: "
                   "paths chosen per batch, the scan's products in fp32 as before issue 25)")
    p.add_argument("--shapes", default="fortunes,lines")
    p.add_argument("--costs", action="store_true", help="also measure each path's step cost by the number of document starts")
    p.add_argument("--threads", type=int, default=None)
    p.add_argument("--clock", choices=("wall", "cpu"), default="wall", help="wall time or this process's CPU time (with --threads 1 on a shared machine, the steadier)")
    p.add_argument("--device", default="cpu", help="cpu or cuda")
    args = p.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    header("training throughput with documents: state reset at document starts / carried through")
    forced = [x for x in args.paths.split(",") if x]
    print(f"model: {args.cell} {args.layers}x{args.hidden}, embedding {args.embed}, batch {args.batch_size} x {args.seq_len}, "
          f"{args.precision}, {args.device}; {args.steps} steps a run, {args.repeats} runs each, alternating")  # fmt: skip
    with tempfile.TemporaryDirectory() as tmp:
        tmp_path = Path(tmp)
        for shape in [s for s in args.shapes.split(",") if s]:
            if shape == "fortunes":
                path, sep = fortunes(tmp_path / "fortunes.txt", 8000), "%"
            else:
                path, sep = lines(tmp_path / "lines.txt", 120_000), "line"
            data_cfg = DataConfig(paths=(str(path),), doc_sep=sep)
            corpus = prepare(data_cfg, tmp_path / "ck")
            n_docs = np.asarray(corpus.ids) == corpus.tokenizer.eos_id
            mean_doc = len(corpus.ids) / max(int(n_docs.sum()), 1)
            print(f"\n{shape}: --doc-sep {sep}, {len(corpus.ids):,} tokens, {int(n_docs.sum()):,} documents, {mean_doc:.1f} tokens a document")
            variants = [("carry", None), ("reset", None), *[("reset", f) for f in forced]]
            run(corpus, data_cfg, args, tmp_path / f"warm-{shape}", "reset", None)  # warm up allocators and kernels
            res: dict[tuple[str, str | None], list[float]] = {v: [] for v in variants}
            for r in range(args.repeats):
                for v in variants:
                    res[v].append(run(corpus, data_cfg, args, tmp_path / f"{shape}-{v[0]}-{v[1]}-{r}", *v))
                print("  run " + str(r + 1) + ": " + ", ".join(f"{v[0]}{'/' + v[1] if v[1] else ''} {res[v][-1]:,.0f}" for v in variants))
            base = median(res[("carry", None)])
            print(f"  carry (baseline, no resets): {base:>9,.0f} tokens/s (median)")
            for v in variants[1:]:
                label = {None: "reset, paths chosen per batch", "fp32-products": "reset, fp32 scan products"}.get(v[1], f"reset, {v[1]} forced")
                pairs = [r / c for r, c in zip(res[v], res[("carry", None)])]  # each run against the carry run beside it
                print(f"  {label + ':':<30} {median(res[v]):>8,.0f} tokens/s  {median(res[v]) / base:.3f}x; "
                      f"run by run {median(pairs):.3f}x ({min(pairs):.3f}-{max(pairs):.3f})")  # fmt: skip
    if args.costs:
        step_costs(args)


if __name__ == "__main__":
    main()
