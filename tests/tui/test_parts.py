"""The app's parts that need no running app: bridge, state, run requests, colours, drawing."""

from __future__ import annotations

import math
import subprocess
import sys

import numpy as np
import pytest
from scripted import eval_event, scripted_probe, start_event, step_event

from charrnn.cli import app as cli_app
from charrnn.errors import ConfigError
from charrnn.training.telemetry import (
    PROBE_PERIOD_S,
    PROBE_SHARE,
    CheckpointEvent,
    EndEvent,
    MessageEvent,
    ProbeEvent,
    SampleEvent,
    next_probe,
)
from charrnn.tui import colors
from charrnn.tui import messages as m
from charrnn.tui.bridge import WATCHED_STEP_S, Bridge
from charrnn.tui.explore_screen import parse_stops
from charrnn.tui.runs import RunRequest, factory, list_runs, parse_limit
from charrnn.tui.state import ENDED, TRAINING, RunState
from charrnn.tui.widgets import Series, braille_plot, escape, unescape


class Target:
    def __init__(self, fail: bool = False):
        self.got, self.fail = [], fail

    def post_message(self, message):
        if self.fail:
            raise RuntimeError("Event loop is closed")
        self.got.append(message)
        return True


def test_bridge_turns_every_event_into_its_message(tmp_path):
    t = Target()
    b = Bridge(t)
    assert b.wants_probes
    events = [start_event(), step_event(1), eval_event(5), SampleEvent(5, "x"), CheckpointEvent(5, "p", "last"),
              ProbeEvent(3, scripted_probe(3)), MessageEvent("warning", "w"), EndEvent(5, "steps", 1.0, None, None, None, "r")]  # fmt: skip
    for e in events:
        getattr(b, {"StartEvent": "on_start", "StepEvent": "on_step", "EvalEvent": "on_eval", "SampleEvent": "on_sample",
                    "CheckpointEvent": "on_checkpoint", "ProbeEvent": "on_probe", "MessageEvent": "on_message",
                    "EndEvent": "on_end"}[type(e).__name__])(e)  # fmt: skip
    kinds = [type(x) for x in t.got]
    assert kinds == [
        m.TrainStarted,
        m.StepUpdate,
        m.EvalUpdate,
        m.SampleUpdate,
        m.CheckpointSaved,
        m.ProbeFrame,
        m.TrainNote,
        m.TrainEnded,
    ]
    assert [x.event for x in t.got] == events
    Bridge(Target(fail=True)).on_step(step_event(1))  # an app that is gone never breaks the training loop


def test_steps_wait_for_the_next_frame_while_the_activations_screen_is_shown():
    """Watched: step events are held and go just before the next frame (or any other event),
    or after WATCHED_STEP_S at the latest, each message with every step since the last;
    not watched: one message a step."""
    t, now = Target(), [0.0]
    t.watching_probes = True
    b = Bridge(t, clock=lambda: now[0])
    for i in range(1, 21):
        now[0] = (i - 1) * 0.1  # 10 a second, as the trainer sends them
        b.on_step(step_event(i))
    assert [(x.event.step, [e.step for e in x.earlier]) for x in t.got] == [(1, [])]  # the rest held
    b.on_probe(ProbeEvent(20, scripted_probe(20)))  # the frame takes them along, first
    assert [type(x) for x in t.got[1:]] == [m.StepUpdate, m.ProbeFrame]
    assert (t.got[1].event.step, [e.step for e in t.got[1].earlier]) == (20, list(range(2, 20)))
    for i in range(21, 52):  # no frame for a while: after WATCHED_STEP_S they go anyway
        now[0] = (i - 1) * 0.1
        b.on_step(step_event(i))
    assert [(x.event.step, len(x.earlier)) for x in t.got[3:]] == [(51, 30)] and now[0] >= WATCHED_STEP_S
    b.on_step(step_event(52))
    b.on_eval(eval_event(52))  # step 52 was held: it goes first
    assert [type(x) for x in t.got[4:]] == [m.StepUpdate, m.EvalUpdate] and t.got[4].event.step == 52
    t.watching_probes = False
    for i in range(53, 56):
        b.on_step(step_event(i))
    assert [x.event.step for x in t.got[6:]] == [53, 54, 55] and not any(x.earlier for x in t.got[6:])
    steps = [e.step for x in t.got if isinstance(x, m.StepUpdate) for e in (*x.earlier, x.event)]
    assert steps == list(range(1, 56))  # every step, in order
    state = RunState()
    state.started(start_event())
    for x in t.got:
        if isinstance(x, m.StepUpdate):
            for e in (*x.earlier, x.event):
                state.stepped(e)
    assert [s for s, _ in state.train_pts] == list(range(1, 56))


def test_probes_are_spaced_by_what_the_probe_and_its_drawing_cost():
    """The trainer's next probe: at most once a second, and the probe plus the UI's drawing of
    the last frame (passed on by the bridge from the app) at most PROBE_SHARE of the time."""
    t = Target()
    b = Bridge(t)
    assert b.frame_cost_s == 0.0  # nothing drawn yet
    assert next_probe(100.0, 0.002, [b]) == 100.0 + PROBE_PERIOD_S  # cheap: once a second
    assert next_probe(100.0, 0.02, [b]) == pytest.approx(100.0 + 0.02 / PROBE_SHARE)
    t.frame_cost_s = 0.015  # the activations screen measured its last frame
    assert b.frame_cost_s == 0.015
    assert next_probe(100.0, 0.02, [b]) == pytest.approx(100.0 + 0.035 / PROBE_SHARE)

    class Quiet:  # a sink that wants no probes says nothing about their spacing
        frame_cost_s = 10.0

    assert next_probe(100.0, 0.02, [b, Quiet()]) == pytest.approx(100.0 + 0.035 / PROBE_SHARE)


def test_a_resumed_run_brings_its_validation_curve(tmp_path):
    (tmp_path / "metrics.jsonl").write_text(
        '{"step": 10, "val_bpc": 3.0, "final": false}\n{"step": 20, "val_bpc": 2.5, "final": false}\n'
        '{"step": 20, "val_bpc": 2.4, "final": true}\nnot json\n'
    )
    t = Target()
    e = start_event(str(tmp_path))
    Bridge(t).on_start(type(e)(**{**e.__dict__, "start_step": 20}))
    assert t.got[0].history == ((10, 3.0), (20, 2.5))
    s = RunState()
    s.started(t.got[0].event, t.got[0].history)
    assert s.val_pts == [(10, 3.0), (20, 2.5)] and s.best_bpc == 2.5 and s.phase == TRAINING


def test_state_keeps_curves_in_bits_per_character():
    s = RunState()
    s.note("kept")
    s.started(start_event())
    assert s.log == [("kept", "")]  # the event log outlives a run
    e = step_event(10)
    s.stepped(e)
    assert s.train_pts == [(10, pytest.approx(e.loss / math.log(2)))]  # a char model: one character per token
    sub = type(e)(**{**e.__dict__, "chars_per_s": 2 * e.tokens_per_s})  # two characters per token
    s.stepped(sub)
    assert s.train_pts[-1][1] == pytest.approx(e.loss / math.log(2) / 2)
    v0 = s.version
    s.evaluated(eval_event(10))
    s.ended(EndEvent(10, "steps", 1.0, None, None, None, "r"))
    assert s.version > v0 and s.phase == ENDED and s.val_pts == [(10, eval_event(10).val_bpc)]


def test_limits_and_requests(tmp_path):
    assert parse_limit("") == {}
    assert parse_limit("2,000") == {"steps": 2000}
    assert parse_limit("3m") == {"time": "3m"}
    with pytest.raises(ConfigError, match="cannot read the limit"):
        parse_limit("soon")
    with pytest.raises(ConfigError, match="--layers"):
        factory(RunRequest(fields={"layers": 0}), tmp_path)
    (tmp_path / "taken").mkdir()
    (tmp_path / "taken" / "last.pt").write_bytes(b"x")
    with pytest.raises(ConfigError, match="already holds a run"):
        factory(RunRequest(name="taken"), tmp_path)
    assert [r.path.name for r in list_runs(tmp_path)] == ["taken"] and list_runs(tmp_path / "none") == []


def test_inputs_read_escapes():
    for text in ("a\nb", "x\\ny", "tab\there", "\\", "end\n"):
        assert unescape(escape(text)) == text
    assert parse_stops(r"\n\n | END") == ("\n\n", "END")
    assert parse_stops("") == ()


def test_colour_levels_and_saturation():
    h = np.array([-1.0, 0.0, 1.0])
    assert colors.levels(colors.TANH, h).tolist() == [0, colors.LEVELS // 2, colors.LEVELS - 1]
    assert colors.levels(colors.GATE, np.array([0.0, 1.0])).tolist() == [0, colors.LEVELS - 1]
    c = np.array([-10.0, 0.0, 5.0])
    assert colors.levels(colors.FREE, c, colors.scale_of(colors.FREE, c))[0] == 0
    assert colors.kind_of("lstm", "forget") == colors.GATE and colors.kind_of("lstm", "c") == colors.FREE
    assert colors.kind_of("gru", "h") == colors.TANH and colors.kind_of("rnn", "a") == colors.FREE
    g = np.array([[0.05, 0.5], [0.95, 0.5]])  # (T, H)
    assert colors.saturation(colors.GATE, g).tolist() == [[0.5, 0.5], [0.0, 0.0]]
    assert colors.signals_of("lstm", ["output", "h", "c"]) == ("h", "c", "output")


def test_braille_chart_draws_a_line_within_its_box():
    xs = np.arange(100.0)
    lines = braille_plot([Series("a", xs, 10 - xs / 10, "red")], width=40, height=8)
    assert len(lines) == 8 and all(len(line.plain) <= 40 for line in lines)
    assert lines[0].plain.lstrip().startswith("10.00┤") and "└0" in lines[-1].plain and lines[-1].plain.endswith("99")
    dots = [line.plain[7:] for line in lines[:-1]]
    assert dots[0][0] != "⠀" and dots[-1][-1] != "⠀"  # starts top left, ends bottom right
    assert braille_plot([], 40, 4, empty="nothing")[0].plain == "nothing"
    log = braille_plot([Series("g", xs, 10.0 ** -(xs / 10), "blue")], 40, 6, log_y=True)
    assert "1e+0" in log[0].plain


def test_tui_command_errors_are_one_line(runner):
    r = runner.invoke(cli_app, ["tui", "somerun", "--corpus", "x.txt"])
    assert r.exit_code == 1 and "not both" in r.output and "Traceback" not in r.output


def test_tui_command_options_become_the_forms_request(runner, monkeypatch):
    """`charrnn tui --cell gru --layers 3 --steps 50` opens the app with a form that asks for
    them; the form's request builds the configs they say, through the one builder."""
    import charrnn.tui.app as tui_app

    seen = {}
    monkeypatch.setattr(tui_app, "open_app", lambda **kw: seen.update(kw))
    r = runner.invoke(cli_app, ["tui", "--cell", "gru", "--layers", "3", "--steps", "50", "--device", "cpu"])
    assert r.exit_code == 0, r.output
    req = seen["request"]
    assert req.fields == {"cell": "gru", "layers": 3, "hidden": 256} and req.limit == "50" and req.device == "cpu"
    data, model, train, given = req.configs()
    assert (model.cell, model.layers, model.hidden, train.steps, train.device) == ("gru", 3, 256, 50, "cpu")
    assert given == {"cell", "layers", "steps"}  # hidden is at its declared default: not given (the fp32 recipe may set it)


def test_tui_help_imports_neither_torch_nor_textual():
    code = "import sys; from charrnn.cli import app; app(['tui', '--help'], standalone_mode=False); print('torch' in sys.modules, 'textual' in sys.modules)"
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert r.stdout.strip().endswith("False False"), r.stdout + r.stderr
