"""Encoder-decoders (--task seq2seq), attention, beam search, and `charrnn predict` on them:
through the CLI on tiny generated pairs, the model's paths held to each other directly."""

from __future__ import annotations

import itertools
import json
import math
import random
from pathlib import Path

import pytest
import torch
from helpers import one_line_error, resumes_exactly

from charrnn.cli import app
from charrnn.config import DataConfig, ModelConfig
from charrnn.models.seq2seq import IGNORE, Seq2Seq
from charrnn.tasks.beam import beam_search, normalised

TINY = ["--layers", "1", "--hidden", "48", "--embed", "16", "--batch-size", "32", "--warmup", "20", "--device", "cpu",
        "--threads", "1", "-q"]  # fmt: skip


def reversal_tsv(path: Path, n: int = 3000, alphabet: str = "abcdef", most: int = 6, seed: int = 0) -> Path:
    rng = random.Random(seed)
    rows = ["".join(rng.choice(alphabet) for _ in range(rng.randint(1, most))) for _ in range(n)]
    path.write_text("".join(f"{s}\t{s[::-1]}\n" for s in rows), encoding="utf-8")
    return path


def final_record(run: Path) -> dict:
    return [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines() if json.loads(line)["final"]][-1]


@pytest.fixture(scope="module")
def reverser(tmp_path_factory) -> Path:
    """A model with dot attention trained to reverse strings of 1-6 letters (about 10 s)."""
    from typer.testing import CliRunner

    root = tmp_path_factory.mktemp("seq2seq")
    data = reversal_tsv(root / "rev.tsv")
    r = CliRunner().invoke(app, ["train", str(data), "--task", "seq2seq", "--attention", "dot", "--steps", "400", "--eval-every", "200",
                                 "--out", str(root / "run"), "--checkpoints", str(root), *TINY])  # fmt: skip
    assert r.exit_code == 0, r.output
    return root / "run"


def test_seq2seq_learns_to_reverse_short_strings(reverser):
    rec = final_record(reverser)
    assert rec["exact_match"] >= 0.9 and rec["cer"] < 0.05, rec
    report = rec["report"]
    assert report["pairs"] == 300 and sum(r["n"] for r in report["by_source_length"]) == 300
    assert rec["val_bpc"] == pytest.approx(rec["val_loss"] / math.log(2))


def blocks(stdout: str) -> list[list[str]]:
    return [b.splitlines() for b in stdout.strip().split("\n\n")]


def test_predict_prints_the_output_first_then_the_beams_and_the_attention_map(reverser, runner):
    r = runner.invoke(app, ["predict", str(reverser), "abcd", "fedca", "bb"])
    assert r.exit_code == 0, r.output
    assert sum(line == s[::-1] for line, s in zip(r.stdout.splitlines(), ["abcd", "fedca", "bb"])) >= 2
    j = json.loads(runner.invoke(app, ["predict", str(reverser), "abcd", "--beam", "3", "--top", "3", "--json"]).stdout)
    scores = [b["score"] for b in j["beams"]]
    assert len(scores) == 3 and scores == sorted(scores, reverse=True) and j["output"] == j["beams"][0]["output"]
    assert j["beams"][0]["score"] == pytest.approx(normalised(j["beams"][0]["logp"], len(j["output"]) + 1))
    shown = runner.invoke(app, ["predict", str(reverser), "abcd", "--beam", "3", "--top", "3", "--attention-map"])
    lines = shown.stdout.splitlines()
    assert lines[0] == j["output"] and "beam 3: the best 3" in shown.stdout and "attention (beam 3)" in shown.stdout
    m = json.loads(runner.invoke(app, ["predict", str(reverser), "abcde", "--attention-map", "--json"]).stdout)
    attention = m["attention"]
    assert len(attention) == len(m["output"]) + 1 and all(len(row) == 5 for row in attention)  # output (and its end) down, source across
    assert all(abs(sum(row) - 1) < 1e-4 for row in attention)


def test_predict_refuses_what_does_not_fit(reverser, runner, workdir):
    one_line_error(runner.invoke(app, ["predict", str(reverser), "abc", "--trace"]), "--trace", "--attention-map")
    one_line_error(runner.invoke(app, ["predict", str(reverser), "abc", "--beam", "2", "--temperature", "1"]), "--temperature", "--beam")
    one_line_error(runner.invoke(app, ["predict", str(reverser), "xyz"]), "never saw", "'x'")
    reversal_tsv(workdir / "rev.tsv", n=200)
    r = runner.invoke(app, ["train", "rev.tsv", "--task", "seq2seq", "--steps", "2", "--name", "plain", *TINY])
    assert r.exit_code == 0, r.output
    one_line_error(runner.invoke(app, ["predict", "checkpoints/plain", "abc", "--attention-map"]), "--attention-map", "--attention dot")
    sampled = runner.invoke(app, ["predict", "checkpoints/plain", "abc", "--temperature", "1.5", "--seed", "1", "--json"])
    again = runner.invoke(app, ["predict", "checkpoints/plain", "abc", "--temperature", "1.5", "--seed", "1", "--json"])
    assert sampled.exit_code == 0 and json.loads(sampled.stdout) == json.loads(again.stdout)


def test_bad_pair_lines_are_named(runner, workdir):
    (workdir / "p.tsv").write_text("ab\tba\ncd dc\n", encoding="utf-8")
    one_line_error(runner.invoke(app, ["train", "p.tsv", "--task", "seq2seq", "--steps", "1", *TINY]), "p.tsv:2", "no tab")
    (workdir / "q.tsv").write_text("ab\tba\nab\tb\ta\n", encoding="utf-8")
    one_line_error(runner.invoke(app, ["train", "q.tsv", "--task", "seq2seq", "--steps", "1", *TINY]), "q.tsv:2", "column 5")
    one_line_error(runner.invoke(app, ["train", "nope", "--task", "seq2seq", "--steps", "1", *TINY]), "nope", "dates, numbers")


def test_options_that_do_not_fit_are_one_line_errors(runner, workdir, corpus_file):
    reversal_tsv(workdir / "rev.tsv", n=50)
    base = ["train", "rev.tsv", "--task", "seq2seq", "--steps", "1", *TINY]
    one_line_error(runner.invoke(app, ["train", str(corpus_file), "--attention", "dot", "--steps", "1", *TINY]), "--attention", "--task lm")
    one_line_error(runner.invoke(app, [*base, "--pool", "mean"]), "--pool", "--task seq2seq")
    one_line_error(runner.invoke(app, [*base, "--label-from", "tsv"]), "--label-from", "--task seq2seq")
    one_line_error(runner.invoke(app, [*base, "--doc-sep", "line"]), "--doc-sep")
    one_line_error(runner.invoke(app, [*base, "--sampling-prob", "1.5"]), "--sampling-prob")
    one_line_error(runner.invoke(app, [*base, "--bidirectional"]), "--bidirectional", "--attention")
    one_line_error(runner.invoke(app, [*base, "--decoder-cell", "nope"]), "nope", code=2)
    # a Jordan net feeds back a language model's output (issue 12), a tree cell composes trees (issue 15)
    one_line_error(runner.invoke(app, [*base, "--cell", "jordan"]), "--cell jordan serves --task lm only")
    one_line_error(runner.invoke(app, [*base, "--decoder-cell", "jordan"]), "--decoder-cell jordan does not fit a decoder")
    one_line_error(runner.invoke(app, [*base, "--decoder-cell", "treelstm"]), "--decoder-cell treelstm does not fit a decoder")
    one_line_error(runner.invoke(app, [*base, "--cell", "treelstm"]), "--cell treelstm composes trees")


def test_a_built_in_pair_set_trains_and_is_listed(runner, workdir):
    listed = runner.invoke(app, ["corpora"])
    assert all(name in listed.stdout for name in ("dates", "numbers", "addition", "reversal"))
    r = runner.invoke(app, ["train", "reversal", "--task", "seq2seq", "--steps", "3", "--eval-every", "3", "--final-eval-tokens", "400",
                            "--name", "r", *TINY])  # fmt: skip
    assert r.exit_code == 0, r.output
    assert "pair set reversal: 50,000 train / 2,000 validation pairs" in r.stderr and "sources up to 16 chars" in r.stderr
    assert "by source length" in r.stderr and "longer than any training source" in r.stderr
    info = runner.invoke(app, ["info", "checkpoints/r"])
    assert "pairs" in info.stdout and "exact match" in info.stdout


def test_scheduled_sampling_with_two_kinds_resumes_exactly(tmp_path):
    data = DataConfig(paths=(str(reversal_tsv(tmp_path / "rev.tsv", n=300)),))
    model = ModelConfig(cell="lstm", layers=2, hidden=16, embed=8, dropout=0.2, task="seq2seq",
                        options={"decoder_cell": "gru", "attention": "additive", "sampling_prob": 0.3, "condition": "input"})  # fmt: skip
    resumes_exactly(tmp_path, data, model, batch_size=8, warmup=3, eval_tokens=200, final_eval_tokens=200)


# ------------------------------------------------------------------ the model's paths


def tiny(cell: str = "gru", attention: str = "dot", condition: str = "both", decoder: str | None = None, both_ways: bool = False) -> Seq2Seq:
    options = {"attention": attention, "condition": condition, "bidirectional": both_ways, **({"decoder_cell": decoder} if decoder else {})}
    cfg = ModelConfig(cell=cell, layers=2, hidden=10, embed=6, dropout=0.0, vocab_size=7, task="seq2seq", options=options)
    return Seq2Seq(cfg).double().eval()


@pytest.mark.parametrize("cell,attention,condition,decoder,both_ways", [
    ("rnn", "none", "init", None, False), ("gru", "dot", "both", "lstm", False), ("lstm", "additive", "input", None, False),
    ("lstm", "dot", "init", "rnn", False), ("lstm", "dot", "both", None, True), ("gru", "additive", "init", "lstm", True),
])  # fmt: skip
def test_padding_changes_nothing_and_both_decoder_paths_agree(cell, attention, condition, decoder, both_ways):
    model = tiny(cell, attention, condition, decoder, both_ways)
    a, b = torch.randint(6, (1, 7)), torch.randint(6, (1, 3))
    src = torch.cat([a, torch.cat([torch.full((1, 4), 6), b], 1)])  # b left-padded
    y_in = torch.randint(7, (2, 5))
    with torch.no_grad():
        both, _ = model(src, torch.tensor([7, 3]), y_in)
        alone = torch.cat([model(x, torch.tensor([x.shape[1]]), y[None])[0] for x, y in ((a, y_in[0]), (b, y_in[1]))])
        assert torch.allclose(both, alone, atol=1e-10)
        enc, layers = model.start(src, torch.tensor([7, 3]))
        steps = []
        for t in range(5):  # the per-step path, reading the same inputs
            logits, layers, alpha = model.step(y_in[:, t], layers, enc)
            steps.append(logits)
            if alpha is not None:
                assert alpha.shape == (2, 7) and torch.allclose(alpha.sum(-1), torch.ones(2, dtype=alpha.dtype))
                assert float(alpha[1, :4].abs().max()) == 0.0  # never on the padding
        assert torch.allclose(torch.stack(steps, 1), both, atol=1e-10)


@pytest.mark.parametrize("both_ways", [False, True])
def test_a_bidirectional_encoder_sees_what_comes_after(both_ways):
    """--bidirectional (section 10.3): the attention's reading of the first source character
    changes with the last one only when a second encoder reads the source from its end."""
    model = tiny("lstm", "dot", "both", None, both_ways)
    src = torch.randint(6, (1, 5))
    other = src.clone()
    other[0, -1] = (src[0, -1] + 1) % 6
    with torch.no_grad():
        first = [model.encode(s, torch.tensor([5])).out[0, 0] for s in (src, other)]
    assert first[0].shape == (20 if both_ways else 10,)
    assert bool((first[0] - first[1]).abs().max() > 1e-6) == both_ways


def test_the_loss_ignores_target_padding():
    model = tiny()
    src, y_in = torch.randint(6, (2, 4)), torch.randint(7, (2, 3))
    targets = torch.tensor([[1, 2, 3], [4, IGNORE, IGNORE]])
    with torch.no_grad():
        logits, loss = model(src, torch.tensor([4, 4]), y_in, targets)
    nll = -torch.log_softmax(logits, -1)
    assert loss == pytest.approx(float((nll[0, 0, 1] + nll[0, 1, 2] + nll[0, 2, 3] + nll[1, 0, 4]) / 4))


# ------------------------------------------------------------------ beam search

# A model whose distribution is known: a Markov chain over a, b and the end token (2), from the end token.
# Greedy takes a (0.55) first, but after a the chain spreads out; b (0.45) is followed by the end for sure.
TABLE = torch.tensor([[0.34, 0.33, 0.33], [1e-9, 1e-9, 1.0], [0.55, 0.45, 1e-9]]).log()  # row: the previous token


def markov_step(tokens, state):
    return TABLE[tokens], tokens, None


def brute_force(max_len: int, alpha: float) -> tuple[tuple[int, ...], float]:
    """Every output up to max_len tokens (ended, or cut at max_len), the best by length-normalised score."""
    best, best_score = None, -math.inf
    for n in range(max_len + 1):
        for ids in itertools.product((0, 1), repeat=n):
            prev, logp = 2, 0.0
            for tok in ids:
                logp += float(TABLE[prev, tok])
                prev = tok
            candidates = [(logp + float(TABLE[prev, 2]), n + 1)] + ([(logp, n)] if n == max_len else [])
            for lp, length in candidates:
                if normalised(lp, length, alpha) > best_score:
                    best, best_score = ids, normalised(lp, length, alpha)
    return best, best_score


@pytest.mark.parametrize("alpha", [0.0, 0.7, 1.0])
def test_beam_search_returns_the_highest_scoring_sequence(alpha):
    ids, score = brute_force(5, alpha)
    wide = beam_search(markov_step, torch.tensor([2]), lambda s, rows: s[rows], 2, 2, width=64, max_len=5, alpha=alpha)
    assert wide[0].ids == ids and wide[0].score(alpha) == pytest.approx(score)
    assert beam_search(markov_step, torch.tensor([2]), lambda s, rows: s[rows], 2, 2, width=2, max_len=5, alpha=alpha)[0].ids == ids
    greedy = beam_search(markov_step, torch.tensor([2]), lambda s, rows: s[rows], 2, 2, width=1, max_len=5, alpha=alpha)[0]
    assert greedy.ids[0] == 0 and greedy.score(alpha) < score  # the greedy path misses it


def test_sample_beam_finds_the_most_likely_text_of_a_known_language_model(runner, workdir):
    """The same chain as a character language model: a vanilla RNN whose hidden state is the
    one-hot of the last character and whose output layer holds the table's log-probabilities."""
    (workdir / "ab.txt").write_text("ab\nba\naab\n" * 20, encoding="utf-8")
    r = runner.invoke(app, ["train", "ab.txt", "--doc-sep", "line", "--cell", "rnn", "--layers", "1", "--hidden", "3", "--embed", "3",
                            "--steps", "1", "--batch-size", "2", "--seq-len", "8", "--name", "ab", "--device", "cpu", "-q"])  # fmt: skip
    assert r.exit_code == 0, r.output
    from charrnn.training import checkpoint

    path = workdir / "checkpoints/ab/best.pt"
    ck = checkpoint.load(path)
    w = ck.weights
    assert w["embed.weight"].shape == (3, 3)  # a, b and the end-of-document token (id 2)
    w["embed.weight"] = torch.eye(3)
    w["core.weight_ih_l0"], w["core.weight_hh_l0"] = 20 * torch.eye(3), torch.zeros(3, 3)  # h = tanh(20 onehot) = onehot
    w["core.bias_ih_l0"], w["core.bias_hh_l0"], w["head.bias"] = torch.zeros(3), torch.zeros(3), torch.zeros(3)
    w["head.weight"] = TABLE.t().clone()  # logits = log P(next | previous)
    checkpoint.save(path, ck)
    best, _ = brute_force(5, 0.7)
    beam = runner.invoke(app, ["sample", str(path), "--beam", "3", "--length", "5"])
    assert beam.exit_code == 0, beam.output
    assert beam.stdout == "".join("ab"[i] for i in best) + "\n" and "beam 1 of 3: log-probability" in beam.stderr
    greedy = runner.invoke(app, ["sample", str(path), "--temperature", "0", "--length", "5"])
    assert greedy.stdout.startswith("a") and greedy.stdout != beam.stdout
    two = runner.invoke(app, ["sample", str(path), "--beam", "3", "--num", "2", "--length", "5"])
    assert two.stdout.count("\n") == 3 and two.stderr.count("log-probability") == 2
    one_line_error(runner.invoke(app, ["sample", str(path), "--beam", "3", "--temperature", "0.5"]), "--temperature", "--beam")
    one_line_error(runner.invoke(app, ["sample", str(path), "--beam", "2", "--num", "3"]), "--num 3")
