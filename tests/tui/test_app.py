"""Pilot tests of the app: a scripted trainer for most, one real tiny training end to end."""

from __future__ import annotations

import numpy as np
import pytest
from scripted import (
    Script,
    busy_threads,
    no_threads_left,
    scripted_probe,
    tiny_checkpoint,
    until,
)

from charrnn.training import checkpoint
from charrnn.config import DataConfig, ModelConfig, SampleConfig, TrainConfig
from charrnn.errors import ConfigError
from charrnn.inspect.stats import saturation
from charrnn.tasks.generate import sample_text
from charrnn.training.telemetry import ProbeEvent
from charrnn.tui import messages as m
from charrnn.tui import state as st
from charrnn.tui.activations_screen import ActivationsScreen
from charrnn.tui.app import CharRNNApp
from charrnn.tui.dialogs import HelpScreen, RunForm
from charrnn.tui.explore_screen import ExploreScreen
from charrnn.tui.train_screen import TrainScreen
from charrnn.tui.widgets import Chart, Heatmap, TokenText


@pytest.fixture
def messages() -> list:
    return []


def of(messages, kind):
    return [x for x in messages if isinstance(x, kind)]


async def test_training_posts_loss_updates_and_activation_frames(tmp_path, messages):
    script = Script(tmp_path / "run")
    app = CharRNNApp(script, root=tmp_path)
    async with app.run_test(size=(100, 30), message_hook=messages.append) as pilot:
        await until(pilot, lambda: len(of(messages, m.ProbeFrame)) >= 2 and of(messages, m.EvalUpdate), what="frames")
        assert isinstance(app.screen, TrainScreen)
        steps = of(messages, m.StepUpdate)
        assert [s.event.step for s in steps] == list(range(1, len(steps) + 1))  # every loss delta, in order
        assert app.state.phase == st.TRAINING and app.state.train_pts and app.state.val_pts
        chart = app.screen.query_one("#curves", Chart)
        await until(pilot, lambda: chart.series and len(chart.series[1].xs) > 0, what="the curves")  # redrawn at 2 Hz
        train, val = chart.series
        assert 0 < len(train.xs) <= len(app.state.train_pts)
        assert np.allclose(train.ys, [b for _, b in app.state.train_pts[: len(train.xs)]])  # in bits per character
        assert np.allclose(val.xs, [s for s, _ in app.state.val_pts[: len(val.xs)]])
        app.redraw(force=True)
        stats = str(app.screen.query_one("#stats").render())
        assert f"step {app.state.step.step:,}" in stats and "chars/s" in stats and "ETA" in stats
        assert app.state.probe is of(messages, m.ProbeFrame)[-1].event.payload
        await pilot.press("q")
        await until(pilot, lambda: not app.is_running, what="exit")
    assert script.made[0].stop.is_set() and script.made[0].saved
    await no_threads_left()


def test_frames_replace_each_other_but_loss_deltas_do_not():
    a, b = m.ProbeFrame(ProbeEvent(1, None)), m.ProbeFrame(ProbeEvent(2, None))
    assert a.can_replace(b)
    from scripted import step_event

    s1, s2 = m.StepUpdate(step_event(1)), m.StepUpdate(step_event(2))
    assert not s1.can_replace(s2) and not s1.can_replace(b) and not a.can_replace(s1)


async def test_switching_signal_layer_and_unit_changes_the_view(tmp_path):
    app = CharRNNApp(root=tmp_path)
    async with app.run_test(size=(100, 30)) as pilot:
        await pilot.press("2")
        screen = app.screen
        assert isinstance(screen, ActivationsScreen)
        app.post_message(m.ProbeFrame(ProbeEvent(3, scripted_probe(3))))
        await until(pilot, lambda: screen.probe is not None, what="a frame")
        heat, text = screen.query_one(Heatmap), screen.query_one(TokenText)
        acts = screen.probe.acts
        before = heat.levels.copy()
        assert screen.sel_signal == "h" and heat.units == acts.hidden and len(heat.tokens) == len(acts.tokens)

        await pilot.press("s")  # h -> c
        assert screen.sel_signal == "c" and not np.array_equal(before, heat.levels)
        await pilot.press("s")  # -> input gate: saturation is shown as shut / open
        assert screen.sel_signal == "input" and heat.side_labels == ("shut", "open")
        expect = saturation(acts)["input"][0]  # (H, 2) of layer 0, from the core's own definition
        assert np.allclose(heat.side, expect)

        gate0 = heat.levels.copy()
        await pilot.press("l")
        assert screen.sel_layer == 1 and not np.array_equal(gate0, heat.levels)
        assert np.allclose(heat.side, saturation(acts)["input"][1])

        unit0 = text.levels.copy()
        await pilot.press("down", "down")
        assert screen.sel_unit == 2 and heat.unit == 2 and not np.array_equal(unit0, text.levels)
        await pilot.press("pagedown")
        assert heat.unit == 2 + heat.rows and heat.unit_offset <= heat.unit < heat.unit_offset + heat.rows

        await pilot.press("S", "S")  # back to h
        assert screen.sel_signal == "h" and heat.side_labels == ("-1", "+1")


async def test_probe_text_edit_reaches_the_trainer(tmp_path):
    script = Script(tmp_path / "run")
    app = CharRNNApp(script, root=tmp_path)
    async with app.run_test(size=(100, 30)) as pilot:
        await pilot.press("2")
        await until(pilot, lambda: app.screen.probe is not None, what="a frame")
        await pilot.press("e")
        inp = app.screen.query_one("#probe-input")
        assert inp.has_focus
        inp.value = r"dog\ncat"
        await pilot.press("enter")
        await until(pilot, lambda: script.made[0].probe_texts[-1] == "dog\ncat", what="the new text traced")
        await until(pilot, lambda: app.screen.probe.acts.text == "dog\ncat", what="a frame of it")
        assert not inp.has_focus
        await pilot.press("q")
    await no_threads_left()


async def test_the_activations_screen_tells_the_trainer_what_a_frame_costs_to_draw(tmp_path):
    """The trainer spaces its probes by the probe and its drawing (telemetry.next_probe): the
    screen measures the UI thread's CPU for each new frame, the bridge passes it on."""
    script = Script(tmp_path / "run")
    app = CharRNNApp(script, root=tmp_path)
    async with app.run_test(size=(100, 30)) as pilot:
        await until(pilot, lambda: script.made and app.state.probe is not None, what="a frame")
        bridge = script.made[0].out.sinks[0]
        assert bridge.frame_cost_s == 0.0  # the train screen draws no frame
        await pilot.press("2")
        await until(pilot, lambda: bridge.frame_cost_s > 0, what="a frame drawn, and its cost")
        assert bridge.frame_cost_s < 2.0
        await pilot.press("q")
    await no_threads_left()


async def test_stop_saves_a_checkpoint_and_the_app_stays(tmp_path, messages):
    script = Script(tmp_path / "run")
    app = CharRNNApp(script, root=tmp_path)
    async with app.run_test(size=(80, 24), message_hook=messages.append) as pilot:
        await until(pilot, lambda: of(messages, m.StepUpdate), what="steps")
        await pilot.press("x")
        await until(pilot, lambda: of(messages, m.TrainEnded), what="the end")
        assert of(messages, m.CheckpointSaved)[-1].event.path == str(tmp_path / "run" / "last.pt")
        assert of(messages, m.TrainEnded)[0].event.stopped_by == "interrupt"
        await until(pilot, lambda: not app.training and app.state.phase == st.ENDED, what="idle")
        assert app.is_running and app.result.stopped_by == "interrupt"
        assert (tmp_path / "run" / "last.pt").is_file()
        await until(pilot, lambda: "stopped" in str(app.screen.query_one("#train-status").render()), what="the status line")


async def test_errors_become_notifications_not_tracebacks(tmp_path, messages):
    def broken(sinks, stop):
        raise ConfigError("the validation split is too small to score.")

    app = CharRNNApp(broken, root=tmp_path)
    async with app.run_test(size=(80, 24), message_hook=messages.append, notifications=True) as pilot:
        await until(pilot, lambda: of(messages, m.TrainFailed), what="the failure")
        await pilot.pause(0.2)
        assert app.is_running and app.state.phase == st.FAILED
        assert any("too small" in n.message for n in app._notifications)
        await pilot.press("n")  # a form with a nonsense limit: a line in the form, which stays open
        form = app.screen
        assert isinstance(form, RunForm)
        form.query_one("#limit").value = "soon"
        form.query_one("#corpus").value = "no/such/file.txt"
        await pilot.click("#start")
        await pilot.pause(0.1)
        assert app.screen is form and form.query_one("#form-error").display
        assert "cannot read the limit 'soon'" in str(form.query_one("#form-error").render())
        (tmp_path / "taken").mkdir()  # a run folder that is taken: found when the run is planned, a notification
        (tmp_path / "taken" / "last.pt").write_bytes(b"x")
        form.query_one("#limit").value = "5"
        form.query_one("#name").value = "taken"
        await pilot.click("#start")
        await pilot.pause(0.1)
        assert not isinstance(app.screen, RunForm) and any("already holds a run" in n.message for n in app._notifications)
        await pilot.press("q")


async def test_new_run_from_the_form_trains(tmp_path, corpus_file, messages):
    app = CharRNNApp(root=tmp_path / "ck")
    async with app.run_test(size=(80, 24), message_hook=messages.append) as pilot:
        assert app.state.phase == st.IDLE
        await pilot.press("n")
        form = app.screen
        assert isinstance(form, RunForm)
        for field, value in {"corpus": str(corpus_file), "layers": "1", "hidden": "8", "limit": "6", "name": "formrun"}.items():
            form.query_one(f"#{field}").value = value
        await pilot.click("#start")
        await until(pilot, lambda: of(messages, m.TrainEnded), timeout=60, what="the run to finish")
        ended = of(messages, m.TrainEnded)[0].event
        assert ended.step == 6 and ended.stopped_by == "steps"
        assert (tmp_path / "ck" / "formrun" / "last.pt").is_file()
        await until(pilot, lambda: not app.training and app.result is not None, what="the worker and its result")
        assert app.result.step == 6
        await pilot.press("q")
    await no_threads_left()


async def test_explore_generates_like_charrnn_sample(tmp_path):
    path = tiny_checkpoint(tmp_path / "tiny" / "best.pt")
    app = CharRNNApp(root=tmp_path, explore=str(tmp_path / "tiny"), explore_seed=7)
    async with app.run_test(size=(100, 30)) as pilot:
        screen = app.screen
        assert isinstance(screen, ExploreScreen)
        await until(pilot, lambda: screen.generation is not None, what="a generation")
        g = screen.generation
        model, tok = checkpoint.model_from(checkpoint.load(path))
        import torch

        expect = sample_text(model, tok, SampleConfig(length=300), torch.Generator().manual_seed(7))
        assert g.text == expect and g.seed == 7
        assert len(g.tokens) == len(expect) and g.signals["h"].shape == (2, len(expect), 16)
        # the prediction shown for a character is the distribution it was drawn from (T 0.8),
        # r: the model's own (T 1); both from the fused forward over the newline that
        # starts generation, then the text
        ids = tok.encode(g.text)
        with torch.no_grad():
            logits = model(torch.tensor([tok.encode("\n") + ids]))[0][0]  # (1+T, V)
        for top, chosen, temperature in ((g.top, g.chosen_p, 0.8), (g.top_raw, g.chosen_raw, 1.0)):
            p = torch.softmax(logits / temperature, -1).numpy()
            for t in (1, 5, 40):
                best = np.argsort(-p[t], kind="stable")[:8]  # p[t]: after the start and the first t tokens
                assert [tok_ for tok_, _ in top[t]] == [tok.decode([int(i)]) for i in best]
                np.testing.assert_allclose([q for _, q in top[t]], p[t][best], rtol=1e-4)
                assert chosen[t] == pytest.approx(float(p[t][ids[t]]), rel=1e-4)
        preds = str(screen.query_one("#preds").render())
        assert "p=" in preds and "drawn at T 0.8 · r: raw" in preds
        await pilot.press("r")
        assert "the model's own" in str(screen.query_one("#preds").render()) and screen.raw
        await pilot.press("r")

        text = screen.query_one(TokenText)
        assert text.cursor == 0
        await pilot.press("right", "right")
        assert screen.cursor == 2 and text.cursor == 2 and screen.query_one(Heatmap).cursor == 2
        colours = text.levels.copy()
        await pilot.press("down")
        assert screen.sel_unit == 1 and not np.array_equal(colours, text.levels)

        # a prime and a stop string, typed in: generation starts from the prime and stops at the string
        await pilot.press("i")
        screen.query_one("#prime").value = "the "
        screen.query_one("#stop").value = "a"
        ticket = screen.ticket
        await pilot.press("enter")
        await until(
            pilot,
            lambda: (
                screen.ticket > ticket and screen.generation.seed == screen.seed and screen.generation.text.startswith("the ")
            ),
        )
        g = screen.generation
        assert "a" not in g.text[4:] and g.prime_len == 4
        # the cursor lands on the first generated character; on the prime's last when
        # the first one drawn was the stop string (the seed is new at every enter)
        assert screen.cursor == min(4, len(g.tokens) - 1)
        await pilot.press("T", "k")
        assert screen.temperature == pytest.approx(0.9) and screen.top_k == 1
        await pilot.press("g")
        await until(pilot, lambda: screen.generation.top_k == 1, what="a greedy generation")


async def test_explore_reports_a_bad_prime(tmp_path):
    tiny_checkpoint(tmp_path / "tiny" / "best.pt")
    app = CharRNNApp(root=tmp_path, explore=str(tmp_path / "tiny"))
    async with app.run_test(size=(80, 24), notifications=True) as pilot:
        screen = app.screen
        await until(pilot, lambda: screen.generation is not None)
        screen.query_one("#prime").value = "€"
        await pilot.press("g")
        await until(pilot, lambda: any("never saw" in n.message for n in app._notifications), what="the error")
        assert app.is_running


async def test_help_screen_lists_the_bindings(tmp_path):
    app = CharRNNApp(root=tmp_path)
    async with app.run_test(size=(80, 24)) as pilot:
        await pilot.press("question_mark")
        assert isinstance(app.screen, HelpScreen)
        text = "".join(str(w.render()) for w in app.screen.query("Static"))
        for words in ("New run", "Edit probe", "Generate", "Quit", "top-k"):
            assert words in text
        await pilot.press("escape")
        assert isinstance(app.screen, TrainScreen)


async def test_larger_terminals_show_more(tmp_path):
    sizes = {}
    for size in ((80, 24), (160, 50)):
        app = CharRNNApp(root=tmp_path)
        async with app.run_test(size=size) as pilot:
            await pilot.press("2")
            app.post_message(m.ProbeFrame(ProbeEvent(3, scripted_probe(3, hidden=64))))
            await until(pilot, lambda: app.screen.probe is not None)
            heat = app.screen.query_one(Heatmap)
            sizes[size] = (heat.rows, heat.cols)
    (r1, c1), (r2, c2) = sizes.values()
    assert 6 <= r1 < r2 and 40 <= c1 < c2


async def test_real_training_end_to_end(tmp_path, corpus_file, messages):
    """A real tiny run in the app: loss updates arrive, frames once the activations screen
    is shown, the view switches
    on real activations, quitting mid-run saves a checkpoint that resumes, and no
    thread is left behind."""
    from charrnn.data.corpus import prepare
    from charrnn.training.trainer import Trainer
    from charrnn.tui.runs import RunRequest, factory

    data = DataConfig(paths=(str(corpus_file),))
    corpus = prepare(data, tmp_path / "ck")
    model = ModelConfig(cell="gru", layers=2, hidden=16, embed=8)
    tcfg = TrainConfig(seq_len=16, batch_size=4, eval_every=25, eval_tokens=256, sample_chars=20, warmup=5, steps=100_000)
    run_dir = tmp_path / "ck" / "e2e"

    app = CharRNNApp(
        lambda sinks, stop: Trainer(model, data, tcfg, corpus, run_dir, sinks=sinks, stop=stop), root=tmp_path / "ck"
    )
    async with app.run_test(size=(80, 24), message_hook=messages.append) as pilot:
        await until(pilot, lambda: len(of(messages, m.StepUpdate)) >= 3, timeout=60, what="training")
        assert not of(messages, m.ProbeFrame)  # no frame is made while none is on screen: the train screen costs no probes
        await pilot.press("2")
        await until(pilot, lambda: app.screen.probe is not None, timeout=60, what="a frame")
        assert app.screen.probe.acts.cell == "gru" and app.screen.probe.acts.signals["h"].shape[::2] == (2, 16)
        await pilot.press("s")
        assert app.screen.sel_signal == "reset" and app.screen.query_one(Heatmap).kind == "gate"
        await pilot.press("q")
        await until(pilot, lambda: not app.is_running, timeout=60, what="exit")
    assert app.return_value is app.result and app.result.stopped_by == "interrupt"
    assert app.quit_by_user  # charrnn train --tui exits 0 after it (tests/test_runs_cli.py)
    assert busy_threads() == []
    ck = checkpoint.load(run_dir / "last.pt")
    assert ck.step == app.result.step > 0
    resumed = factory(RunRequest(resume=str(run_dir), limit=str(ck.step + 5)), tmp_path / "ck")(
        [], __import__("threading").Event()
    )
    assert resumed.step == ck.step and resumed.total_steps == ck.step + 5
    await no_threads_left()


async def test_open_another_checkpoint(tmp_path):
    tiny_checkpoint(tmp_path / "one" / "best.pt")
    tiny_checkpoint(tmp_path / "two" / "best.pt", cell="gru", seed=1)
    app = CharRNNApp(root=tmp_path, explore=str(tmp_path / "one"))
    async with app.run_test(size=(80, 24)) as pilot:
        screen = app.screen
        await until(pilot, lambda: screen.generation is not None)
        assert screen.generation.cell == "lstm"
        await pilot.press("o")
        dialog = app.screen
        assert [o.id for o in dialog.query_one("#runs").options] and dialog.query_one("#path").has_focus
        dialog.query_one("#path").value = str(tmp_path / "two")
        await pilot.press("enter")
        await until(pilot, lambda: screen.generation is not None and screen.generation.cell == "gru", what="the second model")
        assert app.screen is screen and screen.explorer.path == tmp_path / "two" / "best.pt"
        assert app.run_to_resume() == str(tmp_path / "two")


async def test_a_finished_run_s_activations_are_traced_with_the_loaded_model(tmp_path):
    """`charrnn tui RUN` with nothing training: the activations screen traces the probe
    text with the checkpoint the explore screen loaded (its own writing by default, or
    the text typed in), instead of waiting for a training frame."""
    from charrnn.inspect.trace import activations, gradient_flow

    path = tiny_checkpoint(tmp_path / "done" / "best.pt")
    app = CharRNNApp(root=tmp_path, explore=str(tmp_path / "done"))
    async with app.run_test(size=(100, 30)) as pilot:
        await until(pilot, lambda: app.screen.generation is not None, what="the checkpoint")
        await pilot.press("2")
        screen = app.screen
        assert isinstance(screen, ActivationsScreen)
        await until(pilot, lambda: screen.probe is not None, what="a frame of the loaded model")
        model, tok = checkpoint.model_from(checkpoint.load(path))
        acts = screen.probe.acts
        assert len(acts.text) > 10 and screen.probe.step == 0 and acts.cell == "lstm"
        np.testing.assert_allclose(acts.signals["h"], activations(model, tok, acts.text).signals["h"], atol=1e-6)
        np.testing.assert_allclose(screen.probe.grad_flow["c"], gradient_flow(model, tok, acts.text)["c"], rtol=1e-4, atol=1e-9)
        first = screen.probe
        await pilot.press("e")
        screen.query_one("#probe-input").value = "the cat sat on the mat."
        await pilot.press("enter")
        await until(pilot, lambda: screen.probe is not first, what="the new probe text traced")
        assert screen.probe.acts.text == "the cat sat on the mat."
        await pilot.press("q")
    assert app.quit_by_user and app.result is None
    await no_threads_left()


async def test_a_redraw_tick_after_the_screens_are_gone_does_nothing(tmp_path):
    """The ten-a-second redraw can fire while the app closes, after its last screen is popped."""
    app = CharRNNApp(root=tmp_path)
    async with app.run_test() as pilot:
        await pilot.pause()
    assert not app.screen_stack
    app.redraw()


async def test_the_redraw_timer_sleeps_until_something_moves(tmp_path):
    """Nothing new, no ticks (10 a second cost the UI thread 0.4% of a core for nothing);
    a message or a new screen wakes the timer, and the screen shows what arrived."""
    from scripted import step_event

    app = CharRNNApp(root=tmp_path)
    async with app.run_test(size=(100, 30)) as pilot:
        ticks: list[int] = []
        redraw = app.redraw
        app.redraw = lambda force=False: ticks.append(1) or redraw(force)  # type: ignore[method-assign]

        async def asleep() -> None:  # soon no tick in three tick periods
            for _ in range(10):
                n = len(ticks)
                await pilot.pause(0.35)
                if len(ticks) == n:
                    return
            raise AssertionError("the redraw timer never stops ticking")

        await pilot.press("2")  # the activations screen mounted, then left
        await pilot.press("1")
        await asleep()
        app.post_message(m.StepUpdate(step_event(7)))
        await until(pilot, lambda: "step 7" in str(app.screen.query_one("#stats").render()), what="the step shown")
        await asleep()
        probe = scripted_probe(7)
        app.post_message(m.ProbeFrame(ProbeEvent(7, probe)))
        await asleep()
        assert app.state.probe is probe
        await pilot.press("2")  # back on a screen that missed the frame: the screen change wakes the timer
        shown = lambda: isinstance(app.screen, ActivationsScreen) and app.screen.probe is probe  # noqa: E731
        await until(pilot, shown, what="the frame drawn")
        await asleep()
