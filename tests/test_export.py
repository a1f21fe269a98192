"""`charrnn export`: each format opened in its own runtime (safetensors without charrnn,
onnxruntime, torch.jit.load) gives charrnn's next-token probabilities on a text (from
`charrnn inspect --json`) to 1e-5 and `charrnn sample`'s text for a seed.

The sampled text: charrnn draws token i = argmax_j (o_j / T + g_j), g_j = -log e_j with
e_j torch's exponential draws from the seeded generator, one row of V a token
(tasks/sampler.py: the Gumbel-max trick). The loops here draw the same e_j from a
generator seeded the same way and take the same argmax over the exported model's
logits, so equal logits (to float rounding) give the same text; a tie within rounding
could differ, which on 80 tokens of these models does not happen. Greedy decoding
(--temperature 0, a plain argmax) is checked as well.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
import warnings
from pathlib import Path
from typing import Callable

import numpy as np
import pytest
import torch

from charrnn.cli import app
from helpers import TINY, make_text, no_traceback, one_line_error

ort = pytest.importorskip("onnxruntime")
pytest.importorskip("safetensors")

TEXT = "The cat sat on the mat. A dog ran!"
PRIME, LENGTH, SEED = "The ", 80, 7
KINDS = {  # name: extra train options (a leaky net with skip connections carries a (L, B, D, H) state)
    "rnn": [], "lstm": [], "gru": [], "leaky": ["--delays", "1,3"], "esn": ["--readout", "gradient", "--hidden", "512"], "jordan": [],
}  # fmt: skip


@pytest.fixture(scope="module")
def runs(tmp_path_factory) -> Path:
    """One tiny trained run of each kind (a few steps: the weights need not be good, only not the initial ones)."""
    from typer.testing import CliRunner

    root = tmp_path_factory.mktemp("export")
    corpus = root / "corpus.txt"
    corpus.write_text(make_text(), encoding="utf-8")
    runner = CliRunner()
    for cell, extra in KINDS.items():
        r = runner.invoke(app, ["train", str(corpus), *TINY, "--cell", cell, *extra, "--layers", "2", "--steps", "6", "--lr", "0.03",
                                "--sample-chars", "0", "--final-eval-tokens", "256", "--device", "cpu", "-q",
                                "--checkpoints", str(root / "ck"), "--name", cell])  # fmt: skip
        assert r.exit_code == 0, r.output
    return root


def cli(runner, runs: Path, *args: str):  # type: ignore[no-untyped-def]
    return runner.invoke(app, [*args, "--checkpoints", str(runs / "ck")])


def charrnn_probs(runner, runs: Path, cell: str) -> np.ndarray:
    """(T, V): p(next token) after each token of TEXT, as `charrnn inspect --json` writes them."""
    out = runs / f"{cell}.inspect.json"
    r = cli(runner, runs, "inspect", cell, "--text", TEXT, "--json", str(out))
    assert r.exit_code == 0, r.output
    return np.array(json.loads(out.read_text())["arrays"]["probs"])


def charrnn_sample(runner, runs: Path, cell: str, temperature: str = "1") -> str:
    r = cli(runner, runs, "sample", cell, "--prime", PRIME, "--length", str(LENGTH), "--seed", str(SEED), "--temperature", temperature)
    assert r.exit_code == 0, r.output
    return r.stdout


Step = Callable[[int, dict], tuple[np.ndarray, dict]]  # (token id, state) -> (logits (V,), state)


def read_through(step: Step, state: dict, ids: list[int]) -> tuple[np.ndarray, dict]:
    """Every prediction along ids: (T, V) softmax, and the state after the last."""
    probs = []
    for i in ids:
        logits, state = step(i, state)
        e = np.exp(logits.astype(np.float64) - logits.max())
        probs.append(e / e.sum())
    return np.array(probs), state


def sample(step: Step, state: dict, tokens: list[str], temperature: float) -> str:
    """`charrnn sample --prime PRIME --seed SEED --length LENGTH` over an exported step."""
    stoi = {t: i for i, t in enumerate(tokens)}
    gen = torch.Generator().manual_seed(SEED)
    logits = None
    for ch in PRIME:
        logits, state = step(stoi[ch], state)
    text = []
    for _ in range(LENGTH):
        if temperature == 0:
            i = int(np.argmax(logits))
        else:
            g = -torch.empty(1, len(tokens)).exponential_(1, generator=gen).log_().numpy()[0]  # the sampler's draw for one token
            i = int(np.argmax(logits / np.float32(temperature) + g))
        text.append(tokens[i])
        logits, state = step(i, state)
    return PRIME + "".join(text) + "\n"


def onnx_step(folder: Path) -> tuple[Step, dict]:
    cfg = json.loads((folder / "config.json").read_text())
    sess = ort.InferenceSession(str(folder / "model.onnx"), providers=["CPUExecutionProvider"])
    inputs = {i.name for i in sess.get_inputs()}
    assert set(cfg["onnx_inputs"]) == inputs and "idx" in inputs

    def step(i: int, state: dict) -> tuple[np.ndarray, dict]:
        feed = {"idx": np.array([i], np.int64), **{n: s for n, s in state.items() if n in inputs}}
        out = dict(zip([o.name for o in sess.get_outputs()], sess.run(None, feed)))
        return out["logits"][0], {s["name"]: out[s["name"] + "_out"] for s in cfg["state"]}

    return step, zeros(cfg)


def torchscript_step(folder: Path) -> tuple[Step, dict]:
    cfg = json.loads((folder / "config.json").read_text())
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)  # "torch.jit.load is deprecated" (torch 2.9+): still how TorchScript loads
        m = torch.jit.load(str(folder / "model.torchscript.pt"))
    names = [s["name"] for s in cfg["state"]]

    def step(i: int, state: dict) -> tuple[np.ndarray, dict]:
        with torch.no_grad():
            logits, *new = m(torch.tensor([i]), *(torch.from_numpy(state[n]) for n in names))
        return logits[0].numpy(), {n: s.numpy() for n, s in zip(names, new)}

    return step, zeros(cfg)


def zeros(cfg: dict) -> dict:
    return {s["name"]: np.zeros([1 if d == "batch" else d for d in s["shape"]], np.float32) for s in cfg["state"]}


@pytest.mark.parametrize("cell", list(KINDS))
def test_onnx_and_torchscript_steps_give_charrnns_numbers(runs, runner, cell):
    folder = runs / "out" / cell
    for fmt in ("onnx", "torchscript"):
        r = cli(runner, runs, "export", cell, "--format", fmt, "--out", str(folder))
        assert r.exit_code == 0, r.output
        assert f"as {fmt} to" in r.stdout and "config.json" in r.stdout
    cfg = json.loads((folder / "config.json").read_text())
    assert cfg["cell"] == cell and set(cfg["files"]) == {"onnx", "torchscript", "tokenizer"}
    tokens = json.loads((folder / "vocab.json").read_text())["tokens"]
    stoi = {t: i for i, t in enumerate(tokens)}
    want = charrnn_probs(runner, runs, cell)
    text, greedy = charrnn_sample(runner, runs, cell), charrnn_sample(runner, runs, cell, "0")
    for make in (onnx_step, torchscript_step):
        step, state = make(folder)
        probs, _ = read_through(step, dict(state), [stoi[c] for c in TEXT])
        np.testing.assert_allclose(probs, want, atol=1e-5, rtol=0)
        assert sample(step, dict(state), tokens, 1.0) == text, make.__name__
        assert sample(step, dict(state), tokens, 0.0) == greedy, make.__name__
    if cell == "jordan":  # its step reads the token alone: the graph has no state input
        assert cfg["onnx_inputs"] == ["idx"]


def test_the_onnx_step_takes_a_batch(runs, runner):
    folder = runs / "out" / "batch"
    assert cli(runner, runs, "export", "lstm", "--format", "onnx", "--out", str(folder)).exit_code == 0
    sess = ort.InferenceSession(str(folder / "model.onnx"), providers=["CPUExecutionProvider"])
    h = np.zeros((2, 3, 32), np.float32)
    logits, h1, c1 = sess.run(None, {"idx": np.array([1, 2, 1], np.int64), "h": h, "c": h})
    assert logits.shape[0] == 3 and h1.shape == (2, 3, 32)
    np.testing.assert_allclose(logits[0], logits[2], atol=1e-6)


# A program that knows nothing of charrnn: safetensors, config.json and vocab.json into plain PyTorch.
CLEAN = textwrap.dedent('''
    import json, sys
    import torch
    from torch import nn
    from safetensors.torch import load_file

    text, prime, length, seed = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4])


    def read(folder):
        cfg = json.load(open(f"{folder}/config.json"))
        tokens = json.load(open(f"{folder}/vocab.json", encoding="utf-8"))["tokens"]
        weights = load_file(f"{folder}/{cfg['files']['safetensors']}")
        report = {"keys": {k: list(v.shape) for k, v in weights.items()}, "sums": {k: float(v.double().sum()) for k, v in weights.items()}}
        if cfg["pytorch_modules"] is None:
            return report
        Core = {"rnn": nn.RNN, "lstm": nn.LSTM, "gru": nn.GRU}[cfg["cell"]]
        model = nn.ModuleDict({"embed": nn.Embedding(cfg["vocab_size"], cfg["embed"]),
                               "core": Core(cfg["embed"], cfg["hidden"], num_layers=cfg["layers"], batch_first=True),
                               "head": nn.Linear(cfg["hidden"], cfg["vocab_size"])})
        model.load_state_dict(weights)
        stoi = {t: i for i, t in enumerate(tokens)}
        with torch.no_grad():
            out, _ = model["core"](model["embed"](torch.tensor([[stoi[c] for c in text]])))
            report["probs"] = torch.softmax(model["head"](out)[0], -1).tolist()
            gen = torch.Generator().manual_seed(seed)
            out, state = model["core"](model["embed"](torch.tensor([[stoi[c] for c in prime]])))
            logits, drawn = model["head"](out[0, -1]), []
            for _ in range(length):
                e = torch.empty(1, len(tokens)).exponential_(1, generator=gen)
                i = int((logits - e.log()[0]).argmax())
                drawn.append(tokens[i])
                out, state = model["core"](model["embed"](torch.tensor([[i]])), state)
                logits = model["head"](out[0, -1])
        report["text"] = prime + "".join(drawn) + "\\n"
        return report


    reports = {folder: read(folder) for folder in sys.argv[5:]}
    print(json.dumps({"reports": reports, "charrnn_imported": any(m.split(".")[0] == "charrnn" for m in sys.modules)}))
''')


def test_safetensors_open_without_charrnn(runs, runner, tmp_path):
    folders = {}
    for cell in KINDS:
        folders[cell] = runs / "out" / f"st-{cell}"
        r = cli(runner, runs, "export", cell, "--out", str(folders[cell]))  # safetensors is the default format
        assert r.exit_code == 0, r.output
    script = tmp_path / "clean.py"
    script.write_text(CLEAN)
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}  # nothing points at charrnn
    p = subprocess.run([sys.executable, "-I", str(script), TEXT, PRIME, str(LENGTH), str(SEED), *map(str, folders.values())],
                       cwd=tmp_path, capture_output=True, text=True, timeout=180, env=env)  # fmt: skip
    assert p.returncode == 0, p.stderr[-2000:]
    done = json.loads(p.stdout)
    assert done["charrnn_imported"] is False
    from charrnn.training import checkpoint

    for cell, folder in folders.items():
        report = done["reports"][str(folder)]
        weights = checkpoint.load(checkpoint.find(cell, runs / "ck")).weights
        assert report["keys"] == {k: list(v.shape) for k, v in weights.items()}, cell
        for k, v in weights.items():
            assert report["sums"][k] == pytest.approx(float(v.double().sum()), abs=1e-9), (cell, k)
        if cell in ("rnn", "lstm", "gru"):  # PyTorch's own modules read the weights as they are
            np.testing.assert_allclose(np.array(report["probs"]), charrnn_probs(runner, runs, cell), atol=1e-5, rtol=0)
            assert report["text"] == charrnn_sample(runner, runs, cell), cell
        else:
            assert "probs" not in report  # config.json says no PyTorch module holds them (docs/export.md gives the equations)


def test_what_export_refuses_is_one_line(runs, runner, monkeypatch, tmp_path):
    one_line_error(cli(runner, runs, "export", "lstm", "--format", "pickle"), "pickle", code=2)
    one_line_error(cli(runner, runs, "export", "nothing-here"), "no checkpoint or run at nothing-here")
    monkeypatch.setitem(sys.modules, "onnx", None)  # as if the extra were not installed
    one_line_error(cli(runner, runs, "export", "lstm", "--format", "onnx", "--out", str(tmp_path / "x")), 'pip install "charrnn[export]"')
    monkeypatch.setitem(sys.modules, "safetensors.torch", None)
    one_line_error(cli(runner, runs, "export", "lstm", "--out", str(tmp_path / "x")), 'pip install "charrnn[export]"')
    assert not (tmp_path / "x").exists()
    r = cli(runner, runs, "export", "lstm", "--format", "torchscript", "--out", str(tmp_path / "ts"))  # needs no extra
    assert r.exit_code == 0, r.output


def test_other_tasks_and_conditioned_models_say_so(workdir, runner, corpus_file):
    from helpers import TINY as T

    r = runner.invoke(app, ["train", "listops:depth=2,val-depth=2,args=3,train=64,val=16", "--task", "tree", "--layers", "1", "--hidden", "16",
                            "--embed", "8", "--batch-size", "16", "--steps", "2", "--device", "cpu", "-q", "--name", "tree"])  # fmt: skip
    assert r.exit_code == 0, r.output
    one_line_error(runner.invoke(app, ["export", "tree"]), "holds a tree run", "language models")
    r = runner.invoke(app, ["train", str(corpus_file), *T, "--doc-sep", "line", "--length-model", "halt", "--steps", "2", "--device", "cpu",
                            "-q", "--name", "halt", "--sample-chars", "0"])  # fmt: skip
    assert r.exit_code == 0, r.output
    one_line_error(runner.invoke(app, ["export", "halt"]), "end output", "plain language models")
    no_traceback(r.output)


def test_a_sentencepiece_model_travels_as_its_own_model_file(workdir, runner, corpus_file):
    spm = pytest.importorskip("sentencepiece")
    r = runner.invoke(app, ["train", str(corpus_file), *TINY, "--tokenizer", "spm", "--vocab-size", "300", "--steps", "3", "--device", "cpu",
                            "-q", "--name", "sp", "--sample-chars", "0"])  # fmt: skip
    assert r.exit_code == 0, r.output
    r = runner.invoke(app, ["export", "sp", "--format", "onnx"])
    assert r.exit_code == 0, r.output
    folder = workdir / "checkpoints" / "sp" / "export"
    cfg = json.loads((folder / "config.json").read_text())
    assert cfg["tokenizer"]["kind"] == "spm" and cfg["files"]["tokenizer"] == "tokenizer.model" and not (folder / "vocab.json").exists()
    sp = spm.SentencePieceProcessor(model_file=str(folder / "tokenizer.model"))
    assert sp.get_piece_size() == cfg["vocab_size"]
    assert runner.invoke(app, ["inspect", "sp", "--text", TEXT, "--json", "sp.json"]).exit_code == 0
    doc = json.loads((workdir / "sp.json").read_text())
    ids = sp.encode(TEXT)
    assert ids == doc["ids"]  # sentencepiece's own ids for a line of text: the ones charrnn reads
    step, state = onnx_step(folder)
    probs, _ = read_through(step, state, ids)
    np.testing.assert_allclose(probs, np.array(doc["arrays"]["probs"]), atol=1e-5, rtol=0)
