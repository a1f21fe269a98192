"""The sink that carries telemetry from the training thread into the app.

Each event becomes a message posted with `post_message`, which only puts it on
the app's queue (`call_soon_threadsafe`) and returns: the training thread never
waits for the UI, and never learns that there is one. A sink must not raise into
the loop, so a message that cannot be delivered (the app is closing) is dropped.

While the activations screen is shown, nothing on it shows the step figures, so
their updates go over in batches, each carrying every step event since the last:
with the next frame (any other event sends the held steps first, so the order
holds), or after WATCHED_STEP_S at the latest; leaving the screen sends them with
the next step. Every message wakes the UI thread and costs it more than the
figures in it, and on a busy machine that comes out of training (bench/RESULTS.md).

The trainer spaces its probes by what the live view costs, the UI's drawing of a
frame included: the app measures that (the activations screen, `frame_cost_s`)
and the bridge passes it on.
"""

from __future__ import annotations

import json
import math
import time
from pathlib import Path
from typing import Any

from textual.message import Message

from ..training.telemetry import (
    BaseSink,
    CheckpointEvent,
    EndEvent,
    EvalEvent,
    MessageEvent,
    ProbeEvent,
    SampleEvent,
    StartEvent,
    StepEvent,
)
from . import messages as m

WATCHED_STEP_S = 5.0  # step updates while the activations screen is shown: held until the next frame, or this long


class Bridge(BaseSink):
    wants_probes = True  # the trainer traces the probe text for us, at most 1% of the run, drawing included (telemetry.next_probe)

    def __init__(self, target: Any, clock=time.monotonic):
        self.target = target  # the App (anything with post_message)
        self.clock = clock
        self._held: list[StepEvent] = []  # step events not sent yet (the activations screen is shown)
        self._due = float("-inf")  # when the held ones go

    @property
    def frame_cost_s(self) -> float:
        """The UI thread's CPU seconds for drawing the last frame (the trainer's probe spacing counts them)."""
        return float(getattr(self.target, "frame_cost_s", 0.0))

    @property
    def watching(self) -> bool:
        """Whether a frame would be seen now (the app's activations screen is shown):
        the trainer makes no probe otherwise, so the other screens cost it nothing."""
        return bool(getattr(self.target, "watching_probes", True))

    def _post(self, message: Message) -> None:
        try:
            self.target.post_message(message)
        except Exception:  # the app is gone or its loop is closed: nobody is watching
            pass

    def _flush(self) -> None:
        """Send the held step events (before any other event: the order holds)."""
        if self._held:
            *earlier, last = self._held
            self._held = []
            self._post(m.StepUpdate(last, tuple(earlier)))

    def on_start(self, e: StartEvent) -> None:
        self._flush()
        self._post(m.TrainStarted(e, _history(Path(e.run_dir)) if e.start_step else ()))

    def on_step(self, e: StepEvent) -> None:
        self._held.append(e)
        if self.watching:
            now = self.clock()
            if now < self._due:
                return
            self._due = now + WATCHED_STEP_S
        self._flush()

    def on_eval(self, e: EvalEvent) -> None:
        self._flush()
        self._post(m.EvalUpdate(e))

    def on_sample(self, e: SampleEvent) -> None:
        self._flush()
        self._post(m.SampleUpdate(e))

    def on_checkpoint(self, e: CheckpointEvent) -> None:
        self._flush()
        self._post(m.CheckpointSaved(e))

    def on_probe(self, e: ProbeEvent) -> None:
        self._flush()
        self._post(m.ProbeFrame(e))

    def on_message(self, e: MessageEvent) -> None:
        self._flush()
        self._post(m.TrainNote(e))

    def on_end(self, e: EndEvent) -> None:
        self._flush()
        self._post(m.TrainEnded(e))


def _history(run_dir: Path, limit: int = 5000) -> tuple[tuple[int, float], ...]:
    """The validation curve of a resumed run so far (bits/char, or the loss of a task without), from its metrics.jsonl
    (read here, on the training thread, so the UI thread never touches the disk)."""
    points = []
    try:
        with open(run_dir / "metrics.jsonl", encoding="utf-8") as f:
            for line in f:
                try:
                    r = json.loads(line)
                    step, bpc = int(r["step"]), float(r["val_bpc"] if r.get("val_bpc") is not None else r["val_loss"])
                except (ValueError, KeyError, TypeError):
                    continue
                if not r.get("final") and math.isfinite(bpc):
                    points.append((step, bpc))
    except OSError:
        return ()
    return tuple(points[-limit:])
