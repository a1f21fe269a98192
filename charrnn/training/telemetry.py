"""What the training loop tells the world, and the small interface it tells it through.

The loop knows nothing about progress bars or Textual: it calls the methods of
its sinks with frozen, CPU-only payloads (plain numbers, strings, numpy arrays)
that are safe to hand to another thread. Step statistics are throttled by a
wall-clock `RateGate` so that a fast loop never floods a slow UI.
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any


@dataclass(frozen=True)
class StartEvent:
    run_dir: str
    corpus: str  # one-line summary of the corpus and its split
    model: str  # one-line summary of the model
    params: int
    device: str
    precision: str
    start_step: int  # 0, or the step a resumed run continues from
    total_steps: int | None  # None when the run is bounded by time only
    time_budget_s: float | None
    steps_per_epoch: int
    tokens_per_step: int
    world: int = 1
    trained_params: int | None = None  # None: all of them train
    task: str = "lm"
    unit: str = "token"  # what a step's units (tokens_per_step, and the loss's) are: tokens, documents, trees
    bpc: bool = True  # whether the task scores bits per character (else its loss is per unit, and its metrics tell)
    recipe: str | None = None  # which settings came from the fp32 CPU recipe (training/recipe.py)


@dataclass(frozen=True)
class StepEvent:
    step: int
    total_steps: int | None
    epoch: float
    loss: float  # nats per token, mean over the steps since the last report
    lr: float
    grad_norm: float
    tokens_per_s: float
    chars_per_s: float
    elapsed_s: float
    eta_s: float | None
    progress: float  # 0..1 of the stopping rule


@dataclass(frozen=True)
class EvalEvent:
    step: int
    train_loss: float | None
    val_loss: float  # nats per token (per example, for tasks that score examples)
    val_bpc: float | None  # bits per character: total nats / characters / ln 2; None where no text is modelled
    val_ppl: float  # per token
    tokens: int
    chars: float
    elapsed_s: float
    chars_per_s: float
    best: bool
    final: bool = False  # the end-of-run evaluation over the whole split
    metrics: dict[str, float] = field(default_factory=dict)  # what else the task measures (accuracy, ...)
    report: Any = None  # the task's end-of-run report (tasks/reports.py), on the final evaluation

    def record(self) -> dict[str, Any]:
        """The metrics.jsonl line."""
        report = {"report": self.report.record()} if self.report is not None else {}
        return {
            **self.metrics,
            "step": self.step,
            "train_loss": self.train_loss,
            "val_loss": self.val_loss,
            "val_bpc": self.val_bpc,
            "val_ppl": self.val_ppl,
            "val_tokens": self.tokens,
            "elapsed_s": round(self.elapsed_s, 3),
            "chars_per_s": round(self.chars_per_s, 1),
            "best": self.best,
            "final": self.final,
            **report,
        }


# How the metrics tasks report read in a line: (label, shown as a percentage). Others show as numbers.
METRICS = {
    "accuracy": ("accuracy", True),
    "majority": ("majority class", True),
    "bayes_accuracy": ("n-gram Bayes", True),
    "exact_match": ("exact match", True),
    "cer": ("CER", True),
    "exact_longer": ("exact match on longer sources", True),
}


def metric_text(name: str, value: float) -> str:
    """'accuracy 93.1%', 'exact match 99.2%', 'CER 0.4%', or 'name 1.234' for any other metric."""
    label, percent = METRICS.get(name, (name.replace("_", " "), False))
    return f"{label} {100 * value:.1f}%" if percent else f"{label} {value:.4g}"


@dataclass(frozen=True)
class SampleEvent:
    step: int
    text: str


@dataclass(frozen=True)
class CheckpointEvent:
    step: int
    path: str
    kind: str  # "last" | "best"


@dataclass(frozen=True)
class MessageEvent:
    level: str  # "info" | "warning"
    text: str


@dataclass(frozen=True)
class ProbeEvent:
    """Activations of the model on a probe text (see probe.py)."""

    step: int
    payload: Any = field(default=None)


@dataclass(frozen=True)
class EndEvent:
    step: int
    stopped_by: str  # "steps" | "epochs" | "time" | "interrupt"
    elapsed_s: float
    best_val_loss: float | None
    final_val_loss: float | None
    final_val_bpc: float | None
    run_dir: str


PROBE_PERIOD_S = 1.0  # activation probes, at most once per this
# ... and the live view at most this share of the time: the probe on the training thread,
# and what drawing a frame costs the UI (a sink's `frame_cost_s`), which on a machine whose
# cores training fills comes out of training too (the GIL, a core). 2% of the probe alone
# gave the activations screen 0.938x, 1% 0.950x (bench/RESULTS.md, issue 18).
PROBE_SHARE = 0.01
PROBE_IDLE_S = 0.25  # how often to ask again whether a probing sink is watching (tui: the activations screen shown)


def next_probe(t: float, cost: float, sinks: list[Any]) -> float:
    """When to probe next, after a probe that began at `t` and took `cost` seconds of the
    training thread: at most once a PROBE_PERIOD_S, and spaced so that the probe and the
    drawing of its frame (the most any probing sink says its last frame cost, `frame_cost_s`)
    take at most PROBE_SHARE of the time."""
    drawn = max((float(getattr(s, "frame_cost_s", 0.0)) for s in sinks if getattr(s, "wants_probes", False)), default=0.0)
    return t + max(PROBE_PERIOD_S, (cost + drawn) / PROBE_SHARE)


class BaseSink:
    """The interface of a sink, ignoring everything: a sink overrides what it shows.
    The loop calls these from its own thread; a sink that draws elsewhere hands
    the (frozen) event over rather than drawing here. A sink with `wants_probes = True`
    gets activation probes (on_probe) while its `watching` is true (read before each probe),
    spaced by what they cost, its `frame_cost_s` included (next_probe); one with
    `probes_at_eval = True` gets one probe at each evaluation (on_eval_probe)."""

    def on_start(self, e: StartEvent) -> None: ...
    def on_step(self, e: StepEvent) -> None: ...
    def on_eval(self, e: EvalEvent) -> None: ...
    def on_sample(self, e: SampleEvent) -> None: ...
    def on_checkpoint(self, e: CheckpointEvent) -> None: ...
    def on_probe(self, e: ProbeEvent) -> None: ...
    def on_eval_probe(self, e: ProbeEvent) -> None: ...
    def on_message(self, e: MessageEvent) -> None: ...
    def on_end(self, e: EndEvent) -> None: ...


class ListSink(BaseSink):
    """Keeps every event, in order: for tests and scripts."""

    def __init__(self) -> None:
        self.events: list[Any] = []

    def __getattribute__(self, name: str) -> Any:
        if name.startswith("on_"):
            return self.events.append
        return super().__getattribute__(name)

    def of(self, kind: type) -> list[Any]:
        return [e for e in self.events if isinstance(e, kind)]


class MetricsSink(BaseSink):
    """Appends every evaluation to `run_dir/metrics.jsonl`, one JSON object a line."""

    def __init__(self, run_dir: Path):
        self.path = Path(run_dir) / "metrics.jsonl"

    def on_eval(self, e: EvalEvent) -> None:
        with open(self.path, "a") as f:
            f.write(json.dumps(e.record()) + "\n")


class Fanout:
    """Several sinks behind one: the loop calls `emit("on_step", event)`."""

    def __init__(self, sinks: list[Any] | None = None):
        self.sinks = list(sinks or [])

    def emit(self, method: str, event: Any) -> None:
        for s in self.sinks:
            getattr(s, method)(event)


class RateGate:
    """True at most `hz` times a second (and always on the first call)."""

    def __init__(self, hz: float, clock=time.monotonic):
        self.period = 1.0 / hz if hz > 0 else 0.0
        self.clock = clock
        self.next = float("-inf")

    def ready(self) -> bool:
        now = self.clock()
        if now >= self.next:
            self.next = now + self.period
            return True
        return False
