"""The sink that carries telemetry from the training thread into the app.

Each event becomes a message posted with `post_message`, which only puts it on
the app's queue (`call_soon_threadsafe`) and returns: the training thread never
waits for the UI, and never learns that there is one. A sink must not raise into
the loop, so a message that cannot be delivered (the app is closing) is dropped.
"""

from __future__ import annotations

import json
import math
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


class Bridge(BaseSink):
    wants_probes = True  # the trainer traces the probe text for us, about once a second

    def __init__(self, target: Any):
        self.target = target  # the App (anything with post_message)

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

    def on_start(self, e: StartEvent) -> None:
        self._post(m.TrainStarted(e, _history(Path(e.run_dir)) if e.start_step else ()))

    def on_step(self, e: StepEvent) -> None:
        self._post(m.StepUpdate(e))

    def on_eval(self, e: EvalEvent) -> None:
        self._post(m.EvalUpdate(e))

    def on_sample(self, e: SampleEvent) -> None:
        self._post(m.SampleUpdate(e))

    def on_checkpoint(self, e: CheckpointEvent) -> None:
        self._post(m.CheckpointSaved(e))

    def on_probe(self, e: ProbeEvent) -> None:
        self._post(m.ProbeFrame(e))

    def on_message(self, e: MessageEvent) -> None:
        self._post(m.TrainNote(e))

    def on_end(self, e: EndEvent) -> None:
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
