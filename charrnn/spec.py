"""An option is declared once: a field of its owner's dataclass, with metadata.

    seq_len: int = option(32, "Timesteps backpropagated through (truncated BPTT).", panel=P_OPT)

The owner is the dataclass whose value the option sets: config.py's DataConfig,
ModelConfig and TrainConfig, a model kind's options (models/options.py) or a
task's (tasks/options.py, tasks/lm_options.py). Everything that shows or takes
options reads these fields (charrnn/runconfig.py walks them): the Typer
parameters of `charrnn train` and `compare` (cli/declared.py), `charrnn.train()`,
a run's config.toml and `charrnn info`. A field without this metadata (a model's
vocabulary size, a classifier's class count) is set by the program, never given.

This module is the bottom of the package: the standard library only.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any, Callable

# the panels of `charrnn train --help`, in the order they are shown
P_TASK, P_CORPUS, P_ENDS, P_MODEL, P_CELL = "Task", "Corpus", "Conditioning (lm, seq2seq) and ends (lm)", "Model", "Cell options"
P_CLASSIFY, P_SEQ2SEQ = "Classification (--task classify)", "Encoder-decoder (--task seq2seq)"
P_OPT, P_EVAL, P_OUT, P_HW, P_SAMPLE = "Optimisation", "Evaluation", "Output", "Hardware", "Sampling"
VERSION = "0.1.0"  # charrnn.__version__; here, in the bottom layer, so every layer may say which charrnn wrote a file

PANELS = (P_TASK, P_CORPUS, P_ENDS, P_MODEL, P_CELL, P_CLASSIFY, P_SEQ2SEQ, P_OPT, P_EVAL, P_OUT, P_HW)

Choices = tuple[str, ...] | Callable[[], tuple[str, ...]]


@dataclass(frozen=True)
class Opt:
    """What a field's metadata says about it as an option."""

    help: str | Callable[[], str]  # a callable is read when shown (a registry's entries)
    panel: str | None = None  # None: a kind's option goes to P_CELL, a task's to "Task options (--task NAME)"
    choices: Choices | None = None  # the values it takes; a callable is read when parsed (a registry's names)
    flag: str | None = None  # default: --field-name
    short: str | None = None  # e.g. "-q"
    show_default: bool | str = True  # or the text shown in place of the default
    parse: Callable[[str], Any] | None = None  # text (a flag, a file's string) -> the value; raises ConfigError
    metavar: str | None = None

    def help_text(self) -> str:
        return self.help() if callable(self.help) else self.help

    def choice_names(self) -> tuple[str, ...] | None:
        return self.choices() if callable(self.choices) else self.choices


def option(default: Any = dataclasses.MISSING, help: str | Callable[[], str] = "", *, panel: str | None = None, choices: Choices | None = None,
           flag: str | None = None, short: str | None = None, show_default: bool | str = True,
           parse: Callable[[str], Any] | None = None, metavar: str | None = None) -> Any:  # fmt: skip
    """A dataclass field that is also an option (see the module's docstring)."""
    opt = Opt(help, panel, choices, flag, short, show_default, parse, metavar)
    return dataclasses.field(default=default, metadata={"option": opt})


def opt_of(field: dataclasses.Field) -> Opt | None:
    return field.metadata.get("option")


def declared(cls: type | None) -> list[tuple[dataclasses.Field, Opt]]:
    """The fields of an options dataclass that are options, in declaration order."""
    if cls is None:
        return []
    return [(f, o) for f in dataclasses.fields(cls) if (o := opt_of(f)) is not None]


def flag_of(name: str) -> str:
    return "--" + name.replace("_", "-")


def comma_floats(text: str) -> tuple[float, ...]:
    """'1,0.05' -> (1.0, 0.05): a list option of numbers given as text."""
    from .errors import ConfigError

    try:
        return tuple(float(v) for v in str(text).split(","))
    except ValueError:
        raise ConfigError(f"takes numbers separated by commas, such as 1,0.05; got {text!r}.") from None


def comma_ints(text: str) -> tuple[int, ...]:
    """'1,4,16' -> (1, 4, 16): a list option given as text."""
    from .errors import ConfigError

    try:
        return tuple(int(v) for v in str(text).split(","))
    except ValueError:
        raise ConfigError(f"takes whole numbers separated by commas, such as 1,4,16; got {text!r}.") from None
