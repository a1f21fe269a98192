"""Shared fixtures: tiny generated corpora, a fixed seed, and a CLI runner (helpers.py
holds the plain functions and constants the tests import)."""

from __future__ import annotations

import os
import random
from pathlib import Path

import pytest
import torch
from helpers import make_text
from typer.testing import CliRunner


# The tests' models are tiny: a second OpenMP thread only adds synchronisation,
# and on a busy 2-core machine it can make each step many times slower.
torch.set_num_threads(1)


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
