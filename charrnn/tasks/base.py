"""The interface between the training loop and a task.

The Trainer (training/trainer.py) owns everything every task shares: the device
and precision, the optimizer and its schedule, clipping, skipping non-finite
steps, the stopping rules, checkpoints, the sinks, distributed training. A task
owns what its data and its model mean: reading the data, building the model,
the batches of an epoch, the loss of a batch (and any state carried between
batches), how to score a split, what a sample looks like while training runs,
what the inspector traces, and what else a checkpoint must hold to resume it.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Callable, ClassVar

import torch
from torch import Tensor, nn

from ..config import DataConfig, ModelConfig, TrainConfig
from ..errors import ConfigError
from ..runtime import distributed
from .state import TaskState


@dataclass(frozen=True)
class Scores:
    """A split scored: the loss the curves show, and whatever else the task measures."""

    loss: float  # nats per unit (a token, an example)
    bpc: float | None  # bits per character, for tasks that model text (None otherwise)
    units: int  # tokens or examples scored
    chars: float  # characters they stand for
    metrics: dict[str, float] = field(default_factory=dict)  # e.g. accuracy, exact match; into metrics.jsonl
    report: Any = None  # the final evaluation's report (tasks/reports.py), drawn at the end of a run


@dataclass(frozen=True)
class PredictOptions:
    """What `charrnn predict` was asked for; a task refuses (ConfigError) what it cannot do."""

    trace: bool = False  # follow the prediction as each character arrives (a sequence-to-one model)
    beam: int | None = None  # beam search with this width (a decoder); None: the task's default decoding
    top: int = 1  # how many hypotheses to show (beam search)
    attention_map: bool = False  # draw where the decoder looked (a model with attention)
    temperature: float | None = None  # sample the output at this temperature instead of searching
    seed: int | None = None  # for sampling


@dataclass(frozen=True)
class Prediction:
    """One input's answer. `line` is what a script reads (it starts with the answer);
    `details` is the task's own plain data, drawn by its view (charrnn/views/) on request."""

    line: str
    details: Any = None
    json: dict[str, Any] = field(default_factory=dict)  # `predict --json`: one object per input


class Predictor:
    """A trained model answering one input at a time (built by Task.predictor)."""

    def predict(self, text: str) -> Prediction:
        raise NotImplementedError


class Task:
    """One learning problem. Built by the Trainer for a run; see the module docstring."""

    name: ClassVar[str]
    State: ClassVar[type[TaskState]] = TaskState  # what it adds to a checkpoint (tasks/state.py)
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

    def sample(self, model: nn.Module, step: int) -> str:
        """A short text shown while training runs ('' for none)."""
        return ""

    def default_probe_text(self) -> str:
        return ""

    def probe(self, model: nn.Module, text: str, step: int) -> Any:
        """What the TUI's activations screen shows about `text` (inspect.trace.Probe)."""
        raise NotImplementedError

    # ---------------------------------------------------------- prediction

    @classmethod
    def predictor(cls, state: TaskState, model: nn.Module, opts: PredictOptions) -> Predictor:
        """`charrnn predict` on a run of this task (its checkpoint section and its model, in eval mode)."""
        raise ConfigError(f"charrnn predict answers classification, encoder-decoder and tree runs; this is a {cls.name} run "
                          "(for a language model use charrnn sample).")  # fmt: skip

    # --------------------------------------------------------- checkpoints

    def checkpoint_state(self) -> TaskState:
        """What a checkpoint must hold besides the trainer's own fields (an instance of
        `State`). Every rank calls it."""
        raise NotImplementedError

    def restore(self, state: TaskState, epoch: int, batch_i: int) -> tuple[int, int]:
        """Take back what checkpoint_state() saved; returns the (epoch, batch) to go on from."""
        return epoch, batch_i
