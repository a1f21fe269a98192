"""Fault injection: kill -9 at moments across a run's life (building the corpus cache, writing a
checkpoint, training, resuming), start it again each time (a fresh start while it holds no
checkpoint, else --resume), and the run ends with exactly the weights of a run never
interrupted (on the CPU, one thread). tests/test_crash.py holds the checkpoint-level checks."""

from __future__ import annotations

import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch
from helpers import TINY, make_text

from charrnn.training import checkpoint

STEPS = 24
OPTS = [*TINY, "--sample-chars", "0", "--device", "cpu", "--threads", "1", "--quiet", "--save-every", "1", "--eval-every", "15"]


@pytest.fixture(scope="module")
def big_corpus(tmp_path_factory) -> Path:
    """Large enough (about 1.4 MB) that building its cache takes a moment to kill inside."""
    p = tmp_path_factory.mktemp("corpus") / "big.txt"
    p.write_text(make_text(50_000, seed=3), encoding="utf-8")
    return p


def launch(where: Path, corpus: Path) -> subprocess.Popen:
    run = where / "checkpoints" / "f"
    args = ["--resume", "f", "--steps", str(STEPS)] if (run / checkpoint.LAST).exists() else [str(corpus), "--name", "f", "--steps", str(STEPS), *OPTS]
    if "--resume" in args:
        args += ["--quiet", "--save-every", "1", "--threads", "1", "--device", "cpu"]
    return subprocess.Popen([sys.executable, "-m", "charrnn", "train", *args], cwd=where, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def kill_when(proc: subprocess.Popen, seen, timeout: float = 120.0) -> bool:
    """SIGKILL the process as soon as seen() holds; False if it ended first."""
    end = time.monotonic() + timeout
    while proc.poll() is None:
        if seen():
            proc.send_signal(signal.SIGKILL)
            proc.wait()
            return True
        assert time.monotonic() < end, "the process neither ended nor reached the moment"
        time.sleep(0.0005)
    return False


def building_cache(where: Path):
    cache = where / "checkpoints" / ".cache"
    return lambda: cache.is_dir() and any(p.name.startswith(".tmp-") for p in os.scandir(cache))


def writing_checkpoint(where: Path):
    run = where / "checkpoints" / "f"
    return lambda: run.is_dir() and any(p.name.endswith(".tmp") for p in os.scandir(run))


def after(seconds: float):
    t = time.monotonic() + seconds
    return lambda: time.monotonic() >= t


def weights(run: Path) -> dict[str, torch.Tensor]:
    return checkpoint.load(run / checkpoint.LAST).weights


def finish(where: Path, corpus: Path) -> subprocess.CompletedProcess:
    proc = launch(where, corpus)
    out, err = proc.communicate(timeout=300)
    assert proc.returncode == 0, err
    return subprocess.CompletedProcess(proc.args, 0, out, err)


def reference(tmp_path: Path, corpus: Path) -> dict[str, torch.Tensor]:
    ref = tmp_path / "ref"
    ref.mkdir()
    finish(ref, corpus)
    return weights(ref / "checkpoints" / "f")


def check_same_run(where: Path, ref: dict[str, torch.Tensor]) -> None:
    run = where / "checkpoints" / "f"
    ck = checkpoint.load(run / checkpoint.LAST)
    assert ck.step == STEPS
    got = ck.weights
    assert got.keys() == ref.keys()
    for k in ref:
        assert torch.equal(got[k], ref[k]), k  # exactly the uninterrupted run's weights
    cache = where / "checkpoints" / ".cache"
    assert not [p.name for p in cache.iterdir() if p.name.startswith(".tmp-")]  # no half-built cache left behind
    assert sorted(p.name for p in run.iterdir()) == ["best.pt", "config.toml", "last.pt", "metrics.jsonl"]


def test_kill_during_the_cache_build_and_a_checkpoint_write_then_resume(tmp_path, big_corpus):
    ref = reference(tmp_path, big_corpus)
    where = tmp_path / "faulted"
    where.mkdir()
    hit = []
    for what, seen in [("the cache build", building_cache(where)), ("a checkpoint write, mid-training", writing_checkpoint(where))]:
        if kill_when(launch(where, big_corpus), seen):
            hit.append(what)
    assert "the cache build" in hit, hit  # the 1.4 MB corpus takes long enough to build to be caught
    finish(where, big_corpus)
    check_same_run(where, ref)


@pytest.mark.slow
def test_many_random_kills_then_resume(tmp_path, big_corpus):
    ref = reference(tmp_path, big_corpus)
    where = tmp_path / "faulted"
    where.mkdir()
    rng = random.Random(26)
    for _ in range(12):  # anywhere: starting up, building the cache, training, saving, resuming
        kill_when(launch(where, big_corpus), after(rng.uniform(0.5, 6.0)))
    finish(where, big_corpus)
    check_same_run(where, ref)
