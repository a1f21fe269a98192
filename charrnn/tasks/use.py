"""How a task's model is used, apart from what the task is (tasks/base.py).

A `Task` reads its data, builds its model, scores a batch and a split, and
keeps what a checkpoint needs. Its `Use` is everything done *with* the model:
the text shown while training runs (`sample`), what the TUI's activations
screen traces (`default_probe_text`, `probe`), and `charrnn predict` (the
classmethod `predictor`, built from a checkpoint's task section, with no data
read). A task names its use as `Task.Use`, the way it names its checkpoint
section as `Task.State`; the trainer makes one per run (`Use(task)`) and reads
the task's data through it.

Each task's use lives in its own module beside the task (lm_use.py,
classify_use.py, seq2seq_use.py, tree_use.py). A use module never imports its
task's module (the task imports it, to name it); what both need lives below.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from ..errors import ConfigError

SHOWN = 3  # validation examples a task's `sample` shows at each evaluation


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
    """A trained model answering one input at a time (built by Use.predictor)."""

    def predict(self, text: str) -> Prediction:
        raise NotImplementedError


class Use:
    """A task's model put to use; this base shows no sample, has no probe and does not predict."""

    def __init__(self, task: Any):
        self.task = task  # the run's Task: its data, its tokenizer, its settings

    def sample(self, model: Any, step: int) -> str:
        """A short text shown while training runs ('' for none). Never touches the training RNG."""
        return ""

    def shown_rows(self, n: int, step: int) -> list[int]:
        """Which of n validation examples `sample` shows at this step's evaluation: SHOWN of
        them, the next few at each evaluation, round the split."""
        first = (step // self.task.cfg.eval_every * SHOWN) % n if n else 0
        return [(first + k) % n for k in range(min(SHOWN, n))]

    def default_probe_text(self) -> str:
        """What the activations screen traces until the user gives a text."""
        return ""

    def probe(self, model: Any, text: str, step: int) -> Any:
        """What the TUI's activations screen shows about `text` (inspect.trace.Probe)."""
        raise NotImplementedError

    @classmethod
    def predictor(cls, state: Any, model: Any, opts: PredictOptions) -> Predictor:
        """`charrnn predict` on a run (its checkpoint's task section and its model, in eval mode)."""
        raise ConfigError(f"charrnn predict answers classification, encoder-decoder and tree runs; this is a {model.cfg.task} run "
                          "(for a language model use charrnn sample).")  # fmt: skip
