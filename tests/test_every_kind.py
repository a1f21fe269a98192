"""Every registered sequence kind, through the same tests: trained through the CLI, resumed,
sampled, shown by `info`, traced by `inspect`, and its three paths (training, the trace, the
sampler's step) held equal in float64. The cases come from the registry (helpers.kind_cases),
so a new kind is covered by registering it; each kind's own file keeps its equations, written
out by the book, and what only that kind has (time constants, the reservoir, the feedback)."""

from __future__ import annotations

import json
import math
import re

import numpy as np
import pytest
import torch
from helpers import KIND_ARGS, assert_paths_agree, kind_cases, no_traceback

from charrnn.cli import app
from charrnn.config import ModelConfig
from charrnn.models import registry
from charrnn.models.lm import CharRNN

CASES = kind_cases()
IDS = [" ".join([cell, *args]) for cell, args in CASES]
TEXT = "The cat sat on the mat."


def test_the_cases_cover_every_registered_sequence_kind():
    assert {cell for cell, _ in CASES} == set(registry.names(registry.SEQUENCE)) >= {"rnn", "lstm", "gru", "leaky", "esn", "jordan"}
    assert set(KIND_ARGS) <= set(registry.names(registry.SEQUENCE))  # no options for a kind that is gone


@pytest.mark.parametrize("cell, args", CASES, ids=IDS)
def test_trains_and_resumes_where_it_stopped(kind_run, cell, args):
    run = kind_run(cell, *args)
    out = run.trained.stderr
    assert f"model: {cell} 1x32, embedding 16, dropout 0.1" in out, out
    vocab = int(re.search(r"vocabulary (\d+);", out).group(1))
    assert [int(s) for s in re.findall(r"^step (\d+) \| train [\d.]+ \| val [\d.]+ nats/token \| [\d.]+ bits/char", out, re.M)] == [10, 20]
    done = re.search(r"^done at step 20 \(reached --steps, [^)]*\); validation ([\d.]+) nats/token, ([\d.]+) bits/char", out, re.M)
    assert done, out
    nats, bpc = float(done.group(1)), float(done.group(2))
    assert nats < math.log(vocab), out  # 20 steps learn something: better than the uniform guess
    assert bpc == pytest.approx(nats / math.log(2), abs=2e-4)  # characters: one token each
    no_traceback(run.trained.output)

    again = run.resumed
    assert again.exit_code == 0, again.output
    assert "resuming at step 20" in again.stderr and re.search(r"^done at step 30 \(reached --steps", again.stderr, re.M), again.stderr
    assert {p.name for p in run.dir.iterdir()} == {"last.pt", "best.pt", "metrics.jsonl", "config.toml"}
    records = [json.loads(x) for x in (run.dir / "metrics.jsonl").read_text().splitlines()]
    assert [r["step"] for r in records] == [10, 20, 20, 30, 30]  # an evaluation, the final one, again after the resume
    assert records[2]["val_bpc"] == pytest.approx(bpc, abs=1e-4)  # the line printed is the line recorded


@pytest.mark.parametrize("cell, args", CASES, ids=IDS)
def test_samples_the_same_text_for_a_seed(kind_run, runner, cell, args):
    run = kind_run(cell, *args)
    texts = [runner.invoke(app, ["sample", str(run.dir), "--prime", "The", "--length", "40", "--seed", "3"]) for _ in range(2)]
    assert all(t.exit_code == 0 for t in texts), texts[0].output
    a, b = (t.stdout for t in texts)
    assert a == b  # (that another seed gives another text: test_api.py)
    assert a.startswith("The") and len(a) == len("The") + 40 + 1


@pytest.mark.parametrize("cell, args", CASES, ids=IDS)
def test_info_shows_the_run(kind_run, runner, cell, args):
    run = kind_run(cell, *args)
    r = runner.invoke(app, ["info", str(run.dir)])
    assert r.exit_code == 0, r.output
    assert re.search(rf"^model\s+{cell} 1x32, embedding 16", r.stdout, re.M) and re.search(r"^trained\s+30 steps", r.stdout, re.M), r.stdout
    facts = json.loads(runner.invoke(app, ["info", str(run.dir), "--json"]).stdout) if cell == "lstm" else None  # one kind: the same code
    assert facts is None or (facts["cell"] == cell and facts["step"] == 30 and facts["hidden"] == 32)


@pytest.mark.parametrize("cell, args", CASES, ids=IDS)
def test_inspect_traces_every_signal_of_the_kind(kind_run, runner, tmp_path, cell, args):
    run, kind = kind_run(cell, *args), registry.get(cell)
    out = tmp_path / "trace.json"
    r = runner.invoke(app, ["inspect", str(run.dir), "--text", TEXT, "--json", str(out)])
    assert r.exit_code == 0, r.output
    assert "layer 0, unit" in r.stdout and "how expected each character was" in r.stdout
    doc = json.loads(out.read_text())
    assert doc["model_config"]["cell"] == cell
    assert doc["signal_ranges"] == {s.name: s.range for s in kind.signals}
    assert all(doc["shapes"][f"signals.{s}"] == [1, len(TEXT), 32] for s in kind.signal_names)
    probs = np.array(doc["arrays"]["probs"])
    assert probs.shape[0] == len(TEXT) and np.allclose(probs.sum(-1), 1, atol=1e-4)


# the options each kind's paths are held equal under: its defaults, and settings that take another branch
PATH_OPTIONS = {
    "leaky": [{}, {"delays": (1, 3, 5)}, {"delays": (2, 4), "learn_tau": True, "tau_max": 20.0}],
    "esn": [{}, {"leak": 0.4}],
}
PATH_CASES = [(cell, o) for cell in registry.names(registry.SEQUENCE) for o in PATH_OPTIONS.get(cell, [{}])]


@pytest.mark.parametrize("cell, options", PATH_CASES, ids=[f"{c} {o}" if o else c for c, o in PATH_CASES])
def test_paths_agree_in_float64(cell, options):
    cfg = ModelConfig(cell=cell, layers=2, hidden=12, embed=6, vocab_size=11, dropout=0.0, options=options)
    m = CharRNN(cfg).to(torch.float64).eval()
    assert_paths_agree(m, 11)
