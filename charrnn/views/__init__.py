"""Terminal pictures of what the tasks hand back: predictions (`charrnn predict`, the
TUI's activations screen) and end-of-run reports (the training sinks).

A face, shared by the CLI and the TUI. The mapping runs from the face down: the
tasks name no view; this module says which function draws each task's
predictions and each report type. Each is imported when first drawn (Rich and
numpy stay out of `charrnn --help`). A new task with pictures adds its line here.
"""

from __future__ import annotations

import importlib
from typing import Any, Callable

PREDICTIONS = {  # task name -> "module:function" drawing a Prediction's details
    "classify": "charrnn.views.classify:prediction",
    "seq2seq": "charrnn.views.seq2seq:prediction",
    "tree": "charrnn.inspect.treeview:prediction_view",
}
REPORTS = {  # a report's class name (tasks/reports.py) -> "module:function"
    "ClassReport": "charrnn.views.classify:report",
    "Seq2SeqReport": "charrnn.views.seq2seq:report",
}


def load(name: str) -> Callable[..., Any]:
    """The function a "module:function" name points at."""
    module, _, fn = name.partition(":")
    return getattr(importlib.import_module(module), fn)


def prediction_view(task: str) -> Callable[..., Any] | None:
    """What draws a `task` prediction's details (prediction, PredictOptions) -> renderables; None: only its line."""
    name = PREDICTIONS.get(task)
    return load(name) if name else None


def report(r: Any) -> list[Any]:
    """The Rich renderables of an end-of-run report (tasks/reports.py); none for a report type without a view."""
    name = REPORTS.get(type(r).__name__)
    return list(load(name)(r)) if name else []
