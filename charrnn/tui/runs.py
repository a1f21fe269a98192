"""Runs chosen in the app: a small form's answers -> a function that builds a Trainer.

The form shows a few declared options as fields (FORM_FIELDS) and takes any
other declared option on one line, as the command line writes it; both become
options by name and go through `runconfig.build_configs`, the builder of every
entry point. `RunRequest.configs()` is checked on the UI thread while the form is
open (cheap: configs only, no torch), so a mistake is a line in the form; the
returned factory does the slow part (reading and encoding the corpus, opening a
checkpoint, building the model) in the training worker's thread. It follows
`charrnn train`'s rules: a new run may not overwrite a run folder, and a resumed
run keeps its own settings except its stopping limit.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

from ..config import DEFAULT_CORPUS, DataConfig, ModelConfig, TrainConfig, parse_duration
from ..errors import ConfigError
from ..runconfig import build_configs, catalogue, parse_line

TrainerFactory = Callable[[list[Any], threading.Event], Any]  # (sinks, stop) -> train.Trainer
FORM_FIELDS = ("task", "cell", "layers", "hidden")  # the declared options the new-run form shows as fields, in order
LIMIT_KEYS = ("steps", "time", "epochs")  # what the limit field sets (a resumed run's new limit replaces them all)


@dataclass(frozen=True)
class RunRequest:
    """What the new-run form asks for; `resume` (a run folder or checkpoint) wins over the rest."""

    corpus: tuple[str, ...] = (DEFAULT_CORPUS,)
    fields: dict[str, Any] = field(default_factory=dict)  # declared options by name (FORM_FIELDS), as the form holds them
    more: str = ""  # any declared option, as the command line writes it: "--dropout 0.1 --condition input"
    limit: str = ""  # "": the run's own (a new run: three minutes); "2000": total steps; "90s", "3m": time
    name: str | None = None
    resume: str | None = None
    device: str = TrainConfig.device

    def options(self) -> dict[str, Any]:
        """The options this request gives, by name: the fields that differ from their declared
        defaults (a field left at its default is not given: the task's default cell, the fp32
        recipe apply), every option of the `more` line, and the limit. One-line ConfigError."""
        cat = catalogue()
        out = {k: v for k, v in self.fields.items() if v is not None and v != cat[k].default}
        more, limit = parse_line(self.more), parse_limit(self.limit)
        for name in sorted(more.keys() & {*self.fields, *(LIMIT_KEYS if limit else ())}):
            where = "the limit" if name in LIMIT_KEYS else "its field"
            raise ConfigError(f"{cat[name].flag} is given in more options and in {where}; give it once.")
        return {**out, **more, **limit}

    def configs(self) -> tuple[DataConfig, ModelConfig, TrainConfig, set[str]]:
        """The new run's configs, validated as `charrnn train` builds them, and the options given."""
        given = self.options()
        data, model, tcfg = build_configs({"device": self.device, **given}, paths=[p for p in self.corpus if p.strip()])
        data.validate(), model.validate(), tcfg.validate()
        return data, model, tcfg, set(given)


def parse_limit(text: str) -> dict[str, Any]:
    """'2000' -> {'steps': 2000}, '3m' -> {'time': '3m'}, '' -> {} (a resumed run's
    new limit replaces all its old ones: plan.resume_run)."""
    s = text.strip()
    if not s:
        return {}
    if s.replace("_", "").replace(",", "").isdigit():
        n = int(s.replace("_", "").replace(",", ""))
        if n <= 0:
            raise ConfigError("the step limit must be a whole number > 0.")
        return {"steps": n}
    try:
        parse_duration(s)
    except ConfigError:
        raise ConfigError(f"cannot read the limit {s!r}: give a number of steps (2000) or a time (90s, 3m, 1h30m).") from None
    return {"time": s}


def factory(req: RunRequest, root: Path) -> TrainerFactory:
    """Check the request now; build the trainer later, in the worker."""
    from ..training import plan

    limit = parse_limit(req.limit)
    if req.resume:
        target = req.resume

        def resume(sinks: list[Any], stop: threading.Event) -> Any:
            return plan.trainer(plan.resume_run(target, root, {**limit, "device": req.device}), sinks, stop)

        return resume
    # as `charrnn train`: one builder; a run in fp32 on a CPU takes the fp32 recipe for
    # what the form leaves at its defaults (training/recipe.py)
    data, model, tcfg, given = req.configs()
    p = plan.new_run(data, model, tcfg, root, req.name, given=given)
    return lambda sinks, stop: plan.trainer(p, sinks, stop)


@dataclass(frozen=True)
class RunInfo:
    path: Path
    modified: float  # seconds since the epoch, of its newest checkpoint


def list_runs(root: Path, limit: int = 50) -> list[RunInfo]:
    """Run folders under root, newest first (read from the file system only)."""
    root = Path(root)
    if not root.is_dir():
        return []
    runs = []
    for p in root.iterdir():
        files = [f for f in (p / "last.pt", p / "best.pt") if f.is_file()]
        if p.is_dir() and files:
            runs.append(RunInfo(p, max(f.stat().st_mtime for f in files)))
    runs.sort(key=lambda r: r.modified, reverse=True)
    return runs[:limit]
