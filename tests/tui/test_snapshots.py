"""Snapshots of each screen at 80x24 on scripted data (update with --snapshot-update)."""

from __future__ import annotations

from scripted import (
    eval_event,
    scripted_probe,
    start_event,
    step_event,
    tiny_checkpoint,
    until,
)

from charrnn.training.telemetry import CheckpointEvent, ProbeEvent, SampleEvent
from charrnn.tui import messages as m
from charrnn.tui.app import CharRNNApp
from charrnn.tui.widgets import Chart, Heatmap


def feed(app: CharRNNApp, upto: int = 150) -> None:
    """A scripted run as far as step `upto`, posted as the bridge would post it."""
    app.post_message(m.TrainStarted(start_event()))
    for step in range(1, upto + 1):
        app.post_message(m.StepUpdate(step_event(step)))
        if step % 25 == 0:
            app.post_message(m.EvalUpdate(eval_event(step)))
            app.post_message(m.SampleUpdate(SampleEvent(step, "The cat sat on the mat.\nA dog ran under a log, slowly!")))
            app.post_message(m.CheckpointSaved(CheckpointEvent(step, "checkpoints/scripted/last.pt", "last")))
    app.post_message(m.ProbeFrame(ProbeEvent(upto, scripted_probe(upto))))


async def settle(pilot) -> None:
    await until(pilot, lambda: pilot.app.state.probe is not None)
    await pilot.pause(0.2)
    pilot.app.redraw(force=True)
    await pilot.pause()


def test_train_screen(snap_compare, tmp_path):
    app = CharRNNApp(root=tmp_path)

    async def run_before(pilot) -> None:
        feed(app)
        await settle(pilot)
        chart = app.screen.query_one(Chart)
        await until(pilot, lambda: chart.series and len(chart.series[0].xs) == 150, what="the curves (redrawn at 2 Hz)")

    assert snap_compare(app, terminal_size=(80, 24), run_before=run_before)


def test_activations_screen(snap_compare, tmp_path):
    app = CharRNNApp(root=tmp_path)

    async def run_before(pilot) -> None:
        feed(app)
        await until(pilot, lambda: app.state.probe is not None)
        await pilot.press("2")
        screen = app.screen
        await until(pilot, lambda: screen.probe is not None and screen.query_one(Heatmap).levels is not None)
        await pilot.press("s", "s", "down")  # the input gate, unit 1
        await until(pilot, lambda: (screen.sel_signal, screen.sel_unit, screen.query_one(Heatmap).unit) == ("input", 1, 1))
        await pilot.pause(0.2)

    assert snap_compare(app, terminal_size=(80, 24), run_before=run_before)


def test_explore_screen(snap_compare, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    tiny_checkpoint(tmp_path / "checkpoints" / "tiny" / "best.pt")
    app = CharRNNApp(explore="tiny", explore_seed=7)

    async def run_before(pilot) -> None:
        await until(pilot, lambda: getattr(app.screen, "generation", None) is not None)
        await pilot.press("right", "right", "right")

    assert snap_compare(app, terminal_size=(80, 24), run_before=run_before)


def test_help_screen(snap_compare, tmp_path):
    assert snap_compare(CharRNNApp(root=tmp_path), terminal_size=(80, 24), press=["question_mark"])
