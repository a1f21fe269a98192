"""Shared by the benchmarks: what machine this is, medians, a default corpus."""

from __future__ import annotations

import os
import platform
import random
import shlex
import statistics
import sys
from pathlib import Path

SHAKESPEARE = Path(__file__).resolve().parents[2] / "shared" / "corpora" / "tinyshakespeare.txt"


def machine() -> str:
    import torch

    cpu = platform.processor() or "?"
    try:
        for line in open("/proc/cpuinfo"):
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    flags = ""
    try:
        text = open("/proc/cpuinfo").read()
        flags = " ".join(f for f in ("avx512_bf16", "amx_bf16") if f in text)
    except OSError:
        pass
    return (
        f"{os.cpu_count()} cores ({cpu}{', ' + flags if flags else ''}), torch {torch.__version__} "
        f"({torch.get_num_threads()} threads), Python {platform.python_version()}"
    )


def header(title: str) -> None:
    print(f"# {title}")
    print(f"command: {' '.join(shlex.quote(a) for a in [sys.executable, *sys.argv])}")
    print(f"machine: {machine()}")


def median(xs: list[float]) -> float:
    return statistics.median(xs)


def words_corpus(path: Path, size_bytes: int, seed: int = 0) -> Path:
    """A generated text corpus of about `size_bytes` (random lines of common words)."""
    rng = random.Random(seed)
    words = ("the of and to in is was that for on as with by it his be at from this had not are but which or have an they "
             "one you were her all she there would their we him been has when who will more no if out so said what up its "
             "about into than them can only other new some could time these two may then do first any my now such like our").split()  # fmt: skip
    lines = [" ".join(rng.choice(words) for _ in range(rng.randint(4, 14))).capitalize() + "." for _ in range(20_000)]
    block = ("\n".join(lines) + "\n").encode()
    with open(path, "wb") as f:
        written = 0
        while written < size_bytes:
            f.write(block)
            written += len(block)
    return path
