"""`--precision auto` on a CPU with native bf16 chooses by this machine's measured step
times (training/autoprecision.py, issue 25). The probe's logic is tested with faked
timings of the three CPU classes; the measurement itself once, for real and short."""

import json

import pytest
import torch
from helpers import TINY

from charrnn.cli import app
from charrnn.config import DataConfig, ModelConfig, TrainConfig
from charrnn.training import autoprecision as ap
from charrnn.runtime import hardware
from charrnn.training import plan

# faked step times (seconds): bf16 step of the defaults, fp32 step of the fp32 recipe
AMX = ap.Probe(0.008, 0.017, "an AMX Xeon", cpu_class="AMX")  # bf16 tiles: the 2x256 bf16 step is the cheaper
AVX512_BF16 = ap.Probe(0.056, 0.034, "an AMD Zen 4", cpu_class="AVX512-BF16")  # 1.4x faster than fp32 2x256, not 2.3x


def test_the_curves_are_read_in_log_steps_and_flat_beyond_their_ends():
    for recipe, pts in ap.CURVES.items():
        (s0, l0), (s1, l1) = pts[0], pts[-1]
        assert ap.predicted_loss(recipe, 1) == l0 and ap.predicted_loss(recipe, 10 * s1) == l1
        a, b = pts[0], pts[1]
        mid = (a[0] * b[0]) ** 0.5  # halfway in log(steps)
        assert ap.predicted_loss(recipe, mid) == pytest.approx((a[1] + b[1]) / 2)
        losses = [ap.predicted_loss(recipe, s) for s in range(s0, s1, 97)]
        assert all(x >= y for x, y in zip(losses, losses[1:]))  # more steps never predict worse


def test_each_cpu_class_gets_the_recipe_that_buys_more_in_its_budget():
    three = 180.0
    assert ap.decide(AMX, three).precision == "bf16"
    assert ap.decide(AVX512_BF16, three).precision == "fp32"
    # equal step times: the curves alone decide, and the reason says what was weighed
    even = ap.decide(ap.Probe(0.02, 0.02, cpu_class="AMX"), three)
    loss = {r: ap.predicted_loss(r, three / 0.02) for r in ap.CURVES}
    assert even.precision == min(loss, key=loss.get)
    c = ap.decide(AVX512_BF16, three)
    assert "auto chose fp32" in c.reason and "1.65x" in c.reason and "(AVX512-BF16)" in c.reason and "3m00s" in c.reason


def test_a_run_limited_by_steps_chooses_as_a_three_minute_run():
    for probe in (AMX, AVX512_BF16):
        for given in ({"steps": 4}, {"epochs": 1.0}, {}):
            assert ap.decide(probe, 180.0).precision == _choose(probe, TrainConfig(**given)).precision
    assert "1m00s" in _choose(AVX512_BF16, TrainConfig(time="1m")).reason


def _choose(probe, train):
    saved = ap.probe
    ap.probe = lambda: probe
    try:
        return ap.choose(train)
    finally:
        ap.probe = saved


@pytest.fixture
def cpu_with_bf16(monkeypatch):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    monkeypatch.setattr(torch.backends.mps, "is_available", lambda: False)
    monkeypatch.setattr(hardware, "cpu_has_native_bf16", lambda: True)


def test_a_new_run_records_the_choice_and_takes_that_precisions_recipe(cpu_with_bf16, monkeypatch, tmp_path):
    monkeypatch.setattr(ap, "probe", lambda: AVX512_BF16)
    p = plan.new_run(DataConfig(), ModelConfig(), TrainConfig(), tmp_path, "a", given=set())
    assert (p.train.precision, p.model.layers, p.train.lr, p.train.recipe) == ("fp32", 1, 1e-2, ("layers", "hidden", "dropout", "lr"))
    assert p.train.auto_choice.startswith("auto chose fp32")
    monkeypatch.setattr(ap, "probe", lambda: AMX)
    p = plan.new_run(DataConfig(), ModelConfig(), TrainConfig(), tmp_path, "b", given=set())
    assert (p.train.precision, p.model, p.train.recipe) == ("bf16", ModelConfig(), ())
    # asked for by name: no probe at all
    monkeypatch.setattr(ap, "probe", lambda: pytest.fail("probed although --precision was given"))
    for name in ("fp32", "bf16"):
        assert plan.new_run(DataConfig(), ModelConfig(), TrainConfig(precision=name), tmp_path, "c").train.precision == name


def test_fp32_only_cpus_and_gpus_are_not_probed(monkeypatch, tmp_path):
    monkeypatch.setattr(ap, "probe", lambda: pytest.fail("probed"))
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    monkeypatch.setattr(torch.backends.mps, "is_available", lambda: False)
    monkeypatch.setattr(hardware, "cpu_has_native_bf16", lambda: False)
    p = plan.new_run(DataConfig(), ModelConfig(), TrainConfig(), tmp_path, "a", given=set())
    assert (p.train.precision, p.train.auto_choice, p.model.layers) == ("auto", "", 1)  # fp32 and its recipe, as before
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "is_bf16_supported", lambda: True)
    p = plan.new_run(DataConfig(), ModelConfig(), TrainConfig(), tmp_path, "b", given=set())
    assert (p.train.precision, p.train.auto_choice, p.model) == ("auto", "", ModelConfig())


def test_train_and_info_say_what_auto_chose_and_a_resumed_run_keeps_it(runner, workdir, corpus_file, cpu_with_bf16, monkeypatch):
    monkeypatch.setattr(ap, "probe", lambda: AVX512_BF16)
    r = runner.invoke(app, ["train", str(corpus_file), *TINY, "--steps", "3", "--quiet", "--device", "cpu", "--name", "r"])
    assert r.exit_code == 0, r.output
    head = r.stderr.splitlines()[:4]
    assert any("cpu, fp32" in line for line in head), head
    assert any(line.strip().startswith("auto chose fp32: a bf16 step of the defaults takes 1.65x") and "so --dropout 0 --lr 0.01" in line
               for line in head), head  # fmt: skip
    info = json.loads(runner.invoke(app, ["info", "checkpoints/r", "--json"]).stdout)
    assert info["recipe_note"].startswith("auto chose fp32") and info["recipe"] == ["dropout", "lr"]
    monkeypatch.setattr(ap, "probe", lambda: AMX)  # the machine changed its mind: the run keeps its own
    r = runner.invoke(app, ["train", "--resume", "checkpoints/r", "--steps", "5", "--quiet"])
    assert r.exit_code == 0, r.output
    info = json.loads(runner.invoke(app, ["info", "checkpoints/r", "--json"]).stdout)
    assert (info["step"], info["precision"], info["lr"]) == (5, "fp32", 0.01)


def test_the_probe_is_measured_once_and_cached(monkeypatch, tmp_path):
    monkeypatch.setenv("CHARRNN_CACHE_DIR", str(tmp_path))
    calls = []
    monkeypatch.setattr(ap, "measure", lambda: calls.append(1) or AMX)
    assert ap.probe() == AMX and ap.probe() == AMX and len(calls) == 1
    (cached,) = tmp_path.glob("precision-probe-*.json")
    assert json.loads(cached.read_text())["bf16_step_s"] == AMX.bf16_step_s
    monkeypatch.setenv("CHARRNN_REPROBE", "1")
    ap.probe()
    assert len(calls) == 2
    monkeypatch.delenv("CHARRNN_REPROBE")
    cached.write_text("{not json")  # a damaged cache is measured again, not an error
    assert ap.probe() == AMX and len(calls) == 3


def test_a_probe_taken_on_a_busy_machine_decides_but_is_not_cached(monkeypatch, tmp_path):
    monkeypatch.setenv("CHARRNN_CACHE_DIR", str(tmp_path))
    busy = ap.Probe(0.05, 0.02, "an AMX Xeon", cpu_class="AMX", share=0.2)
    calls = []
    monkeypatch.setattr(ap, "measure", lambda: calls.append(1) or busy)
    assert ap.probe() == busy and ap.probe() == busy and len(calls) == 2  # measured each time, never cached
    assert not list(tmp_path.glob("precision-probe-*.json"))
    assert ap.decide(busy, 180.0).reason.endswith("measured on a busy machine (20% of its threads' time), so not cached")
    assert "busy" not in ap.decide(AMX, 180.0).reason


def test_measure_times_both_recipes_for_real():
    p = ap.measure(rounds=1, steps=1)
    assert 0 < p.bf16_step_s < 10 and 0 < p.fp32_step_s < 10
    assert p.cpu_class in ("AMX", "AVX512-BF16", "fp32-only") and p.torch == torch.__version__ and 0 < p.share <= 1
    before = torch.get_rng_state()
    ap.measure(rounds=1, steps=1)
    assert torch.get_rng_state().equal(before)  # the probe does not move the run's random stream
