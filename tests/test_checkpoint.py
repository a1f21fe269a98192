import dataclasses
import json
import os
import pickle
import random
import shutil
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest
import torch

from charrnn.cli import app
from charrnn.config import ModelConfig, SampleConfig
from charrnn.data.tokenizer import CharTokenizer
from charrnn.errors import CheckpointError
from charrnn.models.lm import CharRNN
from charrnn.tasks.generate import eos_text, sample_text
from charrnn.tasks.state import LMState
from charrnn.training import checkpoint


def payload(tok=None):
    tok = tok or CharTokenizer("abc\n")
    m = CharRNN(ModelConfig(cell="gru", layers=1, hidden=8, embed=4, vocab_size=tok.vocab_size))
    ck = checkpoint.Checkpoint(model_config=m.cfg, weights=m.state_dict(), task=LMState(tokenizer=tok.to_state()), step=3)
    return ck, m


def test_round_trip(tmp_path):
    p, m = payload()
    checkpoint.save(tmp_path / "last.pt", p)
    ck = checkpoint.load(tmp_path / "last.pt")
    model, tok = checkpoint.model_from(ck)
    assert tok.chars == ("\n", "a", "b", "c") and ck.step == 3 and not model.training
    for k, v in m.state_dict().items():
        assert torch.equal(model.state_dict()[k], v)
    assert [f.name for f in tmp_path.iterdir()] == ["last.pt"]  # no temp files left


def test_truncated_file(tmp_path):
    p, _ = payload()
    checkpoint.save(tmp_path / "c.pt", p)
    data = (tmp_path / "c.pt").read_bytes()
    (tmp_path / "c.pt").write_bytes(data[: len(data) // 2])
    with pytest.raises(CheckpointError, match="damaged or not a checkpoint"):
        checkpoint.load(tmp_path / "c.pt")


def test_text_file_and_missing_file(tmp_path):
    (tmp_path / "notes.txt").write_text("hello")
    with pytest.raises(CheckpointError, match="damaged or not a checkpoint"):
        checkpoint.load(tmp_path / "notes.txt")
    with pytest.raises(CheckpointError, match="no checkpoint at"):
        checkpoint.load(tmp_path / "nope.pt")


def test_foreign_torch_file(tmp_path):
    torch.save({"state_dict": {"w": torch.zeros(2)}}, tmp_path / "other.pt")
    with pytest.raises(CheckpointError, match="not a charrnn checkpoint"):
        checkpoint.load(tmp_path / "other.pt")


class Boom:
    def __reduce__(self):
        return (os.system, ("touch pwned",))


def test_pickle_with_code_is_never_executed(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    with open(tmp_path / "evil.pt", "wb") as f:
        torch.save({"format": "charrnn-checkpoint", "x": Boom()}, f)
    with pytest.raises(CheckpointError, match="will not load"):
        checkpoint.load(tmp_path / "evil.pt")
    assert not (tmp_path / "pwned").exists()
    with open(tmp_path / "raw.pkl", "wb") as f:
        pickle.dump(Boom(), f)
    with pytest.raises(CheckpointError):
        checkpoint.load(tmp_path / "raw.pkl")
    assert not (tmp_path / "pwned").exists()


def test_newer_format(tmp_path):
    p, _ = payload()
    torch.save({**p.to_dict(), "format": checkpoint.FORMAT, "version": checkpoint.VERSION + 1}, tmp_path / "new.pt")
    with pytest.raises(CheckpointError, match="newer charrnn"):
        checkpoint.load(tmp_path / "new.pt")


def test_weights_that_do_not_fit(tmp_path):
    p, _ = payload()
    p.model_config = dataclasses.replace(p.model_config, hidden=9)
    checkpoint.save(tmp_path / "c.pt", p)
    with pytest.raises(CheckpointError, match="do not fit"):
        checkpoint.model_from(checkpoint.load(tmp_path / "c.pt"))


def test_refuses_non_finite_weights_and_keeps_the_old_file(tmp_path):
    p, m = payload()
    checkpoint.save(tmp_path / "last.pt", p)
    before = (tmp_path / "last.pt").read_bytes()
    bad = {k: v.clone() for k, v in m.state_dict().items()}
    bad["head.weight"][0, 0] = float("nan")
    with pytest.raises(CheckpointError, match="not finite"):
        checkpoint.save(tmp_path / "last.pt", dataclasses.replace(p, weights=bad))
    assert (tmp_path / "last.pt").read_bytes() == before


def test_full_disk_keeps_the_previous_checkpoint(tmp_path):
    """A write that fails for lack of space (here: a file-size limit) leaves the
    old checkpoint whole and no temporary file, and says so in one line."""
    script = textwrap.dedent(
        f"""
        import resource, signal, sys, torch
        sys.path.insert(0, {str(os.getcwd())!r})
        from charrnn.training import checkpoint
        from charrnn.errors import CheckpointError
        ck = checkpoint.load({str(tmp_path / "last.pt")!r})
        ck.weights = {{k: torch.randn(4096) if k == "head.bias" else v for k, v in ck.weights.items()}}
        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
        resource.setrlimit(resource.RLIMIT_FSIZE, (8192, 8192))
        try:
            checkpoint.save({str(tmp_path / "last.pt")!r}, ck)
        except CheckpointError as e:
            print(e)
        """
    )
    p, _ = payload()
    checkpoint.save(tmp_path / "last.pt", p)
    before = (tmp_path / "last.pt").read_bytes()
    out = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=120)
    assert "could not write checkpoint" in out.stdout and "previous checkpoint is intact" in out.stdout, out.stderr
    assert (tmp_path / "last.pt").read_bytes() == before
    assert [f.name for f in tmp_path.iterdir()] == ["last.pt"]


def test_find_newest_run_and_prefer(tmp_path):
    p, _ = payload()
    for name in ("old", "new"):
        checkpoint.save(tmp_path / name / "last.pt", p)
        time.sleep(0.02)
    checkpoint.copy(tmp_path / "new" / "last.pt", tmp_path / "new" / "best.pt")
    assert checkpoint.find(None, tmp_path) == tmp_path / "new" / "best.pt"
    assert checkpoint.find(None, tmp_path, prefer=checkpoint.LAST) == tmp_path / "new" / "last.pt"
    assert checkpoint.find("old", tmp_path) == tmp_path / "old" / "last.pt"
    assert checkpoint.find(str(tmp_path / "old" / "last.pt"), tmp_path) == tmp_path / "old" / "last.pt"
    with pytest.raises(CheckpointError, match="no runs"):
        checkpoint.find(None, tmp_path / "empty")
    with pytest.raises(CheckpointError, match="no checkpoint or run"):
        checkpoint.find("ghost", tmp_path)


def test_best_is_a_snapshot_not_an_alias(tmp_path):
    p, _ = payload()
    checkpoint.save(tmp_path / "last.pt", p)
    checkpoint.copy(tmp_path / "last.pt", tmp_path / "best.pt")
    checkpoint.save(tmp_path / "last.pt", dataclasses.replace(p, step=99))
    assert checkpoint.load(tmp_path / "best.pt").step == 3
    assert checkpoint.load(tmp_path / "last.pt").step == 99


# ------------------------------------------- checkpoints written by earlier versions

OLD = Path(__file__).parent / "data"  # written by charrnn before the package took its rooms (format 1)


def old_corpus(path: Path) -> Path:
    """The corpus the old LSTM run trained on (its lines, regenerated)."""
    rng = random.Random(3)
    w = "the a cat dog sat ran on under mat log and quickly slowly big small red blue".split()
    lines = [" ".join(rng.choice(w) for _ in range(rng.randint(3, 8))).capitalize() + "." for _ in range(300)]
    path.write_text("\n".join(lines) + "\n")
    return path


@pytest.mark.parametrize("name", ["main-v1-lstm-docs.pt", "main-v1-gru-spm.pt"])
def test_old_checkpoints_load_and_sample_the_same_text(name):
    want = json.loads((OLD / "main-v1-samples.json").read_text(encoding="utf-8"))[name]
    ck = checkpoint.load(OLD / name)
    model, tok = checkpoint.model_from(ck)
    cfg = SampleConfig(prime=want["prime"], length=want["length"], seed=want["seed"])
    text = sample_text(model, tok, cfg, torch.Generator().manual_seed(want["seed"]), eos_text(ck.data_config.doc_sep))
    assert text == want["text"]


def test_a_format_1_file_is_migrated_and_written_back_in_the_current_format(tmp_path):
    """Format 1 kept the task's keys at the top level; the Checkpoint reads them into its
    typed task section, and saving writes the current format, which reads back the same."""
    raw = torch.load(OLD / "main-v1-lstm-docs.pt", weights_only=True)
    assert raw["version"] == 1 and "tokenizer" in raw and "task" not in raw  # the old layout, as the file holds it
    ck = checkpoint.load(OLD / "main-v1-lstm-docs.pt")
    assert ck.version == 1 and isinstance(ck.task, LMState) and ck.task.tokenizer == raw["tokenizer"]
    assert ck.task.carried_state and all(torch.equal(a, b) for a, b in zip(ck.task.carried_state, raw["carried_state"]))
    assert ck.task.steps_per_epoch == raw["steps_per_epoch"] and ck.task.corpus.chars_train == raw["corpus"]["chars_train"]
    assert ck.step == raw["step"] and ck.model_config.cell == raw["model_config"]["cell"] == "lstm"
    checkpoint.save(tmp_path / "new.pt", ck)
    new = torch.load(tmp_path / "new.pt", weights_only=True)
    assert new["version"] == checkpoint.VERSION == 4 and "tokenizer" not in new and new["task"]["tokenizer"] == raw["tokenizer"]
    again = checkpoint.load(tmp_path / "new.pt")
    assert again.version == checkpoint.VERSION
    assert again.summary("x") == dataclasses.replace(ck.summary("x"), format_version=checkpoint.VERSION)
    for bad in (0, -1):
        torch.save({**raw, "version": bad}, tmp_path / "bad.pt")
        with pytest.raises(CheckpointError, match="not one charrnn ever wrote"):
            checkpoint.load(tmp_path / "bad.pt")


def test_old_checkpoint_resumes_and_shows(runner, workdir):
    run = workdir / "old"
    run.mkdir()
    shutil.copy(OLD / "main-v1-lstm-docs.pt", run / "last.pt")
    r = runner.invoke(app, ["info", str(run)])
    assert r.exit_code == 0 and "lstm 2x16, embedding 8" in r.stdout and "30 steps" in r.stdout, r.output
    corpus = old_corpus(workdir / "docs.txt")  # the corpus has moved since: name it again
    r = runner.invoke(app, ["train", str(corpus), "--resume", str(run), "--steps", "36", "--quiet", "--device", "cpu"])
    assert r.exit_code == 0 and "resuming at step 30" in r.stderr and "done at step 36" in r.stderr, r.output
    assert checkpoint.load(run / "last.pt").model_config.task == "lm"


@pytest.mark.parametrize("name", ["main-v2-classify.pt", "main-v2-lm-labels.pt"])
def test_format_2_classifier_and_labelled_model_load_and_answer_the_same(name):
    """Written by charrnn before the classify defaults and the label's h(0) changed (issue 24): a
    classifier that left --pool at its default then ('last'), a model conditioned with --condition both."""
    from charrnn.tasks import task_spec
    from charrnn.tasks.use import PredictOptions
    from charrnn.tasks.generate import label_index

    want = json.loads((OLD / "main-v2-expected.json").read_text(encoding="utf-8"))[name]
    ck = checkpoint.load(OLD / name)
    model, tok = checkpoint.model_from(ck)
    if ck.model_config.task == "classify":
        got = task_spec("classify").load().Use.predictor(ck.task, model, PredictOptions()).predict(want["text"]).json
        assert got["probabilities"] == pytest.approx(want["probabilities"], abs=1e-6)
    else:
        cfg = SampleConfig(length=want["length"], num=1, temperature=1.0)
        at = label_index(ck.labels(), want["label"])
        assert sample_text(model, tok, cfg, torch.Generator().manual_seed(want["seed"]), label=at) == want["text"]


def test_a_format_2_binary_tree_lstm_reads_its_trees_as_it_was_trained(runner):
    """Written by charrnn before the folds of the binary Tree-LSTM were closed with a JOIN node
    (issue 24): loaded, it reads trees with open folds (`--open-folds`) and answers as it did
    then (main-v2-bintreelstm.jsonl holds that charrnn's `predict --json`)."""
    ck = checkpoint.load(OLD / "main-v2-bintreelstm.pt")
    assert ck.model_config.cell == "bintreelstm" and ck.model_config.cell_options().open_folds
    want = [json.loads(line) for line in (OLD / "main-v2-bintreelstm.jsonl").read_text(encoding="utf-8").splitlines()]
    trees = "".join(w["input"] + "\n" for w in want)
    r = runner.invoke(app, ["predict", str(OLD / "main-v2-bintreelstm.pt"), "--json"], input=trees)
    assert r.exit_code == 0, r.output
    got = [json.loads(line) for line in r.stdout.splitlines()]
    for g, w in zip(got, want, strict=True):
        assert g["answer"] == w["answer"] and g["p"] == pytest.approx(w["p"], abs=1e-6)
        assert [n["p"] for n in g["nodes"]] == pytest.approx([n["p"] for n in w["nodes"]], abs=1e-6)
