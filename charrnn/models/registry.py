"""Model kinds: one registry, one entry per recurrent cell the program knows.

A kind is everything the rest of charrnn needs to know about a cell without
importing torch: its name and a line of help (`--cell` lists them), the names of
its state tensors, its internal signals and the range each one lives in (which
picks the colour scale and the saturation rule in the inspector and the TUI),
its own settings (a frozen dataclass of options with defaults, validated with
the model config), and where its implementation lives (`module:Class`, imported
the first time a model of that kind is built, or the class itself).

Everything that lists cells or signals reads this registry: `--cell` choices,
`inspect --what`, the TUI's colours, saturation statistics, the JSON trace
format. A new cell is one module (its `Core` subclass, see core.py) and one
`register(Kind(...))` call; nothing else changes.

Tree cells (`recursive`, `treelstm`) are kinds too, with `structure = TREE`: they
share the registry's names, signals and ranges (so `inspect --what`, colours and
saturation treat them alike) but not the recurrent core; their implementation is
a `recursive.TreeCore`, and only `--task tree` takes them.
"""

from __future__ import annotations

import dataclasses
import importlib
from dataclasses import dataclass
from typing import Any

from ..errors import ConfigError
from .options import BinaryTreeOptions, ESNOptions, GatedOptions, JordanOptions, LeakyOptions

# What a kind reads: a sequence, step by step (the recurrent core, core.py), or a
# tree, node by node bottom-up (recursive.py). A task takes one structure (its TaskSpec says which).
SEQUENCE, TREE = "sequence", "tree"

# The range a signal lives in: it decides how it is coloured and when it counts as saturated.
GATE = "gate"  # (0, 1): a sigmoid gate; shut below 0.1, open above 0.9
TANH = "tanh"  # (-1, 1): a squashed state; saturated beyond -0.9 / 0.9, where tanh' is nearly 0
FREE = "free"  # unbounded (an LSTM cell, a pre-activation): coloured through its own scale
RANGES = (GATE, TANH, FREE)
THRESHOLDS = {GATE: (0.1, 0.9), TANH: (-0.9, 0.9)}  # saturation: (low end, high end), the one place they live


@dataclass(frozen=True)
class Signal:
    name: str
    range: str  # GATE | TANH | FREE
    about: str = ""  # what it is, in a few words (inspect's --help, the JSON format)


@dataclass(frozen=True)
class Kind:
    name: str
    about: str  # one line for --help
    state: tuple[str, ...]  # the state tensors a step carries, h first; each is (L, B, ...) in a model's state
    signals: tuple[Signal, ...]  # what a traced step records, in display order (h first)
    core: Any  # "module:Class" (imported on first use) or the Core subclass itself
    options: type | None = None  # a frozen dataclass of the kind's own settings, all with defaults
    fused: bool = False  # trains through a fused PyTorch module (cuDNN / oneDNN); else the generic unrolled core
    structure: str = "sequence"  # what it reads: SEQUENCE (a core.py core over time) or TREE (recursive.py, --task tree)
    tasks: tuple[str, ...] | None = None  # the tasks it serves, where not every task of its structure (ModelConfig.validate)

    def signal(self, name: str) -> Signal:
        for s in self.signals:
            if s.name == name:
                return s
        raise ConfigError(f"the {self.name} kind has no signal {name!r}; choose one of {', '.join(self.signal_names)}.")

    @property
    def signal_names(self) -> tuple[str, ...]:
        return tuple(s.name for s in self.signals)

    @property
    def gates(self) -> tuple[str, ...]:
        return tuple(s.name for s in self.signals if s.range == GATE)

    def range_of(self, name: str) -> str:
        return next((s.range for s in self.signals if s.name == name), FREE)

    def load(self) -> type:
        """The implementation class (imports its module the first time)."""
        if isinstance(self.core, str):
            module, _, attr = self.core.partition(":")
            object.__setattr__(self, "core", getattr(importlib.import_module(module), attr))
        return self.core

    def option_fields(self) -> tuple[str, ...]:
        return tuple(f.name for f in dataclasses.fields(self.options)) if self.options else ()


KINDS: dict[str, Kind] = {}


def register(kind: Kind) -> Kind:
    """Add (or replace) a model kind; returns it, so a module can keep a handle."""
    for s in kind.signals:
        if s.range not in RANGES:
            raise ValueError(f"signal {s.name!r} of {kind.name!r}: range must be one of {RANGES}")
    if kind.structure not in (SEQUENCE, TREE):
        raise ValueError(f"{kind.name!r}: structure must be {SEQUENCE!r} or {TREE!r}")
    if not kind.state or kind.signals[0].name != kind.state[0]:
        raise ValueError(f"{kind.name!r}: the first signal must be the first state tensor (h)")
    KINDS[kind.name] = kind
    return kind


def get(name: str) -> Kind:
    try:
        return KINDS[name]
    except KeyError:
        raise ConfigError(f"unknown cell {name!r}; choose one of {', '.join(KINDS)}.") from None


def names(structure: str | None = None, task: str | None = None) -> tuple[str, ...]:
    """Every kind's name, or those that read one structure (SEQUENCE or TREE), or serve one task."""
    return tuple(k.name for k in KINDS.values()
                 if (structure is None or k.structure == structure) and (task is None or k.tasks is None or task in k.tasks))  # fmt: skip


def all_signals() -> tuple[str, ...]:
    """Every signal name any kind records, in registry order (for `inspect --what`)."""
    seen: dict[str, None] = {}
    for k in KINDS.values():
        seen.update(dict.fromkeys(k.signal_names))
    return tuple(seen)


def range_of(cell: str, signal: str) -> str:
    k = KINDS.get(cell)
    return k.range_of(signal) if k else FREE


# ------------------------------------------------------------------ the built-in kinds

_H = Signal("h", TANH, "hidden state")

register(Kind(
    "rnn", "the vanilla RNN: h = tanh(b + W h + U x)", ("h",),
    (_H, Signal("a", FREE, "pre-activation b + W h + U x")),
    "charrnn.models.rnn:RNNCore", fused=True,
))  # fmt: skip
register(Kind(
    "lstm", "long short-term memory: gated self-loop on a cell c", ("h", "c"),
    (_H, Signal("c", FREE, "memory cell"), Signal("input", GATE, "input gate"), Signal("forget", GATE, "forget gate"),
     Signal("candidate", TANH, "candidate cell value"), Signal("output", GATE, "output gate")),
    "charrnn.models.lstm:LSTMCore", fused=True, options=GatedOptions,
))  # fmt: skip
register(Kind(
    "gru", "gated recurrent unit: reset and update gates", ("h",),
    (_H, Signal("reset", GATE, "reset gate"), Signal("update", GATE, "update gate"), Signal("new", TANH, "candidate state")),
    "charrnn.models.gru:GRUCore", fused=True, options=GatedOptions,
))  # fmt: skip

# Tree cells (recursive.py): they compose a node from its children, level by level
# over a batch of trees, and serve --task tree only (ModelConfig.validate says so).
register(Kind(
    "recursive", "the recursive unit over a binarised tree: h = tanh(b + W [h_left; h_right])", ("h",),
    (_H, Signal("a", FREE, "pre-activation b + W [h_left; h_right] (at a leaf d + V x)")),
    "charrnn.models.recursive:RecursiveUnit", structure=TREE,
))  # fmt: skip
TREE_LSTM_SIGNALS = (_H, Signal("c", FREE, "memory cell"), Signal("input", GATE, "input gate"),
                     Signal("forget", GATE, "forget gate its parent applied to this node's cell (none at the root)"),
                     Signal("candidate", TANH, "candidate cell value"), Signal("output", GATE, "output gate"))  # both Tree-LSTMs
register(Kind(
    "treelstm", "Child-Sum Tree-LSTM: a cell c and one forget gate per child", ("h", "c"),
    TREE_LSTM_SIGNALS,
    "charrnn.models.recursive:ChildSumTreeLSTM", structure=TREE,
))  # fmt: skip
register(Kind(
    "bintreelstm", "binary Tree-LSTM: each node's arguments folded in order under its operator, gates that see both children", ("h", "c"),
    TREE_LSTM_SIGNALS,
    "charrnn.models.recursive:BinaryTreeLSTM", structure=TREE, options=BinaryTreeOptions,
))  # fmt: skip
register(Kind(
    "leaky", "leaky units, time constants 1 to --tau-max, skip connections through time (--delays)", ("h", "past"),
    (_H, Signal("candidate", TANH, "tanh(b + sum_d W_d h(t-d) + U x): what the unit leaks toward")),
    "charrnn.models.leaky:LeakyCore", options=LeakyOptions,
))  # fmt: skip
register(Kind(
    "esn", "echo state network: a fixed random reservoir, only the readout learns", ("h",),
    (_H, Signal("a", FREE, "pre-activation b + W h + U x (all fixed)")),
    "charrnn.models.esn:ESNCore", options=ESNOptions,
))  # fmt: skip
register(Kind(
    "jordan", "output-to-hidden recurrence: h = tanh(b + W o(t-1) + U x)", ("h",),
    (_H, Signal("a", FREE, "pre-activation b + W o(t-1) + U x"), Signal("fed", FREE, "W o(t-1): the fed-back output's share")),
    "charrnn.models.jordan:JordanCore", options=JordanOptions,
    tasks=("lm",),  # o(t-1) is the language model's own output over the vocabulary
))  # fmt: skip
