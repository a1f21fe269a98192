"""The heatmap's rows, drawn from runs and cached strips, are exactly the cells a
cell-by-cell drawing gives, through new data, the cursor, scrolling and the
selected unit: a cached row is never shown for a view it was not drawn for. And
its lines as Textual draws them (border included) are what the app's colour filter,
which the widget applies itself per style, would have made of them."""

from __future__ import annotations

import numpy as np
from rich.style import Style
from textual.app import App, ComposeResult
from textual.filter import ANSIToTruecolor
from textual.geometry import Region

from charrnn.tui import colors
from charrnn.tui.widgets import Chart, Heatmap, Series, TokenText, braille_plot


class One(App):
    CSS = "Heatmap { border: round $primary; }"  # as the screens draw it: a border and a title

    def compose(self) -> ComposeResult:
        yield Heatmap()


def cells(strip) -> list[tuple[str, object]]:  # type: ignore[no-untyped-def]
    return [(ch, seg.style) for seg in strip for ch in seg.text]


def by_hand(heat: Heatmap, y: int) -> list[tuple[str, object]]:
    """Row y as one cell at a time: the gutter, a cell per column (the cursor's a bar), the side columns."""
    tc = next(f for f in heat.app.get_line_filters() if isinstance(f, ANSIToTruecolor))
    base, background = heat.rich_style, heat.background_colors[1].rich_color
    got = cells(heat.render_line(y))
    u = heat.unit_offset + y - 1
    gutter, side = got[: heat.GUTTER], got[heat.GUTTER + heat.cols :] if heat.side is not None else []
    want = list(gutter)
    for t in range(heat.col_offset, min(len(heat.tokens), heat.col_offset + heat.cols)):
        style = tc.truecolor_style(base + colors.bg(heat.kind, int(heat.levels[t, u]), colors.depth(heat.app.console)), background)
        want.append(("│" if t == heat.cursor else " ", style))
    assert "".join(ch for ch, _ in gutter).split() == (["▶"] if u == heat.unit else []) + [str(u)]
    return want + side


def check(heat: Heatmap) -> None:
    assert not any(isinstance(f, ANSIToTruecolor) for f in heat.get_line_filters())  # done per style instead
    tc = next(f for f in heat.app.get_line_filters() if isinstance(f, ANSIToTruecolor))
    heat._styles_cache.clear()
    for strip in heat.render_lines(Region(0, 0, heat.outer_size.width, heat.outer_size.height)):
        assert list(strip.apply_filter(tc, heat.background_colors[1])) == list(strip)  # nothing left for the filter to change
    for y in range(1, heat.rows + 1):
        got = cells(heat.render_line(y))
        assert got == by_hand(heat, y), y
        assert len(got) == heat.size.width
    header = "".join(ch for ch, _ in cells(heat.render_line(0)))
    assert header[heat.GUTTER :].startswith("".join(heat.tokens[heat.col_offset : heat.col_offset + 5]))


async def test_rows_follow_data_cursor_scrolling_and_selection():
    app = One()
    rng = np.random.default_rng(0)
    T, H = 90, 30
    tokens = tuple("abcdefghi" * 10)
    async with app.run_test(size=(60, 12)) as pilot:
        heat = app.query_one(Heatmap)
        values = np.tanh(rng.normal(size=(T, H)) * 2).astype(np.float32)
        values[10:30, 3] = 0.5  # long runs of one colour
        heat.border_title = "activations"
        heat.show(values, tokens, colors.TANH, np.zeros((H, 2)))
        await pilot.pause()
        check(heat)
        heat.show(-values, tokens, colors.TANH, np.ones((H, 2)))  # new data: no row from the last
        check(heat)
        for t in (0, 1, 15, 29, 49, 89):  # the cursor at either end of a run, and scrolled to
            heat.set_cursor(t)
            check(heat)
        heat.set_cursor(None)
        heat.scroll_cols(-100)
        check(heat)
        heat.scroll_cols(8)
        check(heat)
        for unit in (1, 2, 25, 0):  # the mark moves, the rows scroll to keep it in view
            heat.select_unit(unit)
            check(heat)
        heat.show(rng.uniform(size=(T, H)).astype(np.float32), tokens, colors.GATE)  # another scale, no side columns
        check(heat)


class Three(App):
    CSS = "Chart, TokenText { border: round $primary; height: 8; }"

    def compose(self) -> ComposeResult:
        yield Chart(log_y=True)
        yield TokenText()
        yield TokenText(id="empty")


def nothing_for_the_filter(widget) -> None:  # type: ignore[no-untyped-def]
    """The widget's lines as Textual draws them are what the app's colour filter would make of them."""
    tc = next(f for f in widget.app.get_line_filters() if isinstance(f, ANSIToTruecolor))
    widget._styles_cache.clear()
    strips = widget.render_lines(Region(0, 0, widget.outer_size.width, widget.outer_size.height))
    for filter in widget.get_line_filters():
        strips = [strip.apply_filter(filter, widget.background_colors[1]) for strip in strips]
    for strip in strips:
        assert list(strip.apply_filter(tc, widget.background_colors[1])) == list(strip)


async def test_chart_and_text_leave_nothing_for_the_colour_filter():
    app = Three()
    async with app.run_test(size=(60, 30)) as pilot:
        chart, text, empty = app.query_one(Chart), app.query_one(TokenText), app.query_one("#empty", TokenText)
        chart.border_title, text.border_title = "gradient", "text"
        empty.empty = "nothing yet: a dim line the app's filter turns to true colour"
        xs = np.arange(40.0)
        chart.plot([Series("a", xs, np.exp(-xs / 9), "#5fafff"), Series("b", xs, np.exp(-xs / 5), "white")])
        text.show(tuple("the cat sat\non the mat. "), np.linspace(-1, 1, 24), colors.TANH, cursor=3)
        await pilot.pause()
        for widget in (chart, text, empty):
            nothing_for_the_filter(widget)
        chart.plot([Series("a", xs, np.exp(-xs / 9), "#5fafff"), Series("b", xs, np.exp(-xs / 5), "white")])
        assert not chart._styles_cache._dirty_lines  # the same curves again draw nothing
        chart.plot([Series("a", xs, np.exp(-xs / 8), "#5fafff"), Series("b", xs, np.exp(-xs / 5), "white")])
        assert chart._styles_cache._dirty_lines and chart._strips is None


async def test_moving_the_selection_over_the_same_data_redraws_two_rows():
    app = One()
    rng = np.random.default_rng(1)
    values = np.tanh(rng.normal(size=(50, 30))).astype(np.float32)
    async with app.run_test(size=(60, 14)) as pilot:
        heat = app.query_one(Heatmap)
        heat.show(values[:, :], tuple("x" * 50), colors.TANH, np.zeros((30, 2)))
        await pilot.pause()
        heat.show(values[:, :], tuple("x" * 50), colors.TANH, np.zeros((30, 2)))  # the same again (a new view of it)
        assert not heat._styles_cache._dirty_lines
        for unit in (1, 2, 9, 3):  # within the rows in view (a border, the header: 9 of them)
            heat.select_unit(unit)
            assert len(heat._styles_cache._dirty_lines) == 2
            await pilot.pause()
            partly = app.export_screenshot()
            heat.refresh()
            await pilot.pause()
            assert app.export_screenshot() == partly  # what the two rows drawn again show is the whole truth
        heat.select_unit(29)  # scrolls: all rows again
        assert len(heat._styles_cache._dirty_lines) > 2
        heat.show(values * 0.5, tuple("x" * 50), colors.TANH, np.zeros((30, 2)))  # new data draws
        assert heat._strips == {} and heat._styles_cache._dirty_lines


async def test_chart_lines_are_the_rich_text_of_braille_plot():
    """The chart draws braille_rows' pieces itself; each cell is what Rich renders of
    braille_plot's Text for the same series (through the widget's own style and filter)."""
    app = Three()
    rng = np.random.default_rng(2)
    async with app.run_test(size=(60, 30)) as pilot:
        chart = app.query_one(Chart)
        tc = next(f for f in app.get_line_filters() if isinstance(f, ANSIToTruecolor))
        for case in range(6):
            xs = np.arange(float(rng.integers(2, 120)))
            series = [Series(str(k), xs, np.abs(rng.normal(size=xs.size)) * 10.0 ** -rng.uniform(0, 6, size=xs.size), color)
                      for k, color in enumerate(("#5fafff", "white", "red")[: 1 + case % 3])]  # fmt: skip
            chart.plot(series if case != 5 else [])  # the last: nothing to plot, the dim empty line
            await pilot.pause()
            w, h = chart.content_size
            base, background = chart.rich_style, chart.background_colors[1].rich_color
            for y, line in enumerate(braille_plot(chart.series, w, h, chart.log_y, chart.empty)):
                want = [(ch, tc.truecolor_style(base + (seg.style or Style()), background))
                        for seg in line.render(app.console) for ch in seg.text]  # fmt: skip
                want += [(" ", tc.truecolor_style(base, background))] * (w - len(want))
                assert cells(chart.render_line(y)) == want, (case, y)
