"""A full disk says so: a warning at the start when the run folder has room for fewer than two
checkpoints, and on a failed write a one-line error naming ENOSPC, the sizes and what to do;
the previous checkpoint stays whole. On a real tiny tmpfs where this machine lets us mount one,
else with the writes patched to fail as a full disk fails."""

import collections
import errno
import io
import os
import shutil
import subprocess

import pytest
from helpers import TINY, no_traceback

from charrnn.cli import app
from charrnn.training import checkpoint

TRAIN = [*TINY, "--device", "cpu", "--quiet", "--sample-chars", "0", "--save-every", "1"]


def checkpoint_size(runner, corpus_file, root):
    r = runner.invoke(app, ["train", str(corpus_file), "--checkpoints", str(root), "--name", "probe", *TRAIN, "--steps", "1"])
    assert r.exit_code == 0, r.output
    return (root / "probe" / checkpoint.LAST).stat().st_size


@pytest.fixture
def tiny_disk(tmp_path):
    """Mount a 1 MB tmpfs (root only; skipped where mounting is refused)."""
    disk = tmp_path / "disk"
    disk.mkdir()
    try:
        subprocess.run(["mount", "-t", "tmpfs", "-o", "size=1m", "tmpfs", str(disk)], check=True, capture_output=True, timeout=20)
    except (OSError, subprocess.SubprocessError):
        pytest.skip("cannot mount a tmpfs here")
    yield disk
    subprocess.run(["umount", "-l", str(disk)], capture_output=True, timeout=20)


def fill(disk, leave):
    """Fill `disk` until only about `leave` bytes are free."""
    with open(disk / "filler", "wb") as f:
        f.write(b"\0" * max(shutil.disk_usage(disk).free - leave, 0))


def error_lines(r):
    return [line for line in r.stderr.splitlines() if line.startswith("error: ")]


def check_full_disk_error(r, run, need_about):
    assert r.exit_code == 1, r.output
    no_traceback(r.output)
    (line,) = error_lines(r)
    assert line.startswith(f"error: could not write checkpoint {run / checkpoint.LAST}: the disk is full (ENOSPC): a checkpoint needs about ")
    if (run / checkpoint.LAST).exists():
        assert f"then continue with: charrnn train --resume {run}. The previous checkpoint is intact." in line
    else:
        assert line.endswith("then start the run again.")
    assert "unexpected pos" not in line
    assert not [p for p in run.iterdir() if p.name.endswith(".tmp")]  # no half-written file left behind
    return line


def test_tmpfs_too_small_for_one_checkpoint(runner, workdir, corpus_file, tiny_disk):
    need = checkpoint_size(runner, corpus_file, workdir / "ck")
    fill(tiny_disk, need // 2)
    run = tiny_disk / "run"
    r = runner.invoke(app, ["train", str(corpus_file), "--checkpoints", str(workdir / "ck"), "--out", str(run), *TRAIN, "--steps", "5"])
    warnings = [line for line in r.stderr.splitlines() if line.startswith("only ")]
    assert len(warnings) == 1 and f"free for {run}; a checkpoint needs about " in warnings[0], r.stderr
    check_full_disk_error(r, run, need)
    assert not (run / checkpoint.LAST).exists()


def test_tmpfs_fills_during_the_run_and_the_previous_checkpoint_stays(runner, workdir, corpus_file, tiny_disk):
    need = checkpoint_size(runner, corpus_file, workdir / "ck")
    fill(tiny_disk, need * 3 // 2)  # room for one checkpoint, not for a second beside it
    run = tiny_disk / "run"
    r = runner.invoke(app, ["train", str(corpus_file), "--checkpoints", str(workdir / "ck"), "--out", str(run), *TRAIN, "--steps", "5"])
    assert sum(line.startswith("only ") for line in r.stderr.splitlines()) == 1, r.stderr  # warned at the start
    line = check_full_disk_error(r, run, need)
    assert line.endswith("The previous checkpoint is intact.")
    ck = checkpoint.load(run / checkpoint.LAST)  # whole, and it opens
    checkpoint.model_from(ck)
    assert ck.step == 1
    # with room made, the run goes on from there
    (tiny_disk / "filler").unlink()
    r = runner.invoke(app, ["train", "--resume", str(run), "--steps", "3", "--quiet"])
    assert r.exit_code == 0, r.output
    assert checkpoint.load(run / checkpoint.LAST).step == 3


class Disk:
    """A pretend disk of `capacity` bytes behind checkpoint writes: os.fdopen'd files raise
    ENOSPC past it, and shutil.disk_usage reports what is left."""

    def __init__(self, monkeypatch, capacity):
        self.left = capacity
        real_fdopen, real_usage, disk = os.fdopen, shutil.disk_usage, self

        class Full(io.FileIO):
            def write(self, b):
                n = len(memoryview(b).cast("B"))
                if n > disk.left:
                    raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
                disk.left -= n
                return super().write(b)

        def fdopen(fd, mode="r", *a, **k):
            if mode == "wb":
                return io.BufferedWriter(Full(fd, "wb"))
            return real_fdopen(fd, mode, *a, **k)

        usage = collections.namedtuple("usage", "total used free")
        monkeypatch.setattr(os, "fdopen", fdopen)
        monkeypatch.setattr(shutil, "disk_usage", lambda p: usage(capacity, capacity - disk.left, disk.left))


def test_patched_full_disk(runner, workdir, corpus_file, monkeypatch):
    need = checkpoint_size(runner, corpus_file, workdir / "ck")
    Disk(monkeypatch, need * 3 // 2)
    run = workdir / "run"
    r = runner.invoke(app, ["train", str(corpus_file), "--checkpoints", str(workdir / "ck"), "--out", str(run), *TRAIN, "--steps", "5"])
    assert sum(line.startswith("only ") for line in r.stderr.splitlines()) == 1, r.stderr
    line = check_full_disk_error(r, run, need)
    assert line.endswith("The previous checkpoint is intact.")
    assert checkpoint.load(run / checkpoint.LAST).step == 1


def test_estimate_is_near_the_real_size(runner, workdir, corpus_file):
    import torch

    from charrnn.training import space

    need = checkpoint_size(runner, corpus_file, workdir / "ck")
    ck = checkpoint.load(workdir / "ck" / "probe" / checkpoint.LAST)
    model, _ = checkpoint.model_from(ck)
    guess = space.estimate(model, torch.optim.AdamW(model.parameters()))
    assert need * 0.8 < guess < need * 2.0, (guess, need)


def test_no_warning_with_room(runner, workdir, corpus_file):
    r = runner.invoke(app, ["train", str(corpus_file), "--name", "roomy", *TRAIN, "--steps", "2"])
    assert r.exit_code == 0 and "free for" not in r.stderr, r.output
