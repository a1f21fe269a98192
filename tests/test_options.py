"""Every option is declared once and reaches every face: the CLI, the API, config files.

The walk below reads the registries as they are, so a kind or a task added
tomorrow is checked by the same test: each field of its options dataclass must
be declared as an option (spec.option), appear among `charrnn train`'s generated
parameters, parse, and land where it belongs (a config's field or
ModelConfig.options), from the command line and from `charrnn.train()`'s keywords.
"""

from __future__ import annotations

import dataclasses
import typing
import json
import shlex

import pytest
import typer
from helpers import TINY, one_line_error

import charrnn
from charrnn import runconfig
from charrnn.cli import app
from charrnn.cli import compare as compare_cli
from charrnn.cli import train as train_cli
from charrnn.config import ModelConfig
from charrnn.errors import ConfigError
from charrnn.models import registry
from charrnn.spec import declared
from charrnn.tasks import TASKS

# the fields of an options dataclass that the program fills in, from the data (never given)
SET_FROM_DATA = {"classes", "labels"}


def _owners():
    for k in registry.KINDS.values():
        yield f"cell:{k.name}", k.options
    for t in TASKS.values():
        yield f"task:{t.name}", t.options


def _sample(d: runconfig.Declared) -> tuple[list[str], object]:
    """Command-line words for one option and the value they should give."""
    choices = d.opt.choice_names()
    if choices:
        v = next((c for c in choices if c != d.default), choices[0])
        return [d.flag, v], v
    if d.type is bool:
        return [d.flag], True
    if d.opt.parse is not None:
        if typing.get_args(d.type)[:1] == (float,):
            return [d.flag, "1,0.5"], (1.0, 0.5)
        return [d.flag, "1,4"], (1, 4)
    v = {int: 3, float: 0.25, str: "90s"}[d.type]
    return [d.flag, str(v)], v


def test_every_field_of_every_kind_and_task_is_an_option():
    for owner, cls in _owners():
        if cls is None:
            continue
        plain = {f.name for f in dataclasses.fields(cls)} - {f.name for f, _ in declared(cls)}
        assert plain <= SET_FROM_DATA, f"{owner}: {sorted(plain)} not declared with spec.option()"
        for f, opt in declared(cls):
            assert opt.help_text(), f"{owner}: --{f.name} has no help"


def _command(name: str):
    return typer.main.get_command(app).commands[name]


def test_every_option_is_a_parameter_of_train_and_parses():
    cmd = _command("train")
    params = {p.name: p for p in cmd.params}
    for name, d in runconfig.catalogue().items():
        assert name in params, f"{d.flag} ({d.owners}) is not a parameter of charrnn train"
        words, want = _sample(d)
        ctx = cmd.make_context("train", list(words))
        got = ctx.params[name]
        assert getattr(got, "value", got) == want, (name, got, want)


def test_every_kind_option_is_a_parameter_of_compare():
    names = {p.name for p in _command("compare").params}
    for name, d in runconfig.catalogue().items():
        if any(o.startswith("cell:") for o in d.owners):
            assert name in names, d.flag


@pytest.fixture
def captured(monkeypatch):
    """charrnn train with its configs captured instead of a run started."""
    seen = {}

    def run(data, model, tcfg, given, **kw):
        seen.update(data=data, model=model, train=tcfg, given=given, **kw)

    monkeypatch.setattr(train_cli, "run", run)
    return seen


def _landed(d: runconfig.Declared, data, model, tcfg):
    if d.config is not None:
        return getattr({"data": data, "model": model, "train": tcfg}[d.config], d.name)
    return model.options[d.name]


def test_every_option_reaches_the_configs_from_the_cli_and_the_api(runner, captured):
    for name, d in runconfig.catalogue().items():
        words, want = _sample(d)
        r = runner.invoke(app, ["train", *words])
        assert r.exit_code == 0, (name, r.output)
        assert _landed(d, captured["data"], captured["model"], captured["train"]) == want, name
        assert name in captured["given"]
        assert _landed(d, *runconfig.build_configs({name: want}, keyword=True)) == want, name  # charrnn.train(**options)


def test_every_option_reaches_the_configs_from_a_line_of_options(runner, captured):
    """The TUI's "more options" line (runconfig.parse_line) reads every declared option as the
    command line does: the same words give the same configs as `charrnn train`."""
    for name, d in runconfig.catalogue().items():
        words, want = _sample(d)
        given = runconfig.parse_line(shlex.join(words))
        assert given == {name: want}, name
        configs = runconfig.build_configs(given)
        assert _landed(d, *configs) == want, name
        assert runner.invoke(app, ["train", *words]).exit_code == 0, name
        assert configs == (captured["data"], captured["model"], captured["train"]), name


def test_an_option_fits_where_it_is_declared():
    """Each kind's options validate with that kind; each task's with that task (and a cell that serves it)."""
    for name, d in runconfig.catalogue().items():
        for owner in d.owners:
            if owner.startswith("cell:"):
                kind = registry.get(owner[5:])
                task = next(t for t in TASKS.values() if t.structure == kind.structure and (kind.tasks is None or t.name in kind.tasks))
                cfg = ModelConfig(cell=kind.name, task=task.name, options={name: d.default})
            elif owner.startswith("task:"):
                spec = TASKS[owner[5:]]
                cfg = ModelConfig(cell=registry.names(spec.structure, spec.name)[0], task=spec.name, options={name: d.default})
            else:
                continue
            cfg.validate()


def test_a_misplaced_option_is_one_line(runner, workdir, corpus_file):
    base = ["train", str(corpus_file), "--device", "cpu", *TINY, "--steps", "2"]
    one_line_error(runner.invoke(app, [*base, "--tau-max", "5"]), "--tau-max does not fit --cell lstm with --task lm (it is for --cell leaky)")
    one_line_error(runner.invoke(app, [*base, "--pool", "mean"]), "--pool does not fit --cell lstm with --task lm")
    one_line_error(runner.invoke(app, [*base, "--task", "classify", "--seq-len", "8"]), "--seq-len does not fit --task classify")
    one_line_error(runner.invoke(app, [*base, "--hiden", "8"]), "No such option: --hiden", "--hidden", code=2)
    assert not (workdir / "checkpoints").exists() or not any((workdir / "checkpoints").glob("*/last.pt"))


def test_an_unknown_or_misplaced_keyword_of_the_api_is_one_line(corpus_file, tmp_path):
    with pytest.raises(ConfigError, match=r"^charrnn.train\(\) has no option 'hiden'; did you mean hidden\?$"):
        charrnn.train(corpus_file, checkpoints=tmp_path, hiden=8)
    with pytest.raises(ConfigError, match=r"^--tau-max does not fit --cell lstm with --task lm \(it is for --cell leaky\)\.$"):
        charrnn.train(corpus_file, checkpoints=tmp_path, tau_max=5.0)
    with pytest.raises(ConfigError, match=r"^--delays takes distinct whole numbers"):
        charrnn.train(corpus_file, checkpoints=tmp_path, cell="leaky", delays="1,1")
    with pytest.raises(ConfigError, match=r"^--readout must be one of closed, ridge, lda, gradient, got 'exact'\.$"):
        charrnn.train(corpus_file, checkpoints=tmp_path, cell="esn", readout="exact")
    assert not list(tmp_path.glob("*/last.pt"))


def test_a_kind_option_reaches_the_model_through_the_api(corpus_file, tmp_path):
    m = charrnn.train(corpus_file, checkpoints=tmp_path, name="lk", cell="leaky", tau_max=20.0, delays=[1, 3], layers=1, hidden=16,
                      embed=8, seq_len=16, batch_size=4, steps=2, eval_every=2, eval_tokens=256, sample_chars=0, device="cpu")  # fmt: skip
    assert m.config.options == {"tau_max": 20.0, "delays": (1, 3)}
    assert m.net.core.delays == (1, 3) and float(m.net.core.log_tau[0].exp().max()) == pytest.approx(20.0, rel=1e-5)
    assert "tau-max = 20.0" in (tmp_path / "lk" / "config.toml").read_text()


def test_help_escapes_square_brackets(runner):
    text = runner.invoke(app, ["train", "--help"], env={"COLUMNS": "200"}).stdout
    assert "[leaky] The slowest unit's time constant" in text and "[esn] The ridge penalty" in text
    flat = " ".join(line.strip("│ ") for line in text.splitlines())  # the --cell help wraps over lines
    assert "W [h_left; h_right]" in flat


# ------------------------------------------------------------ --config FILE.toml


def test_config_file_keys_either_spelling_and_flags_win(runner, captured, tmp_path):
    f = tmp_path / "run.toml"
    f.write_text('paths = ["a.txt"]\nseq-len = 8\nbatch_size = 3\n[model]\ncell = "leaky"\ntau-max = 7\n', encoding="utf-8")
    r = runner.invoke(app, ["train", "--config", str(f), "--batch-size", "5"])
    assert r.exit_code == 0, r.output
    assert captured["data"].paths == ("a.txt",) and captured["train"].seq_len == 8 and captured["train"].batch_size == 5
    assert captured["model"].cell == "leaky" and captured["model"].options == {"tau_max": 7.0}
    assert {"seq_len", "batch_size", "cell", "tau_max", "paths"} <= captured["given"]  # given: typed or in the file
    r = runner.invoke(app, ["train", "b.txt", "--config", str(f)])
    assert captured["data"].paths == ("b.txt",)


def test_config_file_mistakes_are_one_line(runner, tmp_path):
    f = tmp_path / "bad.toml"
    f.write_text("seq-lenn = 8\n", encoding="utf-8")
    one_line_error(runner.invoke(app, ["train", "--config", str(f)]), "train has no option seq-lenn; did you mean seq-len?")
    f.write_text("seq-len = 'eight'\n", encoding="utf-8")
    one_line_error(runner.invoke(app, ["train", "--config", str(f)]), "--seq-len takes a whole number, got 'eight'")
    f.write_text("seq-len = \n", encoding="utf-8")
    one_line_error(runner.invoke(app, ["train", "--config", str(f)]), "is not a TOML file")
    one_line_error(runner.invoke(app, ["train", "--config", str(tmp_path / "none.toml")]), "no config file")
    f.write_text('cell = "gru"\n', encoding="utf-8")
    one_line_error(runner.invoke(app, ["compare", "--config", str(f)]), "compare has no option cell; did you mean cells?")


def test_compare_takes_a_config_file(runner, monkeypatch, tmp_path):
    seen = {}
    monkeypatch.setattr(compare_cli, "_run", lambda *a: seen.update(args=a))
    f = tmp_path / "cmp.toml"
    f.write_text('cells = "rnn,leaky"\nhidden = 24\ntau-max = 9.0\nsteps = 5\n', encoding="utf-8")
    r = runner.invoke(app, ["compare", "--config", str(f), "--checkpoints", str(tmp_path)])
    assert r.exit_code == 0, r.output
    kinds, _, data, base, tcfg, options = seen["args"][:6]
    assert kinds == ("rnn", "leaky") and base.hidden == 24 and options == {"tau_max": 9.0}
    assert tcfg.steps == 5 and tcfg.time is None and tcfg.sample_chars == 0


def test_a_run_config_reproduces_the_run(runner, workdir, corpus_file):
    """charrnn train --config checkpoints/NAME/config.toml --out NAME2: the same run, loss for loss."""
    r = runner.invoke(app, ["train", str(corpus_file), "--cell", "gru", "--steps", "6", "--name", "a", "--device", "cpu", *TINY,
                            "--eval-every", "2", "--quiet"])  # fmt: skip
    assert r.exit_code == 0, r.output
    cfg = workdir / "checkpoints" / "a" / "config.toml"
    text = cfg.read_text()
    assert 'cell = "gru"' in text and "seq-len = 16" in text and "steps = 6" in text and "seed = 1337" in text
    r = runner.invoke(app, ["train", "--config", str(cfg), "--out", str(workdir / "b"), "--quiet"])
    assert r.exit_code == 0, r.output

    def losses(path):
        rows = [json.loads(line) for line in path.read_text().splitlines()]
        return [(x["step"], x["train_loss"], x["val_loss"]) for x in rows]

    a, b = losses(workdir / "checkpoints" / "a" / "metrics.jsonl"), losses(workdir / "b" / "metrics.jsonl")
    assert len(a) == len(b) >= 3
    for (sa, ta, va), (sb, tb, vb) in zip(a, b):
        assert sa == sb and va == vb and (ta == tb or abs(ta - tb) < 1e-6 * abs(ta)), (a, b)
    assert (workdir / "b" / "config.toml").read_text() == text
    r = runner.invoke(app, ["train", "--config", str(cfg), "--out", str(workdir / "c"), "--seed", "2", "--quiet"])
    assert r.exit_code == 0 and "seed = 2" in (workdir / "c" / "config.toml").read_text()
    assert losses(workdir / "c" / "metrics.jsonl")[0][2] != a[0][2]


def test_resolved_config_leaves_out_what_the_task_cannot_take(tmp_path):
    data, model, tcfg = runconfig.build_configs({"task": "classify", "pool": "mean"})
    values = runconfig.resolved(data, model, tcfg)
    assert "seq_len" not in values and values["pool"] == "mean" and "max_chars" not in values
    path = runconfig.write(tmp_path, data, model, tcfg)
    again = runconfig.build_configs(runconfig.read(path))  # the file also lists the kind's own options (--chrono 0)
    assert (again[0], again[2]) == (data, tcfg) and runconfig.resolved(*again) == values
    assert again[1].cell_options() == model.cell_options() and again[1].task_options() == model.task_options()
