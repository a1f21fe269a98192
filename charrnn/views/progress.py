"""Sinks that render training in the terminal: a Rich progress bar, or plain lines."""

from __future__ import annotations

from rich.console import Console
from rich.markup import escape
from rich.progress import BarColumn, Progress, TextColumn

from ..config import format_duration
from ..training.telemetry import (
    METRICS,
    BaseSink,
    CheckpointEvent,
    EndEvent,
    EvalEvent,
    MessageEvent,
    SampleEvent,
    StartEvent,
    StepEvent,
    metric_text,
)


def si(x: float) -> str:
    for unit, scale in (("M", 1e6), ("k", 1e3)):
        if abs(x) >= scale:
            return f"{x / scale:.1f}{unit}"
    return f"{x:.0f}"


def score_text(e: EvalEvent) -> str:
    """What the run is judged by: bits per character, else the task's first metric."""
    if e.val_bpc is not None:
        return f"{e.val_bpc:.3f} bits/char"
    return metric_text(*next(iter(e.metrics.items()))) if e.metrics else "-"


def eval_line(e: EvalEvent, unit: str = "token") -> str:
    train = f"train {e.train_loss:.4f} | " if e.train_loss is not None else ""
    tag = "final " if e.final else ""
    best = " *" if e.best else ""
    text = f" | {e.val_bpc:.4f} bits/char | ppl {e.val_ppl:.2f}" if e.val_bpc is not None else ""
    # the named metrics (accuracy, exact match, ...); the rest (a tree run's by depth) go to metrics.jsonl only
    metrics = "".join(f" | {metric_text(k, v)}" for k, v in e.metrics.items() if k in METRICS)
    return (
        f"{tag}step {e.step:,} | {train}val {e.val_loss:.4f} nats/{unit}{text}{metrics} | "
        f"{si(e.chars_per_s)} chars/s | {format_duration(e.elapsed_s)}{best}{metrics_text(e.metrics)}"
    )


def metrics_text(metrics: dict[str, float]) -> str:
    """What else a task measured, as ' | name value' (no label: bits/char without the label)."""
    shown = {"val_bpc_no_label": "no label {:.4f} bits/char", "label_gain_bpc": "label worth {:.4f} bits/char"}
    return "".join(" | " + shown[k].format(v) for k, v in metrics.items() if k in shown)


def start_lines(e: StartEvent) -> list[str]:
    limits = []
    if e.total_steps:
        limits.append(f"{e.total_steps:,} steps")
    if e.time_budget_s:
        limits.append(format_duration(e.time_budget_s))
    resumed = f", resuming at step {e.start_step:,}" if e.start_step else ""
    return [
        e.corpus,
        f"model: {e.model}, {e.params:,} parameters; {e.device}, {e.precision}",
        *([e.recipe] if e.recipe else []),
        f"run: {e.run_dir}; {e.tokens_per_step:,} {e.unit}s a step, {e.steps_per_epoch:,} steps an epoch; "
        f"stops after {' or '.join(limits)}{resumed}",
    ]


def end_line(e: EndEvent, unit: str = "token") -> str:
    why = {"steps": "reached --steps", "epochs": "reached --epochs", "time": "time budget spent", "interrupt": "interrupted"}[e.stopped_by]
    val = ""
    if e.final_val_loss is not None:
        bpc = f", {e.final_val_bpc:.4f} bits/char" if e.final_val_bpc is not None else ""
        val = f"; validation {e.final_val_loss:.4f} nats/{unit}{bpc}"
    best = f" (best {e.best_val_loss:.4f})" if e.best_val_loss is not None else ""
    return f"done at step {e.step:,} ({why}, {format_duration(e.elapsed_s)}){val}{best}. Checkpoints in {e.run_dir}"


class PlainSink(BaseSink):
    """--quiet: one plain line per evaluation, no bar, no samples; the task's report at the end."""

    def __init__(self, console: Console):
        self.console = console
        self.unit = "token"

    def on_start(self, e: StartEvent) -> None:
        self.unit = e.unit
        for line in start_lines(e):
            self.console.print(escape(line), highlight=False)

    def on_eval(self, e: EvalEvent) -> None:
        self.console.print(eval_line(e, self.unit), highlight=False)
        self._report(e)

    def _report(self, e: EvalEvent) -> None:
        if e.report is not None:
            from ..views import report

            for part in report(e.report):
                self.console.print(part)

    def on_message(self, e: MessageEvent) -> None:
        self.console.print(f"[yellow]{escape(e.text)}[/]" if e.level == "warning" else escape(e.text), highlight=False)

    def on_end(self, e: EndEvent) -> None:
        self.console.print(escape(end_line(e, self.unit)), highlight=False)


class RichSink(PlainSink):
    """The progress bar: step, train loss, val loss, bits/char (or the task's metric), chars/s, ETA."""

    def __init__(self, console: Console):
        super().__init__(console)
        self.progress = Progress(
            TextColumn("[bold]step {task.fields[step]}"),
            BarColumn(),
            TextColumn("loss {task.fields[loss]}"),
            TextColumn("val {task.fields[val]}"),
            TextColumn("{task.fields[score]}"),
            TextColumn("{task.fields[speed]} chars/s"),
            TextColumn("ETA {task.fields[eta]}"),
            console=console,
            transient=False,
            refresh_per_second=5,
        )
        self.task = None
        self.fields = {"step": "0", "loss": "-", "val": "-", "score": "- bits/char", "speed": "-", "eta": "-"}

    def on_start(self, e: StartEvent) -> None:
        super().on_start(e)
        self.total = e.total_steps
        if not e.bpc:
            self.fields["score"] = "-"
        self.progress.start()
        self.task = self.progress.add_task("train", total=1000, **self.fields)

    def on_step(self, e: StepEvent) -> None:
        self.fields.update(
            step=f"{e.step:,}" + (f"/{e.total_steps:,}" if e.total_steps else ""),
            loss=f"{e.loss:.3f}",
            speed=si(e.chars_per_s),
            eta=format_duration(e.eta_s) if e.eta_s is not None else "-",
        )
        self.progress.update(self.task, completed=1000 * e.progress, **self.fields)

    def on_eval(self, e: EvalEvent) -> None:
        self.fields.update(val=f"{e.val_loss:.3f}", score=score_text(e))
        self.progress.update(self.task, **self.fields)
        self.progress.console.print(eval_line(e, self.unit), highlight=False)
        self._report(e)

    def on_sample(self, e: SampleEvent) -> None:
        text = e.text.strip("\n")
        if text:
            self.progress.console.print(f"[dim]{escape(text)}[/]", highlight=False)

    def on_checkpoint(self, e: CheckpointEvent) -> None:
        pass

    def on_end(self, e: EndEvent) -> None:
        if self.task is not None:
            self.fields["step"] = f"{e.step:,}" + (f"/{self.total:,}" if self.total else "")
            self.progress.update(self.task, **self.fields)
        self.close()
        super().on_end(e)

    def close(self) -> None:
        if self.task is not None:
            self.progress.stop()
            self.task = None
