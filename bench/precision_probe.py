"""What `--precision auto` chooses on this CPU, and why (training/autoprecision.py, issue 25).

Measures the probe `charrnn train` takes once per machine (the training step of the
bf16 defaults under bf16 autocast against the fp32 recipe's in fp32), `--repeats`
times in one process, and prints each ratio, their median and spread, and the
choice each would make at several budgets, with the recorded curves' predictions.
The machine's class (AMX, AVX512-BF16, fp32-only) is in the header; on an fp32-only
CPU `auto` never probes (emulated bf16 is slower than fp32) and trains in fp32.

With `--verify`, it then runs `bench/quality.py` for `--precision auto`, `fp32` and
`bf16` at `--budget`, one after the other (the plain fp32 loop once, with auto), so
the target can be read off: auto within 0.01 nats/char of the better of the two and
at least 0.04 ahead of the plain loop. That takes about 4 x the budget, on an
otherwise idle machine.

    python bench/precision_probe.py [--repeats 5] [--verify] [--budget 3m]
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import header  # noqa: E402

from charrnn.config import parse_duration  # noqa: E402
from charrnn.training import autoprecision as ap  # noqa: E402
from charrnn.runtime.hardware import cpu_class, cpu_has_native_bf16  # noqa: E402


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--repeats", type=int, default=5)
    p.add_argument("--budget", default="3m")
    p.add_argument("--verify", action="store_true", help="also train for the budget under auto, fp32 and bf16 (bench/quality.py)")
    args = p.parse_args()
    header("what --precision auto chooses on this CPU")
    print(f"CPU class: {cpu_class()}; native bf16: {cpu_has_native_bf16()} (auto probes only where it is true)")
    probes = [ap.measure() for _ in range(args.repeats)]
    for i, pr in enumerate(probes):
        print(f"probe {i + 1}: bf16 defaults {pr.bf16_step_s * 1e3:7.2f} ms/step, fp32 recipe {pr.fp32_step_s * 1e3:7.2f} ms/step, ratio {pr.ratio:.3f}")
    ratios = sorted(pr.ratio for pr in probes)
    med = statistics.median(ratios)
    print(f"ratio (bf16 step / fp32 step): median {med:.3f}, spread {ratios[0]:.3f}-{ratios[-1]:.3f} over {len(ratios)}")
    mid = min(probes, key=lambda pr: abs(pr.ratio - med))
    for budget in ("1m", "3m", "10m", "30m"):
        c = ap.decide(mid, parse_duration(budget))
        print(f"  {budget:>4}: {c.reason}")
    flips = {ap.decide(pr, parse_duration(args.budget)).precision for pr in probes}
    print(f"at {args.budget}, the {len(probes)} probes choose: {', '.join(sorted(flips))}")
    if args.verify:
        quality = Path(__file__).resolve().parent / "quality.py"
        for precision in ("auto", "fp32", "bf16"):
            extra = [] if precision == "auto" else ["--skip-plain"]
            cmd = [sys.executable, str(quality), "--budgets", args.budget, "--precision", precision, *extra]
            print(f"\n$ {' '.join(cmd)}", flush=True)
            subprocess.run(cmd, check=True)


if __name__ == "__main__":
    main()
