"""The atlas screen: what each unit of the loaded checkpoint tracks, its saturation
scatter, and search by example over the text it read.

The checkpoint is the explore screen's (o opens one). Its atlas is worked out in a
thread worker over the run's validation text (ATLAS_CHARS of it): a table of
annotations with their best unit, score and shifted baseline (enter colours the
text below by that unit), and the gates' saturation as braille dots, one panel
per layer. Search: move the cursor with ←→, [ marks where the selection starts
and ] where it ends, and the units on throughout it and off around it are looked
for everywhere else in the text; the matches are listed (enter jumps there).
+ and - move the threshold.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
from rich.text import Text
from textual import on, work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical
from textual.screen import Screen
from textual.widgets import DataTable, Footer, OptionList, Static

from ..errors import CharRNNError
from ..models import registry
from . import colors
from .messages import AtlasFailed, AtlasReady, AtlasSearched
from .widgets import TokenText

ATLAS_CHARS = 50_000  # the TUI reads less than the command's default: it answers while you wait
SHOWN = 2_000  # tokens of the text shown and searched from


class AtlasScreen(Screen):
    AUTO_FOCUS = "#atlas-table"
    BINDINGS = [
        Binding("left", "cursor(-1)", "Char", key_display="←→", priority=True),  # before the table, which would scroll sideways
        Binding("right", "cursor(1)", "Next char", show=False, priority=True),
        Binding("ctrl+left", "cursor(-20)", "Back 20", show=False, priority=True),
        Binding("ctrl+right", "cursor(20)", "On 20", show=False, priority=True),
        Binding("left_square_bracket", "mark_start", "Mark start", key_display="["),
        Binding("right_square_bracket", "mark_end", "Mark end, search", key_display="]"),
        Binding("plus", "threshold(0.05)", "Threshold up", key_display="+"),
        Binding("minus", "threshold(-0.05)", "Threshold down", key_display="-", show=False),
        Binding("o", "app.open_checkpoint", "Open"),
    ]

    def __init__(self, **kw):
        super().__init__(**kw)
        self.atlas = None
        self.source = None
        self.shown: dict = {}
        self.loaded: str | None = None  # the checkpoint whose atlas is shown or being made
        self.unit = None  # the atlas.Unit the text is coloured by
        self.cursor = 0
        self.start: int | None = None
        self.search = None
        self.threshold: float | None = None
        self.busy = ""
        self.scatter = None  # the braille panels shown

    def compose(self) -> ComposeResult:
        yield Static(id="atlas-bar")
        with Horizontal(id="atlas-top"):
            yield DataTable(id="atlas-table", cursor_type="row", zebra_stripes=True)
            yield Static(id="atlas-scatter")
        yield TokenText(id="atlas-text")
        with Vertical(id="atlas-bottom"):
            yield Static(id="atlas-search")
            yield OptionList(id="atlas-matches")
        yield Footer(show_command_palette=False, compact=True)

    def on_mount(self) -> None:
        self.query_one("#atlas-table").border_title = "what the units track"
        self.query_one("#atlas-scatter").border_title = "saturation"
        self.query_one("#atlas-text").border_title = "the text read"
        self.query_one("#atlas-matches").border_title = "matches"
        self.query_one("#atlas-text", TokenText).empty = "No checkpoint yet: o opens one (or load one on the explore screen)."
        table = self.query_one("#atlas-table", DataTable)
        table.add_columns("annotation", "", "best unit", "score", "baseline", "")
        self.redraw()

    def on_screen_resume(self) -> None:
        explorer = getattr(self.app, "explorer", None)
        if explorer is not None and str(explorer.path) != self.loaded:
            self.loaded = str(explorer.path)
            self.busy = f"working out the atlas of {explorer.path}..."
            self.redraw()
            self._make(explorer)

    # -------------------------------------------------------------- workers

    @work(thread=True, exclusive=True, exit_on_error=False, group="atlas")
    def _make(self, explorer) -> None:  # type: ignore[no-untyped-def]
        from ..inspect import annotations as an
        from ..inspect.atlas import run
        from ..inspect.source import read_text
        from ..inspect.stream import windows
        from ..training import checkpoint

        try:
            ck = checkpoint.load(explorer.path)
            src = read_text(ck.data_config, Path(explorer.path), explorer.model, explorer.tok, None, ATLAS_CHARS, "skip")
            pairs = [(a, a.at(src.last_char)) for a in an.builtin(src.text)]
            at = run(explorer.model, pairs, src.ids, src.tokens, start_id=explorer.tok.eos_id)
            (shown,) = windows(explorer.model, src.ids, [(0, min(SHOWN, len(src.ids)))], start_id=explorer.tok.eos_id)
            self.post_message(AtlasReady(at, src, shown, str(explorer.path)))
        except CharRNNError as e:
            self.post_message(AtlasFailed(str(e)))
        except OSError as e:
            self.post_message(AtlasFailed(f"could not read {e.filename or explorer.path}: {e.strerror or e}."))

    @work(thread=True, exclusive=True, exit_on_error=False, group="atlas-search")
    def _search(self, model, src, span: tuple[int, int], what: str, threshold: float | None, start_id: int | None) -> None:  # type: ignore[no-untyped-def]
        from ..inspect.search import search

        try:
            self.post_message(AtlasSearched(search(model, src.ids, src.tokens, span, what, threshold, start_id=start_id)))
        except CharRNNError as e:
            self.post_message(AtlasFailed(str(e)))

    def on_atlas_ready(self, message: AtlasReady) -> None:
        self.atlas, self.source, self.shown, self.busy = message.atlas, message.source, message.shown, ""
        table = self.query_one("#atlas-table", DataTable)
        table.clear()
        for f in self.atlas.findings:
            b = f.best[0]
            table.add_row(f.name, "AUC" if f.measure == "auc" else "|r|", str(b.unit), f"{b.score:.3f}", f"{f.baseline:.3f}",
                          "✓" if f.explained else "·")  # fmt: skip
        self.unit = self.atlas.findings[0].best[0].unit if self.atlas.findings else None
        self.redraw()

    def on_atlas_failed(self, message: AtlasFailed) -> None:
        self.busy = ""
        self.notify(message.error, severity="error", title="atlas")
        self.redraw()

    def on_atlas_searched(self, message: AtlasSearched) -> None:
        self.search, self.busy = message.search, ""
        box = self.query_one("#atlas-matches", OptionList)
        box.clear_options()
        for m in self.search.matches:
            box.add_option(f"{m.start}:{m.end} {m.share:.0%}  " + (m.before[-12:] + "[" + m.text + "]" + m.after[:12]).replace("\n", "↵"))
        self.redraw()

    # -------------------------------------------------------------- actions

    @on(DataTable.RowHighlighted, "#atlas-table")
    def _row(self, event: DataTable.RowHighlighted) -> None:
        if self.atlas is not None and 0 <= event.cursor_row < len(self.atlas.findings):
            self.unit = self.atlas.findings[event.cursor_row].best[0].unit
            self.redraw()

    @on(OptionList.OptionSelected, "#atlas-matches")
    def _jump(self, event: OptionList.OptionSelected) -> None:
        if self.search is not None and event.option_index < len(self.search.matches):
            self.cursor = min(self.search.matches[event.option_index].start, self._n() - 1)
            self.redraw()

    def _n(self) -> int:
        return len(next(iter(self.shown.values()))) if self.shown else 0

    def action_cursor(self, step: int) -> None:
        if self.shown:
            self.cursor = int(np.clip(self.cursor + step, 0, self._n() - 1))
            self.redraw()

    def action_mark_start(self) -> None:
        self.start = self.cursor
        self.redraw()

    def action_mark_end(self) -> None:
        if self.source is None:
            self.notify("no atlas yet: open a checkpoint (o).", severity="warning", title="atlas")
            return
        a = self.cursor if self.start is None else min(self.start, self.cursor)
        b = max(self.start if self.start is not None else self.cursor, self.cursor) + 1
        explorer = self.app.explorer  # type: ignore[attr-defined]
        self.busy = f"searching for {a}:{b}..."
        self.redraw()
        self._search(explorer.model, self.source, (a, b), "h", self.threshold, explorer.tok.eos_id)

    def action_threshold(self, delta: float) -> None:
        from ..inspect.search import default_threshold

        base = self.threshold if self.threshold is not None else default_threshold(self.atlas.cell if self.atlas else "lstm", "h")
        self.threshold = round(float(np.clip(base + delta, -1.0, 1.0)), 2)
        self.redraw()

    # --------------------------------------------------------------- drawing

    def redraw(self) -> None:
        from ..inspect.atlasview import scatter_view
        from ..inspect.search import default_threshold

        bar = Text()
        at = self.atlas
        if self.busy:
            bar.append(self.busy, style="bold")
        elif at is not None:
            bar.append(f"{self.loaded}: ", style="bold")
            bar.append(f"{at.units:,} units over {at.tokens:,} positions, {at.seconds:.1f} s; ")
            missing = [f.name for f in at.findings if not f.explained]
            bar.append(f"no unit explains: {', '.join(missing) or 'none'}", style="dim")
        self.query_one("#atlas-bar", Static).update(bar)
        if at is not None:
            self.scatter = scatter_view(at, width=16, height=6)
            self.query_one("#atlas-scatter", Static).update(self.scatter)
        text = self.query_one("#atlas-text", TokenText)
        if self.shown and self.source is not None and self.unit is not None:
            u = self.unit
            values = self.shown[u.what][:, u.layer, u.unit]
            n = self._n()
            text.show(self.source.tokens[:n], values, registry.range_of(at.cell, u.what) if at else colors.TANH, self.cursor)
            text.border_title = f"the text read, coloured by {u}"
        th = self.threshold if self.threshold is not None else default_threshold(at.cell if at else "lstm", "h")
        s = Text()
        s.append(f"search by example: cursor {self.cursor}", style="bold")
        s.append(f", start {'—' if self.start is None else self.start} ([ marks it, ] ends and searches); h on at >= {th:g} (+/-)")
        if self.search is not None:
            sr = self.search
            s.append(f"\n{sr.span[0]}:{sr.span[1]} {sr.selected!r}: {len(sr.units)} units on throughout and off around; "
                     f"{len(sr.matches)} other places", style="dim")  # fmt: skip
        self.query_one("#atlas-search", Static).update(s)
