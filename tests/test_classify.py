"""Sequence classification (--task classify) and `charrnn predict` on a classifier, through the CLI
on tiny generated labelled documents; the model's pools and padding checked directly."""

from __future__ import annotations

import json
import random
from pathlib import Path

import pytest
import torch
from helpers import no_traceback, one_line_error, resumes_exactly

from charrnn.cli import app
from charrnn.config import DataConfig, ModelConfig
from charrnn.models.classifier import SequenceClassifier

# three labels whose documents draw on overlapping alphabets: learnable, but not from one character
ALPHABETS = {"up": "abcdefgh", "down": "efghijkl", "flat": "abijklmn"}
TINY = ["--layers", "1", "--hidden", "32", "--embed", "16", "--batch-size", "16", "--eval-every", "50", "--warmup", "10",
        "--device", "cpu", "--threads", "1", "-q"]  # fmt: skip


def labelled_folder(root: Path, n: int = 240, seed: int = 0) -> Path:
    """root/<label>/docs.txt, one document a line (--label-from folder --doc-sep line); 'up' the most common."""
    rng = random.Random(seed)
    lines: dict[str, list[str]] = {k: [] for k in ALPHABETS}
    for _ in range(n):
        label = rng.choices(list(ALPHABETS), weights=[2, 1, 1])[0]
        lines[label].append("".join(rng.choice(ALPHABETS[label]) for _ in range(rng.randint(6, 30))))
    for label, docs in lines.items():
        (root / label).mkdir(parents=True, exist_ok=True)
        (root / label / "docs.txt").write_text("\n".join(docs) + "\n", encoding="utf-8")
    return root


def final_record(run: Path) -> dict:
    return [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines() if json.loads(line)["final"]][-1]


@pytest.fixture(scope="module")
def classifier(tmp_path_factory) -> Path:
    """One trained classifier run, shared by the prediction tests."""
    from typer.testing import CliRunner

    root = tmp_path_factory.mktemp("classify")
    data = labelled_folder(root / "docs")
    r = CliRunner().invoke(app, ["train", str(data), "--task", "classify", "--label-from", "folder", "--doc-sep", "line",
                                 "--steps", "150", "--out", str(root / "run"), "--checkpoints", str(root), *TINY])  # fmt: skip
    assert r.exit_code == 0, r.output
    return root / "run"


def test_classifier_learns_far_above_the_majority_class(classifier, runner, workdir):
    rec = final_record(classifier)
    assert rec["val_bpc"] is None and rec["majority"] < 0.6
    assert rec["accuracy"] >= rec["majority"] + 0.3, rec
    report = rec["report"]
    assert report["labels"] == ["down", "flat", "up"] and report["baseline"]["name"].startswith("character")
    assert sum(map(sum, report["confusion"])) == report["documents"] == rec["val_tokens"]
    assert abs(sum(report["confusion"][i][i] for i in range(3)) / report["documents"] - rec["accuracy"]) < 1e-9
    r = runner.invoke(app, ["info", str(classifier)])
    assert r.exit_code == 0 and "labels" in r.stdout and "accuracy" in r.stdout and "nats/document" in r.stdout


def test_training_prints_the_report_with_the_baseline_beside_it(runner, workdir):
    data = labelled_folder(workdir / "docs", n=120)
    r = runner.invoke(app, ["train", str(data), "--task", "classify", "--label-from", "folder", "--doc-sep", "line", "--steps", "20",
                            "--pool", "mean", "--name", "c", *TINY])  # fmt: skip
    assert r.exit_code == 0, r.output
    no_traceback(r.output)
    out = r.stderr  # -q: plain lines on stderr
    assert "documents a step" in out and "nats/document" in out and "bits/char" not in out
    assert "accuracy" in out and "n-gram Bayes" in out and "majority class" in out
    assert "per label" in out and "precision" in out and "confusion: true label down, predicted across" in out
    assert "character 1-3-gram naive Bayes" in out


def answers(stdout: str) -> list[str]:
    """The first line of each input's block (blocks are separated by blank lines)."""
    return [block.splitlines()[0] for block in stdout.strip().split("\n\n")]


def test_predict_prints_the_label_first(classifier, runner, tmp_path, monkeypatch):
    """Into a pipe (CliRunner's stdout is one): one line per input, the answer first, then the scores."""
    r = runner.invoke(app, ["predict", str(classifier), "abcdefgh" * 3, "ijklijklmn"])
    assert r.exit_code == 0, r.output
    first = r.stdout.splitlines()
    assert [line.split()[0] for line in first] == ["up", "flat"] and "█" not in r.stdout
    probs = [float(v) for v in first[0].split()[1::2]]
    assert abs(sum(probs) - 1) < 0.01 and probs == sorted(probs, reverse=True)
    (tmp_path / "in.txt").write_text("abcabc\n\nklmnkl\n", encoding="utf-8")
    f = runner.invoke(app, ["predict", str(classifier), "--file", str(tmp_path / "in.txt"), "--json"])
    records = [json.loads(x) for x in f.stdout.splitlines()]  # JSON Lines: one object a line
    assert [x["input"] for x in records] == ["abcabc", "klmnkl"]
    assert set(records[0]["probabilities"]) == set(ALPHABETS) and records[0]["chars_read"] == 6
    s = runner.invoke(app, ["predict", str(classifier)], input="abcd\nijkl\n")
    assert s.exit_code == 0 and len(s.stdout.splitlines()) == 2
    # in a terminal the probabilities are drawn as bars, a blank line between inputs
    from charrnn.cli import common

    monkeypatch.setattr(common.out, "_force_terminal", True)
    t = runner.invoke(app, ["predict", str(classifier), "abcdefgh" * 3, "ijklijklmn"])
    assert [line.split()[0] for line in answers(t.stdout)] == ["up", "flat"] and "█" in t.stdout


def test_predict_answers_a_stream_line_by_line(classifier):
    """A real pipe: each answer comes back, flushed, before the next input is written."""
    import select
    import subprocess
    import sys

    for extra, check in (([], lambda line: line.split()[0] in ALPHABETS), (["--json"], lambda line: json.loads(line)["label"] in ALPHABETS)):
        proc = subprocess.Popen([sys.executable, "-m", "charrnn", "predict", str(classifier), *extra],
                                stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)  # fmt: skip
        try:
            for text in ("abcdabcd", "ijklijkl", "☃abc"):
                proc.stdin.write(text + "\n")
                proc.stdin.flush()
                ready, _, _ = select.select([proc.stdout], [], [], 60)  # answers that wait for the end of input never come
                assert ready, f"no answer to {text!r} before the input ended"
                line = proc.stdout.readline()
                assert check(line), line
            proc.stdin.close()
            assert proc.stdout.read() == "" and proc.wait(timeout=60) == 0
        finally:
            proc.kill()


def test_predict_trace_follows_the_probabilities_along_the_text(classifier, runner):
    text = "ijklijkl" + "abcdabcdabcd"
    r = runner.invoke(app, ["predict", str(classifier), text, "--trace", "--json"])
    trace = json.loads(r.stdout)["trace"]
    assert len(trace) == len(text) and all(abs(sum(row) - 1) < 1e-3 for row in trace)
    shown = runner.invoke(app, ["predict", str(classifier), text, "--trace"])
    assert "as the text arrives" in shown.stdout and text in shown.stdout.replace(" ", "")


def test_predict_refuses_what_a_classifier_cannot_do(classifier, runner):
    one_line_error(runner.invoke(app, ["predict", str(classifier), "abc", "--beam", "3"]), "--beam", "encoder-decoder")
    one_line_error(runner.invoke(app, ["predict", str(classifier), "abc", "--attention-map"]), "--attention-map")
    one_line_error(runner.invoke(app, ["predict", str(classifier), "☃☃"]), "none of the characters")
    one_line_error(runner.invoke(app, ["sample", str(classifier)]), "classify run", "charrnn predict")
    one_line_error(runner.invoke(app, ["inspect", str(classifier), "-t", "abc"]), "classify run", "--trace")


def test_options_that_do_not_fit_the_task_are_one_line_errors(runner, workdir, corpus_file):
    data = labelled_folder(workdir / "docs", n=30)
    base = ["train", str(data), "--label-from", "folder", "--doc-sep", "line", "--steps", "1", *TINY]
    one_line_error(runner.invoke(app, [*base, "--task", "classify", "--attention", "dot"]), "--attention", "--task classify")
    one_line_error(runner.invoke(app, [*base, "--task", "classify", "--seq-len", "8"]), "--seq-len", "--task classify")
    one_line_error(runner.invoke(app, ["train", str(corpus_file), "--pool", "mean", "--steps", "1", *TINY]), "--pool", "--task lm")
    one_line_error(runner.invoke(app, [*base, "--task", "classify", "--max-chars", "0"]), "--max-chars")
    one_line_error(runner.invoke(app, ["train", str(corpus_file), "--task", "classify", "--steps", "1", *TINY]), "--label-from")
    one_line_error(runner.invoke(app, [*base, "--task", "classify", "--cell", "jordan"]), "--cell jordan serves --task lm only", "--task classify")


def test_a_bad_tsv_line_is_named(runner, workdir):
    (workdir / "docs.tsv").write_text("up\tabc\ndown\tdef\nno tab here\n", encoding="utf-8")
    r = runner.invoke(app, ["train", "docs.tsv", "--task", "classify", "--steps", "1", *TINY])
    one_line_error(r, "docs.tsv:3", "no tab")


def test_a_resumed_run_goes_on_exactly_as_an_uninterrupted_one(tmp_path):
    data = DataConfig(paths=(str(labelled_folder(tmp_path / "docs", n=90)),), label_from="folder", doc_sep="line")
    model = ModelConfig(cell="gru", layers=1, hidden=16, embed=8, dropout=0.2, task="classify",
                        options={"pool": "attn", "max_chars": 12})  # windows of longer documents drawn at random
    resumes_exactly(tmp_path, data, model, batch_size=8, warmup=3)


@pytest.mark.parametrize("pool", ["last", "mean", "max", "attn"])
def test_the_answer_after_the_last_prefix_is_the_answer_and_padding_changes_nothing(pool):
    cfg = ModelConfig(cell="gru", layers=2, hidden=12, embed=6, dropout=0.0, vocab_size=9, task="classify",
                      options={"pool": pool, "classes": 3})  # fmt: skip
    model = SequenceClassifier(cfg).double().eval()
    a, b = torch.randint(9, (1, 11)), torch.randint(9, (1, 5))
    with torch.no_grad():
        alone = [model(x)[0] for x in (a, b)]
        padded = torch.cat([a, torch.cat([b, torch.zeros(1, 6, dtype=torch.long)], 1)])
        batch, _ = model(padded, lengths=torch.tensor([11, 5]))
        assert torch.allclose(batch, torch.cat(alone), atol=1e-10)
        prefix = model.prefix_logits(model.states(a))  # (1, T, C)
        assert torch.allclose(prefix[:, -1], alone[0], atol=1e-10)
        assert torch.allclose(prefix[:, 4], model(a[:, :5])[0], atol=1e-10)  # the answer after 5 characters
        trace = model.trace(a)
        assert torch.allclose(trace.logits, prefix, atol=1e-10) and trace.signals["h"].shape == (2, 1, 11, 12)


@pytest.mark.parametrize("pool", ["last", "mean", "max", "attn"])
def test_a_bidirectional_classifier_reads_each_document_from_its_end(pool):
    """[h(t); g(t)] against the two cores run by hand (the backward one over the reversed
    text alone); padding changes nothing; the prefix answer at the end is the answer."""
    cfg = ModelConfig(cell="lstm", layers=2, hidden=12, embed=6, dropout=0.0, vocab_size=9, task="classify",
                      options={"pool": pool, "classes": 3, "bidirectional": True})  # fmt: skip
    model = SequenceClassifier(cfg).double().eval()
    a, b = torch.randint(9, (1, 11)), torch.randint(9, (1, 5))
    with torch.no_grad():
        h, _ = model.core(model.embed(a), model.init_state(1))  # (1, 11, 12)
        g, _ = model.back(model.embed(a.flip(1)), model.init_state(1))  # the text from its end
        states = model.states(a)
        assert states.shape == (1, 11, 24) and model.head.in_features == 24
        assert torch.allclose(states, torch.cat([h, g.flip(1)], -1), atol=1e-12)
        z = {"last": torch.cat([h[:, -1], g[:, -1]], -1), "mean": states.mean(1), "max": states.amax(1)}.get(pool)
        if z is not None:
            assert torch.allclose(model(a)[0], model.head(z), atol=1e-12)
        alone = [model(x)[0] for x in (a, b)]
        padded = torch.cat([a, torch.cat([b, torch.zeros(1, 6, dtype=torch.long)], 1)])
        batch, _ = model(padded, lengths=torch.tensor([11, 5]))
        assert torch.allclose(batch, torch.cat(alone), atol=1e-10)
        assert torch.allclose(model.prefix_logits(states)[:, -1], alone[0], atol=1e-10)
        assert torch.allclose(model.trace(a).logits[:, -1], alone[0], atol=1e-10)
    plain = SequenceClassifier(ModelConfig(**{**vars(cfg), "options": {"pool": pool, "classes": 3}}))
    assert not any(n.startswith("back.") for n, _ in plain.named_parameters())  # a plain model's checkpoints unchanged


def test_a_new_classifier_takes_the_task_recipe_and_the_max_pool_and_says_so(runner, tmp_path):
    from charrnn.training import checkpoint

    data = labelled_folder(tmp_path / "docs", n=60)
    r = runner.invoke(app, ["train", str(data), "--task", "classify", "--label-from", "folder", "--doc-sep", "line", "--steps", "2",
                            "--hidden", "16", "--batch-size", "8", "--device", "cpu", "--threads", "1", "-q",
                            "--out", str(tmp_path / "run"), "--checkpoints", str(tmp_path)])  # fmt: skip
    assert r.exit_code == 0, r.output
    assert "--task classify: --layers 1 --embed 32 --lr 0.01 in place of the language model's defaults" in r.stderr
    assert "lstm 1x16 (classify), embedding 32" in r.stderr
    ck = checkpoint.load(tmp_path / "run" / "last.pt")
    assert (ck.model_config.layers, ck.train_config.lr, ck.model_config.task_options().pool) == (1, 1e-2, "max")
