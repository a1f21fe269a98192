"""Disk space for checkpoints: a warning before a run, a plain reason when a write fails.

Saving a checkpoint writes the new file beside the old one and renames it over
(checkpoint.py), so a run folder needs room for two checkpoints at once. At the
start of a run the trainer estimates one checkpoint's size (`estimate`) and warns
when the folder has less than twice that free (`low_space`). When a write fails
because the disk is full, PyTorch's own message says only "unexpected pos 5130368
vs 5130256"; `disk_full` finds the ENOSPC underneath (PyTorch keeps it as the
exception's context) or the missing room, and says it in words.
"""

from __future__ import annotations

import errno
import shutil
from pathlib import Path
from typing import Any

import torch

FULL = (errno.ENOSPC, getattr(errno, "EDQUOT", errno.ENOSPC))
OVERHEAD = 64 << 10  # configs, the tokenizer, numbers: well under this for a character model


def nbytes(obj: Any) -> int:
    """The bytes of every tensor in a (nested) payload."""
    if isinstance(obj, torch.Tensor):
        return obj.numel() * obj.element_size()
    if isinstance(obj, dict):
        return sum(nbytes(v) for v in obj.values())
    if isinstance(obj, (list, tuple)):
        return sum(nbytes(v) for v in obj)
    if isinstance(obj, (bytes, bytearray)):
        return len(obj)
    return 0


def estimate(model: torch.nn.Module, optimizer: torch.optim.Optimizer, extra: Any = None) -> int:
    """About how many bytes a checkpoint of this model will take: its weights, the optimizer's
    state (before the first step there is none yet: Adam will keep two moments per trained
    weight), the task's extra state, and a little."""
    opt = nbytes(optimizer.state_dict()["state"])
    if not opt:
        moments = 2 if isinstance(optimizer, (torch.optim.Adam, torch.optim.AdamW)) else 1
        opt = moments * sum(p.numel() * p.element_size() for p in model.parameters() if p.requires_grad)
    return nbytes(model.state_dict()) + opt + nbytes(extra) + OVERHEAD


def free(folder: Path) -> int | None:
    """Free bytes on the disk that holds `folder` (or its nearest existing parent); None if unknown."""
    folder = Path(folder).absolute()
    while not folder.exists() and folder != folder.parent:
        folder = folder.parent
    try:
        return shutil.disk_usage(folder).free
    except OSError:
        return None


def size(n: float) -> str:
    for unit in ("bytes", "KB", "MB", "GB", "TB"):
        if n < 1000 or unit == "TB":
            return f"{n:.0f} {unit}" if unit == "bytes" else f"{n:.1f} {unit}"
        n /= 1000
    raise AssertionError  # pragma: no cover


def low_space(folder: Path, need: int) -> str | None:
    """A warning when `folder` has room for fewer than two checkpoints of `need` bytes."""
    have = free(folder)
    if have is None or have >= 2 * need:
        return None
    return (
        f"only {size(have)} free for {folder}; a checkpoint needs about {size(need)}, and saving one needs room "
        f"for two (the new beside the old). Free some space, or train into another folder (--out)."
    )


def disk_full(e: BaseException, folder: Path, need: int, resumable: bool = True) -> str | None:
    """Why a write into `folder` failed, in words, when the disk is full; None otherwise.
    `resumable`: the folder already holds a checkpoint to continue from."""
    seen, x = set(), e
    full = False
    while x is not None and id(x) not in seen:  # PyTorch raises a RuntimeError; the OSError is its context
        seen.add(id(x))
        if isinstance(x, OSError) and x.errno in FULL:
            full = True
            break
        x = x.__cause__ or x.__context__
    have = free(folder)
    if not full and not (isinstance(e, (OSError, RuntimeError)) and have is not None and have < need):
        return None
    left = f", and {size(have)} is free" if have is not None else ""
    return (
        f"the disk is full (ENOSPC): a checkpoint needs about {size(need)}{left} on the disk of {folder}. "
        f"Free some space (a save needs room for two checkpoints), then "
        + (f"continue with: charrnn train --resume {folder}" if resumable else "start the run again")
    )
