"""`charrnn compare`: every kind on one split for one budget, a table, one JSON line per row,
n-gram reference rows (and exact ones on a long-range corpus), a run per kind kept."""

from __future__ import annotations

import json
import math
import re

import pytest
from helpers import no_traceback, one_line_error

from charrnn.cli import app
from charrnn.cli.compare import parse_count
from charrnn.config import ModelConfig
from charrnn.errors import ConfigError
from charrnn import compare as cmp

SMALL = ["--layers", "1", "--hidden", "24", "--embed", "8", "--seq-len", "16", "--batch-size", "4", "--device", "cpu"]


def test_one_table_one_json_line_per_row_and_a_run_per_kind(runner, workdir, corpus_file):
    r = runner.invoke(app, ["compare", str(corpus_file), "--cells", "rnn,leaky,esn,jordan", "--steps", "12", *SMALL,
                            "--delays", "1,3", "--name", "c"])  # fmt: skip
    assert r.exit_code == 0, r.output
    no_traceback(r.output)
    rows = [json.loads(line) for line in (workdir / "checkpoints" / "c" / "compare.jsonl").read_text().splitlines()]
    models = {x["name"]: x for x in rows if x["kind"] == "model"}
    assert list(models) == ["rnn", "leaky", "esn", "jordan"]
    assert [x["name"] for x in rows if x["kind"] == "ngram"] == ["unigram", "bigram", "trigram", "4-gram", "5-gram"]
    ngram = {x["name"]: x["val_bpc"] for x in rows if x["kind"] == "ngram"}
    for name, m in models.items():
        final = [r for r in map(json.loads, (workdir / "checkpoints" / "c" / name / "metrics.jsonl").read_text().splitlines()) if r["final"]]
        assert m["steps"] == 12 and m["chars_per_s"] > 0, m
        assert m["val_bpc"] == pytest.approx(final[-1]["val_bpc"], rel=1e-9, abs=0), m  # the run's own final evaluation, in bits
        assert m["val_bpc"] == pytest.approx(final[-1]["val_loss"] / math.log(2), rel=1e-9, abs=0), m  # nats -> bits, one char a token
        assert m["trained_params"] <= m["params"] and m["grad_span"] == 254 and len(m["sample"]) > 0, m
        assert (workdir / "checkpoints" / "c" / name / "last.pt").exists() and m["run"].endswith(f"c/{name}")
        assert name in r.stdout
    # the reservoir and the embedding are frozen; a leaky net's fixed time constants do not train
    assert models["esn"]["trained_params"] < models["esn"]["params"] and models["leaky"]["params"] - models["leaky"]["trained_params"] == 24
    # the leak keeps the gradient alive further back than a vanilla RNN's (None: beyond the span measured)
    reach = {n: (m["grad_reach"] if m["grad_reach"] is not None else 10**9) for n, m in models.items()}
    assert reach["leaky"] > reach["rnn"]
    jordan = models["jordan"]["notes"]
    assert jordan["exposure_bias_bpc"] == pytest.approx(jordan["model_fed_bpc"] - jordan["target_fed_bpc"])
    assert jordan["target_fed_bpc"] == pytest.approx(models["jordan"]["val_bpc"], abs=1e-3)
    assert "with its own output fed back: exposure bias" in r.stdout and re.search(r"(ridge|lda) readout", r.stdout)
    assert ngram["unigram"] > ngram["bigram"] > ngram["trigram"]
    # a run of the comparison is a run like any other
    s = runner.invoke(app, ["sample", "checkpoints/c/leaky", "--length", "20", "--seed", "1"])
    assert s.exit_code == 0 and len(s.stdout) >= 20, s.output
    i = runner.invoke(app, ["info", "checkpoints/c/leaky"])
    assert i.exit_code == 0 and "time constants, layer 0" in i.stdout, i.output
    # the same folder again is refused, not overwritten
    one_line_error(runner.invoke(app, ["compare", str(corpus_file), "--cells", "rnn", "--steps", "2", *SMALL, "--name", "c"]),
                   "already holds a run")  # fmt: skip


def test_exact_reference_rows_on_a_long_range_corpus(runner, workdir, monkeypatch):
    from charrnn.data import longrange

    monkeypatch.setitem(longrange.GENERATORS, "copy", longrange.Copy(size=20_000))  # a small one: seconds, not a minute
    r = runner.invoke(app, ["compare", "longrange-copy", "--cells", "rnn", "--steps", "3", *SMALL, "--name", "lr",
                            "--json", str(workdir / "rows.jsonl")])  # fmt: skip
    assert r.exit_code == 0, r.output
    rows = [json.loads(line) for line in (workdir / "rows.jsonl").read_text().splitlines()]
    ref = {x["name"]: x["val_bpc"] for x in rows if x["kind"] == "reference"}
    assert set(ref) == {"perfect", "memory 4", "memory 16", "memory 32", "no memory"}
    assert ref["perfect"] <= ref["memory 32"] <= ref["memory 16"] <= ref["memory 4"] <= ref["no memory"]
    assert "perfect (exact)" in r.stdout


def test_sizing_to_a_number_of_trained_parameters():
    base = ModelConfig(layers=1, hidden=8, embed=16, dropout=0.0)
    sized = cmp.configs(("rnn", "lstm", "leaky", "esn"), base, {}, 40, 20_000)
    got = {c.cell: cmp.trained_params(ModelConfig(**{**vars(c), "vocab_size": 40}))[0] for c, _ in sized}
    for cell in ("rnn", "lstm", "leaky"):
        assert abs(got[cell] - 20_000) / 20_000 < 0.02, got
    assert {c.cell: c.hidden for c, _ in sized}["lstm"] < {c.cell: c.hidden for c, _ in sized}["rnn"]  # 4 gates: fewer units
    capped = cmp.configs(("esn",), base, {}, 40, 10_000_000)[0]
    assert capped[0].hidden == cmp.ESN_MAX_UNITS and "capped at 2,000 units" in capped[1]


@pytest.mark.parametrize(
    ("args", "fragment"),
    [
        (["--cells", "rnn,lstn"], "lstn"),
        (["--cells", "rnn,rnn"], "--cells takes distinct kinds"),
        (["--params", "lots"], "--params takes a count"),
        (["--cells", "rnn,lstm", "--tau-max", "10"], "--tau-max fits none of the cells compared"),
        (["--seq-len", "0"], "--seq-len"),
    ],
)
def test_bad_input_is_one_line(runner, workdir, corpus_file, args, fragment):
    one_line_error(runner.invoke(app, ["compare", str(corpus_file), "--steps", "2", *args]), fragment)
    assert not (workdir / "checkpoints").exists() or not any((workdir / "checkpoints").rglob("last.pt"))


def test_parse_count():
    assert parse_count("500k") == 500_000 and parse_count("1.5M") == 1_500_000 and parse_count("800000") == 800_000
    with pytest.raises(ConfigError):
        parse_count("0")
