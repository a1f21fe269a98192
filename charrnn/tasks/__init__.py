"""Tasks: what a model learns to do with its sequences, one module each.

This package's top level is light (no torch): it names the tasks for `--task`
and says where each lives; the implementation (a `tasks.base.Task` subclass) is
imported the first time a run of that task is built. Language modelling (lm.py)
is the first; a new task is one module and one `register_task` call.
"""

from __future__ import annotations

import dataclasses
import importlib
from dataclasses import dataclass
from typing import Any

from ..errors import ConfigError
from .lm_options import LMOptions  # light: a dataclass, no torch
from .options import CLASSIFY_RECIPE, ClassifyOptions, Seq2SeqOptions


@dataclass(frozen=True)
class TaskSpec:
    name: str
    about: str  # one line for --help
    impl: Any  # "module:Class" (imported on first use) or the Task subclass itself
    options: type | None = None  # a frozen dataclass of the task's own settings, all with defaults
    structure: str = "sequence"  # what its model kinds read (models.registry.SEQUENCE or TREE)
    default_cell: str | None = None  # --cell when none is given, if ModelConfig's default does not fit
    default_data: str | None = None  # the built-in data when no path is given, if the default corpus does not fit
    unused: tuple[str, ...] = ()  # `charrnn train` parameters that mean nothing here: giving one is an error
    # ModelConfig / TrainConfig settings a new LSTM run of this task takes in place of the
    # defaults not given, in every precision (training/recipe.py); None: the defaults
    recipe: dict[str, Any] | None = None

    def load(self) -> type:
        if isinstance(self.impl, str):
            module, _, attr = self.impl.partition(":")
            object.__setattr__(self, "impl", getattr(importlib.import_module(module), attr))
        return self.impl

    def option_fields(self) -> tuple[str, ...]:
        return tuple(f.name for f in dataclasses.fields(self.options)) if self.options else ()


TASKS: dict[str, TaskSpec] = {}


def register_task(spec: TaskSpec) -> TaskSpec:
    TASKS[spec.name] = spec
    return spec


def task_spec(name: str) -> TaskSpec:
    try:
        return TASKS[name]
    except KeyError:
        raise ConfigError(f"unknown task {name!r}; choose one of {', '.join(TASKS)}.") from None


def task_names() -> tuple[str, ...]:
    return tuple(TASKS)


@dataclass(frozen=True)
class TreeOptions:
    """--task tree's own settings (here, not in tasks/tree.py, so that naming the task imports no torch)."""

    classes: int = 0  # the labels the head tells apart: set from the training data when a run starts


_NOT_A_STREAM = ("seq_len", "doc_state", "tokenizer", "vocab_size", "spm_type")  # documents and pairs are read whole, as characters

register_task(TaskSpec("lm", "language modelling: predict each next token of a text", "charrnn.tasks.lm:LanguageModelling",
                       options=LMOptions))  # fmt: skip
register_task(TaskSpec(
    "classify", "one label per document, from the final state (or a pooling of the states)", "charrnn.tasks.classify:Classification",
    ClassifyOptions, unused=_NOT_A_STREAM, recipe=CLASSIFY_RECIPE,
))  # fmt: skip
register_task(TaskSpec(
    "seq2seq", "encoder-decoder: read a source text, write its target (source<TAB>target pairs)",
    "charrnn.tasks.seq2seq:Seq2SeqTask", Seq2SeqOptions,
    unused=(*_NOT_A_STREAM, "doc_sep", "label_from"),
))  # fmt: skip
register_task(TaskSpec(
    "tree", "a label for each tree (label<TAB>tree lines, or listops), composed bottom-up by a tree cell",
    "charrnn.tasks.tree:TreeTask", options=TreeOptions,
    structure="tree", default_cell="bintreelstm", default_data="listops",
    unused=(*_NOT_A_STREAM, "doc_sep", "label_from"),
))  # fmt: skip
