"""Modal screens: the new-run form, opening a checkpoint, and help."""

from __future__ import annotations

import time

from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical, VerticalScroll
from textual.screen import ModalScreen
from textual.widgets import Button, Input, Label, OptionList, Select, Static
from textual.widgets.option_list import Option

from ..models import registry
from ..runconfig import catalogue
from .runs import RunInfo, RunRequest


def _ago(t: float) -> str:
    s = max(0, time.time() - t)
    return f"{s / 86400:.0f}d ago" if s > 86400 else f"{s / 3600:.0f}h ago" if s > 3600 else f"{s / 60:.0f}m ago"


def _runs_list(runs: list[RunInfo], id: str) -> OptionList:
    return OptionList(*[Option(f"{r.path}  ({_ago(r.modified)})", id=str(r.path)) for r in runs], id=id, compact=True)


class RunForm(ModalScreen[RunRequest | None]):
    """A new run from a corpus and a few options, or a run to resume."""

    BINDINGS = [Binding("escape", "dismiss(None)", "Cancel")]

    def __init__(self, last: RunRequest, runs: list[RunInfo]):
        super().__init__()
        self.last, self.runs = last, runs

    def compose(self) -> ComposeResult:
        r = self.last
        with Vertical(id="form"):
            yield Label("[b]New run[/b]  (more options: charrnn train ... --tui, or --config FILE.toml)")
            with Horizontal(classes="row"):
                yield Label("corpus", classes="key")
                yield Input(" ".join(r.corpus), placeholder="files, folders or a built-in corpus", id="corpus", compact=True)
            with Horizontal(classes="row"):
                yield Label("cell", classes="key")
                yield Select([(c, c) for c in registry.names(registry.SEQUENCE)], value=r.cell, allow_blank=False, id="cell", compact=True)
                yield Label("layers", classes="key")
                yield Input(str(r.layers), id="layers", type="integer", compact=True)
                yield Label("hidden", classes="key")
                yield Input(str(r.hidden), id="hidden", type="integer", compact=True)
            with Horizontal(classes="row"):
                yield Label("limit", classes="key")
                yield Input(r.limit, placeholder="steps (2000) or time (90s, 3m); default 3m", id="limit", compact=True)
            with Horizontal(classes="row"):
                yield Label("name", classes="key")
                yield Input(r.name or "", placeholder="default: corpus-cell-time", id="name", compact=True)
            with Horizontal(classes="row buttons"):
                yield Button("Start", id="start", variant="primary", compact=True)
                yield Button("Cancel", id="cancel", compact=True)
            yield Label("[b]Or resume a run[/b] (enter; the limit above, if given, replaces its own)")
            if self.runs:
                yield _runs_list(self.runs, "runs")
            else:
                yield Label("no runs yet", classes="dim")

    def on_mount(self) -> None:
        # each field's tooltip is its option's help, from the one declaration (spec.option)
        cat = catalogue()
        for name in ("cell", "layers", "hidden"):
            self.query_one(f"#{name}").tooltip = cat[name].help

    def _request(self, resume: str | None = None) -> RunRequest | None:
        def number(id: str) -> int | None:
            try:
                return int(self.query_one(f"#{id}", Input).value)
            except ValueError:
                self.notify(f"{id} must be a whole number.", severity="error")
                return None

        layers, hidden = number("layers"), number("hidden")
        if layers is None or hidden is None:
            return None
        name = self.query_one("#name", Input).value.strip() or None
        return RunRequest(
            corpus=tuple(self.query_one("#corpus", Input).value.split()), cell=str(self.query_one("#cell", Select).value),
            layers=layers, hidden=hidden, limit=self.query_one("#limit", Input).value.strip(), name=name, resume=resume,
            device=self.last.device,
        )  # fmt: skip

    def on_button_pressed(self, event: Button.Pressed) -> None:
        if event.button.id == "cancel":
            self.dismiss(None)
        elif (req := self._request()) is not None:
            self.dismiss(req)

    def on_input_submitted(self, event: Input.Submitted) -> None:
        if (req := self._request()) is not None:
            self.dismiss(req)

    def on_option_list_option_selected(self, event: OptionList.OptionSelected) -> None:
        if (req := self._request(resume=event.option.id)) is not None:
            self.dismiss(req)


class OpenDialog(ModalScreen[str | None]):
    """A checkpoint for the explore screen: a path, or one of the runs."""

    BINDINGS = [Binding("escape", "dismiss(None)", "Cancel")]

    def __init__(self, runs: list[RunInfo]):
        super().__init__()
        self.runs = runs

    def compose(self) -> ComposeResult:
        with Vertical(id="form"):
            yield Label("[b]Open a checkpoint[/b]: a run folder or a .pt file (enter), or pick a run")
            yield Input(placeholder="checkpoints/RUN or path/to/file.pt", id="path", compact=True)
            if self.runs:
                yield _runs_list(self.runs, "runs")

    def on_input_submitted(self, event: Input.Submitted) -> None:
        self.dismiss(event.value.strip() or None)

    def on_option_list_option_selected(self, event: OptionList.OptionSelected) -> None:
        self.dismiss(event.option.id)


HELP = (
    "[b]charrnn[/b] trains a character-level recurrent network and lets you watch it learn. "
    "Escape closes this page.\n\n"
    "[b]Train[/b] (1) shows the run: step, ETA, training and validation loss in bits per character, speed, "
    "the latest sample and every checkpoint. Stopping (x) or quitting (q) saves a checkpoint first; "
    "r resumes a run where it stopped; n starts a new one.\n\n"
    "[b]Activations[/b] (2): about once a second the trainer traces a probe text (a slice of the validation "
    "split, or your own: e) through the model. The heatmap has the text across and the units down; tanh "
    "signals run blue (-1), dark (0), red (+1), gates black (0) to yellow (1), and an LSTM's cell is scaled "
    "by its largest value. Beside each unit, the share of steps it is saturated: a gate shut below 0.1 or "
    "open above 0.9, a tanh beyond ±0.9. Below, the text coloured by the selected unit, and the size of the "
    "gradient of the last prediction's loss with respect to the state at each earlier step (log scale, the "
    "last step at the right): how far back the network can learn from.\n\n"
    "[b]Explore[/b] (3) generates from a checkpoint as `charrnn sample` does: the same seed gives the same "
    "text, and stop strings and the end-of-document token end it alike. Move along the text (← →) to see "
    "what the model predicted for each character and what every unit did while reading it."
)


def keys_text(sections: list[tuple[str, list[Binding]]]) -> Text:
    t = Text()
    for title, bindings in sections:
        t.append(f"\n{title}\n", style="bold underline")
        for b in bindings:
            keys = b.key_display or " ".join(k.strip() for k in b.key.split(","))
            t.append(f"  {keys:<16}", style="bold #ffaf00")
            t.append(f"{b.description}\n")
    return t


class HelpScreen(ModalScreen[None]):
    BINDINGS = [Binding("escape,q,question_mark,f1", "dismiss(None)", "Close")]

    def __init__(self, sections: list[tuple[str, list[Binding]]]):
        super().__init__()
        self.sections = sections

    def compose(self) -> ComposeResult:
        with VerticalScroll(id="help"):
            yield Static(HELP)
            yield Static(keys_text(self.sections))
