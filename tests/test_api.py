"""The Python API (charrnn/api.py): train, load, sample, trace, info, from a script."""

from __future__ import annotations

import json
import math
import subprocess
import sys

import numpy as np
import pytest

import charrnn
from charrnn.cli import app
from charrnn.errors import CharRNNError, ConfigError

TINY = dict(layers=1, hidden=32, embed=16, seq_len=16, batch_size=4, eval_every=10, eval_tokens=512, sample_chars=20, warmup=5)  # noqa: C408


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("api")
    from helpers import make_text

    corpus = tmp / "corpus.txt"
    corpus.write_text(make_text(), encoding="utf-8")
    m = charrnn.train(corpus, steps=20, cell="lstm", doc_sep="line", device="cpu", name="api", checkpoints=tmp / "ck", **TINY)
    return m, tmp


def test_train_returns_the_trained_model(trained):
    m, tmp = trained
    assert m.result.step == 20 and m.result.stopped_by == "steps"
    assert m.run_dir == tmp / "ck" / "api" and (m.run_dir / "last.pt").is_file()
    info = m.info
    assert info["cell"] == "lstm" and info["hidden"] == 32
    # the best evaluation metrics.jsonl recorded, in bits (characters: one token each), and better than a uniform guess
    records = [json.loads(x) for x in (m.run_dir / "metrics.jsonl").read_text().splitlines()]
    best = min((r for r in records if r["best"]), key=lambda r: r["val_loss"])
    assert info["best_val_bpc"] == pytest.approx(best["val_bpc"], rel=1e-9, abs=0)
    assert info["best_val_bpc"] == pytest.approx(info["best_val_loss"] / math.log(2), rel=1e-9, abs=0)
    assert info["best_val_bpc"] < math.log2(info["vocab_size"])
    assert charrnn.load(m.run_dir, prefer="last").info["step"] == 20
    assert "lstm" in repr(m)


def test_sample_is_the_cli_s_text_for_a_seed(trained, runner):
    m, tmp = trained
    for kw, flags in [
        (dict(prime="The", temperature=1.0, length=120, seed=3), ["--prime", "The", "--temperature", "1", "--length", "120", "--seed", "3"]),  # noqa: C408
        (dict(length=200, top_k=5, seed=11, stop_at_eos=False), ["--length", "200", "--top-k", "5", "--seed", "11", "--no-stop"]),  # noqa: C408
        (dict(prime="A", stop=" dog", temperature=1.5, seed=5), ["--prime", "A", "--stop", " dog", "--temperature", "1.5", "--seed", "5"]),  # noqa: C408
    ]:
        r = runner.invoke(app, ["sample", str(m.run_dir), *flags])
        assert r.exit_code == 0, r.output
        text = m.sample(**kw)
        assert r.stdout == text + "\n" and len(text) > 1
        assert charrnn.load("api", checkpoints=tmp / "ck").sample(**kw) == text  # a run's name, loaded afresh
    assert m.sample(seed=1) != m.sample(seed=2)


def test_trace_gives_the_inspector_s_arrays(trained):
    m, _ = trained
    t = m.trace("the cat sat on the mat.", gradients=True)
    T = len("the cat sat on the mat.")
    assert t.tokens == tuple("the cat sat on the mat.") and t.cell == "lstm"
    assert set(t.signals) >= {"h", "c", "forget", "input", "output"}
    assert all(v.shape == (1, T, 32) and v.dtype == np.float32 for v in t.signals.values())
    assert t.probs.shape == (T, len(t.vocab)) and np.allclose(t.probs.sum(-1), 1, atol=1e-5)
    assert 0 <= t.signals["forget"].min() and t.signals["forget"].max() <= 1
    assert t.grad_flow["h"].shape == (1, T - 1) and (t.grad_flow["h"] > 0).all()
    p = m.probabilities("the ca")  # the next character's distribution: the trace's last row, and greedy sampling's pick
    last = m.trace("the ca")
    assert list(p) == list(last.vocab) and np.allclose(list(p.values()), last.probs[-1], atol=1e-6, rtol=0)
    assert abs(sum(p.values()) - 1) < 1e-5
    assert m.sample(prime="the ca", temperature=0, length=1) == "the ca" + max(p, key=p.get)


def test_mistakes_are_charrnn_errors(trained, tmp_path):
    m, _ = trained
    with pytest.raises(ConfigError, match="no option 'hiden'"):
        charrnn.train(tmp_path / "x.txt", hiden=3)
    with pytest.raises(CharRNNError, match="no checkpoint or run"):
        charrnn.load(tmp_path / "nothing")
    with pytest.raises(CharRNNError, match="temperature"):
        m.sample(temperature=-1)
    with pytest.raises(CharRNNError):
        m.trace("unknown: ZQX#")


def test_importing_charrnn_stays_light():
    code = "import sys, charrnn; print(callable(charrnn.load), callable(charrnn.train), 'torch' in sys.modules)"
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert r.stdout.split() == ["True", "True", "False"]
