"""Model kinds: a new one is one module-sized definition and one registration.

The toy kind below lives in this file alone. Registered, it trains, samples,
resumes, is inspected (--json) and is shown by the TUI's activations screen,
with no edit anywhere else: everything that lists cells reads the registry.
It is a one-gate recurrent unit (a leaky unit whose leak is a learned gate):

    [a; k] = b + W h(t-1) + U x(t)
    keep   = sigmoid(k)                      (a gate in (0, 1))
    h(t)   = keep * h(t-1) + (1 - keep) * tanh(a)
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass

import pytest
import torch
import torch.nn.functional as F
from helpers import TINY, assert_paths_agree, until
from torch import nn

from charrnn.cli import app
from charrnn.config import DataConfig, ModelConfig, TrainConfig
from charrnn.errors import ConfigError
from charrnn.models import registry
from charrnn.models.core import Recurrent
from charrnn.models.lm import CharRNN
from charrnn.spec import option
from charrnn.tasks import TASKS, TaskSpec, register_task
from charrnn.tasks.lm import LanguageModelling
from charrnn.training import checkpoint


@dataclass(frozen=True)
class ToyOptions:
    keep_bias: float = option(0.0, "The gate's starting bias: > 0 keeps more of the past.")  # --keep-bias, in "Cell options"

    def validate(self) -> "ToyOptions":
        if not math.isfinite(self.keep_bias):
            raise ConfigError("--keep-bias must be a finite number.")
        return self


class ToyCore(Recurrent):
    def __init__(self, cfg: ModelConfig, input_size: int):
        super().__init__(cfg, input_size)
        H, opts = cfg.hidden, cfg.cell_options()
        self.U = nn.ParameterList(nn.Parameter(torch.randn(2 * H, input_size if k == 0 else H) * 0.2) for k in range(cfg.layers))
        self.W = nn.ParameterList(nn.Parameter(torch.randn(2 * H, H) * 0.2) for k in range(cfg.layers))
        self.b = nn.ParameterList(nn.Parameter(torch.cat([torch.zeros(H), torch.full((H,), opts.keep_bias)])) for _ in range(cfg.layers))

    def layer_params(self, k):
        return self.U[k], self.W[k], self.b[k]

    def project(self, x, p):
        U, _, b = p
        return F.linear(x, U, b)  # (..., 2H)

    def recur(self, xp, state, p):
        (h,) = state
        a, k = (xp + h @ p[1].t()).chunk(2, dim=1)  # (B, H) each
        keep, cand = torch.sigmoid(k), torch.tanh(a)
        h = keep * h + (1 - keep) * cand
        return (h,), {"h": h, "keep": keep, "cand": cand}


TOY = registry.Kind(
    "toy", "a one-gate leaky unit (test)", ("h",),
    (registry.Signal("h", registry.TANH), registry.Signal("keep", registry.GATE), registry.Signal("cand", registry.TANH)),
    ToyCore, options=ToyOptions,
)  # fmt: skip


@pytest.fixture
def toy():
    registry.register(TOY)
    yield TOY
    del registry.KINDS["toy"]


def test_toy_kind_through_the_cli(toy, runner, workdir, corpus_file, tmp_path):
    r = runner.invoke(app, ["train", str(corpus_file), "--cell", "toy", "--steps", "20", "--name", "t", "--device", "cpu", *TINY, "--quiet"])
    assert r.exit_code == 0, r.output
    assert "model: toy 1x32, embedding 16" in r.stderr
    a = runner.invoke(app, ["sample", "t", "--seed", "3", "--length", "40"])
    b = runner.invoke(app, ["sample", "t", "--seed", "3", "--length", "40"])
    assert a.exit_code == 0 and a.stdout == b.stdout and len(a.stdout.strip("\n")) > 10
    r = runner.invoke(app, ["train", "--resume", "t", "--steps", "30", "--quiet"])
    assert r.exit_code == 0 and "resuming at step 20" in r.stderr and "done at step 30" in r.stderr, r.output
    out = tmp_path / "toy.json"
    r = runner.invoke(app, ["inspect", "t", "--text", "The cat sat.", "--what", "keep", "--json", str(out)])
    assert r.exit_code == 0, r.output
    assert "layer 0, unit" in r.stdout and ", keep" in r.stdout and "gate saturation" in r.stdout
    doc = json.loads(out.read_text())
    assert doc["model_config"]["cell"] == "toy" and doc["signal_ranges"] == {"h": "tanh", "keep": "gate", "cand": "tanh"}
    assert doc["shapes"]["signals.keep"] == [1, 12, 32] and doc["saturation_thresholds"] == {"keep": [0.1, 0.9]}
    assert doc["shapes"]["gradients.h"] == [1, 11]


# a learning rate so small that one step leaves every starting value in place (to 1e-6)
STILL = ["--steps", "1", "--lr", "1e-9", "--min-lr", "0", "--warmup", "0", "--sample-chars", "0"]


def test_toy_kind_option_reaches_the_model_through_the_cli(toy, runner, workdir, corpus_file):
    """--keep-bias exists because ToyOptions declares it: no other edit anywhere."""
    assert "--keep-bias" in runner.invoke(app, ["train", "--help"], env={"COLUMNS": "200"}).stdout
    r = runner.invoke(app, ["train", str(corpus_file), "--cell", "toy", "--keep-bias", "2.5", "--name", "k", "--device", "cpu",
                            *TINY, *STILL, "--quiet"])  # fmt: skip
    assert r.exit_code == 0, r.output
    ck = checkpoint.load(workdir / "checkpoints" / "k" / "last.pt")
    assert ck.model_config.options == {"keep_bias": 2.5}
    torch.testing.assert_close(ck.weights["core.b.0"][32:], torch.full((32,), 2.5), atol=1e-6, rtol=0)
    assert 'keep-bias = 2.5' in (workdir / "checkpoints" / "k" / "config.toml").read_text()
    r = runner.invoke(app, ["train", str(corpus_file), "--cell", "lstm", "--keep-bias", "2.5", "--device", "cpu", *TINY, *STILL])
    assert r.exit_code == 1 and "--keep-bias does not fit --cell lstm with --task lm" in r.stderr


@dataclass(frozen=True)
class HeadOptions:
    head_bias: float = option(0.0, "The output layer's starting bias.", panel="Toy task")


class HeadStart(LanguageModelling):
    """Language modelling whose model starts with every output bias at --head-bias."""

    def build_model(self):
        model = super().build_model()
        with torch.no_grad():
            model.head.bias.fill_(self.model_cfg.task_options().head_bias)
        return model


@pytest.fixture
def toy_task():
    spec = register_task(TaskSpec("headstart", "language modelling from a chosen output bias (test)", HeadStart, HeadOptions))
    yield spec
    del TASKS["headstart"]


def test_toy_task_option_reaches_the_model_through_the_cli(toy_task, runner, workdir, corpus_file):
    """A task with its own option is its module and its registration (here, this file)."""
    assert "--head-bias" in runner.invoke(app, ["train", "--help"], env={"COLUMNS": "200"}).stdout
    r = runner.invoke(app, ["train", str(corpus_file), "--task", "headstart", "--head-bias", "-1.5", "--name", "h", "--device", "cpu",
                            *TINY, *STILL, "--quiet"])  # fmt: skip
    assert r.exit_code == 0, r.output
    ck = checkpoint.load(workdir / "checkpoints" / "h" / "last.pt")
    assert ck.model_config.task == "headstart" and ck.model_config.options == {"head_bias": -1.5}
    bias = ck.weights["head.bias"]
    torch.testing.assert_close(bias, torch.full_like(bias, -1.5), atol=1e-6, rtol=0)
    r = runner.invoke(app, ["train", str(corpus_file), "--head-bias", "1", "--device", "cpu", *TINY, *STILL])
    assert r.exit_code == 1 and "--head-bias does not fit --cell lstm with --task lm" in r.stderr


def test_toy_kind_options_are_checked_and_kept(toy):
    cfg = ModelConfig(cell="toy", layers=2, hidden=8, embed=4, vocab_size=5, options={"keep_bias": 2.0})
    m = CharRNN(cfg)
    assert torch.all(m.core.b[1][8:] == 2.0) and cfg.summary() == "toy 2x8, embedding 4, dropout 0.1, keep-bias 2.0"
    with pytest.raises(ConfigError, match="--keep-bias must be a finite"):
        ModelConfig(cell="toy", options={"keep_bias": float("nan")}).validate()
    with pytest.raises(ConfigError, match="--keep-bias does not fit --cell lstm with --task lm"):
        ModelConfig(cell="lstm", options={"keep_bias": 1.0}).validate()


def test_toy_kind_parity_of_the_paths(toy):
    """The generic core's training path, the sampler's step and the trace agree (the check every
    registered kind gets in test_every_kind.py), and the gate lives in (0, 1)."""
    m = CharRNN(ModelConfig(cell="toy", layers=2, hidden=12, embed=6, vocab_size=11, dropout=0.0)).double().eval()
    assert_paths_agree(m, 11)
    keep = m.trace(torch.randint(11, (3, 9))).signals["keep"]
    assert keep.shape == (2, 3, 9, 12) and 0 < keep.min() and keep.max() < 1


async def test_toy_kind_in_the_activations_screen(toy, tmp_path, corpus_file):
    from charrnn.data.corpus import prepare
    from charrnn.training.trainer import Trainer
    from charrnn.tui.app import CharRNNApp
    from charrnn.tui.widgets import Heatmap

    data = DataConfig(paths=(str(corpus_file),))
    corpus = prepare(data, tmp_path / "ck")
    model = ModelConfig(cell="toy", layers=1, hidden=16, embed=8)
    tcfg = TrainConfig(seq_len=16, batch_size=4, eval_every=50, eval_tokens=256, sample_chars=0, steps=100_000, device="cpu")
    app = CharRNNApp(lambda sinks, stop: Trainer(model, data, tcfg, corpus, tmp_path / "ck" / "toy", sinks=sinks, stop=stop), root=tmp_path / "ck")
    async with app.run_test(size=(100, 30)) as pilot:
        await pilot.press("2")
        await until(pilot, lambda: app.screen.probe is not None, timeout=60, what="a frame")
        assert app.screen.probe.acts.cell == "toy" and app.screen.signals == ("h", "keep", "cand")
        await pilot.press("s")
        assert app.screen.sel_signal == "keep" and app.screen.query_one(Heatmap).kind == "gate"
        assert app.screen.query_one(Heatmap).side is not None  # a gate's saturation, shut / open
        await pilot.press("q")
        await until(pilot, lambda: not app.is_running, timeout=60, what="exit")
    assert checkpoint.load(tmp_path / "ck" / "toy" / "last.pt").model_config.cell == "toy"


def test_unknown_cells_and_tasks_are_one_line_errors(runner, workdir, corpus_file):
    from helpers import one_line_error

    one_line_error(runner.invoke(app, ["train", str(corpus_file), "--cell", "toy"]), "--cell", "'toy' is not one of rnn", code=2)
    one_line_error(runner.invoke(app, ["train", str(corpus_file), "--task", "poetry"]), "--task", "'poetry' is not one of lm", code=2)


# ------------------------------------------------------------ the generic core


@pytest.mark.parametrize("cell", ["rnn", "lstm", "gru"])
def test_generic_core_equals_the_fused_module(cell):
    """The unrolled path (what kinds without a fused module train on) gives the fused
    module's outputs, final state and gradients, with document resets inside the batch."""
    m = CharRNN(ModelConfig(cell=cell, layers=2, hidden=10, embed=6, vocab_size=9, dropout=0.0)).double()
    idx, y = torch.randint(9, (3, 12)), torch.randint(9, (3, 12))
    reset = torch.zeros(3, 12, dtype=torch.bool)
    reset[0, 0] = reset[1, 5] = reset[2, 3] = reset[2, 9] = True
    s0 = tuple(torch.randn_like(s) for s in m.init_state(3))
    runs = []
    for fused in (True, False):
        m.zero_grad()
        m.core.use_fused = fused
        logits, loss, final = m(idx, s0, y, reset)
        loss.backward()
        runs.append((logits, final, [p.grad.clone() for p in m.parameters()]))
    (la, fa, ga), (lb, fb, gb) = runs
    torch.testing.assert_close(lb, la, atol=1e-10, rtol=0)
    for x, z in zip(fb, fa):
        torch.testing.assert_close(x, z, atol=1e-10, rtol=0)
    for x, z in zip(gb, ga):
        torch.testing.assert_close(x, z, atol=1e-9, rtol=0)


def test_optimizer_trains_only_what_requires_grad(tmp_path, corpus_file):
    """A frozen parameter (a reservoir's weights, say) is left out of the optimizer and
    does not move in training; the checkpoint names it."""
    from charrnn.data.corpus import prepare
    from charrnn.training.trainer import Trainer

    data = DataConfig(paths=(str(corpus_file),))
    tcfg = TrainConfig(seq_len=8, batch_size=4, steps=5, eval_every=5, eval_tokens=64, sample_chars=0, device="cpu")
    t = Trainer(ModelConfig(cell="rnn", layers=1, hidden=8, embed=4), data, tcfg, prepare(data, tmp_path / "ck"), tmp_path / "run")
    frozen = t.model.core.weight_hh_l0
    frozen.requires_grad_(False)
    t.optimizer = t.model.configure_optimizers(tcfg.lr, tcfg.weight_decay)
    in_opt = [p for g in t.optimizer.param_groups for p in g["params"]]
    assert all(p is not frozen for p in in_opt) and len(in_opt) == sum(p.requires_grad for p in t.model.parameters())
    before, other = frozen.detach().clone(), t.model.core.weight_ih_l0.detach().clone()
    t.run()
    assert torch.equal(frozen, before) and not torch.equal(t.model.core.weight_ih_l0, other)
    ck = checkpoint.load(tmp_path / "run" / "last.pt")
    assert ck.frozen == ["core.weight_hh_l0"]
