"""What the app knows about the run it shows: plain data, updated on the UI thread.

Message handlers append to it and bump `version`, which tells the app's
`listener` (it wakes the redraw timer); the screens redraw from it at most ten
times a second, only when the version has moved. Curves are in
bits per character so that the training and validation lines share one scale
(and char and subword models compare); for a task whose loss is not over text
(a classifier's, per document) they are its loss in nats per unit.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any, Callable

from ..training.telemetry import (
    CheckpointEvent,
    EndEvent,
    EvalEvent,
    SampleEvent,
    StartEvent,
    StepEvent,
)

LN2 = math.log(2.0)
MAX_POINTS = 20_000  # a curve keeps at most this many points (older ones thinned)

# The phases of a run as the app sees them.
IDLE, PREPARING, TRAINING, STOPPING, ENDED, FAILED = "idle", "preparing", "training", "stopping", "ended", "failed"


@dataclass
class RunState:
    phase: str = IDLE
    start: StartEvent | None = None
    step: StepEvent | None = None
    last_eval: EvalEvent | None = None
    best_bpc: float | None = None  # the best validation point of the curves (bits/char, or the loss without bpc)
    sample: SampleEvent | None = None
    end: EndEvent | None = None
    error: str | None = None
    probe: Any = None  # probe.Probe: the newest activation frame
    train_pts: list[tuple[int, float]] = field(default_factory=list)  # (step, bits/char), or nats per unit without bpc
    val_pts: list[tuple[int, float]] = field(default_factory=list)
    checkpoints: list[CheckpointEvent] = field(default_factory=list)
    log: list[tuple[str, str]] = field(default_factory=list)  # (line, style) for the event log; kept across runs
    version: int = 0  # moves whenever anything above changes
    listener: Callable[[], None] | None = field(default=None, compare=False, repr=False)  # told of each move (the app)

    def touch(self) -> None:
        self.version += 1
        if self.listener is not None:
            self.listener()

    def note(self, line: str, style: str = "") -> None:
        self.log.append((line, style))
        del self.log[:-200]
        self.touch()

    def started(self, e: StartEvent, history: tuple[tuple[int, float], ...] = ()) -> None:
        """A new run (or a resumed one) begins: forget the last one's figures."""
        fresh = RunState(
            phase=TRAINING, start=e, version=self.version, val_pts=list(history), log=self.log, listener=self.listener
        )
        fresh.best_bpc = min((b for _, b in history), default=None)
        self.__dict__.update(fresh.__dict__)
        self.touch()

    @property
    def bpc(self) -> bool:
        """Whether the curves are in bits per character (else the loss per unit)."""
        return self.start is None or self.start.bpc

    def stepped(self, e: StepEvent) -> None:
        self.step = e
        if self.phase == PREPARING:
            self.phase = TRAINING
        cpt = e.chars_per_s / e.tokens_per_s if e.tokens_per_s > 0 else 1.0  # characters per token
        if math.isfinite(e.loss):
            _append(self.train_pts, (e.step, e.loss / LN2 / max(cpt, 1e-9) if self.bpc else e.loss))
        self.touch()

    def evaluated(self, e: EvalEvent) -> None:
        self.last_eval = e
        v = curve_bpc(e) if self.bpc else e.val_loss  # a task without bits/char: its loss per unit
        if math.isfinite(v):
            if not e.final or not self.val_pts or self.val_pts[-1][0] != e.step:
                _append(self.val_pts, (e.step, v))
            if self.best_bpc is None or v < self.best_bpc:
                self.best_bpc = v
        self.touch()

    def sampled(self, e: SampleEvent) -> None:
        self.sample = e
        self.touch()

    def saved(self, e: CheckpointEvent) -> None:
        self.checkpoints.append(e)
        self.touch()

    def probed(self, probe: Any) -> None:
        self.probe = probe
        self.touch()

    def ended(self, e: EndEvent) -> None:
        self.end = e
        self.phase = ENDED
        self.touch()

    def failed(self, error: str) -> None:
        self.error = error
        self.phase = FAILED
        self.touch()

    @property
    def active(self) -> bool:
        return self.phase in (PREPARING, TRAINING, STOPPING)


def curve_bpc(e: EvalEvent) -> float:
    """The validation point on the bits-per-character curve. A task that scores whole
    examples (a tree, a label) has no bits/char of its own: its loss is spread over the
    examples' characters, as the training curve's is (chars/s over units/s), so the
    two curves share a scale."""
    if e.val_bpc is not None:
        return e.val_bpc
    return e.val_loss / LN2 / (e.chars / e.tokens) if e.chars > 0 and e.tokens > 0 else math.nan


def _append(points: list[tuple[int, float]], p: tuple[int, float]) -> None:
    points.append(p)
    if len(points) > MAX_POINTS:  # keep the shape, drop every other old point
        half = len(points) // 2
        points[:half] = points[:half:2]
