"""Shared fixtures: tiny generated corpora, a fixed seed, and a CLI runner (helpers.py
holds the plain functions and constants the tests import)."""

from __future__ import annotations

import os
import random
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

import pytest
import torch
from helpers import TINY, make_text
from typer.testing import CliRunner

# The CLI's Rich consoles read COLUMNS once, when they are built, and keep that width.
# Build them now, with no COLUMNS (pytest-xdist gives its workers COLUMNS=80), so that
# they follow what each `runner.invoke(..., env={"COLUMNS": ...})` asks for, whatever
# ran before in this process.
os.environ.pop("COLUMNS", None)
import charrnn.cli.common  # noqa: E402,F401


# The tests' models are tiny: a second OpenMP thread only adds synchronisation,
# and on a busy 2-core machine it can make each step many times slower. The suite
# runs one worker a core instead (pytest-xdist, pyproject's addopts), and the
# commands the tests start as processes (torchrun, the crash tests) inherit one
# thread each through the environment.
torch.set_num_threads(1)
os.environ.setdefault("OMP_NUM_THREADS", "1")


@pytest.fixture(autouse=True, scope="session")
def _precision_probe(tmp_path_factory: pytest.TempPathFactory) -> None:
    """`--precision auto` on a CPU with native bf16 measures this machine once and caches
    it (training/autoprecision.py). The tests take a recorded probe instead, so that
    they choose alike on every machine: an AMX CPU's, where a bf16 step of the defaults
    costs 0.3x an fp32 step of the fp32 recipe, and auto means bf16. Subprocesses
    (torchrun, the crash tests) inherit the cache folder."""
    from charrnn.training import autoprecision

    os.environ["CHARRNN_CACHE_DIR"] = str(tmp_path_factory.mktemp("cache"))
    os.environ.pop("CHARRNN_REPROBE", None)
    autoprecision.save(autoprecision.Probe(0.006, 0.02, "a recorded AMX CPU", torch.__version__, 1, "AMX"))


@pytest.fixture(autouse=True)
def _seed() -> None:
    random.seed(0)
    torch.manual_seed(0)


@pytest.fixture(autouse=True)
def _truecolor_apps(monkeypatch: pytest.MonkeyPatch) -> None:
    """Textual apps draw in true colour whatever terminal runs the tests (TERM=xterm alone
    makes Textual's console, and so the heatmap, 16-colour), so snapshots hold everywhere;
    tests/tui/test_depth.py sets other depths itself. (The snapshot plugin has imported
    Textual before this file, so the environment variable would come too late.)"""
    import textual.constants

    monkeypatch.setattr(textual.constants, "COLOR_SYSTEM", "truecolor")


@pytest.fixture
def corpus_file(tmp_path: Path) -> Path:
    p = tmp_path / "corpus.txt"
    p.write_text(make_text(), encoding="utf-8")
    return p


@pytest.fixture
def runner() -> CliRunner:
    return CliRunner()


@pytest.fixture
def workdir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Run in a fresh folder, so `checkpoints/` lands in tmp_path."""
    monkeypatch.chdir(tmp_path)
    return tmp_path


@dataclass
class KindRun:
    """A tiny run of one kind, trained through the CLI: 20 steps, then resumed to 30."""

    cell: str
    args: tuple[str, ...]
    dir: Path
    trained: Any  # the CliRunner result of `charrnn train ... --steps 20`
    resumed: Any  # ... and of `charrnn train --resume DIR --steps 30`


@pytest.fixture(scope="session")
def kind_run(tmp_path_factory: pytest.TempPathFactory) -> Callable[..., KindRun]:
    """kind_run(cell, *options) -> its KindRun, trained once a session and shared by every test
    that asks for the same cell and options (tests/test_every_kind.py and each kind's own file),
    so no test trains a kind the others have trained already."""
    from charrnn.cli import app

    root = tmp_path_factory.mktemp("kinds")
    corpus = root / "corpus.txt"
    corpus.write_text(make_text(), encoding="utf-8")
    runner, runs = CliRunner(), {}

    def get(cell: str, *args: str) -> KindRun:
        if (cell, *args) not in runs:
            run = root / "ck" / "-".join([cell, *(a.strip("-").replace(",", "_") for a in args)])
            trained = runner.invoke(app, ["train", str(corpus), "--cell", cell, *args, "--device", "cpu", *TINY, "--quiet",
                                          "--steps", "20", "--out", str(run), "--checkpoints", str(root / "ck")])  # fmt: skip
            assert trained.exit_code == 0, trained.output
            resumed = runner.invoke(app, ["train", "--resume", str(run), "--steps", "30", "--quiet", "--checkpoints", str(root / "ck")])
            runs[cell, *args] = KindRun(cell, args, run, trained, resumed)
        return runs[cell, *args]

    return get
