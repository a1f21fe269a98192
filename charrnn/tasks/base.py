"""The interface between the training loop and a task.

The Trainer (training/trainer.py) owns everything every task shares: the device
and precision, the optimizer and its schedule, clipping, skipping non-finite
steps, the stopping rules, checkpoints, the sinks, distributed training. A task
owns what its data and its model mean: reading the data, building the model,
the batches of an epoch, the loss of a batch (and any state carried between
batches), how to score a split, and what else a checkpoint must hold to resume
it. How the model is *used* (a sample while training runs, the TUI's probe,
`charrnn predict`) is the task's `Use` (tasks/use.py), in a module of its own.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Callable, ClassVar

import torch
from torch import Tensor, nn

from ..config import DataConfig, ModelConfig, TrainConfig
from ..runtime import distributed
from .state import TaskState
from .use import Use


@dataclass(frozen=True)
class Scores:
    """A split scored: the loss the curves show, and whatever else the task measures."""

    loss: float  # nats per unit (a token, an example)
    bpc: float | None  # bits per character, for tasks that model text (None otherwise)
    units: int  # tokens or examples scored
    chars: float  # characters they stand for
    metrics: dict[str, float] = field(default_factory=dict)  # e.g. accuracy, exact match; into metrics.jsonl
    report: Any = None  # the final evaluation's report (tasks/reports.py), drawn at the end of a run


class Task:
    """One learning problem. Built by the Trainer for a run; see the module docstring."""

    name: ClassVar[str]
    State: ClassVar[type[TaskState]] = TaskState  # what it adds to a checkpoint (tasks/state.py)
    Use: ClassVar[type[Use]] = Use  # how its model is used: sample, probe, predict (tasks/use.py); the base does none
    unit: ClassVar[str] = "token"  # what steps_per_epoch and units_per_step count
    bpc: ClassVar[bool] = True  # whether its loss is over text, so bits per character mean something

    def __init__(self, model_cfg: ModelConfig, data_cfg: DataConfig, cfg: TrainConfig, data: Any,
                 dist: distributed.Dist, device: torch.device, amp: torch.dtype | None):  # fmt: skip
        self.data_cfg, self.cfg, self.data, self.dist, self.device, self.amp = data_cfg, cfg, data, dist, device, amp
        self.model_cfg = model_cfg

    # ---------------------------------------------------------------- data

    @classmethod
    def check(cls, model_cfg: ModelConfig, data_cfg: DataConfig, cfg: TrainConfig) -> None:
        """Refuse (ConfigError) settings that do not fit together, before any data is read."""

    @classmethod
    def open(cls, data_cfg: DataConfig, root: Any, resume: TaskState | None) -> Any:
        """Read (and cache) the data a run trains on; a resumed run's checkpoint section is given."""
        raise NotImplementedError

    def summary(self) -> str:
        """The data's one-line description for the run's first lines."""
        raise NotImplementedError

    # --------------------------------------------------------------- model

    @classmethod
    def model_for(cls, model_cfg: ModelConfig) -> nn.Module:
        """The task's model for a complete config (a checkpoint's, say)."""
        raise NotImplementedError

    def build_model(self) -> nn.Module:
        return self.model_for(self.model_cfg)

    # ------------------------------------------------------------ training

    steps_per_epoch: int
    units_per_step: int  # over all processes

    def batch(self, epoch: int, i: int) -> Any:
        """Batch i of an epoch, on the device."""
        raise NotImplementedError

    def loss(self, net: nn.Module, batch: Any) -> Tensor:
        """The mean loss of a batch (under the trainer's autocast); `net` may be DDP-wrapped."""
        raise NotImplementedError

    def warm_start(self, model: nn.Module, should_stop: Callable[[], bool]) -> str | None:
        """Before the first step of a fresh run: fit what the model fits without gradients
        (an echo state network's readout). Returns a line for the log, or None. Every rank calls it."""
        return None

    def after_step(self, ok: bool) -> None:
        """After each optimizer step (ok) or skipped non-finite step (not ok)."""

    def new_epoch(self) -> None:
        """The epoch just ended."""

    def chars_per_unit(self) -> float:
        return 1.0

    # ---------------------------------------------------------- evaluation

    def evaluate(self, model: nn.Module, final: bool) -> Scores | None:
        """Score the validation split (a fixed slice during training, all of it when final);
        None when there is nothing to score. Every rank calls it."""
        raise NotImplementedError

    # --------------------------------------------------------- checkpoints

    def checkpoint_state(self) -> TaskState:
        """What a checkpoint must hold besides the trainer's own fields (an instance of
        `State`). Every rank calls it."""
        raise NotImplementedError

    def restore(self, state: TaskState, epoch: int, batch_i: int) -> tuple[int, int]:
        """Take back what checkpoint_state() saved; returns the (epoch, batch) to go on from."""
        return epoch, batch_i
