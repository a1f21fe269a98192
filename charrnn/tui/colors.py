"""Colour maps for activations, as cached Rich styles.

A value becomes one of LEVELS colours: signals in the tanh range (-1, 1) run
blue - near black - red (a dark middle, so that on a dark terminal what stands
out is what is strongly on or off), gates in (0, 1) black - orange - yellow, unbounded signals
(an LSTM's cell, a vanilla RNN's pre-activation) are scaled by their own
largest magnitude and drawn like tanh values.

That is in true colour. A terminal with 256 or 16 colours (the App's console knows
which) gets the same scales built from colours it has (inspect/palette.py), so that
the heatmap does not snap to unrelated xterm colours.
"""

from __future__ import annotations

from functools import lru_cache

import numpy as np
from rich.color import Color
from rich.console import Console
from rich.style import Style

from ..inspect.palette import DARK_DIVERGING, HEAT, TRUECOLOR, depth_of, ink
from ..inspect.stats import fractions
from ..models import registry
from ..models.registry import FREE, GATE, TANH  # noqa: F401  (the screens use colors.TANH)

LEVELS = 33


def kind_of(cell: str, signal: str) -> str:
    """The colour scale of a signal: its range in the model kind's registry entry."""
    return registry.range_of(cell, signal)


def signals_of(cell: str, available: "dict | tuple | list") -> tuple[str, ...]:
    """The signals to offer, in the cell's own order (h first)."""
    spec = registry.KINDS.get(cell)
    order = list(spec.signal_names) if spec else []
    names = list(available)
    return tuple([n for n in order if n in names] + [n for n in names if n not in order])


def _lerp(a: tuple[int, int, int], b: tuple[int, int, int], t: float) -> tuple[int, int, int]:
    return tuple(int(round(x + (y - x) * t)) for x, y in zip(a, b))  # type: ignore[return-value]


_BLUE, _MID, _RED = (70, 150, 255), (28, 28, 32), (255, 70, 50)
_BLACK, _ORANGE, _YELLOW = (0, 0, 0), (200, 70, 0), (255, 225, 40)


def rgb(kind: str, level: int) -> tuple[int, int, int]:
    t = level / (LEVELS - 1)  # 0..1
    if kind == GATE:
        return _lerp(_BLACK, _ORANGE, t * 2) if t < 0.5 else _lerp(_ORANGE, _YELLOW, t * 2 - 1)
    return _lerp(_BLUE, _MID, t * 2) if t < 0.5 else _lerp(_MID, _RED, t * 2 - 1)


def depth(console: Console) -> str:
    """How many colours a console (the App's) draws: palette.TRUECOLOR, EIGHT_BIT or STANDARD."""
    return depth_of(console.color_system)


@lru_cache(maxsize=None)
def bg(kind: str, level: int, depth: str = TRUECOLOR) -> Style:
    """A background of this level, with a legible foreground on it, in a colour the
    terminal has at this depth (palette.TRUECOLOR, EIGHT_BIT or STANDARD)."""
    if depth == TRUECOLOR:
        return Style(bgcolor=Color.from_rgb(*rgb(kind, level)), color=ink(rgb(kind, level)))
    ramp, t = (HEAT if kind == GATE else DARK_DIVERGING), level / (LEVELS - 1)
    return Style(bgcolor=ramp.color(t, depth), color=ink(ramp.rgb(t, depth)))


def scale_of(kind: str, values: np.ndarray) -> float:
    """The magnitude drawn at full colour: 1 for bounded signals, else the largest
    (99th percentile) magnitude of these values."""
    if kind != FREE or values.size == 0:
        return 1.0
    s = float(np.percentile(np.abs(values), 99))
    return s if s > 1e-6 else 1.0


def levels(kind: str, values: np.ndarray, scale: float = 1.0) -> np.ndarray:
    """values (any shape) -> int levels in [0, LEVELS)."""
    v = np.nan_to_num(np.asarray(values, dtype=np.float32))
    t = v if kind == GATE else (np.clip(v / scale, -1.0, 1.0) + 1.0) / 2.0
    return np.clip(np.rint(t * (LEVELS - 1)), 0, LEVELS - 1).astype(np.int16)


def saturation(kind: str, values: np.ndarray) -> np.ndarray | None:
    """values (T, H) -> (H, 2): the fraction of steps each unit sits near its low and
    its high end (a gate below 0.1 / above 0.9, a tanh below -0.9 / above 0.9)."""
    if values.size == 0 or kind == FREE:
        return None
    return fractions(values, kind)
