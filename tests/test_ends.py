"""The ends of sequences: halt and length models stop where the data's documents stop.

On a generated corpus whose documents all have one length, the lengths sampled
from a halt model (it draws its Bernoulli output after each character) and from
a length model (it draws tau first, then writes exactly tau characters) match
it. A length model conditioned on labels draws each label's own length.
`--stop`, `--no-stop` and `--length` keep their meaning.
"""

from __future__ import annotations

import random
from pathlib import Path

import numpy as np
import pytest
from helpers import TINY, no_traceback

from charrnn.cli import app
from charrnn.data import remaining as remaining_mod
from charrnn.data.remaining import document_starts, remaining_file
from charrnn.data.tokenfile import TokenFile


def fixed(path: Path, length: int, n: int = 500, alphabet: str = "abcdef", seed: int = 0) -> Path:
    rng = random.Random(seed)
    path.write_text("".join("".join(rng.choice(alphabet) for _ in range(length)) + "\n" for _ in range(n)))
    return path


def train(runner, *args):  # type: ignore[no-untyped-def]
    r = runner.invoke(app, ["train", *args, *TINY, "--batch-size", "8", "--device", "cpu", "--quiet", "--threads", "1"])
    no_traceback(r.output)
    assert r.exit_code == 0, r.output
    return r


def samples(runner, run: str, *args: str) -> list[str]:
    s = runner.invoke(app, ["sample", run, "--num", "20", "--seed", "5", *args])
    assert s.exit_code == 0, s.output
    return s.stdout[:-1].split("\n\n")  # samples are separated by a blank line


@pytest.mark.parametrize("kind", ["halt", "length"])
def test_sampled_lengths_match_the_documents(runner, workdir, kind):
    fixed(workdir / "seven.txt", 7)
    r = train(runner, "seven.txt", "--doc-sep", "line", "--length-model", kind, "--steps", "400", "--name", kind)
    assert f"length-model {kind}" in r.stderr
    texts = samples(runner, kind)
    lengths = [len(t) for t in texts]
    if kind == "length":
        assert lengths == [7] * 20  # tau drawn, then exactly tau characters
    else:
        assert sum(n == 7 for n in lengths) >= 18, lengths  # a Bernoulli draw after every character
    assert all(set(t) <= set("abcdef") for t in texts)  # the end token never appears as text
    capped = samples(runner, kind, "--length", "4")  # the cap still cuts
    assert [len(t) for t in capped] == [4] * 20
    stopped = samples(runner, kind, "--stop", "a")
    assert all("a" not in t and len(t) <= 7 for t in stopped)
    run_on = runner.invoke(app, ["sample", kind, "--no-stop", "--length", "39", "--seed", "5"]).stdout[:-1]
    docs = run_on.split("\n")
    assert len(run_on) == 39 and len(docs) >= 4
    if kind == "length":
        assert [len(d) for d in docs[:-1]] == [7] * (len(docs) - 1)  # one document after another, each of its tau


def test_a_conditioned_length_model_draws_each_labels_length(runner, workdir):
    (workdir / "data").mkdir()
    fixed(workdir / "data" / "short.txt", 3, seed=1)
    fixed(workdir / "data" / "long.txt", 11, seed=2)
    train(runner, "data", "--label-from", "file", "--doc-sep", "line", "--length-model", "length", "--steps", "300", "--name", "ll")
    assert {len(t) for t in samples(runner, "ll", "--label", "short")} == {3}
    assert {len(t) for t in samples(runner, "ll", "--label", "long")} == {11}
    assert {len(t) for t in samples(runner, "ll")} <= {3, 11}  # no label: either


def test_remaining_lengths_count_down_to_each_documents_end(tmp_path, monkeypatch):
    monkeypatch.setattr(remaining_mod, "BLOCK", 5)  # blocks smaller than the documents
    rng = np.random.default_rng(0)
    eos = 9
    ids = rng.integers(0, 9, 200).astype(np.uint8)
    ids[rng.choice(200, 30, replace=False)] = eos
    ids[[0, 1]] = [eos, 3]
    ids[-1] = 4  # the corpus ends inside a document
    ids.tofile(tmp_path / "ids.bin")
    tf = TokenFile(tmp_path / "ids.bin", np.uint8, len(ids))
    got = np.asarray(remaining_file(tf, eos, tmp_path))
    want = [next((q for q in range(p + 1, len(ids)) if ids[q] == eos), len(ids)) - p - 1 for p in range(len(ids))]
    assert got.tolist() == want
    assert remaining_file(tf, eos, tmp_path).path == tmp_path / "remaining.u1.bin"  # made once, then opened
    starts = np.concatenate([n for n, _ in document_starts(tf, TokenFile(tmp_path / "remaining.u1.bin", np.uint8, len(ids)), eos)])
    ends = np.flatnonzero(ids == eos)
    assert starts.tolist() == [want[p] for p in ends if p + 1 < len(ids)]
