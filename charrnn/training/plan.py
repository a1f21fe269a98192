"""What a run is before it starts: its configs, its folder, the checkpoint it resumes.

`charrnn train` and the TUI's new-run form both come here, so a run is named,
guarded and resumed by one set of rules: a new run never overwrites a run
folder; a resumed run keeps its own model, data and optimisation settings and
may change only how long it goes on and a few operational options.
"""

from __future__ import annotations

import dataclasses
import re
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..config import LIMITS, RESUMABLE, DataConfig, ModelConfig, TrainConfig, from_dict, to_dict
from .. import runconfig
from ..errors import ConfigError
from ..runtime import distributed
from ..tasks import task_spec
from . import checkpoint


@dataclass(frozen=True)
class RunPlan:
    model: ModelConfig
    data: DataConfig
    train: TrainConfig
    run_dir: Path
    root: Path  # where runs and the corpus cache live
    resume: checkpoint.Checkpoint | None = None  # the loaded checkpoint a resumed run continues


def new_run(
    data: DataConfig, model: ModelConfig, train: TrainConfig, root: Path, name: str | None = None, out_dir: Path | None = None,
    dist: distributed.Dist = distributed.SINGLE, given: set[str] | None = None,
) -> RunPlan:  # fmt: skip
    """A fresh run in `out_dir`, or `root/name`, or `root/<corpus>-<cell>-<time>`.
    With `given` (the options the user set), a run that will train in fp32 on a CPU,
    or a new LSTM classifier, takes its recipe in place of the defaults not given
    (training/recipe.py)."""
    data.validate()
    model.validate()
    train.validate()
    train = resolve_auto(train, dist)
    if given is not None:
        from . import recipe

        model, train = recipe.choose(model, train, given, dist.local_rank)
        model.validate()
        train.validate()
    task_spec(model.task).load().check(model, data, train)
    stem = re.sub(r"[:=,]+", "-", Path(data.paths[0]).stem if data.paths else "") or "corpus"  # longrange-copy:gap=200
    run_dir = Path(out_dir) if out_dir else Path(root) / (name or f"{stem}-{model.cell}-{time.strftime('%Y%m%d-%H%M%S')}")
    run_dir = distributed.broadcast(dist, run_dir)  # one name for all ranks, whatever their clocks say
    if (run_dir / checkpoint.LAST).exists():
        raise ConfigError(f"{run_dir} already holds a run; resume it (--resume {run_dir}) or choose another name.")
    return RunPlan(model, data, train, run_dir, Path(root))


def resolve_auto(train: TrainConfig, dist: distributed.Dist = distributed.SINGLE) -> TrainConfig:
    """A new run's `--precision auto` on a CPU with native bf16, resolved by this
    machine's measured step times (training/autoprecision.py): rank 0 decides for
    every rank. On a GPU, and on a CPU without native bf16, auto is what it was."""
    if train.precision != "auto":
        return train
    from ..runtime.hardware import cpu_has_native_bf16, pick_device

    if pick_device(train.device, dist.local_rank).type != "cpu" or not cpu_has_native_bf16():
        return train
    from . import autoprecision

    choice = distributed.broadcast(dist, autoprecision.choose(train) if dist.main else None)
    return dataclasses.replace(train, precision=choice.precision, auto_choice=choice.reason)


def resume_run(
    target: str | Path, root: Path, changes: dict[str, Any] | None = None, paths: tuple[str, ...] | None = None,
    out_dir: Path | None = None,
) -> RunPlan:  # fmt: skip
    """Continue the run a folder or checkpoint holds. `changes` may set RESUMABLE
    fields; a new limit replaces all the old ones. `paths` points at a moved corpus."""
    changes = dict(changes or {})
    if set(changes) - set(RESUMABLE):
        raise ConfigError(f"a resumed run cannot change {', '.join(sorted(set(changes) - set(RESUMABLE)))}.")
    if changes.keys() & set(LIMITS):
        changes = {**dict.fromkeys(LIMITS), **changes}
    path = checkpoint.find(target, root, prefer=checkpoint.LAST)
    ck = checkpoint.load(path)
    model, data, old = ck.model_config, ck.data_config, ck.train_config
    if paths:
        data = DataConfig(**{**to_dict(data), "paths": tuple(paths)})
    train = from_dict(TrainConfig, {**to_dict(old), **changes}).validate()
    return RunPlan(model, data, train, Path(out_dir) if out_dir else path.parent, Path(root), ck)


def open_data(plan: RunPlan, dist: distributed.Dist = distributed.SINGLE) -> Any:
    """Read (and cache) what the run's task trains on: rank 0 first, the others then open its cache."""
    task = task_spec(plan.model.task).load()
    if not dist.main:
        distributed.barrier(dist)
    data = task.open(plan.data, plan.root, plan.resume.task if plan.resume is not None else None)
    if dist.main:
        distributed.barrier(dist)
    return data


def trainer(
    plan: RunPlan, sinks: list[Any], stop: threading.Event, data: Any = None, dist: distributed.Dist = distributed.SINGLE
):  # type: ignore[no-untyped-def]
    """The Trainer for a plan (opening its data unless given). Its folder gets the run's
    settings as config.toml (runconfig.write): `charrnn train --config` re-creates the run."""
    from .trainer import Trainer

    data = data if data is not None else open_data(plan, dist)
    t = Trainer(plan.model, plan.data, plan.train, data, plan.run_dir, sinks=sinks, stop=stop, resume=plan.resume, dist=dist)
    t.settings = (plan.data, plan.model, plan.train)  # written as config.toml once the run folder is locked
    return t
