"""The activations heatmap at each colour depth: in a 256-colour terminal (tmux) and a
16-colour one it draws with colours those terminals have, along its own scale, and
they reach the terminal unchanged through Textual's colour filter and Rich's downgrade."""

from __future__ import annotations

import numpy as np
import pytest
import textual.constants
from rich.color import ColorSystem
from textual.app import App, ComposeResult
from textual.filter import ANSIToTruecolor

from charrnn.inspect.palette import DARK_DIVERGING, EIGHT_BIT, HEAT, STANDARD, TRUECOLOR
from charrnn.tui import colors
from charrnn.tui.widgets import Heatmap
from test_palette import backgrounds  # noqa: E402  (tests/ is on the path)

SYSTEMS = {TRUECOLOR: ("truecolor", ColorSystem.TRUECOLOR), EIGHT_BIT: ("256", ColorSystem.EIGHT_BIT), STANDARD: ("standard", ColorSystem.STANDARD)}


class One(App):
    def compose(self) -> ComposeResult:
        yield Heatmap()


def expected(kind: str, depth: str) -> set[str]:
    ramp = HEAT if kind == colors.GATE else DARK_DIVERGING
    if depth == TRUECOLOR:
        return {"2;" + ";".join(map(str, colors.rgb(kind, level))) for level in range(colors.LEVELS)}
    if depth == EIGHT_BIT:
        return {f"5;{n}" for n in ramp.xterm}
    return {str(n) for n in ramp.ansi}


@pytest.mark.parametrize("depth", [TRUECOLOR, EIGHT_BIT, STANDARD])
async def test_heatmap_draws_with_the_terminal_s_colours(monkeypatch, depth):
    name, system = SYSTEMS[depth]
    monkeypatch.setattr(textual.constants, "COLOR_SYSTEM", name)  # as TEXTUAL_COLOR_SYSTEM=... would
    app = One()
    T, H = 40, 12
    grid = {colors.TANH: np.linspace(-1, 1, T * H).reshape(T, H), colors.GATE: np.linspace(0, 1, T * H).reshape(T, H)}
    async with app.run_test(size=(60, H + 2)) as pilot:
        assert colors.depth(app.console) == depth
        heat = app.query_one(Heatmap)
        for kind, values in grid.items():
            heat.show(values.astype(np.float32), tuple("abcdefghij" * 4), kind)
            await pilot.pause()
            cells = [seg for y in range(1, H + 1) for seg in heat._line(y) if seg.style and seg.style.bgcolor]
            assert len(cells) >= T * (H - 1)
            # what Textual does before writing: named ANSI colours to its theme's RGB
            shown = ANSIToTruecolor(app.ansi_theme_dark).apply(cells, heat.styles.background)
            used = set()
            for seg in shown:
                used.update(backgrounds(seg.style.render(" ", color_system=system)))
            want = expected(kind, depth)
            assert used <= want, (kind, sorted(used - want))
            if depth != TRUECOLOR:
                assert used == want, (kind, sorted(want - used))  # the whole scale, -1 to +1 (0 to 1)
