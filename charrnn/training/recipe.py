"""The defaults a new run starts from, by the precision it will train in.

`config.py`'s defaults (a 2x256 LSTM, dropout 0.1, AdamW at 3e-3) were tuned where
bf16 autocast runs: there a 3-minute run makes ~10k steps, a dozen epochs of
tinyshakespeare, and regularisation wins. A CPU without native bf16 trains in fp32
at a fifth of that speed: 3 minutes buy under two epochs, the model is far from
fitting, and what buys more or larger useful updates wins instead: one layer (2.3x
the characters a second of two) and a learning rate of 1e-2 without dropout
(`config.FP32_CPU_RECIPE`; measured in bench/fp32_sweep.py and bench/quality.py,
bench/RESULTS.md). So a new LSTM language model whose run resolves to fp32 on a CPU
(`--precision auto` without native bf16, or `--precision fp32`) takes those
settings in place of the defaults, each one unless the user gave it. A run in bf16,
on a GPU, of another cell or task, or resumed, keeps exactly what it is given.

A task may bring its own recipe (`TaskSpec.recipe`), measured for it and taken by a
new LSTM run of that task in every precision: a classifier (`tasks.options.CLASSIFY_RECIPE`)
learns one label a document, where the language model's defaults train too slowly.
"""

from __future__ import annotations

import dataclasses
from typing import Any

from ..config import FP32_CPU_RECIPE, ModelConfig, TrainConfig, option_flag
from ..tasks import task_spec


def settings(model: ModelConfig, train: TrainConfig, local_rank: int = 0) -> dict[str, Any]:
    """The recipe a new run would take: its task's own for an LSTM, else the fp32 CPU
    recipe where it applies, else none."""
    own = task_spec(model.task).recipe
    if own is not None:
        return dict(own) if model.cell == "lstm" else {}  # measured for the LSTM only
    return dict(FP32_CPU_RECIPE) if applies(model, train, local_rank) else {}


def applies(model: ModelConfig, train: TrainConfig, local_rank: int = 0) -> bool:
    """Will this run train an LSTM language model in plain fp32 on a CPU?"""
    if model.task != "lm" or model.cell != "lstm":
        return False  # measured for the default cell and task only
    from ..runtime.hardware import pick_device, pick_precision

    device = pick_device(train.device, local_rank)
    return device.type == "cpu" and pick_precision(train.precision, device) is None


def choose(model: ModelConfig, train: TrainConfig, given: set[str], local_rank: int = 0) -> tuple[ModelConfig, TrainConfig]:
    """The configs with the recipe (`settings`) in place of each default not given
    (`given`: the option names the user set); the train config's `recipe` lists
    the settings taken from it."""
    recipe = settings(model, train, local_rank)
    taken = [k for k in recipe if k not in given]
    if not taken:
        return model, train
    model_fields = {f.name for f in dataclasses.fields(ModelConfig)}
    m = {k: recipe[k] for k in taken if k in model_fields}
    t = {k: recipe[k] for k in taken if k not in model_fields}
    return dataclasses.replace(model, **m), dataclasses.replace(train, **t, recipe=tuple(taken))


def describe(model: ModelConfig, train: TrainConfig) -> str | None:
    """One line saying what `--precision auto` chose and which settings came from
    the fp32 recipe, or None."""
    auto = train.auto_choice
    if not train.recipe:
        return auto or None
    values = {**dataclasses.asdict(model), **dataclasses.asdict(train)}
    opts = " ".join(f"{option_flag(k)} {_num(values[k])}" for k in train.recipe)
    if task_spec(model.task).recipe is not None:
        own = f"--task {model.task}: {opts} in place of the language model's defaults (measured for the task; an option given wins)"
        return f"{auto}; {own}" if auto else own
    taken = f"{opts} in place of the bf16-tuned defaults"
    if auto:
        return f"{auto}; so {taken} (an option given wins)"
    return f"fp32 on a CPU, so {taken} (faster to a good loss in fp32; an option given wins)"


def _num(v: object) -> str:
    return f"{v:g}" if isinstance(v, float) else str(v)
