import json
import math
import threading

import pytest
import torch

from charrnn.training import checkpoint
from charrnn.config import DataConfig, ModelConfig, TrainConfig
from charrnn.data.corpus import prepare
from charrnn.errors import ConfigError, TrainingError
from charrnn.models.lm import CharRNN
from charrnn.training.telemetry import BaseSink, CheckpointEvent, EndEvent, EvalEvent, ListSink, MessageEvent, SampleEvent, StepEvent
from charrnn.training.trainer import Trainer, lr_at

MODEL = ModelConfig(cell="lstm", layers=1, hidden=32, embed=16)
FAST = dict(seq_len=16, batch_size=4, eval_every=10, eval_tokens=512, sample_chars=20, warmup=5, device="cpu")  # CPU arithmetic: exact resume is a CPU guarantee


def trainer(tmp_path, corpus_file, run="run", model=MODEL, sinks=None, stop=None, resume=None, data=None, **kw):
    data = data or DataConfig(paths=(str(corpus_file),))
    c = prepare(data, tmp_path / "ck", tokenizer=None if resume is None else checkpoint.model_from(resume)[1])
    cfg = TrainConfig(**{**FAST, **kw})
    return Trainer(model, data, cfg, c, tmp_path / run, sinks=sinks, stop=stop, resume=resume)


def weights(path):
    return checkpoint.load(path).weights


def test_loss_falls_and_events_flow(tmp_path, corpus_file):
    sink = ListSink()
    result = trainer(tmp_path, corpus_file, sinks=[sink], steps=60, lr=1e-2).run()
    evals = sink.of(EvalEvent)
    assert result.stopped_by == "steps" and result.step == 60
    assert evals[0].val_loss > evals[-1].val_loss + 0.5  # it learns
    assert evals[-1].final and evals[-1].val_bpc == pytest.approx(evals[-1].val_loss / math.log(2))
    assert sink.of(StepEvent) and sink.of(SampleEvent) and sink.of(EndEvent)
    kinds = {e.kind for e in sink.of(CheckpointEvent)}
    assert kinds == {"last", "best"}
    lines = [json.loads(line) for line in (tmp_path / "run" / "metrics.jsonl").read_text().splitlines()]
    assert [r["step"] for r in lines] == [10, 20, 30, 40, 50, 60, 60]
    assert {"step", "train_loss", "val_loss", "val_bpc", "elapsed_s", "chars_per_s"} <= set(lines[0])


def test_same_seed_same_losses(tmp_path, corpus_file):
    def losses(run):
        sink = ListSink()
        model = ModelConfig(cell="gru", layers=2, hidden=16, embed=8, dropout=0.1)
        trainer(tmp_path, corpus_file, run=run, model=model, sinks=[sink], steps=30).run()
        return [e.val_loss for e in sink.of(EvalEvent)], weights(tmp_path / run / "last.pt")

    (a, wa), (b, wb) = losses("a"), losses("b")
    assert a == b
    assert all(torch.equal(wa[k], wb[k]) for k in wa)


class StopAt(BaseSink):
    def __init__(self, stop, step):
        self.stop, self.step = stop, step

    def on_checkpoint(self, e):
        if e.step >= self.step:
            self.stop.set()


@pytest.mark.parametrize("cell", ["lstm", "gru"])
def test_resume_continues_exactly(tmp_path, corpus_file, cell):
    """Interrupted at step 20 and resumed, a run ends with the same weights as one
    that never stopped: schedule, optimizer, data position, carried state and RNG
    (dropout) all come back."""
    model = ModelConfig(cell=cell, layers=2, hidden=24, embed=8, dropout=0.2)
    trainer(tmp_path, corpus_file, run="straight", model=model, steps=40).run()
    stop = threading.Event()
    first = trainer(tmp_path, corpus_file, run="split", model=model, steps=40, save_every=20, sinks=[StopAt(stop, 20)], stop=stop)
    r1 = first.run()
    assert r1.stopped_by == "interrupt" and r1.step == 20
    ck = checkpoint.load(tmp_path / "split" / "last.pt")
    r2 = trainer(tmp_path, corpus_file, run="split", model=model, steps=40, resume=ck).run()
    assert r2.step == 40 and r2.stopped_by == "steps"
    a, b = weights(tmp_path / "straight" / "last.pt"), weights(tmp_path / "split" / "last.pt")
    for k in a:
        torch.testing.assert_close(a[k], b[k], atol=0, rtol=0)
    lines = (tmp_path / "split" / "metrics.jsonl").read_text().splitlines()
    assert [json.loads(x)["step"] for x in lines] == [10, 20, 30, 40, 40]


def test_resume_of_a_finished_run_asks_for_a_new_limit(tmp_path, corpus_file):
    trainer(tmp_path, corpus_file, steps=10).run()
    ck = checkpoint.load(tmp_path / "run" / "last.pt")
    with pytest.raises(ConfigError, match="already reached its limit"):
        trainer(tmp_path, corpus_file, steps=10, resume=ck).run()
    assert trainer(tmp_path, corpus_file, steps=15, resume=ck).run().step == 15


def test_stop_event_saves_a_checkpoint(tmp_path, corpus_file):
    stop, asked = threading.Event(), []

    class StopSoon(BaseSink):
        def on_step(self, e):  # step events are rate-limited: the first one at step 3 or later asks
            if e.step >= 3 and not asked:
                asked.append(e.step)
                stop.set()

    r = trainer(tmp_path, corpus_file, sinks=[StopSoon()], stop=stop, steps=1000).run()
    assert r.stopped_by == "interrupt" and r.step == asked[0]  # no step after the one that asked to stop
    assert checkpoint.load(tmp_path / "run" / "last.pt").step == r.step


def test_time_budget(tmp_path, corpus_file):
    r = trainer(tmp_path, corpus_file, time="2s", eval_every=1000).run()
    assert r.stopped_by == "time" and r.elapsed_s >= 2


def test_epochs_limit(tmp_path, corpus_file):
    t = trainer(tmp_path, corpus_file, epochs=1.5)
    r = t.run()
    assert r.stopped_by == "epochs" and r.step == math.ceil(1.5 * t.task.steps_per_epoch)


def test_non_finite_loss_skips_the_step_then_stops(tmp_path, corpus_file, monkeypatch):
    sink = ListSink()
    real = CharRNN.forward
    calls = {"n": 0}

    def flaky(self, idx, state=None, targets=None, reset=None):
        logits, loss, state = real(self, idx, state, targets, reset)
        if self.training and targets is not None:
            calls["n"] += 1
            if calls["n"] == 3 or calls["n"] >= 8:
                loss = loss * float("nan")
        return logits, loss, state

    monkeypatch.setattr(CharRNN, "forward", flaky)
    with pytest.raises(TrainingError, match="not finite for 5 steps in a row"):
        trainer(tmp_path, corpus_file, sinks=[sink], steps=100, eval_every=1000).run()
    warnings = [e.text for e in sink.of(MessageEvent) if e.level == "warning"]
    assert len(warnings) == 6 and "skipped" in warnings[0]
    ck = checkpoint.load(tmp_path / "run" / "last.pt")  # saved, and finite
    assert all(torch.isfinite(v).all() for v in ck.weights.values())


def test_documents_reset_state_and_train(tmp_path):
    p = tmp_path / "fortunes.txt"
    p.write_text("\n%\n".join(f"Fortune {i}: be {'kind' if i % 2 else 'brave'} today." for i in range(300)) + "\n")
    sink = ListSink()
    data = DataConfig(paths=(str(p),), doc_sep="%")
    r = trainer(tmp_path, p, data=data, sinks=[sink], steps=40, lr=1e-2).run()
    assert r.final_val_loss < 2.5
    ck = checkpoint.load(tmp_path / "run" / "last.pt")
    assert ck.task.tokenizer["eos"] is True


def test_lr_schedule():
    cfg = TrainConfig(lr=1.0, min_lr=0.1, warmup=10)
    assert lr_at(cfg, 0, 0.0) == pytest.approx(0.1)
    assert lr_at(cfg, 9, 0.0) == pytest.approx(1.0)
    assert lr_at(cfg, 50, 0.5) == pytest.approx(0.55)
    assert lr_at(cfg, 99, 1.0) == pytest.approx(0.1)
    assert lr_at(cfg, 99, 1.7) == pytest.approx(0.1)


def test_validation_split_too_small(tmp_path):
    p = tmp_path / "c.txt"
    p.write_text("abcdefgh" * 100)
    data = DataConfig(paths=(str(p),), val_frac=0.001)
    with pytest.raises(ConfigError, match="validation split is too small"):
        trainer(tmp_path, p, data=data, steps=5)


def test_probes_only_for_sinks_that_want_them(tmp_path, corpus_file):
    sink = ListSink()
    trainer(tmp_path, corpus_file, run="plain", sinks=[sink], steps=15).run()
    assert not [e for e in sink.events if type(e).__name__ == "ProbeEvent"]

    class Wants(ListSink):
        wants_probes = True

    w = Wants()
    t = trainer(tmp_path, corpus_file, run="probed", sinks=[w], steps=15)
    assert 10 < len(t.probe_text) <= 96
    t.run()
    probes = [e for e in w.events if type(e).__name__ == "ProbeEvent"]
    assert probes and probes[0].step == 1  # the first probe comes at once, later ones at most 1/s
    p = probes[0].payload
    assert p.acts.text == t.probe_text and p.acts.signals["forget"].shape == (1, len(t.probe_text), 32)
    assert p.grad_flow["h"].shape == (1, len(t.probe_text) - 1)


def test_a_probe_runs_on_one_intra_op_thread(tmp_path, corpus_file):
    """The probe's steps are tiny: it runs on one torch thread, and training goes on with as many as before."""

    class Wants(ListSink):
        wants_probes = True

    t = trainer(tmp_path, corpus_file, run="threads", sinks=[Wants()], steps=3)
    probe, seen = t.use.probe, []

    def counted(*a):
        seen.append(torch.get_num_threads())
        return probe(*a)

    t.use.probe = counted
    before = torch.get_num_threads()
    torch.set_num_threads(2)
    try:
        t.run()
        assert seen == [1] and torch.get_num_threads() == 2
    finally:
        torch.set_num_threads(before)


def test_checkpoint_by_wall_clock(tmp_path, corpus_file):
    """With no evaluation and no --save-every in sight, --save-interval still writes last.pt,
    so a run killed early has something to resume; the default is every minute."""
    assert TrainConfig().save_interval == 60.0
    stop = threading.Event()
    sink = ListSink()

    class StopAtFirst(BaseSink):
        def on_checkpoint(self, e):
            stop.set()

    r = trainer(tmp_path, corpus_file, sinks=[sink, StopAtFirst()], stop=stop, steps=10**6, eval_every=10**6, save_interval=0.3).run()
    first = sink.of(CheckpointEvent)[0]
    assert r.stopped_by == "interrupt" and 0 < first.step < 10**6 and first.kind == "last"
    assert not sink.of(EvalEvent)  # the checkpoint came from the clock
    assert checkpoint.load(tmp_path / "run" / "last.pt").step >= first.step
    with pytest.raises(ConfigError, match="--save-interval"):
        TrainConfig(save_interval=-1).validate()
