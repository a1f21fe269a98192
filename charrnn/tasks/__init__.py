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


@dataclass(frozen=True)
class TaskSpec:
    name: str
    about: str  # one line for --help
    impl: Any  # "module:Class" (imported on first use) or the Task subclass itself
    options: type | None = None  # a frozen dataclass of the task's own settings, all with defaults
    view: str | None = None  # "module:function" drawing a Prediction's details for the terminal (cli side)

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


register_task(TaskSpec("lm", "language modelling: predict each next token of a text", "charrnn.tasks.lm:LanguageModelling",
                       options=LMOptions))  # fmt: skip
