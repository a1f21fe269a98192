"""Conditioning a language model on each document's label, through the CLI.

Two generated corpora with different alphabets, labelled by their file names:
a model trained on both generates, for each label, text a simple check
attributes to that label (its characters come from that label's alphabet), and
with no label it still samples. The label's worth shows as validation bits/char
with and without it, at the end of training and in metrics.jsonl.
"""

from __future__ import annotations

import json
import random
from pathlib import Path

import pytest
import torch
from helpers import TINY, no_traceback, one_line_error

from charrnn.cli import app
from charrnn.config import DataConfig, ModelConfig, TrainConfig
from charrnn.data.corpus import prepare
from charrnn.tasks.lm import LanguageModelling
from charrnn.runtime import distributed
from charrnn.training import checkpoint

ALPHABETS = {"digits": "0123456789", "vowels": "aeiou"}


def corpora(folder: Path, n: int = 400) -> list[str]:
    rng = random.Random(0)
    paths = []
    for label, alphabet in ALPHABETS.items():
        p = folder / f"{label}.txt"
        p.write_text("".join("".join(rng.choice(alphabet) for _ in range(rng.randint(4, 10))) + "\n" for _ in range(n)))
        paths.append(str(p))
    return paths


def train(runner, *args):  # type: ignore[no-untyped-def]
    r = runner.invoke(app, ["train", *args, *TINY, "--device", "cpu", "--quiet", "--threads", "1"])
    no_traceback(r.output)
    return r


def attributed(text: str) -> dict[str, float]:
    """The share of a text's characters (newlines aside) in each label's alphabet."""
    chars = [c for c in text if c != "\n"]
    return {label: sum(c in a for c in chars) / max(len(chars), 1) for label, a in ALPHABETS.items()}


def test_labelled_run_end_to_end(runner, workdir):
    files = corpora(workdir)
    r = train(runner, *files, "--label-from", "file", "--doc-sep", "line", "--steps", "300", "--batch-size", "8", "--name", "lab")
    assert r.exit_code == 0, r.output
    assert "2 labels: digits 400 docs" in r.stderr and "labels 2" in r.stderr  # the corpus line, the model line
    final = [line for line in r.stderr.splitlines() if line.startswith("final step")][0]
    assert "no label" in final
    last = json.loads((workdir / "checkpoints" / "lab" / "metrics.jsonl").read_text().splitlines()[-1])
    assert last["final"] and last["val_bpc_no_label"] > last["val_bpc"] + 0.1  # the label is worth something
    assert last["label_gain_bpc"] == pytest.approx(last["val_bpc_no_label"] - last["val_bpc"])

    for label in ALPHABETS:  # each label's text is that label's
        s = runner.invoke(app, ["sample", "lab", "--label", label, "--num", "10", "--length", "30", "--seed", "1"])
        assert s.exit_code == 0, s.output
        share = attributed(s.stdout)
        assert share[label] > 0.9, (label, share, s.stdout)
    s = runner.invoke(app, ["sample", "lab", "--num", "4", "--length", "30", "--seed", "1"])  # no label: the unconditional model
    assert s.exit_code == 0 and s.stdout.strip(), s.output

    one_line_error(runner.invoke(app, ["sample", "lab", "--label", "poetry"]), "unknown label 'poetry'", "known: digits, vowels")
    i = runner.invoke(app, ["info", "lab"])
    assert i.exit_code == 0 and "2 from --label-from file" in i.stdout, i.output
    assert [line.split()[:3] for line in i.stdout.splitlines() if "docs" in line] == [["digits", "400", "docs"], ["vowels", "400", "docs"]]
    js = json.loads(runner.invoke(app, ["info", "lab", "--json"]).stdout)
    assert js["labels"]["vowels"]["docs"] == 400 and js["labels"]["vowels"]["chars"] > 400 * 4

    r = runner.invoke(app, ["train", *files, "--resume", "lab", "--steps", "310", "--device", "cpu", "--quiet"])  # the same labels
    assert r.exit_code == 0 and "resuming at step 300" in r.stderr, r.output
    ck = checkpoint.load(workdir / "checkpoints" / "lab" / "last.pt")
    assert ck.task.labels == {"labels": ["digits", "vowels"]} and ck.model_config.options["labels"] == 2


def test_options_that_do_not_fit_are_one_line_errors(runner, workdir, corpus_file):
    files = corpora(workdir, 40)
    one_line_error(train(runner, str(corpus_file), "--condition", "init"), "--condition", "--label-from")
    one_line_error(train(runner, str(corpus_file), "--label-dropout", "0.2"), "--label-dropout", "--label-from")
    one_line_error(train(runner, *files, "--label-from", "file", "--doc-sep", "line", "--label-dropout", "1.5"), "--label-dropout must be in [0, 1)")
    one_line_error(train(runner, *files, "--label-from", "file", "--doc-sep", "line", "--doc-state", "carry"), "--condition both", "--doc-state carry")
    one_line_error(train(runner, str(corpus_file), "--length-model", "halt", "--steps", "2"), "--length-model halt", "--doc-sep")
    r = train(runner, str(corpus_file), "--steps", "2", "--name", "plain")
    assert r.exit_code == 0, r.output
    one_line_error(runner.invoke(app, ["sample", "plain", "--label", "x"]), "not trained on labelled documents")
    one_line_error(runner.invoke(app, ["inspect", "plain", "--label", "x", "--text", "the"]), "not trained on labelled documents")


def test_input_only_conditioning_with_carried_state_and_a_prefix_source(runner, workdir):
    """--condition input works with --doc-state carry; labels from a label<TAB> prefix."""
    rng = random.Random(1)
    lines = [f"{lab}\t" + "".join(rng.choice(ALPHABETS[lab]) for _ in range(6)) for lab in rng.choices(list(ALPHABETS), k=300)]
    p = workdir / "mixed.txt"
    p.write_text("\n".join(lines) + "\n")
    r = train(runner, str(p), "--label-from", "prefix", "--doc-sep", "line", "--condition", "input", "--doc-state", "carry",
              "--steps", "200", "--batch-size", "8", "--name", "pre")  # fmt: skip
    assert r.exit_code == 0, r.output
    ck = checkpoint.load(workdir / "checkpoints" / "pre" / "last.pt")
    assert ck.model_config.options["condition"] == "input"
    assert not any(k.startswith("context.init") for k in ck.weights)  # no h(0) projection
    s = runner.invoke(app, ["sample", "pre", "--label", "digits", "--num", "5", "--length", "20", "--seed", "2"])
    assert attributed(s.stdout)["digits"] > 0.8, s.stdout
    a = runner.invoke(app, ["inspect", "pre", "--label", "vowels", "--text", "aeiou", "--at", "end"])
    assert a.exit_code == 0 and "next after position 4" in a.stdout, a.output


def test_sentencepiece_tokens_carry_labels_too(runner, workdir):
    files = corpora(workdir, 300)
    r = train(runner, *files, "--label-from", "file", "--doc-sep", "line", "--tokenizer", "spm", "--vocab-size", "300",
              "--steps", "150", "--batch-size", "8", "--name", "spm")  # fmt: skip
    assert r.exit_code == 0, r.output
    s = runner.invoke(app, ["sample", "spm", "--label", "vowels", "--num", "5", "--length", "20", "--seed", "3"])
    assert s.exit_code == 0 and attributed(s.stdout)["vowels"] > 0.8, s.output


def test_labels_switch_at_document_boundaries_and_dropout_keeps_whole_documents(workdir):
    """The batches carry, per step, the label of the document each target belongs to;
    label dropout replaces a whole document's label, also across batches."""
    files = corpora(workdir, 200)
    data = DataConfig(paths=tuple(files), doc_sep="line", label_from="file")
    corpus = prepare(data, workdir / "checkpoints")
    cfg = TrainConfig(batch_size=4, seq_len=8, seed=3)
    model = ModelConfig(layers=1, hidden=8, embed=4, options={"label_dropout": 0.5})
    task = LanguageModelling(model, data, cfg, corpus, distributed.SINGLE, torch.device("cpu"), None)
    C, eos = len(corpus.label_set), corpus.tokenizer.eos_id
    digits = set(corpus.tokenizer.encode("0123456789"))
    docs: list[list[tuple[int, int]]] = [[] for _ in range(4)]  # per row: (label shown, target is a digit) for the open document
    seen = []
    for i in range(task.steps_per_epoch):
        x, y, labels, _ = (a.numpy() if a is not None else None for a in task.batch(0, i))
        for b in range(4):
            for t in range(8):
                if x[b, t] == eos and docs[b]:
                    seen.append(docs[b])
                    docs[b] = []
                target = int(y[b, t])
                docs[b].append((int(labels[b, t]), None if target == eos else target in digits))
    whole = [d for d in seen[4:]]  # (the first documents of each row began before the epoch)
    shown = [{lab for lab, _ in d} for d in whole]
    assert all(len(s) == 1 for s in shown)  # one label a document, dropped or not
    dropped = sum(s == {C} for s in shown) / len(shown)
    assert 0.35 < dropped < 0.65  # --label-dropout 0.5
    for d in whole:
        lab = d[0][0]
        if lab != C:  # the true label: digits for label 0, vowels for label 1
            assert all(is_digit == (lab == 0) for _, is_digit in d if is_digit is not None)
    a, b = (LanguageModelling(model, data, cfg, corpus, distributed.SINGLE, torch.device("cpu"), None) for _ in range(2))
    assert all(torch.equal(a.batch(0, i)[2], b.batch(0, i)[2]) for i in range(3))  # the same draws: resumable
