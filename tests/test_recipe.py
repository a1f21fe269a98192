"""The defaults by precision (training/recipe.py, issue 17): a new LSTM language model
that will train in fp32 on a CPU takes config.FP32_CPU_RECIPE in place of each
default the user did not give; bf16, a GPU, other cells and tasks, library callers
and resumed runs keep exactly what they are given; train and info say so."""

import json

import pytest
import torch
from helpers import TINY

from charrnn.cli import app
from charrnn.config import FP32_CPU_RECIPE, DataConfig, ModelConfig, TrainConfig
from charrnn.runtime import hardware
from charrnn.training import plan, recipe


@pytest.fixture
def cpu_without_bf16(monkeypatch):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    monkeypatch.setattr(torch.backends.mps, "is_available", lambda: False)
    monkeypatch.setattr(hardware, "cpu_has_native_bf16", lambda: False)


def test_fp32_on_a_cpu_takes_the_recipe_for_each_option_not_given(cpu_without_bf16):
    for precision in ("auto", "fp32"):
        m, t = recipe.choose(ModelConfig(), TrainConfig(precision=precision), set())
        assert (m.layers, m.hidden, m.dropout, t.lr) == (1, 256, 0.0, 1e-2) == tuple(FP32_CPU_RECIPE.values())
        assert t.recipe == ("layers", "hidden", "dropout", "lr")
        assert (m.embed, t.batch_size, t.seq_len, t.weight_decay, t.min_lr) == (64, 32, 32, 0.1, 2e-4)  # the rest: defaults
    # an option given wins, whatever its value (here the default's own)
    m, t = recipe.choose(ModelConfig(layers=2, dropout=0.1), TrainConfig(precision="fp32"), {"layers", "dropout"})
    assert (m.layers, m.hidden, m.dropout, t.lr, t.recipe) == (2, 256, 0.1, 1e-2, ("hidden", "lr"))
    m, t = recipe.choose(ModelConfig(), TrainConfig(), set(FP32_CPU_RECIPE))
    assert (m, t) == (ModelConfig(), TrainConfig())


def test_bf16_gpus_other_cells_and_tasks_keep_the_defaults(cpu_without_bf16, monkeypatch):
    same = [
        (ModelConfig(), TrainConfig(precision="bf16")),  # bf16 asked for: today's tuned defaults
        (ModelConfig(cell="gru"), TrainConfig(precision="fp32")),  # measured for the LSTM only
        (ModelConfig(cell="rnn"), TrainConfig()),
    ]
    for m, t in same:
        assert recipe.choose(m, t, set()) == (m, t)
    monkeypatch.setattr(hardware, "cpu_has_native_bf16", lambda: True)  # auto means bf16 here
    assert recipe.choose(ModelConfig(), TrainConfig(), set()) == (ModelConfig(), TrainConfig())
    assert recipe.choose(ModelConfig(), TrainConfig(precision="fp32"), set())[1].recipe  # fp32 asked for: the recipe
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "is_bf16_supported", lambda: True)
    for p in ("auto", "fp32"):  # on a GPU the budget buys many epochs: the tuned defaults stay
        assert recipe.choose(ModelConfig(), TrainConfig(precision=p), set()) == (ModelConfig(), TrainConfig(precision=p))


def test_library_callers_get_exactly_their_configs(cpu_without_bf16, tmp_path):
    p = plan.new_run(DataConfig(), ModelConfig(), TrainConfig(precision="fp32"), tmp_path, "lib")
    assert (p.model, p.train) == (ModelConfig(), TrainConfig(precision="fp32"))
    p = plan.new_run(DataConfig(), ModelConfig(), TrainConfig(precision="fp32"), tmp_path, "cli", given={"hidden"})
    assert (p.model.layers, p.model.dropout, p.train.lr, p.train.recipe) == (1, 0.0, 1e-2, ("layers", "dropout", "lr"))


def test_train_and_info_say_so_and_a_resumed_run_keeps_it(runner, workdir, corpus_file, cpu_without_bf16):
    args = ["train", str(corpus_file), *TINY, "--steps", "4", "--quiet", "--device", "cpu"]
    r = runner.invoke(app, [*args, "--name", "r", "--precision", "fp32"])
    assert r.exit_code == 0, r.output
    head = r.stderr.splitlines()[:4]
    assert any("fp32 on a CPU, so --dropout 0 --lr 0.01 in place of the bf16-tuned defaults" in line for line in head), head
    assert "lstm 1x32" in r.stderr and "dropout 0.0" in r.stderr  # TINY gives --layers and --hidden: they win
    info = json.loads(runner.invoke(app, ["info", "checkpoints/r", "--json"]).stdout)
    assert (info["recipe"], info["dropout"], info["lr"], info["layers"]) == (["dropout", "lr"], 0.0, 0.01, 1)
    shown = runner.invoke(app, ["info", "checkpoints/r"]).stdout
    assert "defaults" in shown and "--lr 0.01" in shown
    r = runner.invoke(app, ["train", "--resume", "checkpoints/r", "--steps", "6", "--quiet", "--precision", "bf16"])
    assert r.exit_code == 0, r.output
    info = json.loads(runner.invoke(app, ["info", "checkpoints/r", "--json"]).stdout)
    assert (info["step"], info["recipe"], info["lr"], info["dropout"]) == (6, ["dropout", "lr"], 0.01, 0.0)
    # bf16: today's defaults, and not a word about a recipe
    r = runner.invoke(app, [*args, "--name", "b", "--precision", "bf16", "--lr", "0.002"])
    assert r.exit_code == 0, r.output
    assert "fp32 on a CPU" not in r.stderr and "dropout 0.1" in r.stderr
    info = json.loads(runner.invoke(app, ["info", "checkpoints/b", "--json"]).stdout)
    assert (info["recipe"], info["recipe_note"], info["lr"]) == ([], None, 0.002)


def test_the_apps_new_run_form_follows_train(cpu_without_bf16, tmp_path, monkeypatch):
    from charrnn.tui.runs import RunRequest, factory

    made, new_run = {}, plan.new_run

    def spy(*args, **kwargs):  # the factory plans the run at once and builds it later: keep the plans
        p = new_run(*args, **kwargs)
        made[p.run_dir.name] = p
        return p

    monkeypatch.setattr(plan, "new_run", spy)
    factory(RunRequest(corpus=("x.txt",), name="a"), tmp_path)  # the form left at its defaults
    factory(RunRequest(corpus=("x.txt",), fields={"layers": 3}, name="b"), tmp_path)
    assert (made["a"].model.layers, made["a"].train.recipe) == (1, ("layers", "hidden", "dropout", "lr"))
    assert (made["b"].model.layers, made["b"].train.recipe) == (3, ("hidden", "dropout", "lr"))


def test_a_new_lstm_classifier_takes_the_task_recipe_in_every_precision(cpu_without_bf16):
    from charrnn.tasks.options import CLASSIFY_RECIPE

    for precision in ("auto", "fp32", "bf16"):
        m, t = recipe.choose(ModelConfig(task="classify"), TrainConfig(precision=precision), set())
        assert (m.layers, m.hidden, m.embed, t.batch_size, t.lr) == (1, 128, 32, 64, 1e-2) == tuple(CLASSIFY_RECIPE.values())
        assert t.recipe == tuple(CLASSIFY_RECIPE) and m.dropout == 0.1  # not the language model's fp32 recipe
        assert recipe.describe(m, t).startswith("--task classify: --layers 1 --hidden 128 --embed 32 --batch-size 64 --lr 0.01 in place")
    m, t = recipe.choose(ModelConfig(task="classify", hidden=64), TrainConfig(), {"hidden"})  # given wins
    assert (m.hidden, m.layers, t.recipe) == (64, 1, ("layers", "embed", "batch_size", "lr"))
    gru = ModelConfig(task="classify", cell="gru")  # measured for the LSTM only
    assert recipe.choose(gru, TrainConfig(precision="fp32"), set()) == (gru, TrainConfig(precision="fp32"))
