"""The CLI, driven as a user drives it: through CliRunner and the installed command."""

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from charrnn.cli import app
from helpers import TINY, one_line_error


def train(runner, *args):
    return runner.invoke(app, ["train", *args, *TINY, "--quiet"])


def test_sample_reads_the_newest_run_and_separates_texts(kind_run, runner, workdir):
    """What a run holds and how it resumes, samples and shows itself is tested for every kind in
    test_every_kind.py (on the runs conftest trains once); here, what only the command line adds."""
    run = kind_run("lstm")
    assert re.search(r"^corpus: 1 file, [\d,]+ characters, vocabulary \d+; train [\d,]+ / validation [\d,]+ characters", run.trained.stderr, re.M)
    shutil.copytree(run.dir, workdir / "checkpoints" / "r1")
    a = runner.invoke(app, ["sample", "r1", "--seed", "5", "--length", "80", "--prime", "The"])
    b = runner.invoke(app, ["sample", "--seed", "5", "--length", "80", "--prime", "The"])  # newest run
    assert a.exit_code == 0 and a.stdout == b.stdout and a.stdout.startswith("The")
    assert len(a.stdout) == len("The") + 80 + 1
    two = runner.invoke(app, ["sample", "r1", "--num", "2", "--length", "10", "--seed", "1", "--temperature", "0"])
    assert two.exit_code == 0 and [len(t) for t in two.stdout.rstrip("\n").split("\n\n")] == [10, 10], two.stdout


def test_resume_refuses_to_change_the_model(runner, workdir, corpus_file):
    assert train(runner, str(corpus_file), "--steps", "10", "--name", "r").exit_code == 0
    r = runner.invoke(app, ["train", "--resume", "r", "--hidden", "64", "--steps", "20"])
    one_line_error(r, "--hidden cannot change when resuming")


def test_existing_run_is_not_overwritten(runner, workdir, corpus_file):
    assert train(runner, str(corpus_file), "--steps", "5", "--name", "r").exit_code == 0
    r = train(runner, str(corpus_file), "--steps", "5", "--name", "r")
    one_line_error(r, "already holds a run", "--resume")


def test_corpora_lists_builtins(runner):
    r = runner.invoke(app, ["corpora"])
    assert r.exit_code == 0 and "pydoc-topics (default)" in r.stdout and "stdlib" in r.stdout


def test_doc_sep_and_stop_at_end_of_document(runner, workdir):
    p = workdir / "fortunes.txt"
    p.write_text("\n%\n".join(["Be kind.", "Be brave.", "Be well."] * 150) + "\n")
    r = train(runner, str(p), "--doc-sep", "%", "--steps", "60", "--lr", "0.01", "--name", "f")
    assert r.exit_code == 0 and "documents" in r.stderr
    s = runner.invoke(app, ["sample", "f", "--temperature", "0", "--length", "200", "--seed", "0"])
    assert s.exit_code == 0 and len(s.stdout) < 100  # greedy text reaches the end-of-document token
    s = runner.invoke(app, ["sample", "f", "--temperature", "0", "--length", "200", "--no-stop", "--seed", "0"])
    assert len(s.stdout) == 201 and "\n%\n" in s.stdout


@pytest.mark.parametrize(
    "content, fragments",
    [
        (b"", ["empty"]),
        (b"\x7fELF\x02\x01\x01\x00\x00\x00", ["binary"]),
        (b"valid start \xff\xfe then junk", ["not valid UTF-8 at byte 12", "--encoding", "--errors replace"]),
        (b"tiny", ["too few for one batch", "--batch-size"]),
    ],
)
def test_bad_corpora(runner, workdir, content, fragments):
    p = workdir / "c.txt"
    p.write_bytes(content)
    one_line_error(train(runner, str(p), "--steps", "5"), *fragments)
    assert not (workdir / "checkpoints").exists() or not any((workdir / "checkpoints").glob("*/last.pt"))


def test_missing_corpus_names_the_builtins(runner, workdir):
    one_line_error(train(runner, "no-such.txt"), "no such file", "pydoc-topics")


@pytest.mark.parametrize(
    "args, fragments, code",
    [
        (["--lr", "-1"], ["--lr"], 1),
        (["--time", "soon"], ["--time"], 1),
        (["--cell", "transformer"], ["--cell"], 2),
        (["--hidden", "many"], ["--hidden"], 2),
        (["--batch-size", "0"], ["--batch-size"], 1),
        (["--bogus"], ["--bogus"], 2),
        (["--device", "cuda"], ["--device cuda: no CUDA GPU is available here"], 1)
        if not torch.cuda.is_available()
        else (["--precision", "fp16", "--device", "cpu"], ["--precision fp16 needs a CUDA GPU"], 1),
    ],
)
def test_nonsense_options(runner, workdir, corpus_file, args, fragments, code):
    r = runner.invoke(app, ["train", str(corpus_file), "--steps", "5", *args])
    one_line_error(r, *fragments, code=code)


def test_unknown_command(runner):
    one_line_error(runner.invoke(app, ["trian"]), "No such command", code=2)


@pytest.fixture
def trained(runner, workdir, corpus_file):
    assert train(runner, str(corpus_file), "--steps", "10", "--name", "r").exit_code == 0
    return workdir / "checkpoints" / "r"


def test_sample_errors(runner, trained):
    one_line_error(runner.invoke(app, ["sample", "r", "--prime", "Zebra ☃"]), "never saw", "'☃'", "--unknown skip")
    ok = runner.invoke(app, ["sample", "r", "--prime", "ebra ☃", "--unknown", "skip", "--length", "5", "--seed", "1"])
    assert ok.exit_code == 0 and ok.stdout.startswith("ebra ")
    one_line_error(runner.invoke(app, ["sample", "r", "--top-p", "2"]), "--top-p")
    one_line_error(runner.invoke(app, ["sample", "r", "--temperature", "-1"]), "--temperature")
    one_line_error(runner.invoke(app, ["sample", "nothing-here"]), "no checkpoint or run")


def test_damaged_and_foreign_checkpoints(runner, trained, workdir):
    data = (trained / "last.pt").read_bytes()
    (workdir / "cut.pt").write_bytes(data[: len(data) // 3])
    one_line_error(runner.invoke(app, ["sample", str(workdir / "cut.pt")]), "damaged")
    one_line_error(runner.invoke(app, ["info", str(workdir / "cut.pt")]), "damaged")
    torch.save({"weights": torch.zeros(3)}, workdir / "foreign.pt")
    one_line_error(runner.invoke(app, ["sample", str(workdir / "foreign.pt")]), "not a charrnn checkpoint")
    (workdir / "notes.pt").write_text("just text")
    one_line_error(runner.invoke(app, ["train", "--resume", str(workdir / "notes.pt")]), "not a checkpoint")


def test_no_runs_yet(runner, workdir):
    one_line_error(runner.invoke(app, ["sample"]), "no runs under checkpoints")


# ------------------------------------------------------------ installed command


def charrnn_cmd() -> list[str]:
    exe = shutil.which("charrnn", path=str(Path(sys.executable).parent))
    assert exe, "the charrnn console script is not installed next to this Python"
    return [exe]


def test_installed_command_trains_and_samples(tmp_path, corpus_file):
    env = {**os.environ, "COLUMNS": "120"}
    r = subprocess.run(
        [*charrnn_cmd(), "train", str(corpus_file), "--steps", "15", "--name", "sub", *TINY],
        cwd=tmp_path, capture_output=True, text=True, timeout=300, env=env,
    )  # fmt: skip
    assert r.returncode == 0, r.stderr
    assert "done at step 15" in r.stdout
    s = subprocess.run([*charrnn_cmd(), "sample", "--length", "40", "--seed", "3"], cwd=tmp_path, capture_output=True, text=True, timeout=120)
    assert s.returncode == 0 and len(s.stdout) == 41
    m = subprocess.run([sys.executable, "-m", "charrnn", "info", "sub"], cwd=tmp_path, capture_output=True, text=True, timeout=120)
    assert m.returncode == 0 and "15 steps" in m.stdout


def test_help_does_not_import_torch():
    code = "import sys; from charrnn.cli import app; app(['--help'], standalone_mode=False); print('torch' in sys.modules)"
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert r.stdout.strip().endswith("False"), r.stdout + r.stderr
    for cmd in ("train", "sample", "info", "corpora", "inspect", "tui"):
        code = f"import sys; from charrnn.cli import app; app(['{cmd}', '--help'], standalone_mode=False); print('torch' in sys.modules)"
        r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
        assert r.stdout.strip().endswith("False"), cmd


def test_help_shows_real_defaults(runner):
    from charrnn.config import SampleConfig, TrainConfig

    r = runner.invoke(app, ["train", "--help"], env={"COLUMNS": "200"})
    assert f"[default: {TrainConfig().lr}]" in r.stdout and f"[default: {TrainConfig().seq_len}]" in r.stdout
    r = runner.invoke(app, ["sample", "--help"], env={"COLUMNS": "200"})
    assert f"[default: {SampleConfig().temperature}]" in r.stdout


def test_predict_and_labels_are_for_other_tasks(runner, workdir, corpus_file):
    assert train(runner, str(corpus_file), "--steps", "5", "--name", "lm").exit_code == 0
    one_line_error(runner.invoke(app, ["predict", "lm", "some text"]), "charrnn predict answers classification", "charrnn sample")
    one_line_error(runner.invoke(app, ["predict", "lm", "x", "--top", "3"]), "--top lists beams: give --beam K too")
    one_line_error(train(runner, str(corpus_file), "--label-dropout", "0.2", "--steps", "5"), "--label-dropout conditions the model", "--label-from")
