"""`charrnn train --tensorboard`: event files read back with TensorBoard's own reader hold
metrics.jsonl's numbers, the samples and gate-saturation histograms; only rank 0 writes; the
extra stays optional."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from charrnn.cli import app
from helpers import TINY, make_text, no_traceback, one_line_error

pytest.importorskip("tensorboard")
from tensorboard.backend.event_processing.event_accumulator import EventAccumulator  # noqa: E402

ALL = {"scalars": 0, "histograms": 0, "tensors": 0}  # keep every event (the reader samples by default)


def read(logdir: Path) -> EventAccumulator:
    ea = EventAccumulator(str(logdir), size_guidance=ALL)
    ea.Reload()
    return ea


def metrics(run: Path) -> list[dict]:
    return [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]


def assert_scalars_match(ea: EventAccumulator, lines: list[dict]) -> None:
    """Every number of every metrics.jsonl line is in the logs at its step, under eval/ or final/."""
    tags = set(ea.Tags()["scalars"])
    seen = 0
    for line in lines:
        group = "final" if line["final"] else "eval"
        for key, value in line.items():
            if key == "step" or isinstance(value, bool) or not isinstance(value, (int, float)):
                continue
            assert f"{group}/{key}" in tags, (group, key, sorted(tags))
            at = [s.value for s in ea.Scalars(f"{group}/{key}") if s.step == line["step"]]
            assert at == [float(np.float32(value))], (group, key, line["step"], at, value)  # TensorBoard keeps float32
            seen += 1
    assert seen >= 6 * len(lines)


def test_logs_hold_the_metrics_the_samples_and_saturation(workdir, corpus_file, runner):
    args = ["train", str(corpus_file), *TINY, "--cell", "gru", "--steps", "20", "--device", "cpu", "-q", "--name", "tb"]
    r = runner.invoke(app, [*args, "--tensorboard"])
    assert r.exit_code == 0, r.output
    run = workdir / "checkpoints" / "tb"
    ea = read(run / "tensorboard")
    lines = metrics(run)
    assert [(x["step"], x["final"]) for x in lines] == [(10, False), (20, False), (20, True)]
    assert_scalars_match(ea, lines)
    assert {s.step for s in ea.Scalars("train/loss")} >= {10, 20}  # the training loss at the progress bar's rate
    samples = ea.Tensors("sample/text_summary")
    assert [s.step for s in samples] == [10, 20]
    assert all(s.tensor_proto.string_val[0].decode().startswith("```\n") for s in samples)
    # gate saturation at each evaluation: the share of the probe text each GRU unit spends saturated
    for gate in ("reset", "update"):
        hist = ea.Histograms(f"saturation/{gate}/layer0")
        assert [h.step for h in hist] == [10, 20, 20]  # each evaluation, the final one too
        assert all(h.histogram_value.num == 32 and 0 <= h.histogram_value.min <= h.histogram_value.max <= 1 for h in hist)
        values = ea.Histograms(f"values/{gate}/layer0")[0].histogram_value
        assert 0 < values.min <= values.max < 1 and values.num % 32 == 0
    assert not any(t.startswith("saturation/h") for t in ea.Tags()["histograms"])  # a GRU's gates, not its state

    # the probes at each evaluation leave the run itself alone: the same weights as without logs
    r = runner.invoke(app, [*args[:-1], "plain"])
    assert r.exit_code == 0, r.output
    import torch

    from charrnn.training import checkpoint

    a, b = (checkpoint.load(workdir / "checkpoints" / n / "last.pt").weights for n in ("tb", "plain"))
    assert all(torch.equal(a[k], b[k]) for k in a)
    shutil.rmtree(workdir / "checkpoints" / "plain")

    # `charrnn runs` says where the logs are
    r = runner.invoke(app, ["runs", "--json"])
    assert json.loads(r.stdout)[0]["logs"] == str(Path("checkpoints") / "tb" / "tensorboard")

    # a resumed run, given --tensorboard again, goes on in the same logs
    r = runner.invoke(app, ["train", "--resume", "tb", "--steps", "30", "-q", "--tensorboard"])
    assert r.exit_code == 0, r.output
    ea = read(run / "tensorboard")
    assert_scalars_match(ea, metrics(run))
    assert [h.step for h in ea.Histograms("saturation/update/layer0")] == [10, 20, 20, 30, 30]


def test_logs_elsewhere_and_what_runs_shows(workdir, corpus_file, runner):
    r = runner.invoke(app, ["train", str(corpus_file), *TINY, "--cell", "rnn", "--steps", "10", "--device", "cpu", "-q", "--name", "far",
                            "--tensorboard-dir", "logs", "--sample-chars", "0"])  # fmt: skip
    assert r.exit_code == 0, r.output
    run = workdir / "checkpoints" / "far"
    assert not (run / "tensorboard").exists()
    ea = read(workdir / "logs" / "far")
    assert_scalars_match(ea, metrics(run))
    assert [h.step for h in ea.Histograms("saturation/h/layer0")] == [10, 10]  # a vanilla RNN: its tanh state
    r = runner.invoke(app, ["train", str(corpus_file), *TINY, "--steps", "10", "--device", "cpu", "-q", "--name", "plain", "--sample-chars", "0"])
    assert r.exit_code == 0, r.output
    rows = {row["name"]: row for row in json.loads(runner.invoke(app, ["runs", "--json"]).stdout)}
    assert rows["far"]["logs"] == str((workdir / "logs" / "far").resolve()) and rows["plain"]["logs"] is None
    table = runner.invoke(app, ["runs"], env={"COLUMNS": "300"}).stdout.splitlines()
    assert "logs" in table[0].split()
    assert str((workdir / "logs" / "far").resolve()) in next(x for x in table if x.startswith("far"))
    assert next(x for x in table if x.startswith("plain")).split()[-3] == "-"  # no logs (then the date and time)


def test_a_missing_extra_is_one_line_and_starts_nothing(workdir, corpus_file, runner, monkeypatch):
    monkeypatch.setitem(sys.modules, "torch.utils.tensorboard", None)  # as if `tensorboard` were not installed
    r = runner.invoke(app, ["train", str(corpus_file), *TINY, "--steps", "5", "--device", "cpu", "-q", "--name", "x", "--tensorboard"])
    one_line_error(r, 'pip install "charrnn[tensorboard]"')
    assert not (workdir / "checkpoints" / "x").exists()


def test_tensorboard_is_imported_only_when_asked_for():
    code = ("import sys, charrnn.cli, charrnn.cli.train, charrnn.training.trainer, charrnn.training.telemetry; "
            "print(sorted(m for m in sys.modules if 'tensorboard' in m))")  # fmt: skip
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stderr
    assert r.stdout.strip() == "[]"


def test_under_torchrun_rank_0_alone_writes(tmp_path):
    corpus = tmp_path / "corpus.txt"
    corpus.write_text(make_text(600), encoding="utf-8")
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc-per-node", "2", "-m", "charrnn", "train", str(corpus),
           "--layers", "1", "--hidden", "24", "--embed", "8", "--seq-len", "16", "--batch-size", "4", "--warmup", "3", "--steps", "8",
           "--eval-every", "4", "--eval-tokens", "256", "--final-eval-tokens", "256", "--sample-chars", "10", "--name", "d",
           "--tensorboard", "--quiet", "--threads", "1", "--device", "cpu"]  # fmt: skip
    r = subprocess.run(cmd, cwd=tmp_path, capture_output=True, text=True, timeout=300, env={**os.environ, "OMP_NUM_THREADS": "1"})
    assert r.returncode == 0, r.stderr[-3000:]
    no_traceback(r.stderr)
    run = tmp_path / "checkpoints" / "d"
    assert len(list((run / "tensorboard").glob("events.out.tfevents.*"))) == 1
    ea = read(run / "tensorboard")
    assert_scalars_match(ea, metrics(run))
    assert [s.step for s in ea.Tensors("sample/text_summary")] == [4, 8]


def test_the_python_api_writes_the_same_logs(tmp_path, corpus_file):
    import charrnn

    m = charrnn.train(corpus_file, name="api", checkpoints=tmp_path, tensorboard=True, steps=10, eval_every=5, device="cpu",
                      layers=1, hidden=32, embed=16, seq_len=16, batch_size=4, sample_chars=20)  # fmt: skip
    run = tmp_path / "api"
    assert m.result.step == 10 and (run / "tensorboard").is_dir()
    assert_scalars_match(read(run / "tensorboard"), metrics(run))
