"""`charrnn --help` wall time: it must answer at once (it imports neither torch nor numpy).

    python bench/help_time.py [--repeats 15]
"""

from __future__ import annotations

import argparse
import shutil
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import header, median  # noqa: E402


def wall(cmd: list[str]) -> float:
    t0 = time.perf_counter()
    subprocess.run(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, check=True)
    return time.perf_counter() - t0


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--repeats", type=int, default=15)
    args = p.parse_args()
    header("charrnn --help wall time")
    exe = shutil.which("charrnn", path=str(Path(sys.executable).parent)) or "charrnn"
    cases = {
        "python -c pass (baseline)": [sys.executable, "-c", "pass"],
        "python -c 'import torch' (what --help avoids)": [sys.executable, "-c", "import torch"],
        "charrnn --help": [exe, "--help"],
        "charrnn train --help": [exe, "train", "--help"],
        "charrnn sample --help": [exe, "sample", "--help"],
    }
    times = {k: [] for k in cases}
    for _ in range(args.repeats):
        for k, cmd in cases.items():
            times[k].append(wall(cmd))
    base = median(times["python -c pass (baseline)"])
    for k in cases:
        m = median(times[k])
        print(f"{k:<48} {m * 1000:7.0f} ms  {m / base:5.1f}x baseline")
    print(f"charrnn --help: {median(times['charrnn --help']) * 1000:.0f} ms median (target < 300 ms)")


if __name__ == "__main__":
    main()
