"""The truncation window a built-in long-range corpus needs.

Truncated BPTT (--seq-len T) backpropagates through at most T steps: a character
that depends on one more than T characters back never sends its gradient to the
step that should have remembered it, whatever the cell (section 10.7's point
cannot even be tested). Within a window of T, a dependency of d characters gets
its gradient only when the answer falls at least d steps into the window, about
(T - d)/T of the time; so the window that spans a corpus' dependencies is the power
of two at or above the distance that 9 in 10 of them stay within.

`charrnn train` says so in one line when --seq-len is shorter than the mean
dependency (`note()`); `charrnn compare` takes the spanning window unless
--seq-len is given (`fit()`).
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

from ..config import TrainConfig
from . import longrange

MIN_WINDOW = 32


@dataclass(frozen=True)
class Dependency:
    corpus: str  # as the user wrote it
    mean: float  # characters from what is remembered to where it is needed, on average
    q90: int  # 9 in 10 dependencies lie within this many characters
    window: int  # the --seq-len that spans them

    def describe(self) -> str:
        return f"{self.mean:.0f} characters on average, 9 in 10 within {self.q90}"


def dependency(paths: Sequence[str]) -> Dependency | None:
    """How far a built-in long-range corpus's dependencies reach; None for any other corpus
    (several corpora, a file, a folder)."""
    if len(paths) != 1 or not longrange.is_longrange(paths[0]) or Path(paths[0]).exists():
        return None
    mean, q90 = longrange.parse(paths[0]).distances(0.9)
    window = MIN_WINDOW
    while window < q90:
        window *= 2
    return Dependency(paths[0], mean, q90, window)


def note(paths: Sequence[str], seq_len: int) -> str | None:
    """One line when --seq-len is shorter than the corpus's mean dependency, saying how to change it."""
    dep = dependency(paths)
    if dep is None or seq_len >= dep.mean:
        return None
    return (f"--seq-len {seq_len} is shorter than {dep.corpus}'s dependencies ({dep.describe()}), so no gradient spans "
            f"them; train with --seq-len {dep.window} to carry them.")  # fmt: skip


def fit(paths: Sequence[str], train: TrainConfig, given: set[str]) -> tuple[TrainConfig, str | None]:
    """For `charrnn compare`: the window that spans the corpus's dependencies unless --seq-len was
    given (then the note above, if it is too short), and a line saying which."""
    dep = dependency(paths)
    if dep is None:
        return train, None
    if "seq_len" in given:
        return train, note(paths, train.seq_len)
    if train.seq_len >= dep.window:
        return train, None
    line = f"--seq-len {dep.window} (not {train.seq_len}) so that the gradient spans {dep.corpus}'s dependencies ({dep.describe()}); give --seq-len to choose."
    return dataclasses.replace(train, seq_len=dep.window), line
