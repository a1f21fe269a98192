"""Shell completion through Typer's own entry point (the `_CHARRNN_COMPLETE` variable the
installed script sets, as bash and zsh call it), and once through a real bash that
sourced the script `charrnn --install-completion` wrote."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest

from charrnn.cli import app
from charrnn.models import registry
from helpers import TINY


def bash(runner, line: str, env: dict | None = None) -> list[str]:  # type: ignore[no-untyped-def]
    """What bash is offered for the last word of `line` (a trailing space: a new, empty word)."""
    words = line.split(" ")
    r = runner.invoke(app, [], prog_name="charrnn",
                      env={"_CHARRNN_COMPLETE": "complete_bash", "COMP_WORDS": line, "COMP_CWORD": str(len(words) - 1), **(env or {})})  # fmt: skip
    assert r.exit_code == 0, r.output
    return [w for w in r.stdout.splitlines() if w]


def fake_runs(root: Path, names: list[str]) -> None:
    """Run folders as `find` sees them, oldest first (the checkpoint files are never opened to complete)."""
    for i, name in enumerate(names):
        (root / name).mkdir(parents=True)
        (root / name / "last.pt").write_bytes(b"")
        os.utime(root / name / "last.pt", (time.time() - 100 + i, time.time() - 100 + i))


def test_run_names_newest_first(workdir, runner, corpus_file):
    r = runner.invoke(app, ["train", str(corpus_file), *TINY, "--steps", "2", "--device", "cpu", "-q", "--name", "real", "--sample-chars", "0"])
    assert r.exit_code == 0, r.output
    root = workdir / "checkpoints"
    fake_runs(root, ["older", "rival"])
    (root / "no-checkpoint").mkdir()  # a folder, but not a run
    for cmd in ("sample", "inspect", "info", "export", "predict", "tui"):
        assert bash(runner, f"charrnn {cmd} ") == ["real", "rival", "older"], cmd
    assert bash(runner, "charrnn sample r") == ["real", "rival"]
    assert bash(runner, "charrnn sample x") == []
    # the runs of the --checkpoints folder typed before the cursor
    fake_runs(workdir / "elsewhere", ["far"])
    assert bash(runner, "charrnn sample --checkpoints elsewhere ") == ["far"]
    # a path being typed completes as a path
    assert bash(runner, "charrnn info checkpoints/re") == ["checkpoints/real/"]


def test_cells_tasks_and_corpora(workdir, runner):
    assert bash(runner, "charrnn train --cell ") == list(registry.KINDS)  # every kind, in the registry's order
    assert {"rnn", "lstm", "gru", "recursive", "treelstm", "leaky", "esn", "jordan"} <= set(registry.KINDS)
    assert bash(runner, "charrnn train --cell l") == ["lstm", "leaky"]
    assert bash(runner, "charrnn tui --cell g") == ["gru"]
    assert bash(runner, "charrnn train --task ") == ["lm", "classify", "seq2seq", "tree"]
    assert bash(runner, "charrnn train --task s") == ["seq2seq"]
    assert bash(runner, "charrnn compare --cells lstm,") == ["lstm,rnn", "lstm,gru", "lstm,leaky", "lstm,esn", "lstm,jordan"]
    assert bash(runner, "charrnn compare --cells gru,l") == ["gru,lstm", "gru,leaky"]
    (workdir / "texts").mkdir()
    (workdir / "texts" / "poems.txt").write_text("a\n")
    (workdir / "notes.txt").write_text("b\n")
    offered = bash(runner, "charrnn train ")
    assert {"stdlib", "pydoc-topics", "listops", "addition", "notes.txt", "texts/"} <= set(offered)
    assert bash(runner, "charrnn train texts/") == ["texts/poems.txt"]
    assert bash(runner, "charrnn train --cell gru no") == ["notes.txt"]
    assert bash(runner, "charrnn compare long") == ["longrange-brackets", "longrange-copy"]


def test_zsh_gets_each_value_with_its_help(runner):
    r = runner.invoke(app, [], prog_name="charrnn", env={"_CHARRNN_COMPLETE": "complete_zsh", "_TYPER_COMPLETE_ARGS": "charrnn train --cell "})
    assert r.exit_code == 0, r.output
    assert '"lstm":"long short-term memory' in r.stdout
    assert '"recursive":"the recursive unit over a binarised tree\\\\: h = tanh(b + W [h…"' in r.stdout  # brackets kept, help cut short
    assert r.stdout.count("\n") == len(registry.KINDS)  # one line per kind: no help wrapped onto a second line


def test_help_offers_install_completion(runner):
    r = runner.invoke(app, ["--help"], env={"COLUMNS": "120"})
    assert "--install-completion" in r.stdout and "--show-completion" in r.stdout


@pytest.mark.skipif(shutil.which("bash") is None, reason="needs bash")
def test_install_completion_in_a_real_bash(tmp_path):
    exe = Path(sys.executable).parent / "charrnn"
    if not exe.exists():
        pytest.skip("the charrnn command is not installed beside this Python")
    home = tmp_path / "home"
    home.mkdir()
    fake_runs(tmp_path / "checkpoints", ["mine"])
    env = {**os.environ, "HOME": str(home), "PATH": f"{exe.parent}{os.pathsep}{os.environ['PATH']}",
           "PYTHONPATH": os.pathsep.join(p for p in (str(Path(__file__).parents[1]), os.environ.get("PYTHONPATH")) if p)}  # fmt: skip
    # A second command keeps bash as charrnn's parent (bash -c execs a lone command), so the
    # shell is detected as a user's would be, whatever started pytest.
    r = subprocess.run(["bash", "-c", "charrnn --install-completion; exit $?"], env=env, cwd=tmp_path, capture_output=True, text=True, timeout=120)
    assert r.returncode == 0 and "bash completion installed" in r.stdout, r.stdout + r.stderr
    assert "source" in (home / ".bashrc").read_text()
    script = (
        "source ~/.bash_completions/charrnn.sh\n"
        'COMP_WORDS=(charrnn train --cell l); COMP_CWORD=3; _charrnn_completion charrnn; echo "${COMPREPLY[*]}"\n'
        'COMP_WORDS=(charrnn sample ""); COMP_CWORD=2; _charrnn_completion charrnn; echo "${COMPREPLY[*]}"\n'
    )
    r = subprocess.run(["bash", "-c", script], env=env, cwd=tmp_path, capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stderr
    assert r.stdout.splitlines() == ["lstm leaky", "mine"]
