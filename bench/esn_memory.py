"""Where an echo state network's short-term memory peaks (Jaeger 2001, 2002).

Jaeger's memory capacity MC = sum over delays k of r²(u(t-k), the best linear
reconstruction of it from h(t)), for an i.i.d. input u, is at most N for N units.
This sweeps the spectral radius and the leak of charrnn's reservoir (--cell esn,
its own construction, `ESNCore.measure_memory`) at two input scalings and prints
MC for each, with the peak. The chapter's claim (section 10.8): memory is longest
near the edge of stability, a spectral radius just under 1; a smaller leak rate
stretches it further, a loud input (saturated tanh) cuts it.

    python bench/esn_memory.py                  # 256 units, 3 seeds
    python bench/esn_memory.py --units 512 --seeds 1
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import header  # noqa: E402

RADII = (0.5, 0.8, 0.9, 0.95, 0.99, 1.05, 1.2)
LEAKS = (1.0, 0.5, 0.2)
SCALINGS = (1.0, 0.1)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--units", type=int, default=256)
    ap.add_argument("--seeds", type=int, default=3)
    a = ap.parse_args()
    header(f"ESN memory capacity: {a.units} units, density 0.1, {a.seeds} seeds (median, min-max)")
    import torch

    from charrnn.config import ModelConfig
    from charrnn.models.lm import CharRNN

    torch.set_num_threads(min(2, torch.get_num_threads()))
    t0, c0 = time.monotonic(), time.process_time()
    best = (0.0, None)
    for scaling in SCALINGS:
        print(f"\n--input-scaling {scaling}: MC (the bound is {a.units})")
        print("radius  " + "".join(f"{'leak ' + format(x, 'g'):>20}" for x in LEAKS))
        for radius in RADII:
            cells = []
            for leak in LEAKS:
                mcs = []
                for seed in range(a.seeds):
                    torch.manual_seed(seed)
                    opts = {"spectral_radius": radius, "leak": leak, "input_scaling": scaling}
                    m = CharRNN(ModelConfig(cell="esn", layers=1, hidden=a.units, embed=64, vocab_size=32, options=opts))
                    mcs.append(m.core.measure_memory(seed=seed))
                med = statistics.median(mcs)
                if med > best[0]:
                    best = (med, (scaling, radius, leak))
                cells.append(f"{med:7.1f} ({min(mcs):.1f}-{max(mcs):.1f})")
            print(f"{radius:<8g}" + "".join(f"{c:>20}" for c in cells))
    mc, (scaling, radius, leak) = best
    print(f"\npeak: MC {mc:.1f} of {a.units} at --spectral-radius {radius:g} --leak {leak:g} --input-scaling {scaling:g}")
    print(f"took {time.monotonic() - t0:.0f} s wall, {time.process_time() - c0:.0f} s CPU (a shared machine: wall time is noisy)")


if __name__ == "__main__":
    main()
