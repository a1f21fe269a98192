"""Live activations: what the model does with a probe text, as training goes.

Every second or few (a probe and the drawing of its frame at most 1% of the
run) the trainer traces the probe text (by default a slice of the validation split) through the per-step path and sends every internal
signal; this screen shows one signal of one layer as a heatmap (characters
across, units down), each unit's saturation beside it, the text coloured by the
selected unit, and how far the gradient reaches back through time. For a model
trained on labelled documents, b traces the text under the next label (or none).

A task that answers once per text (a classifier, an encoder-decoder) also sends
its answer for the probe text; a panel below draws it with the task's own view,
as `charrnn predict` does: the class probabilities as each character arrives,
or the output and its attention map. The probe text is then the input to try.
"""

from __future__ import annotations

import time
from typing import Any

import numpy as np
from rich.console import Group
from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal
from textual.screen import Screen
from textual.widgets import Footer, Input, Static

from ..inspect.stats import UNIT_NAMES
from . import colors
from .widgets import Chart, Heatmap, Series, TokenText, escape, unescape

GRAD_COLORS = {"h": "#5fafff", "c": "#ffaf00"}
TASK_TITLES = {"classify": "the classifier's answer as the text arrives", "seq2seq": "the output, and where the decoder looked"}


def task_view(task: str, prediction: Any) -> Group:
    """A task's answer for the probe text, drawn by the task's view (as `charrnn predict --trace --attention-map`)."""
    from ..tasks.use import PredictOptions
    from ..views import prediction_view

    view = prediction_view(task)
    parts: list[Any] = [Text(prediction.line, style="bold")]
    if view is not None:
        parts += list(view(prediction, PredictOptions(trace=True, attention_map=True)))
    return Group(*parts)


def signal_bar(signals: tuple[str, ...], signal: str, layer: int, layers: int, unit: int, units: int, extra: str = "") -> Text:
    t = Text()
    for name in signals:
        t.append(f" {name} ", style="bold reverse" if name == signal else "dim")
    t.append(f" │ layer {layer + 1}/{max(layers, 1)} │ unit {unit}/{max(units - 1, 0)}", style="bold")
    if extra:
        t.append(f" │ {extra}", style="dim")
    return t


def title(widget: Any, text: str) -> None:
    """Set a border title (markup) only when it changes: each setting parses it and repaints the widget."""
    if getattr(widget, "_title_set", None) != text:
        widget.border_title = widget._title_set = text


class ActivationsScreen(Screen):
    AUTO_FOCUS = ""
    BINDINGS = [
        Binding("s", "signal(1)", "Signal"),
        Binding("S", "signal(-1)", "Prev signal", show=False),
        Binding("l", "layer(1)", "Layer"),
        Binding("L", "layer(-1)", "Prev layer", show=False),
        Binding("down,j", "unit(1)", "Unit", key_display="↑↓"),
        Binding("up,k", "unit(-1)", "Prev unit", show=False),
        Binding("pagedown", "unit_page(1)", "Units down", show=False),
        Binding("pageup", "unit_page(-1)", "Units up", show=False),
        Binding("right", "columns(8)", "Scroll right", show=False),
        Binding("left", "columns(-8)", "Scroll left", show=False),
        Binding("e", "edit_probe", "Edit probe"),
        Binding("b", "label", "Label: trace under the next one (labelled models)", show=False),
        Binding("escape", "leave_input", "Leave the input", show=False),
    ]

    def __init__(self, **kw):
        super().__init__(**kw)
        self.probe = None  # the frame shown (probe.Probe)
        self.sel_signal = "h"
        self.sel_layer = 0
        self.sel_unit = 0
        self._task_drawn: Any = None  # the frame whose answer the task panel shows

    def compose(self) -> ComposeResult:
        yield Static(id="act-bar")
        yield Input(
            placeholder="probe text (\\n for a new line; enter: use it from the next frame on)", id="probe-input", compact=True
        )
        yield Heatmap(id="heatmap")
        with Horizontal(id="act-bottom"):
            yield TokenText(id="unit-text")
            yield Static(id="tree-nodes")  # a tree run's probe: the nodes where the tree puts them
            yield Chart(id="grad", log_y=True, empty="the gradient through time appears with the first frame")
        yield Static(id="task-view")
        yield Footer(show_command_palette=False, compact=True)

    def on_mount(self) -> None:
        self.query_one("#unit-text").border_title = "the text coloured by a unit"
        self.query_one(TokenText).empty = "Activations appear about a second after training starts. e: edit the probe text."
        self.query_one("#heatmap").border_title = "activations"
        self.query_one("#grad").border_title = "gradient back through time"
        self.query_one("#tree-nodes").display = False
        self.sync(self.app.state)  # type: ignore[attr-defined]

    def on_screen_resume(self) -> None:
        self.app.watching_probes = True  # type: ignore[attr-defined]
        self.app.trace_loaded()  # type: ignore[attr-defined]  (no run training: the loaded checkpoint's frame)

    def on_screen_suspend(self) -> None:
        self.app.watching_probes = False  # type: ignore[attr-defined]

    # ----------------------------------------------------------------- data

    def sync(self, state) -> None:  # type: ignore[no-untyped-def]
        if state.probe is not None and state.probe is not self.probe:
            cpu0 = time.thread_time()
            self.probe = state.probe
            inp = self.query_one("#probe-input", Input)
            if not inp.has_focus and not inp.value:
                inp.value = escape(self.probe.acts.text)
            self.redraw()
            self.call_after_refresh(self._frame_drawn, cpu0)
        elif self.probe is None:
            self.redraw()

    def _frame_drawn(self, cpu0: float) -> None:
        """A new frame is on screen: what drawing it cost this thread, for the trainer's probe spacing (bridge.py)."""
        self.app.frame_cost_s = time.thread_time() - cpu0  # type: ignore[attr-defined]

    def waiting(self) -> str:
        app = self.app
        if getattr(app, "training", False):
            return "waiting for the first frame"
        if getattr(app, "explorer", None) is not None:
            return "tracing the loaded checkpoint…"
        return "no run is training and no checkpoint is loaded: 3 then o opens one, 1 then n starts a run"

    @property
    def signals(self) -> tuple[str, ...]:
        return colors.signals_of(self.probe.acts.cell, self.probe.acts.signals) if self.probe is not None else ("h",)

    def redraw(self) -> None:
        heat, text, grad = self.query_one(Heatmap), self.query_one(TokenText), self.query_one("#grad", Chart)
        if self.probe is None:
            self.query_one("#act-bar", Static).update(
                signal_bar(("h",), "h", 0, 1, 0, 1, self.waiting()), layout=False
            )
            return
        self._task_panel()
        acts = self.probe.acts
        if self.sel_signal not in acts.signals:
            self.sel_signal = self.signals[0]
        self.sel_layer = min(self.sel_layer, acts.layers - 1)
        self.sel_unit = min(self.sel_unit, acts.hidden - 1)
        kind = colors.kind_of(acts.cell, self.sel_signal)
        values = acts.signals[self.sel_signal][self.sel_layer]  # (T, H)
        labels = ("shut", "open") if kind == colors.GATE else ("-1", "+1")
        tree = hasattr(acts, "parent")  # a tree run's TreeActivations: nodes as written (pre-order) instead of characters
        heat.show(values, acts.tokens, kind, colors.saturation(kind, values), labels)
        heat.select_unit(self.sel_unit)
        title(heat, f"{self.sel_signal}, layer {self.sel_layer + 1}: {'nodes' if tree else 'characters'} across, units down")
        nodes = self.query_one("#tree-nodes", Static)
        text.display, nodes.display = not tree, tree
        if tree:
            from ..inspect.treeview import tree_view, unit_labels  # (torch is loaded: a model is training)

            nodes.update(tree_view(acts, unit_labels(acts, self.sel_signal, self.sel_layer, self.sel_unit)))
            title(nodes, f"the tree by {self.sel_signal} of unit {self.sel_unit}, layer {self.sel_layer + 1}; → each subtree's value")
        else:
            text.show(acts.tokens, values[:, self.sel_unit], kind)
            title(text, f"text by {self.sel_signal} of unit {self.sel_unit}, layer {self.sel_layer + 1}")
        flow = self.probe.grad_flow
        grad.plot([Series(f"|dL/d{n}|", np.arange(v.shape[1], dtype=np.float64), np.asarray(v[self.sel_layer], dtype=np.float64),
                          GRAD_COLORS.get(n, "white")) for n, v in flow.items()])  # fmt: skip
        names = " · ".join(f"[{GRAD_COLORS.get(n, 'white')}]{n}[/]" for n in flow)
        title(grad, f"gradient down the tree, by depth: {names}" if tree else f"gradient back through time: {names}")
        consts = "".join(f"{UNIT_NAMES.get(n, n)} {v[self.sel_layer, self.sel_unit]:.3g} · " for n, v in acts.units.items())
        extra = f"{consts}probe at step {self.probe.step:,} · {len(acts.tokens)} {'nodes' if tree else 'tokens'}"
        if self.probe.labels:
            extra += f" · label {self.probe.label}" if self.probe.label is not None else " · no label"
        self.query_one("#act-bar", Static).update(
            signal_bar(self.signals, self.sel_signal, self.sel_layer, acts.layers, self.sel_unit, acts.hidden, extra),
            layout=False,
        )

    def _task_panel(self) -> None:
        panel = self.query_one("#task-view", Static)
        prediction = getattr(self.probe, "prediction", None)
        panel.display = prediction is not None
        if prediction is not None and self._task_drawn is not self.probe:
            self._task_drawn = self.probe
            panel.border_title = TASK_TITLES.get(self.probe.task, "the answer")
            panel.update(task_view(self.probe.task, prediction))

    # -------------------------------------------------------------- actions

    def action_signal(self, step: int) -> None:
        names = self.signals
        i = names.index(self.sel_signal) if self.sel_signal in names else 0
        self.sel_signal = names[(i + step) % len(names)]
        self.redraw()

    def action_layer(self, step: int) -> None:
        layers = self.probe.acts.layers if self.probe is not None else 1
        self.sel_layer = (self.sel_layer + step) % layers
        self.redraw()

    def action_unit(self, step: int) -> None:
        hidden = self.probe.acts.hidden if self.probe is not None else 1
        self.sel_unit = int(np.clip(self.sel_unit + step, 0, hidden - 1))
        self.redraw()

    def action_unit_page(self, step: int) -> None:
        self.action_unit(step * self.query_one(Heatmap).rows)

    def action_columns(self, n: int) -> None:
        self.query_one(Heatmap).scroll_cols(n)

    def action_label(self) -> None:
        """Trace the probe under the next label the model knows (then no label), from the next frame on."""
        labels = self.probe.labels if self.probe is not None else ()
        if not labels:
            self.notify("the model being trained has no labels (--label-from).", severity="warning")
            return
        order = (None, *labels)
        current = self.app.probe_label  # type: ignore[attr-defined]
        self.app.set_probe_label(order[(order.index(current) + 1) % len(order)] if current in order else labels[0])  # type: ignore[attr-defined]

    def action_edit_probe(self) -> None:
        self.query_one("#probe-input", Input).focus()

    def action_leave_input(self) -> None:
        self.set_focus(None)

    def on_input_submitted(self, event: Input.Submitted) -> None:
        if event.input.id == "probe-input":
            self.app.set_probe_text(unescape(event.value))  # type: ignore[attr-defined]
            self.set_focus(None)
