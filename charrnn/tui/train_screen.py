"""The train screen: where the run stands, its curves, its latest sample, its checkpoints."""

from __future__ import annotations

import math
import time

from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal
from textual.screen import Screen
from textual.widgets import Footer, Static

from ..config import format_duration
from ..training.telemetry import metric_text
from . import state as st
from .widgets import Chart, Series, bar

PHASE_STYLE = {
    st.IDLE: ("○ idle", "dim"),
    st.PREPARING: ("◌ preparing", "yellow"),
    st.TRAINING: ("● training", "green"),
    st.STOPPING: ("◍ stopping: saving a checkpoint", "yellow"),
    st.ENDED: ("■ finished", "cyan"),
    st.FAILED: ("✕ failed", "red"),
}
TRAIN_COLOR, VAL_COLOR = "#5fafff", "#ffaf00"
CURVE_HZ = 2.0  # the curves move slowly: redrawn at most this often (the figures above them at 10 Hz)


def _num(v: float | None, fmt: str = ".4f") -> str:
    return "–" if v is None or not math.isfinite(v) else format(v, fmt)


def _rate(v: float) -> str:
    return f"{v / 1e6:.2f}M" if v >= 1e6 else f"{v / 1e3:.1f}k" if v >= 1e3 else f"{v:.0f}"


def status_text(s: st.RunState) -> Text:
    label, style = PHASE_STYLE[s.phase]
    if s.phase == st.ENDED and s.end is not None and s.end.stopped_by == "interrupt":
        label = "■ stopped"
    t = Text(label, style=f"bold {style}")
    if s.start is not None:
        t.append(f"  {s.start.run_dir}", style="bold")
        t.append(f"  {s.start.model} · {s.start.params:,} params · {s.start.device} {s.start.precision}", style="dim")
        if s.start.recipe:
            t.append(f"  ({s.start.recipe})", style="dim")
    elif s.phase == st.IDLE:
        t.append("  press n for a new run, r to resume one", style="dim")
    if s.phase == st.FAILED and s.error:
        t.append(f"  {s.error}", style="red")
    return t


def stats_text(s: st.RunState) -> Text:
    e, ev = s.step, s.last_eval
    t = Text()
    if s.start is None and e is None:
        t.append("No run yet. ", style="bold")
        t.append("n: start a new run (corpus, cell, size, limit) · r: resume a run · 3: explore a checkpoint", style="dim")
        return t
    step = e.step if e is not None else (s.start.start_step if s.start else 0)
    total = e.total_steps if e is not None else (s.start.total_steps if s.start else None)
    t.append("step ", style="dim")
    t.append(f"{step:,}", style="bold")
    if total:
        t.append(f"/{total:,}", style="dim")
    progress = e.progress if e is not None else 0.0
    t.append("  ")
    t.append(bar(progress, 16).ljust(16, "─"), style=TRAIN_COLOR)
    t.append(f" {progress:4.0%}")
    if e is not None:
        eta = format_duration(e.eta_s) if e.eta_s is not None else "–"
        t.append("  ETA ", style="dim")
        t.append(eta, style="bold")
        t.append(f"  elapsed {format_duration(e.elapsed_s)}  epoch {e.epoch:.2f}", style="dim")
    t.append("\n")
    train_bpc = s.train_pts[-1][1] if s.train_pts else None
    t.append("train ", style="dim")
    if s.bpc:
        t.append(f"{_num(e.loss if e else None)} nats ({_num(train_bpc, '.3f')} bpc)", style=f"bold {TRAIN_COLOR}")
    else:
        t.append(f"{_num(e.loss if e else None)} nats/{s.start.unit if s.start else 'unit'}", style=f"bold {TRAIN_COLOR}")
    t.append("   val ", style="dim")
    t.append(f"{_num(ev.val_loss if ev else None)} nats ", style=f"bold {VAL_COLOR}")
    if s.bpc:
        t.append(f"{_num(ev.val_bpc if ev else None, '.3f')} bits/char", style=f"bold {VAL_COLOR}")
    t.append(f"   best {_num(s.best_bpc, '.3f' if s.bpc else '.4f')}", style="dim")
    t.append("\n")
    if ev is not None and ev.metrics:  # what the task is judged by (accuracy, exact match, ...)
        t.append("  ·  ".join(metric_text(k, v) for k, v in ev.metrics.items()), style=f"bold {VAL_COLOR}")
        t.append("\n")
    if e is not None:
        t.append(f"{_rate(e.chars_per_s)} chars/s", style="bold")
        t.append(f"  {_rate(e.tokens_per_s)} tokens/s  lr {e.lr:.2e}  |grad| {_num(e.grad_norm, '.2f')}", style="dim")
    if s.checkpoints:
        c = s.checkpoints[-1]
        t.append(f"  saved step {c.step:,}", style="dim")
    return t


class TrainScreen(Screen):
    BINDINGS = [
        Binding("n", "app.new_run", "New run"),
        Binding("r", "app.resume", "Resume"),
        Binding("x", "app.stop_training", "Stop"),
    ]

    def compose(self) -> ComposeResult:
        yield Static(id="train-status")
        yield Static(id="stats")
        yield Chart(id="curves", empty="the curves appear after the first steps")
        with Horizontal(id="train-bottom"):
            yield Static(id="sample")
            yield Static(id="events")
        yield Footer(show_command_palette=False, compact=True)

    def on_mount(self) -> None:
        self.query_one("#stats").border_title = "progress"
        self._title_curves(self.app.state)  # type: ignore[attr-defined]
        self.query_one("#sample").border_title = "latest sample"
        self.query_one("#events").border_title = "events"
        self._shown: dict[str, object] = {}
        self._next_curve = 0.0
        self._curve_timer = False
        self.sync(self.app.state)  # type: ignore[attr-defined]

    def _title_curves(self, s: st.RunState) -> None:
        what = "bits per character" if s.bpc else f"loss (nats per {s.start.unit if s.start else 'unit'})"
        self.query_one("#curves").border_title = f"[{TRAIN_COLOR}]train[/] / [{VAL_COLOR}]validation[/] {what}"

    def _changed(self, part: str, key: object) -> bool:
        """Whether `part` must be redrawn: only what changed is handed to Textual."""
        if self._shown.get(part) == key:
            return False
        self._shown[part] = key
        return True

    def sync(self, s: st.RunState) -> None:
        if self._changed("status", (s.phase, id(s.start), s.error, id(s.end))):
            self.query_one("#train-status", Static).update(status_text(s), layout=False)
            self._title_curves(s)
        stats = stats_text(s)
        self.query_one("#stats", Static).update(stats, layout=self._changed("stats-lines", len(stats.plain.splitlines())))
        self._curves(s)
        if s.sample is not None and self._changed("sample", id(s.sample)):
            sample = self.query_one("#sample", Static)
            sample.border_title = f"sample at step {s.sample.step:,}"
            sample.update(Text(s.sample.text), layout=False)
        events = self.query_one("#events", Static)
        rows = max(1, events.content_size.height)
        if self._changed("events", (len(s.log), s.log[-1] if s.log else None, rows)):
            lines = [Text(line, style=style, no_wrap=True, overflow="ellipsis") for line, style in s.log[-rows:]]
            events.update(
                Text("\n").join(lines) if lines else Text("checkpoints and evaluations appear here", style="dim"), layout=False
            )

    def _curves(self, s: st.RunState) -> None:
        """Replot the curves, at most CURVE_HZ times a second; a change held back is
        drawn when its time comes, even if nothing else arrives."""
        key = (len(s.train_pts), len(s.val_pts), id(s.start))
        if key == self._shown.get("curves"):
            return
        wait = self._next_curve - time.monotonic()
        if wait > 0:
            if not self._curve_timer:
                self._curve_timer = True
                self.set_timer(wait, lambda: self._curves_due(s))
            return
        self._shown["curves"], self._next_curve = key, time.monotonic() + 1.0 / CURVE_HZ
        self.query_one("#curves", Chart).plot(
            [Series.of("train", s.train_pts, TRAIN_COLOR), Series.of("validation", s.val_pts, VAL_COLOR)]
        )

    def _curves_due(self, s: st.RunState) -> None:
        self._curve_timer = False
        self._curves(self.app.state)  # type: ignore[attr-defined]

    def on_resize(self) -> None:
        self._shown.clear()
