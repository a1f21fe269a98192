"""Crash safety: killing training at any moment leaves a checkpoint that loads."""

import random
import signal
import subprocess
import sys
import time

from charrnn.training import checkpoint
from helpers import TINY, no_traceback


def cmd(*extra):
    fresh = [] if "--resume" in extra else [*TINY, "--sample-chars", "0"]
    return [sys.executable, "-m", "charrnn", "train", *extra, *fresh, "--quiet", "--save-every", "1"]


def start(tmp_path, *extra):
    return subprocess.Popen(cmd(*extra), cwd=tmp_path, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def wait_for(path, proc, past_step=-1, timeout=60.0):
    """Until `path` holds a checkpoint beyond `past_step`: the process is really training."""
    t = time.monotonic() + timeout
    while not (path.exists() and checkpoint.load(path).step > past_step):
        assert proc.poll() is None, proc.communicate()
        assert time.monotonic() < t
        time.sleep(0.05)


def test_sigkill_at_random_moments_always_leaves_a_loadable_checkpoint(tmp_path, corpus_file):
    rng = random.Random(1234)
    run = tmp_path / "checkpoints" / "k"
    last = run / "last.pt"
    proc = start(tmp_path, str(corpus_file), "--name", "k", "--steps", "100000")
    steps = [-1]
    for kill in range(5):
        wait_for(last, proc, past_step=steps[-1])
        before = checkpoint.load(last).step
        time.sleep(rng.uniform(0.0, 1.5))  # somewhere in the middle of steps and saves
        assert proc.poll() is None, proc.communicate()  # still training when killed
        proc.send_signal(signal.SIGKILL)
        proc.wait()
        ck = checkpoint.load(last)  # whole, and it opens
        model, tok = checkpoint.model_from(ck)
        assert ck.step >= before
        steps.append(ck.step)
        proc = start(tmp_path, "--resume", "k")  # goes on from the checkpoint it finds
    time.sleep(1.0)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    assert steps == sorted(set(steps))  # every resume went on from where the kill left it
    # a resumed run that finishes goes on from the last step and leaves no temporary files behind
    at = checkpoint.load(last).step
    done = subprocess.run(cmd("--resume", "k", "--steps", str(at + 3)), cwd=tmp_path, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert f"resuming at step {at:,}" in done.stderr and checkpoint.load(last).step == at + 3
    assert sorted(p.name for p in run.iterdir()) == ["best.pt", "config.toml", "last.pt", "metrics.jsonl"]


def test_ctrl_c_saves_then_exits(tmp_path, corpus_file):
    proc = start(tmp_path, str(corpus_file), "--name", "c", "--steps", "100000")
    last = tmp_path / "checkpoints" / "c" / "last.pt"
    wait_for(last, proc)
    time.sleep(0.5)
    proc.send_signal(signal.SIGINT)
    out, err = proc.communicate(timeout=60)
    assert proc.returncode == 130, err
    no_traceback(err)
    assert "stopping: saving a checkpoint" in err and "interrupted" in err
    ck = checkpoint.load(last)
    assert ck.step > 0 and f"done at step {ck.step:,}" in err
