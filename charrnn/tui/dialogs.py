"""Modal screens: the new-run form, opening a checkpoint, and help."""

from __future__ import annotations

import time
from typing import Any

from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical, VerticalScroll
from textual.screen import ModalScreen
from textual.widget import Widget
from textual.widgets import Button, Checkbox, Input, Label, OptionList, Select, Static
from textual.widgets.option_list import Option

from ..errors import CharRNNError
from ..runconfig import Declared, catalogue, from_text
from .runs import FORM_FIELDS, RunInfo, RunRequest


def _ago(t: float) -> str:
    s = max(0, time.time() - t)
    return f"{s / 86400:.0f}d ago" if s > 86400 else f"{s / 3600:.0f}h ago" if s > 3600 else f"{s / 60:.0f}m ago"


def _runs_list(runs: list[RunInfo], id: str) -> OptionList:
    return OptionList(*[Option(f"{r.path}  ({_ago(r.modified)})", id=str(r.path)) for r in runs], id=id, compact=True)


def _shown(value: Any) -> str:
    """A value as its field shows it: 1,4 for a list, '' for none."""
    if value is None:
        return ""
    return ",".join(map(str, value)) if isinstance(value, (tuple, list)) else str(value)


def field_widget(d: Declared, value: Any) -> Widget:
    """The widget of one declared option, from its declaration: its choices as a Select, a
    switch as a Checkbox, a whole number or a number as such an Input, anything else as
    text; its help as the tooltip (and an empty Input's placeholder)."""
    choices = d.opt.choice_names()
    if choices:
        w: Widget = Select([(c, c) for c in choices], value=value if value in choices else Select.NULL, allow_blank=d.optional or value not in choices,
                           id=d.name, compact=True, classes="choice")  # fmt: skip
    elif d.type is bool:
        w = Checkbox(value=bool(value), id=d.name, compact=True)
    else:
        kind = {int: "integer", float: "number"}.get(d.type, "text")
        w = Input(_shown(value), placeholder=d.help, type=kind, id=d.name, compact=True, classes="number" if kind != "text" else "")
    w.tooltip = d.help
    return w


class RunForm(ModalScreen[RunRequest | None]):
    """A new run from a corpus, a few declared options as fields (runs.FORM_FIELDS) and any
    other on one line, as `charrnn train` writes it; or a run to resume. A new run's
    mistakes (an unknown option, one that does not fit the cell or task, a bad limit)
    are one line in the form, which stays open."""

    BINDINGS = [Binding("escape", "dismiss(None)", "Cancel")]

    def __init__(self, last: RunRequest, runs: list[RunInfo]):
        super().__init__()
        self.last, self.runs = last, runs
        cat = catalogue()
        self.declared = {name: cat[name] for name in FORM_FIELDS}

    def compose(self) -> ComposeResult:
        r = self.last
        with Vertical(id="form"):
            yield Label("[b]New run[/b]  (more options: any option of charrnn train --help)")
            with Horizontal(classes="row"):
                yield Label("corpus", classes="key")
                yield Input(" ".join(r.corpus), placeholder="files, folders or a built-in corpus", id="corpus", compact=True)
            names = list(self.declared)
            for pair in (names[i : i + 2] for i in range(0, len(names), 2)):
                with Horizontal(classes="row"):
                    for name in pair:
                        yield Label(name, classes="key")
                        yield field_widget(self.declared[name], r.fields.get(name, self.declared[name].default))
            with Horizontal(classes="row"):
                yield Label("more", classes="key")
                yield Input(r.more, placeholder="--dropout 0.1 --seq-len 64 --condition input ...", id="more", compact=True)
            with Horizontal(classes="row"):
                yield Label("limit", classes="key")
                yield Input(r.limit, placeholder="steps (2000) or time (90s, 3m); default 3m", id="limit", compact=True)
            with Horizontal(classes="row"):
                yield Label("name", classes="key")
                yield Input(r.name or "", placeholder="default: corpus-cell-time", id="name", compact=True)
            yield Static("", id="form-error")
            with Horizontal(classes="row buttons"):
                yield Button("Start", id="start", variant="primary", compact=True)
                yield Button("Cancel", id="cancel", compact=True)
            yield Label("[b]Or resume a run[/b] (enter; the limit above, if given, replaces its own)")
            if self.runs:
                yield _runs_list(self.runs, "runs")
            else:
                yield Label("no runs yet", classes="dim")

    def on_mount(self) -> None:
        self.query_one("#more").tooltip = "Any option of charrnn train, as on its command line: --dropout 0.1 --condition input"

    def _field(self, d: Declared) -> Any:
        w = self.query_one(f"#{d.name}")
        if isinstance(w, Select):
            return None if w.is_blank() else w.value
        if isinstance(w, Checkbox):
            return w.value
        text = w.value.strip()  # type: ignore[attr-defined]
        return from_text(d, text) if text else None

    def _request(self, resume: str | None = None) -> RunRequest | None:
        """The form's request; for a new run, checked now: a mistake is shown here (None)."""
        error = self.query_one("#form-error", Static)
        try:
            req = RunRequest(
                corpus=tuple(self.query_one("#corpus", Input).value.split()), fields={n: self._field(d) for n, d in self.declared.items()},
                more=self.query_one("#more", Input).value.strip(), limit=self.query_one("#limit", Input).value.strip(),
                name=self.query_one("#name", Input).value.strip() or None, resume=resume, device=self.last.device,
            )  # fmt: skip
            if resume is None:
                req.configs()
        except CharRNNError as e:
            error.update(Text(str(e)))
            error.display = True
            return None
        error.display = False
        return req

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
    "[b]Activations[/b] (2): every second or few (at most 1% of the run's time, drawing included) the trainer traces a probe text (a slice of the validation "
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
