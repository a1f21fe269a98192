"""Distributed training with real multi-process torchrun runs: gloo on the CPU (`--device cpu`,
so a machine with GPUs runs the same tests)."""

import json
import os
import signal
import subprocess
import sys
import time

import pytest
import torch

from charrnn.training import checkpoint
from helpers import make_text, no_traceback

MODEL = ["--layers", "1", "--hidden", "24", "--embed", "8", "--seq-len", "16", "--warmup", "3", "--sample-chars", "0"]


def torchrun(cwd, nproc, *args, timeout=240):
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc-per-node", str(nproc), "-m", "charrnn", "train",
           *args, "--quiet", "--threads", "1", "--device", "cpu"]  # fmt: skip
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    return subprocess.run(cmd, cwd=cwd, capture_output=True, text=True, timeout=timeout, env=env)


def single(cwd, *args, timeout=240):
    cmd = [sys.executable, "-m", "charrnn", "train", *args, "--quiet", "--threads", "1", "--device", "cpu"]
    return subprocess.run(cmd, cwd=cwd, capture_output=True, text=True, timeout=timeout)


@pytest.fixture
def corpus(tmp_path):
    p = tmp_path / "corpus.txt"
    p.write_text(make_text(1500), encoding="utf-8")
    return p


def test_two_processes_train_and_the_checkpoint_samples_alone(tmp_path, corpus):
    r = torchrun(tmp_path, 2, str(corpus), *MODEL, "--batch-size", "4", "--steps", "90", "--eval-every", "30", "--lr", "0.03", "--name", "d")
    assert r.returncode == 0, r.stderr[-3000:]
    out = r.stdout + r.stderr
    assert out.count("done at step 90") == 1  # rank 0 alone reports
    assert "128 tokens a step" in out  # the global batch: 2 ranks x 4 streams x 16 steps
    ck = checkpoint.load(tmp_path / "checkpoints" / "d" / "last.pt")
    assert ck.task.world == 2 and not any(k.startswith("module.") for k in ck.weights)
    assert ck.task.carried_state[0].shape == (1, 8, 24)  # both ranks' streams
    lines = (tmp_path / "checkpoints" / "d" / "metrics.jsonl").read_text().splitlines()
    losses = [json.loads(x)["val_loss"] for x in lines]
    assert len(losses) == 4 and losses[-1] < losses[0] - 0.3  # it learns
    s = subprocess.run([sys.executable, "-m", "charrnn", "sample", "d", "--length", "30", "--seed", "1", "--device", "cpu"], cwd=tmp_path,
                       capture_output=True, text=True, timeout=120)  # fmt: skip
    assert s.returncode == 0 and len(s.stdout) == 31
    # resume with one process instead of two
    r1 = single(tmp_path, "--resume", "d", "--steps", "100")
    assert r1.returncode == 0, r1.stderr[-2000:]
    assert "resuming at step 90" in r1.stderr and checkpoint.load(tmp_path / "checkpoints" / "d" / "last.pt").step == 100


def test_two_ranks_of_b_equal_one_rank_of_2b(tmp_path, corpus):
    """One optimizer step: 2 processes x batch B reach the same parameters as one process x 2B."""
    # no dropout (its masks differ by rank) and fp32 (bf16 rounds the two reductions differently)
    common = [str(corpus), *MODEL, "--dropout", "0", "--precision", "fp32", "--steps", "2", "--eval-every", "100", "--final-eval-tokens", "64", "--seed", "3"]
    a = torchrun(tmp_path, 2, *common, "--batch-size", "3", "--out", "two")
    b = single(tmp_path, *common, "--batch-size", "6", "--out", "one")
    assert a.returncode == 0, a.stderr[-3000:]
    assert b.returncode == 0, b.stderr[-3000:]
    wa, wb = (checkpoint.load(tmp_path / d / "last.pt").weights for d in ("two", "one"))
    for k in wa:
        torch.testing.assert_close(wa[k], wb[k], atol=1e-6, rtol=1e-5)
    wc = checkpoint.load(tmp_path / "two" / "last.pt").task.carried_state[0]
    wd = checkpoint.load(tmp_path / "one" / "last.pt").task.carried_state[0]
    torch.testing.assert_close(wc, wd, atol=1e-5, rtol=1e-4)  # the same streams, carried the same way


def test_single_run_resumes_under_torchrun_and_errors_stay_one_line(tmp_path, corpus):
    r = single(tmp_path, str(corpus), *MODEL, "--batch-size", "4", "--steps", "10", "--eval-every", "5", "--name", "s")
    assert r.returncode == 0, r.stderr[-2000:]
    r2 = torchrun(tmp_path, 2, "--resume", "s", "--steps", "16")
    assert r2.returncode == 0, r2.stderr[-3000:]
    assert checkpoint.load(tmp_path / "checkpoints" / "s" / "last.pt").step == 16
    bad = torchrun(tmp_path, 2, str(tmp_path / "missing.txt"), *MODEL, "--steps", "5")
    assert bad.returncode != 0
    errors = [line for line in bad.stderr.splitlines() if line.startswith("error: ")]
    assert errors == [errors[0]] and "no such file" in errors[0]
    no_traceback("\n".join(line for line in bad.stderr.splitlines() if "charrnn" in line and "File" in line))


def _children_by_rank(parent: int) -> dict[int, int]:
    """pid of each torchrun worker, by its RANK."""
    found = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            stat = open(f"/proc/{entry}/stat").read()
            ppid = int(stat.rsplit(")", 1)[1].split()[1])
            if ppid != parent:
                continue
            env = open(f"/proc/{entry}/environ", "rb").read().split(b"\0")
        except OSError:
            continue
        for kv in env:
            if kv.startswith(b"RANK="):
                found[int(kv[5:])] = int(entry)
    return found


def test_a_rank_that_dies_ends_the_run_and_keeps_the_checkpoint(tmp_path, corpus):
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc-per-node", "2", "-m", "charrnn", "train",
           str(corpus), *MODEL, "--batch-size", "4", "--steps", "100000", "--save-every", "5", "--eval-every", "1000",
           "--quiet", "--threads", "1", "--device", "cpu", "--name", "k"]  # fmt: skip
    proc = subprocess.Popen(cmd, cwd=tmp_path, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            env={**os.environ, "OMP_NUM_THREADS": "1"})  # fmt: skip
    last = tmp_path / "checkpoints" / "k" / "last.pt"
    deadline = time.monotonic() + 120
    while not (last.exists() and checkpoint.load(last).step >= 10):
        assert proc.poll() is None and time.monotonic() < deadline, proc.communicate()
        time.sleep(0.1)
    ranks = _children_by_rank(proc.pid)
    assert set(ranks) == {0, 1}
    os.kill(ranks[1], signal.SIGKILL)
    out, err = proc.communicate(timeout=120)
    assert proc.returncode != 0
    assert "error: another process of this run stopped" in err
    ck = checkpoint.load(last)  # whole, and it opens
    assert ck.step >= 10


@pytest.mark.parametrize("device", ["cuda", "auto"])
def test_more_ranks_than_gpus_is_one_line(monkeypatch, device):
    """torchrun --nproc-per-node 2 on a machine with one GPU: the error says how many there are and what to run."""
    from charrnn.errors import ConfigError
    from charrnn.runtime import distributed

    monkeypatch.setenv("WORLD_SIZE", "2")
    monkeypatch.setenv("LOCAL_WORLD_SIZE", "2")
    monkeypatch.setenv("LOCAL_RANK", "1")
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 1)
    monkeypatch.setattr(torch.distributed, "is_initialized", lambda: False)
    with pytest.raises(ConfigError, match="2 processes on this machine but it has 1 CUDA GPU: run --nproc-per-node 1, or add --device cpu"):
        distributed.init(device)
