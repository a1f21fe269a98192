"""One process per run folder: a second training, resume or app run into a folder in use is
refused with one line naming the holder; readers need no lock; a killed holder leaves none."""

import os
import signal
import subprocess
import sys
import textwrap

import pytest
from helpers import TINY, one_line_error

from charrnn.cli import app
from charrnn.errors import RunBusyError
from charrnn.training.runlock import NAME, RunLock
from test_crash import cmd, start, wait_for


def hold_lock(folder):
    """Another process that holds the run folder's lock until killed."""
    code = textwrap.dedent(f"""
        import sys, time
        from charrnn.training.runlock import RunLock
        RunLock({str(folder)!r}).acquire()
        print("locked", flush=True)
        time.sleep(600)
    """)
    proc = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, text=True)
    assert proc.stdout.readline().strip() == "locked"
    return proc


def test_lock_is_exclusive_and_released(tmp_path):
    run = tmp_path / "r"
    with RunLock(run):
        assert (run / NAME).read_text().startswith(f"pid {os.getpid()} on ")
        with pytest.raises(RunBusyError, match=f"pid {os.getpid()}"):
            RunLock(run).acquire()  # a second open file description conflicts even in one process
    assert not (run / NAME).exists()  # released: the folder is left as it was
    RunLock(run).acquire().release()


def test_a_killed_holder_leaves_no_stale_lock(tmp_path):
    proc = hold_lock(tmp_path / "r")
    with pytest.raises(RunBusyError, match=f"pid {proc.pid} on "):
        RunLock(tmp_path / "r").acquire()
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    assert (tmp_path / "r" / NAME).exists()  # the file stays, its lock went with the process
    RunLock(tmp_path / "r").acquire().release()


def test_new_run_into_a_folder_in_use_is_refused_before_writing(runner, workdir, corpus_file):
    run = workdir / "same"
    holder = hold_lock(run)
    try:
        r = runner.invoke(app, ["train", str(corpus_file), "--out", str(run), *TINY, "--steps", "3", "--device", "cpu"])
    finally:
        holder.kill()
        holder.wait()
    one_line_error(r, f"{run} is in use by another charrnn process (pid {holder.pid} on ")
    assert sorted(p.name for p in run.iterdir()) == [NAME]  # nothing written: no checkpoint, no metrics


def test_resume_while_training_is_refused_then_works_after(tmp_path, corpus_file):
    """Through the real CLI: a training holds its folder; `--resume` of it is one line naming its pid."""
    last = tmp_path / "checkpoints" / "k" / "last.pt"
    proc = start(tmp_path, str(corpus_file), "--name", "k", "--steps", "100000")
    try:
        wait_for(last, proc)
        second = subprocess.run(cmd("--resume", "k", "--time", "10s"), cwd=tmp_path, capture_output=True, text=True, timeout=120)
        assert proc.poll() is None  # the first one trains on
    finally:
        proc.send_signal(signal.SIGKILL)
        proc.wait()
    assert second.returncode == 1, second.stderr
    lines = [line for line in second.stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("error: "), second.stderr
    assert f"is in use by another charrnn process (pid {proc.pid} on " in lines[0]
    # the holder was killed: its lock went with it, and the run resumes
    from charrnn.training import checkpoint

    at = checkpoint.load(last).step
    done = subprocess.run(cmd("--resume", "k", "--steps", str(at + 2)), cwd=tmp_path, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert not (last.parent / NAME).exists()


def test_python_api_train_into_a_locked_folder(tmp_path, corpus_file):
    import charrnn

    holder = hold_lock(tmp_path / "r")
    try:
        with pytest.raises(RunBusyError, match=f"pid {holder.pid}"):
            charrnn.train(corpus_file, name="r", checkpoints=tmp_path, steps=2, layers=1, hidden=8, embed=8, device="cpu")
    finally:
        holder.kill()
        holder.wait()


def test_readers_take_no_lock(runner, workdir, corpus_file):
    r = runner.invoke(app, ["train", str(corpus_file), "--name", "k", *TINY, "--steps", "3", "--device", "cpu", "--quiet"])
    assert r.exit_code == 0, r.output
    holder = hold_lock(workdir / "checkpoints" / "k")
    try:
        for args in (["info", "k"], ["sample", "k", "--length", "5", "--seed", "1"], ["runs"]):
            r = runner.invoke(app, args)
            assert r.exit_code == 0, (args, r.output)
    finally:
        holder.kill()
        holder.wait()


async def test_the_app_refuses_a_folder_in_use(tmp_path, corpus_file):
    """The TUI trains through the same Trainer.run: a run folder in use is a notification naming the holder."""
    from helpers import until

    from charrnn.config import DataConfig, ModelConfig, TrainConfig
    from charrnn.training import plan
    from charrnn.tui import messages as m
    from charrnn.tui.app import CharRNNApp

    p = plan.new_run(DataConfig(paths=(str(corpus_file),)), ModelConfig(layers=1, hidden=8, embed=8),
                     TrainConfig(steps=5, device="cpu"), tmp_path, "run")  # fmt: skip
    holder = hold_lock(tmp_path / "run")
    seen: list = []
    try:
        app = CharRNNApp(lambda sinks, stop: plan.trainer(p, sinks, stop), root=tmp_path)
        async with app.run_test(size=(80, 24), message_hook=seen.append, notifications=True) as pilot:
            await until(pilot, lambda: any(isinstance(x, m.TrainFailed) for x in seen), what="the refusal")
            await pilot.pause(0.2)
            assert any(f"in use by another charrnn process (pid {holder.pid} on " in n.message for n in app._notifications)
            assert app.is_running
    finally:
        holder.kill()
        holder.wait()
    assert sorted(x.name for x in (tmp_path / "run").iterdir()) == [NAME]
