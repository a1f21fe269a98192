"""The explore screen: generate from a checkpoint and look at every character.

Type a prime and press enter (or g). For the character under the cursor the
screen shows what the model predicted for that place and the activations of
every unit while reading it; the text can be coloured by any unit. A model
trained on labelled documents generates for the label picked with b (or for no
label); a model with a halt output shows p(halt) after each character, and h
colours the text by it. The model is the checkpoint's own CPU copy; loading and
generating run in thread workers of this screen.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
from rich.text import Text
from textual import work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal
from textual.screen import Screen
from textual.widgets import Footer, Input, Label, Static

from ..config import SampleConfig
from ..errors import CharRNNError
from . import colors
from .messages import ExploreFailed, ExplorerReady, Generated
from .widgets import Heatmap, TokenText, bar, fmt_p, glyph, unescape

TOP_K = (None, 1, 2, 3, 5, 10, 20, 40)
TOP_P = (None, 0.5, 0.8, 0.9, 0.95)
LENGTH = 300


def parse_stops(text: str) -> tuple[str, ...]:
    """'\\n\\n | END' -> ('\\n\\n', 'END'): several stop strings separated by ' | '."""
    return tuple(s for s in (unescape(p.strip()) for p in text.split(" | ")) if s)


class ExploreScreen(Screen):
    AUTO_FOCUS = ""
    BINDINGS = [
        Binding("g", "generate", "Generate"),
        Binding("t", "temperature(-0.1)", "Temperature down", show=False),
        Binding("T", "temperature(0.1)", "Temperature up", show=False),
        Binding("k", "top_k", "top-k: next value", show=False),
        Binding("p", "top_p", "top-p: next value", show=False),
        Binding("left", "cursor(-1)", "Char", key_display="←→"),
        Binding("right", "cursor(1)", "Next char", show=False),
        Binding("home", "cursor(-100000)", "First char", show=False),
        Binding("end", "cursor(100000)", "Last char", show=False),
        Binding("down,j", "unit(1)", "Unit", key_display="↑↓", show=False),
        Binding("up", "unit(-1)", "Prev unit", show=False),
        Binding("s", "signal(1)", "Signal", show=False),
        Binding("S", "signal(-1)", "Previous signal", show=False),
        Binding("l", "layer(1)", "Layer", show=False),
        Binding("c", "colour", "Colour by the unit, or not", show=False),
        Binding("e", "eos", "Stop at EOS", show=False),
        Binding("r", "raw", "Predictions as drawn, or the model's own", show=False),
        Binding("b", "label", "Label: the next one (labelled models)", show=False),
        Binding("h", "halt_colour", "Colour by p(halt) (halt models)", show=False),
        Binding("i", "edit_prime", "Prime"),
        Binding("o", "app.open_checkpoint", "Open"),
        Binding("escape", "leave_input", "Leave the input", show=False),
    ]

    def __init__(self, **kw):
        super().__init__(**kw)
        self.explorer = None  # explorer.Explorer
        self.generation = None  # explorer.Generation
        self.loading_target: str | None = None
        self.temperature = SampleConfig.temperature
        self.top_k: int | None = None
        self.top_p: float | None = None
        self.stop_at_eos = True
        self.coloured = True
        self.raw = False  # the predictions panel: the distribution each character was drawn from, or (r) the model's own
        self.label: str | None = None  # generate for this label (None: no label)
        self.halt_coloured = False  # colour the text by p(halt) instead of a unit
        self.cursor = 0
        self.sel_signal, self.sel_layer, self.sel_unit = "h", 0, 0
        self.seed = 0
        self.ticket = 0  # the generation asked for last

    def compose(self) -> ComposeResult:
        with Horizontal(classes="input-row"):
            yield Label("prime")
            yield Input(placeholder="text to start from (i); enter generates", id="prime", compact=True)
        with Horizontal(classes="input-row"):
            yield Label("stop at")
            yield Input(placeholder=r"e.g. \n\n (several: a | b); enter generates", id="stop", compact=True)
        yield Static(id="explore-bar")
        yield TokenText(id="gen")
        with Horizontal(id="explore-bottom"):
            yield Static(id="preds")
            yield Heatmap(id="explore-heat")
        yield Footer(show_command_palette=False, compact=True)

    def on_mount(self) -> None:
        self.query_one("#gen").border_title = "generated text"
        self.query_one("#preds").border_title = "predictions"
        self.query_one("#explore-heat").border_title = "activations"
        self.query_one("#gen", TokenText).empty = "No checkpoint loaded yet: o opens one (or train a run first)."
        self.redraw()

    def on_screen_resume(self) -> None:
        target = self.app.take_explore_target()  # type: ignore[attr-defined]
        if target is not None:
            self.load(target)

    # -------------------------------------------------------------- workers

    def load(self, target: str | Path) -> None:
        self.loading_target = str(target)
        self.redraw()
        self._load(str(target), str(self.app.root))  # type: ignore[attr-defined]

    @work(thread=True, exclusive=True, exit_on_error=False, group="explore-load")
    def _load(self, target: str, root: str) -> None:
        from .explorer import Explorer

        try:
            self.post_message(ExplorerReady(Explorer(target, root)))
        except CharRNNError as e:
            self.post_message(ExploreFailed(str(e)))
        except OSError as e:
            self.post_message(ExploreFailed(f"could not read {e.filename or target}: {e.strerror or e}."))

    @work(thread=True, exclusive=True, exit_on_error=False, group="explore")
    def _generate(self, explorer, cfg: SampleConfig, seed: int, ticket: int, label: str | None = None) -> None:  # type: ignore[no-untyped-def]
        try:
            self.post_message(Generated(explorer.generate(cfg, seed, label), ticket))
        except CharRNNError as e:
            self.post_message(ExploreFailed(str(e)))

    def on_explorer_ready(self, message: ExplorerReady) -> None:
        self.explorer, self.loading_target, self.generation = message.explorer, None, None
        self.app.explorer = message.explorer  # type: ignore[attr-defined]  (the activations screen traces it when no run trains)
        if self.label not in message.explorer.labels:
            self.label = None
        self.action_generate(self.app.explore_seed)  # type: ignore[attr-defined]

    def on_explore_failed(self, message: ExploreFailed) -> None:
        self.loading_target = None
        self.notify(message.error, severity="error", title="explore")
        self.redraw()

    def on_generated(self, message: Generated) -> None:
        if message.ticket != self.ticket:
            return
        self.generation = message.generation
        g = self.generation
        self.cursor = min(max(g.prime_len, 0), max(len(g.tokens) - 1, 0))  # the first generated character
        self.redraw()

    # -------------------------------------------------------------- actions

    def sample_config(self) -> SampleConfig:
        return SampleConfig(
            prime=self.query_one("#prime", Input).value, temperature=round(self.temperature, 2), top_k=self.top_k,
            top_p=self.top_p, length=LENGTH, stop=parse_stops(self.query_one("#stop", Input).value),
            stop_at_eos=self.stop_at_eos,
        )  # fmt: skip

    def action_generate(self, seed: int | None = None) -> None:
        if self.explorer is None:
            self.notify("no checkpoint loaded: press o to open one.", severity="warning", title="explore")
            return
        from ..tasks.generate import new_seed

        self.seed = new_seed() if seed is None else seed
        try:
            cfg = self.sample_config().validate()
        except CharRNNError as e:
            self.notify(str(e), severity="error", title="explore")
            return
        self.ticket += 1
        self._generate(self.explorer, cfg, self.seed, self.ticket, self.label)

    def on_input_submitted(self, event: Input.Submitted) -> None:
        self.set_focus(None)
        self.action_generate()

    def action_temperature(self, delta: float) -> None:
        self.temperature = round(min(3.0, max(0.0, self.temperature + delta)), 2)
        self.redraw()

    def action_top_k(self) -> None:
        self.top_k = TOP_K[(TOP_K.index(self.top_k) + 1) % len(TOP_K)] if self.top_k in TOP_K else None
        self.redraw()

    def action_top_p(self) -> None:
        self.top_p = TOP_P[(TOP_P.index(self.top_p) + 1) % len(TOP_P)] if self.top_p in TOP_P else None
        self.redraw()

    def action_eos(self) -> None:
        self.stop_at_eos = not self.stop_at_eos
        self.redraw()

    def action_label(self) -> None:
        """The next label (then no label), and the same seed's text for it."""
        labels = self.explorer.labels if self.explorer is not None else ()
        if not labels:
            self.notify("this model was not trained on labelled documents.", severity="warning", title="explore")
            return
        order = (None, *labels)
        self.label = order[(order.index(self.label) + 1) % len(order)]
        self.action_generate(self.seed)

    def action_halt_colour(self) -> None:
        if self.generation is None or self.generation.halt is None:
            self.notify("this model has no halt output (--length-model halt).", severity="warning", title="explore")
            return
        self.halt_coloured = not self.halt_coloured
        self.redraw()

    def action_colour(self) -> None:
        self.coloured = not self.coloured
        self.redraw()

    def action_cursor(self, step: int) -> None:
        if self.generation is not None:
            self.cursor = int(np.clip(self.cursor + step, 0, len(self.generation.tokens) - 1))
            self.redraw()

    def action_unit(self, step: int) -> None:
        if self.generation is not None:
            hidden = next(iter(self.generation.signals.values())).shape[2]
            self.sel_unit = int(np.clip(self.sel_unit + step, 0, hidden - 1))
            self.redraw()

    def action_signal(self, step: int) -> None:
        if self.generation is not None:
            names = colors.signals_of(self.generation.cell, self.generation.signals)
            self.sel_signal = names[((names.index(self.sel_signal) if self.sel_signal in names else 0) + step) % len(names)]
            self.redraw()

    def action_layer(self, step: int) -> None:
        if self.generation is not None:
            layers = next(iter(self.generation.signals.values())).shape[0]
            self.sel_layer = (self.sel_layer + step) % layers
            self.redraw()

    def action_leave_input(self) -> None:
        self.set_focus(None)

    def action_edit_prime(self) -> None:
        self.query_one("#prime", Input).focus()

    # --------------------------------------------------------------- drawing

    def settings_text(self) -> Text:
        t = Text()
        t.append(f"T {self.temperature:.2f}", style="bold")
        t.append(f" · top-k {self.top_k or 'off'} · top-p {self.top_p or 'off'} · ", style="dim")
        t.append("EOS stops" if self.stop_at_eos else "runs past EOS", style="dim")
        if self.explorer is not None and self.explorer.labels:
            t.append(f" · label {self.label}" if self.label is not None else " · no label", style="bold")
        if self.generation is not None:
            t.append(f" · seed {self.generation.seed}", style="dim")
            t.append(f" │ {self.sel_signal} L{self.sel_layer + 1} u{self.sel_unit}", style="bold")
        if self.explorer is not None:
            t.append(f" │ {self.explorer.path} ({self.explorer.summary})", style="dim")
        elif self.loading_target:
            t.append(f" │ loading {self.loading_target}…", style="yellow")
        return t

    def predictions_text(self) -> Text:
        g = self.generation
        if g is None or not g.tokens:
            return Text("the model's predictions for the character under the cursor", style="dim")
        t = self.cursor
        before = "".join(glyph(x) for x in g.tokens[max(0, t - 12) : t])
        out = Text()
        out.append(f"…{before}", style="dim")
        out.append(glyph(g.tokens[t]), style="bold reverse")
        top, chosen_p = (g.top_raw, g.chosen_raw) if self.raw else (g.top, g.chosen_p)
        out.append(f"  p={fmt_p(chosen_p[t]).strip()}", style="bold")
        out.append("  prime" if t < g.prime_len else "", style="dim")
        if g.halt is not None:
            out.append(f"  p(halt) {fmt_p(g.halt[t]).strip()}", style="bold #ff5f87")
        out.append("\n")
        out.append(self.distribution_label(g) + "\n", style="dim")
        if not top[t]:
            out.append("(the first character has no context)", style="dim")
        scale = max((p for _, p in top[t]), default=1.0) or 1.0  # bars relative to the likeliest
        for tok, p in top[t]:
            chosen = tok == g.tokens[t]
            shown = "␣" if tok == " " else glyph(tok) if len(tok) == 1 else tok[:5]
            out.append(f"{shown:>5} ", style="bold" if chosen else "")
            out.append(f"{fmt_p(p)} ", style="dim")
            out.append(bar(p / scale, 12).ljust(12), style="#ffaf00" if chosen else "#5fafff")
            out.append(" ◀\n" if chosen else "\n")
        return out

    def distribution_label(self, g) -> str:  # type: ignore[no-untyped-def]
        """Which distribution the predictions panel shows (r switches)."""
        if self.raw:
            return "the model's own, T 1 · r: as drawn"
        how = [f"T {g.temperature:g}"]
        how += [f"top-k {g.top_k}"] if g.top_k is not None else []
        how += [f"top-p {g.top_p:g}"] if g.top_p is not None else []
        return f"drawn at {', '.join(how)} · r: raw"

    def action_raw(self) -> None:
        self.raw = not self.raw
        self.redraw()

    def redraw(self) -> None:
        self.query_one("#explore-bar", Static).update(self.settings_text(), layout=False)
        self.query_one("#preds", Static).update(self.predictions_text(), layout=False)
        gen, heat = self.query_one("#gen", TokenText), self.query_one(Heatmap)
        g = self.generation
        if g is None:
            gen.show((), None, colors.TANH)
            heat.show(None, (), colors.TANH)
            return
        if self.sel_signal not in g.signals:
            self.sel_signal = "h"
        kind = colors.kind_of(g.cell, self.sel_signal)
        values = g.signals[self.sel_signal][self.sel_layer]  # (T, H)
        n = len(g.tokens) - g.prime_len
        if self.halt_coloured and g.halt is not None:
            gen.show(g.tokens, np.array(g.halt, dtype=np.float32), colors.GATE, self.cursor, g.prime_len)
            what = "coloured by p(halt) after each character (h: by a unit)"
        else:
            gen.show(g.tokens, values[:, self.sel_unit] if self.coloured else None, kind, self.cursor, g.prime_len)
            what = (
                f"coloured by {self.sel_signal} of unit {self.sel_unit}, layer {self.sel_layer + 1}"
                if self.coloured
                else "c: colour by a unit"
            )
        gen.border_title = f"{n} characters generated · {what}"
        labels = ("shut", "open") if kind == colors.GATE else ("-1", "+1")
        heat.show(values, g.tokens, kind, colors.saturation(kind, values), labels)
        heat.select_unit(self.sel_unit)
        heat.set_cursor(self.cursor)
        heat.border_title = f"{self.sel_signal}, layer {self.sel_layer + 1}"
