"""Messages between the training thread, the workers and the screens.

Every payload is a frozen telemetry event or a plain value: safe to hand from
the training thread to the UI thread. Messages that carry new points (a step,
an evaluation) must each arrive; an activation frame carries the full state of
the probe, so a newer frame waiting in the queue replaces an older one
(`can_replace`), and a slow UI never builds up a backlog of frames.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from textual.message import Message

from ..training.telemetry import (
    CheckpointEvent,
    EndEvent,
    EvalEvent,
    MessageEvent,
    ProbeEvent,
    SampleEvent,
    StartEvent,
    StepEvent,
)


@dataclass
class TrainStarted(Message):
    event: StartEvent
    history: tuple[tuple[int, float], ...] = ()  # (step, val bits/char) from an earlier part of a resumed run


@dataclass
class StepUpdate(Message):
    """New training-loss points: a delta, never replaced. `earlier`: the step events
    before `event` that the bridge held back (the activations screen is shown), in order."""

    event: StepEvent
    earlier: tuple[StepEvent, ...] = ()


@dataclass
class EvalUpdate(Message):
    event: EvalEvent


@dataclass
class SampleUpdate(Message):
    event: SampleEvent


@dataclass
class CheckpointSaved(Message):
    event: CheckpointEvent


@dataclass
class TrainNote(Message):
    event: MessageEvent


@dataclass
class ProbeFrame(Message):
    """A full activation frame (probe.Probe in event.payload): the newest one wins."""

    event: ProbeEvent

    def can_replace(self, message: Message) -> bool:
        return isinstance(message, ProbeFrame)


@dataclass
class TrainEnded(Message):
    event: EndEvent


@dataclass
class TrainFailed(Message):
    """The run could not start or go on: a one-line message for the user."""

    error: str


@dataclass
class ExplorerReady(Message):
    explorer: Any  # explorer.Explorer


@dataclass
class Generated(Message):
    generation: Any  # explorer.Generation
    ticket: int = 0  # which request it answers: an older generation arriving late is dropped


@dataclass
class ExploreFailed(Message):
    error: str


@dataclass
class AtlasReady(Message):
    """The atlas of a checkpoint (inspect.atlas.Atlas), its text and every signal over the part shown."""

    atlas: Any
    source: Any  # inspect.source.Text_
    shown: dict  # signal name -> (T, L, H) over the first tokens of the text
    path: str


@dataclass
class AtlasSearched(Message):
    search: Any  # inspect.search.Search


@dataclass
class AtlasFailed(Message):
    error: str
