"""The atlas (charrnn inspect --atlas): its speed, and what it finds in trained runs.

Speed: a 2x256 LSTM (its weights do not change the work) over --chars characters
of Python source, --repeats times: wall and CPU seconds, median and spread. The
baseline, in the same run: reading alone (no scores) in one stream through the
per-step path, as `inspect` traces a text, against B streams (the default per-step
path, and the fused layers plus one product) over --baseline-chars characters.

Findings: for each run given (--default-run: `charrnn train --time 3m` on
pydoc-topics; --stdlib-run: a 1x256 LSTM on the stdlib corpus), the atlas over its
validation split, and the issue's targets with the shifted baseline beside:
AUC >= 0.9 for "inside double quotes" or "inside parentheses" and |r| >= 0.6 for
"position in line" on the first; "inside a string" and "indentation depth" on the
second.

    nice -n 5 python bench/atlas.py --default-run RUN --stdlib-run RUN
"""

from __future__ import annotations

import argparse
import statistics
import sys
import sysconfig
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from bench._common import header  # noqa: E402

TARGETS = {
    "default": (("inside double quotes", 0.9), ("inside parentheses", 0.9), ("position in line", 0.6)),
    "stdlib": (("inside a string", 0.9), ("indentation depth", 0.6)),
}


def python_source(chars: int) -> str:
    """Python's own library files, concatenated up to `chars` characters (no network, no corpus file)."""
    out, n = [], 0
    for f in sorted(Path(sysconfig.get_paths()["stdlib"]).glob("*.py")):
        t = f.read_text(encoding="utf-8", errors="replace")
        out.append(t)
        n += len(t)
        if n >= chars:
            break
    return "".join(out)[:chars]


def speed(chars: int, repeats: int, baseline_chars: int) -> None:
    import torch

    from charrnn.config import ModelConfig
    from charrnn.inspect import annotations as an
    from charrnn.inspect import stream
    from charrnn.inspect.atlas import run
    from charrnn.models.lm import CharRNN

    text = python_source(chars)
    vocab = sorted(set(text))
    ids = np.array([vocab.index(c) for c in text], np.int64)
    torch.manual_seed(0)
    model = CharRNN(ModelConfig(cell="lstm", layers=2, hidden=256, embed=64, vocab_size=len(vocab))).eval()
    t0 = time.perf_counter()
    pairs = [(a, a.values) for a in an.builtin(text)]
    ann_s = time.perf_counter() - t0
    walls, cpus = [], []
    for _ in range(repeats):
        at = run(model, pairs, ids, tuple(text))
        walls.append(at.seconds)
        cpus.append(at.cpu_seconds)
    print(f"\n## speed: atlas of a 2x256 LSTM over {len(text):,} characters ({at.units:,} units, {len(pairs)} annotations, "
          f"{at.streams} streams, AUC sample {at.sample:,})")  # fmt: skip
    print(f"annotations: {ann_s:.2f} s (once)")
    print(f"atlas: wall median {statistics.median(walls):.1f} s (min {min(walls):.1f}, max {max(walls):.1f}); "
          f"CPU median {statistics.median(cpus):.1f} s (min {min(cpus):.1f}, max {max(cpus):.1f}) over {repeats} repeats")  # fmt: skip
    # the baseline: reading alone (no scores) in one stream, as `inspect` traces a text (over fewer characters,
    # scaled: it grows linearly); then all of the text in B streams, per-step (the default) and fused
    B = at.streams
    cost = {}
    for name, n, streams, fused in (("one stream, per-step (baseline)", baseline_chars, 1, False),
                                    (f"{B} streams, per-step", len(ids), B, False),
                                    (f"{B} streams, fused layers + one product", len(ids), B, True)):  # fmt: skip
        t0, c0 = time.perf_counter(), time.process_time()
        for _ in stream.chunks(model, ids[:n], streams=streams, fused=fused):
            pass
        k = len(ids) / n
        cost[name] = ((time.perf_counter() - t0) * k, (time.process_time() - c0) * k)
    base = next(iter(cost.values()))
    print(f"reading alone, per {len(ids):,} characters (the baseline measured over {baseline_chars:,} and scaled): " + "; ".join(
        f"{n}: {w:.1f} s wall, {c:.1f} s CPU ({base[1] / c:.1f}x less CPU than the baseline)" for n, (w, c) in cost.items()))


def findings(name: str, run_path: str, chars: int) -> None:
    from charrnn.inspect import annotations as an
    from charrnn.inspect.atlas import run
    from charrnn.inspect.source import read_text
    from charrnn.training import checkpoint

    path = checkpoint.find(run_path)
    ck = checkpoint.load(path)
    model, tok = checkpoint.model_from(ck, path)
    src = read_text(ck.data_config, path, model, tok, None, chars, "skip")
    pairs = [(a, a.at(src.last_char)) for a in an.builtin(src.text)]
    at = run(model, pairs, src.ids, src.tokens, start_id=tok.eos_id)
    m = model.cfg
    val = ck.best_val_loss
    print(f"\n## findings: {path} ({m.cell} {m.layers}x{m.hidden}, step {ck.step:,}"
          f"{f', best val {val:.4f} nats/token' if isinstance(val, float) else ''}); {src.source}; {at.seconds:.1f} s")  # fmt: skip
    by = {f.name: f for f in at.findings}
    for target, bar in TARGETS[name]:
        f = by.get(target)
        if f is None:
            print(f"  {target}: not scored (it never changes in this text)")
            continue
        b = f.best[0]
        meas = "AUC" if f.measure == "auc" else "|r|"
        print(f"  {target}: best {b.unit} {meas} {b.score:.3f} ({'+' if b.sign > 0 else '-'}), shifted baseline {f.baseline:.3f}, "
              f"target >= {bar}: {'met' if b.score >= bar else 'NOT met'}")  # fmt: skip
    print("  all annotations: " + "; ".join(f"{f.name} {f.best[0].score:.2f} (base {f.baseline:.2f})" for f in at.findings))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--chars", type=int, default=200_000)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--baseline-chars", type=int, default=10_000)
    ap.add_argument("--default-run", help="a run trained with `charrnn train --time 3m` (pydoc-topics)")
    ap.add_argument("--stdlib-run", help="a 1x256 LSTM trained on the stdlib corpus")
    ap.add_argument("--run-chars", type=int, default=300_000, help="validation characters the findings read")
    ap.add_argument("--threads", type=int, default=None)
    ap.add_argument("--skip-speed", action="store_true")
    args = ap.parse_args()
    import torch

    if args.threads:
        torch.set_num_threads(args.threads)
    header("the atlas: speed and findings (charrnn inspect --atlas)")
    if not args.skip_speed:
        speed(args.chars, args.repeats, args.baseline_chars)
    for name, path in (("default", args.default_run), ("stdlib", args.stdlib_run)):
        if path:
            findings(name, path, args.run_chars)


if __name__ == "__main__":
    main()
