"""Terminal pictures of what the tasks hand back: predictions (`charrnn predict`, the
TUI) and end-of-run reports (the training sinks). A task names its view as
"module:function" (TaskSpec.view, a report's `view`); it is imported when first drawn."""

from __future__ import annotations

import importlib
from typing import Any, Callable


def load(name: str) -> Callable[..., Any]:
    """The function a "module:function" name points at."""
    module, _, fn = name.partition(":")
    return getattr(importlib.import_module(module), fn)


def report(r: Any) -> list[Any]:
    """The Rich renderables of an end-of-run report (tasks/reports.py)."""
    return list(load(r.view)(r))
