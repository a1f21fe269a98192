"""The new-run form is generated from the option declarations: its fields (runs.FORM_FIELDS)
take their widgets, help and defaults from spec.option, and its "more" line takes any
declared option as `charrnn train` writes it, through the builder every entry point uses."""

from __future__ import annotations

from scripted import no_threads_left, until

from charrnn.runconfig import catalogue
from charrnn.training import checkpoint
from charrnn.tui import messages as m
from charrnn.tui.app import CharRNNApp
from charrnn.tui.dialogs import RunForm
from charrnn.tui.runs import FORM_FIELDS, RunRequest
from textual.widgets import Input, Select


def error_line(form: RunForm) -> str:
    err = form.query_one("#form-error")
    return str(err.render()) if err.display else ""


async def test_the_fields_come_from_the_declarations(tmp_path):
    last = RunRequest(fields={"hidden": 48}, more="--dropout 0.2")
    app = CharRNNApp(root=tmp_path, request=last)
    cat = catalogue()
    async with app.run_test(size=(100, 30)) as pilot:
        await pilot.press("n")
        form = app.screen
        assert isinstance(form, RunForm)
        for name in FORM_FIELDS:
            w, d = form.query_one(f"#{name}"), cat[name]
            assert w.tooltip == d.help
            if d.opt.choice_names():  # choices -> a Select of exactly those
                assert isinstance(w, Select) and w.value == d.default
                assert [v for _, v in w._options if v != Select.NULL] == list(d.opt.choice_names())
            else:  # a whole number -> an integer Input, its default from the declaration or the last request
                assert isinstance(w, Input) and w.type == "integer"
                assert w.value == str(last.fields.get(name, d.default))
        assert form.query_one("#hidden", Input).value == "48" and form.query_one("#layers", Input).value == str(cat["layers"].default)
        assert form.query_one("#more", Input).value == "--dropout 0.2"
        await pilot.press("escape")
        await pilot.press("q")


async def test_a_declared_option_given_in_the_form_reaches_the_run(tmp_path, corpus_file):
    app = CharRNNApp(root=tmp_path / "ck")
    messages: list = []
    async with app.run_test(size=(80, 24), message_hook=messages.append) as pilot:
        await pilot.press("n")
        form = app.screen
        form.query_one("#corpus").value = str(corpus_file)
        form.query_one("#cell", Select).value = "leaky"
        form.query_one("#layers").value = "1"
        form.query_one("#hidden").value = "8"
        # a cell's option, a task's option needs labels, so: the kind's, the model's and the trainer's
        form.query_one("#more").value = "--tau-max 20 --dropout 0.25 --seq-len 12 --batch-size 4 --sample-chars 0"
        form.query_one("#limit").value = "3"
        form.query_one("#name").value = "opts"
        await pilot.click("#start")
        await until(pilot, lambda: any(isinstance(x, m.TrainEnded) for x in messages), timeout=60, what="the run to finish")
        await pilot.press("q")
        await until(pilot, lambda: not app.is_running, timeout=60, what="exit")
    await no_threads_left()
    ck = checkpoint.load(tmp_path / "ck" / "opts" / "last.pt")
    model, train = ck.model_config, ck.train_config
    assert (model.cell, model.layers, model.hidden, model.dropout, model.options) == ("leaky", 1, 8, 0.25, {"tau_max": 20.0})
    assert (train.seq_len, train.batch_size, train.sample_chars, train.steps, ck.step) == (12, 4, 0, 3, 3)
    assert app.last_request.more.startswith("--tau-max 20")  # the next form starts from it


async def test_a_bad_option_is_one_line_in_the_form(tmp_path, corpus_file):
    app = CharRNNApp(root=tmp_path / "ck")
    async with app.run_test(size=(80, 24)) as pilot:
        await pilot.press("n")
        form = app.screen
        form.query_one("#corpus").value = str(corpus_file)
        for task, more, said in (
            ("lm", "--tau-max 5", "--tau-max does not fit --cell lstm with --task lm"),  # declared, for another cell
            ("lm", "--hiden 8", "unknown option --hiden; did you mean --hidden?"),
            ("lm", "--dropout lots", "--dropout takes a number, got 'lots'."),
            ("lm", "--dropout 2", "--dropout must be in [0, 1), got 2.0."),  # the config's own check
            ("lm", "--condition sideways", "--condition must be one of input, init, both, got 'sideways'."),
            ("classify", "--seq-len 8", "--seq-len does not fit --task classify"),
            ("lm", "--cell gru", "--cell is given in more options and in its field; give it once."),
            ("lm", "dropout 0.1", "'dropout' is not an option"),
        ):
            form.query_one("#task", Select).value = task
            form.query_one("#more").value = more
            form.query_one("#more").focus()
            await pilot.press("enter")  # enter in a field starts the run, as the Start button does
            await until(pilot, lambda: said in error_line(form), timeout=10, what=f"the error of {more!r}")
            line = error_line(form)
            assert app.screen is form and "\n" not in line.strip() and "Traceback" not in line, (more, line)
        form.query_one("#more").value = "--dropout 0 --sample-chars 0"  # corrected: the form closes and the run starts
        form.query_one("#layers").value, form.query_one("#hidden").value, form.query_one("#limit").value = "1", "8", "1"
        await pilot.click("#start")
        await until(pilot, lambda: not isinstance(app.screen, RunForm), what="the form to close")
        await until(pilot, lambda: not app.training and app.result is not None, timeout=60, what="the run")
        await pilot.press("q")
    assert checkpoint.load(next((tmp_path / "ck").glob("*/last.pt"))).model_config.dropout == 0.0
