"""What each task adds to a checkpoint: its section, one dataclass per task.

The checkpoint (training/checkpoint.py, `Checkpoint`) owns the file: its
format, its versions and migrations, the trainer's own fields. A task hands it
a `TaskState` when a checkpoint is written (`Task.checkpoint_state()`) and gets
the same type back to resume (`Task.open`, `Task.restore`) or to answer
(`Task.Use.predictor`); it never sees the file's keys. A task with more to keep
subclasses `TaskState` and names it as its `State`. Every field holds only
tensors, numbers, strings, lists and dicts (the file is opened with
`torch.load(weights_only=True)`); a nested fact sheet is a dataclass of those.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, ClassVar, TypeVar

if TYPE_CHECKING:
    from ..data.labels import LabelSet

T = TypeVar("T")


def _build(cls: type[T], raw: Any, nested: dict[str, type]) -> T:
    """A dataclass from its dict, keeping the fields it knows (a field absent takes its default)."""
    raw = raw if isinstance(raw, dict) else {}
    kw = {}
    for f in dataclasses.fields(cls):  # type: ignore[arg-type]
        if f.name in raw:
            v = raw[f.name]
            kw[f.name] = _build(nested[f.name], v, {}) if f.name in nested and v is not None else v
    return cls(**kw)


@dataclass(frozen=True)
class CorpusFacts:
    """The text a run trained on, counted (for `charrnn info`)."""

    chars_train: int = 0
    chars_val: int = 0
    tokens: int = 0  # 0: not counted in tokens
    documents_train: int | None = None
    documents_val: int | None = None


@dataclass(frozen=True)
class PairFacts:
    """An encoder-decoder run's pairs."""

    train: int = 0
    val: int = 0
    max_target: int = 64  # the longest output `predict` writes
    train_max_source: int | None = None


@dataclass(frozen=True)
class SplitSizes:
    train: int = 0
    val: int = 0


@dataclass(frozen=True)
class TaskState:
    """The section every task writes: its tokenizer and where its epoch stands."""

    tokenizer: dict[str, Any]  # the tokenizer's own state (data/tokenizer.py `to_state`; a tree vocabulary's)
    steps_per_epoch: int | None = None  # the layout the position was counted in
    world: int = 1  # processes that wrote it
    corpus: CorpusFacts | None = None
    labels: dict[str, Any] | None = None  # data/labels.py LabelSet.to_state(): the labels a model tells or takes
    label_stats: dict[str, Any] | None = None  # LabelStats.to_state(): documents and characters per label

    NESTED: ClassVar[dict[str, type]] = {"corpus": CorpusFacts}

    def to_dict(self) -> dict[str, Any]:
        out = {}
        for f in dataclasses.fields(self):
            v = getattr(self, f.name)
            out[f.name] = dataclasses.asdict(v) if dataclasses.is_dataclass(v) else v
        return out

    @classmethod
    def from_dict(cls, raw: dict[str, Any]) -> TaskState:
        return _build(cls, raw, cls.NESTED)

    def label_set(self) -> LabelSet | None:
        """The LabelSet the model tells apart or is conditioned on (None: none)."""
        from ..data.labels import LabelSet

        return None if self.labels is None else LabelSet.from_state(self.labels)


@dataclass(frozen=True)
class LMState(TaskState):
    """Language modelling: the hidden state carried across windows, per stream."""

    carried_state: list[Any] | None = None  # each (L, B x world, ...) on the CPU
    label_dropped: Any = None  # (B x world,) uint8: whether each stream's label is dropped (2: none drawn yet)


@dataclass(frozen=True)
class Seq2SeqState(TaskState):
    pairs: PairFacts | None = None

    NESTED: ClassVar[dict[str, type]] = {"corpus": CorpusFacts, "pairs": PairFacts}


@dataclass(frozen=True)
class TreeState(TaskState):
    trees: SplitSizes | None = None
    probe_tree: str = ""  # what `charrnn inspect` reads when given no tree

    NESTED: ClassVar[dict[str, type]] = {"corpus": CorpusFacts, "trees": SplitSizes}
