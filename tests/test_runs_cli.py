"""`charrnn runs` (the table of runs) and the exit status of `charrnn train --tui`."""

from __future__ import annotations

import json
import os
import threading
import time

import pytest
from helpers import TINY

from charrnn.cli import app


def train(runner, corpus, name, *extra):
    r = runner.invoke(app, ["train", str(corpus), "--name", name, "--device", "cpu", *TINY, *extra])
    assert r.exit_code == 0, r.output
    return r


def test_runs_lists_every_run_newest_first(runner, workdir, corpus_file):
    r = runner.invoke(app, ["runs"])
    assert r.exit_code == 0 and "no runs under checkpoints/" in r.stdout
    train(runner, corpus_file, "old", "--steps", "10", "--cell", "gru")
    train(runner, corpus_file, "new", "--steps", "20", "--doc-sep", "line")
    (workdir / "checkpoints" / "broken").mkdir()
    (workdir / "checkpoints" / "broken" / "last.pt").write_bytes(b"not a checkpoint")
    now = time.time()
    for i, name in enumerate(["broken", "old", "new"]):  # modification times: new is the newest
        for f in (workdir / "checkpoints" / name).glob("*.pt"):
            os.utime(f, (now - 100 + 10 * i, now - 100 + 10 * i))
    r = runner.invoke(app, ["runs", "--json"])
    assert r.exit_code == 0, r.output
    rows = json.loads(r.stdout)
    assert [row["name"] for row in rows] == ["new", "old", "broken"]
    new, old, broken = rows
    assert new["model"] == "lstm 1x32" and old["model"] == "gru 1x32" and new["tokenizer"] == "char"
    assert new["step"] == 20 and old["step"] == 10 and new["corpus"] == "corpus.txt"
    assert 0 < new["best_val_bpc"] < 10 and new["elapsed_s"] >= 0
    assert "broken/last.pt" in broken["error"] and "not a charrnn checkpoint" in broken["error"]
    r = runner.invoke(app, ["runs"], env={"COLUMNS": "160"})
    assert r.exit_code == 0, r.output
    lines = r.stdout.splitlines()
    assert lines[0].split()[:4] == ["run", "model", "tokenizer", "corpus"] and "best val bits/char" in lines[0]
    assert lines[1].startswith("new") and lines[2].startswith("old") and lines[3].startswith("broken")
    assert f"{new['best_val_bpc']:.4f}" in lines[1] and "gru 1x32" in lines[2]


@pytest.mark.parametrize("quit_by_user, code", [(True, 0), (False, 130)])
def test_train_tui_exits_0_after_q_and_130_when_interrupted(runner, workdir, corpus_file, monkeypatch, quit_by_user, code):
    """q in the app stops the run with a clean save: a deliberate end, status 0. An
    interrupt (a signal) stays 130. The app itself is replaced by its outcome here;
    tests/tui/test_app.py checks that q sets quit_by_user."""
    import charrnn.tui.app as tui_app

    def fake(make_trainer, root):  # what the app returns after the user stopped the run at once
        stop = threading.Event()
        stop.set()
        return make_trainer([], stop).run(), quit_by_user

    monkeypatch.setattr(tui_app, "train_in_app", fake)
    r = runner.invoke(app, ["train", str(corpus_file), "--tui", "--name", "t", "--steps", "1000", *TINY])
    assert r.exit_code == code, r.output
    assert "stopped at step" in r.stdout and (workdir / "checkpoints" / "t" / "last.pt").is_file()
