"""--task tree through the CLI, on generated ListOps trees: training learns, predict
answers with a tree of node values, inspect shows node states, runs resume exactly,
and every mistake is one line."""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path

import pytest
import torch
from helpers import no_traceback, one_line_error

from charrnn.cli import app
from charrnn.data import listops
from charrnn.data.listops import TreeSet, make_listops
from charrnn.data.trees import format_listops
from charrnn.training import checkpoint

# tiny tree models (no --seq-len: a tree has no timesteps)
TREE_TINY = ["--task", "tree", "--layers", "1", "--hidden", "32", "--embed", "16", "--batch-size", "32", "--warmup", "5",
             "--device", "cpu", "--quiet"]  # fmt: skip


def write_listops(path: Path, n: int = 2200, depth: int = 2, seed: int = 1) -> Path:
    train, _ = make_listops(seed=seed, n_train=n, n_val=0, train_depth=depth, val_depth=depth, max_args=3)
    path.write_text("".join(f"{e.label}\t{format_listops(e.tree)}\n" for e in train), encoding="utf-8")
    return path


@pytest.fixture
def shallow(workdir) -> Path:
    return write_listops(workdir / "listops.tsv")


def train(runner, *args):
    return runner.invoke(app, ["train", *TREE_TINY, *args])  # later options win


def metrics(run: Path) -> list[dict]:
    return [json.loads(x) for x in (run / "metrics.jsonl").read_text().splitlines()]


def test_a_tree_lstm_learns_shallow_listops_and_answers_with_a_tree(runner, workdir, shallow):
    r = train(runner, str(shallow), "--steps", "300", "--eval-every", "100", "--lr", "0.01", "--dropout", "0", "--hidden", "64",
              "--embed", "32", "--name", "t")  # fmt: skip
    assert r.exit_code == 0, r.output
    no_traceback(r.output)
    assert "trees: listops.tsv: 1,980 train / 220 validation trees, depth 1-2 / 1-2, 14 node labels, 10 classes" in r.stderr
    assert "model: bintreelstm 1x64 (tree)" in r.stderr and "32 trees a step" in r.stderr and "accuracy" in r.stderr
    final = metrics(workdir / "checkpoints" / "t")[-1]
    labels = Counter(line.split("\t")[0] for line in shallow.read_text().splitlines())
    majority = max(labels.values()) / sum(labels.values())
    assert final["final"] and final["val_bpc"] is None
    assert final["accuracy"] > 0.45 and final["accuracy"] > 3 * majority, (final, majority)
    assert final["trees_depth_1"] + final["trees_depth_2"] == 220 and 0 <= final["accuracy_depth_2"] <= 1

    piped = runner.invoke(app, ["predict", "t", "[MAX 2 9 [MIN 4 7 ] 0 ]", "[SM 3 4 ]"])  # into a pipe: a line an input
    assert piped.exit_code == 0 and [x.split()[0] in "0123456789" for x in piped.stdout.splitlines()] == [True, True], piped.output
    from charrnn.cli import common

    common.out._force_terminal = True  # in a terminal: the tree, node by node
    try:
        p = runner.invoke(app, ["predict", "t", "[MAX 2 9 [MIN 4 7 ] 0 ]", "[SM 3 4 ]"])
    finally:
        common.out._force_terminal = None
    assert p.exit_code == 0, p.output
    lines = p.stdout.splitlines()
    assert lines[0].split()[0] in "0123456789" and "(p 0." in lines[0]
    assert lines[1].startswith("MAX → ") and any(x.startswith("│   ├── 4 → ") for x in lines)  # the tree, node by node
    assert any(x.startswith("SM → ") for x in lines) and "✓ or ✗ against its ListOps value" in p.stdout
    j = json.loads(runner.invoke(app, ["predict", "t", "[MAX 2 9 [MIN 4 7 ] 0 ]", "--json"]).stdout)
    assert [n["label"] for n in j["nodes"]] == ["MAX", "2", "9", "MIN", "4", "7", "0"]
    assert [n["value"] for n in j["nodes"]] == ["9", "2", "9", "4", "4", "7", "0"] and j["answer"] == j["nodes"][0]["predicted"]

    i = runner.invoke(app, ["inspect", "t", "--text", "[MAX 2 9 [MIN 4 7 ] 0 ]"])
    assert i.exit_code == 0, i.output
    assert "7 nodes, height 2; layer 0, units 0-63" in i.stdout and "the answer for the whole tree" in i.stdout
    assert "├── MIN → " in i.stdout and "gate saturation: fraction of nodes per unit" in i.stdout
    g = runner.invoke(app, ["inspect", "t", "--gradients", "--what", "forget", "--json", str(workdir / "t.json")])
    assert g.exit_code == 0 and "gradient through the tree" in g.stdout and "a level down" in g.stdout
    doc = json.loads((workdir / "t.json").read_text())
    assert doc["format"] == "charrnn-inspect-tree" and doc["arrays"]["signals.forget"][0][0][0] is None  # none at the root
    info = runner.invoke(app, ["info", "t"])
    assert "14 node labels; 10 classes" in info.stdout and "accuracy" in info.stdout and "32 trees" in info.stdout


def test_the_recursive_unit_resumes_exactly(runner, workdir, shallow):
    common = ["--cell", "recursive", "--eval-every", "10", "--lr", "0.01", "--min-lr", "0.01"]  # one schedule for any limit
    assert train(runner, str(shallow), *common, "--steps", "30", "--name", "whole").exit_code == 0
    r = train(runner, str(shallow), *common, "--steps", "15", "--name", "part")
    assert r.exit_code == 0 and "binarised for the recursive unit" in r.stderr
    r = runner.invoke(app, ["train", "--resume", "part", "--steps", "30", "--quiet"])
    assert r.exit_code == 0, r.output
    whole, part = workdir / "checkpoints" / "whole", workdir / "checkpoints" / "part"
    assert [m["val_loss"] for m in metrics(whole)][-2:] == [m["val_loss"] for m in metrics(part)][-2:]
    a, b = checkpoint.load(whole / "last.pt").weights, checkpoint.load(part / "last.pt").weights
    assert all(torch.equal(a[k], b[k]) for k in a)


@pytest.mark.parametrize(
    "line, fragments",
    [
        ("5\t[MAX 1 2", [":3: column 3: '[MAX' is never closed"]),
        ("5\t[MAX 1 2 ] ]", [":3: column 14: ']' closes no node"]),
        ("5 [MAX 1 2 ]", [":3: no tab; each line must be label<TAB>tree."]),
        ("\t[MAX 1 2 ]", [":3: the label is empty"]),
    ],
)
def test_malformed_trees_name_the_line_and_column(runner, workdir, line, fragments):
    f = workdir / "bad.tsv"
    f.write_text("1\t[MIN 1 2 ]\n2\t(MAX 1 2)\n" + line + "\n", encoding="utf-8")
    one_line_error(train(runner, str(f), "--steps", "1"), str(f), *fragments)


def test_options_that_do_not_fit_are_one_line_errors(runner, workdir, shallow):
    one_line_error(train(runner, str(shallow), "--cell", "lstm"), "--cell lstm reads sequences; --task tree takes --cell recursive, treelstm, bintreelstm.")
    one_line_error(runner.invoke(app, ["train", str(shallow), "--cell", "treelstm", "--steps", "1"]),
                   "--cell treelstm composes trees; --task lm takes --cell rnn, lstm, gru")  # fmt: skip
    one_line_error(train(runner, str(shallow), "--seq-len", "8", "--doc-state", "carry"), "--doc-state, --seq-len do not fit --task tree.")
    one_line_error(train(runner, "pydoc-topics"), "pydoc-topics is a text corpus; --task tree reads label<TAB>tree files")
    assert train(runner, str(shallow), "--steps", "5", "--name", "t").exit_code == 0
    one_line_error(runner.invoke(app, ["predict", "t", "[MAX 1 2"]), "the tree: column 1: '[MAX' is never closed")
    one_line_error(runner.invoke(app, ["predict", "t", "[FIRST 1 2 ]"]), "'FIRST', a token the model never saw in training")
    one_line_error(runner.invoke(app, ["predict", "t", "[MAX 1 2 ]", "--beam", "2"]), "--beam does not fit a tree run")
    one_line_error(runner.invoke(app, ["inspect", "t", "--find", "x"]), "--find reads a text's positions; a tree run shows its nodes")
    one_line_error(runner.invoke(app, ["inspect", "t", "--html", "t.html"]), "--html reads a text's positions; a tree run shows its nodes")
    one_line_error(runner.invoke(app, ["inspect", "t", "--text", "[MAX 1 2 ]", "--what", "a"]), "no signal 'a'")
    one_line_error(runner.invoke(app, ["sample", "t"]), "is a tree run, not a language model; ask it with `charrnn predict`.")


def test_the_built_in_listops_set_trains_from_its_cache(runner, workdir, monkeypatch):
    small = TreeSet("listops", listops.TREE_SETS["listops"].description, listops.TREE_SETS["listops"].make, n_train=300, n_val=64)
    monkeypatch.setitem(listops.TREE_SETS, "listops", small)
    assert "listops" in runner.invoke(app, ["corpora"]).stdout
    r = train(runner, "--steps", "3", "--name", "a")  # no data: the task's own, listops
    assert r.exit_code == 0, r.output
    assert "trees: listops (built-in): 300 train / 64 validation trees, depth 1-5 / 1-8" in r.stderr
    cached = list((workdir / "checkpoints" / ".cache" / "trees").glob("*.npz"))
    assert len(cached) == 1
    stamp = cached[0].stat().st_mtime_ns
    r2 = train(runner, "listops", "--steps", "3", "--name", "b")
    assert r2.exit_code == 0 and r.stderr.splitlines()[0] == r2.stderr.splitlines()[0]
    assert cached[0].stat().st_mtime_ns == stamp  # read, not rebuilt
    m = metrics(workdir / "checkpoints" / "b")[-1]
    assert {f"trees_depth_{d}" for d in range(1, 9)} <= set(m) and sum(m[f"trees_depth_{d}"] for d in range(1, 9)) == 64


def test_the_built_in_set_takes_depth_arity_and_size_from_its_name(runner, workdir):
    name = "listops:depth=2,val-depth=3,args=3,train=200,val=30"
    r = train(runner, name, "--steps", "2", "--name", "s")
    assert r.exit_code == 0, r.output
    assert f"trees: {name} (built-in): 200 train / 30 validation trees, depth 1-2 / 1-3" in r.stderr
    one_line_error(train(runner, "listops:depth=x"), "'depth=x' is not a setting of listops")
    one_line_error(train(runner, "listops:depth=4,val-depth=2"), "1 <= train depth <= validation depth")
    one_line_error(train(runner, "listops:train=0"), "n_train >= 1")
