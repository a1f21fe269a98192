"""`charrnn inspect --html`: one self-contained page, escaped, quantised within its size
budget, and working in a real browser (headless Chromium, skipped where none is installed)."""

from __future__ import annotations

import html
import json
import os
import re
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest

from helpers import TINY, no_traceback

from charrnn.cli import app
from charrnn.inspect import html as page
from charrnn.inspect.stats import saturation
from charrnn.inspect.trace import Activations
from charrnn.models import registry

ALPHABET = 'abcdefghijklmnopqrstuvwxyz "().\n'

BROWSERS = ("chromium", "chromium-browser", "google-chrome", "google-chrome-stable", "chrome")


def page_data(doc: str) -> dict:
    """The JSON the page's script reads, as the script reads it."""
    m = re.search(r'<script id="data" type="application/json">(.*?)</script>', doc, re.S)
    assert m, "no data block"
    return json.loads(m.group(1))


def dequantised(sig: dict, L: int, H: int, T: int) -> np.ndarray:
    import base64
    import zlib

    q = np.frombuffer(zlib.decompress(base64.b64decode(sig["data"])), dtype=np.uint8).reshape(L, H, T)
    return (sig["lo"] + q * (sig["hi"] - sig["lo"]) / sig["levels"]).transpose(0, 2, 1)  # (L, T, H)


def fake_acts(text: str, cell: str = "lstm", L: int = 2, H: int = 8, seed: int = 0) -> Activations:
    """Activations shaped as a model's: gates in (0, 1), h and candidates in (-1, 1), c unbounded."""
    rng = np.random.default_rng(seed)
    T, kind = len(text), registry.get(cell)
    sig = {}
    for s in kind.signals:
        z = rng.normal(size=(L, T, H)).astype(np.float32) * 2
        sig[s.name] = {registry.GATE: 1 / (1 + np.exp(-z)), registry.TANH: np.tanh(z)}.get(s.range, z * 3)
    vocab = tuple(sorted(set(text) | set(ALPHABET)))
    ids = np.array([vocab.index(ch) for ch in text])
    probs = rng.dirichlet(np.ones(len(vocab)), T).astype(np.float32)
    return Activations(text, ids, tuple(text), cell, sig, probs, vocab, np.arange(T + 1))


def meta(**kw) -> page.PageMeta:
    return page.PageMeta(source="checkpoints/x/best.pt", model="lstm 2x8, step 10", **kw)


# ------------------------------------------------------------- the page itself


def test_the_page_fetches_nothing_and_escapes_the_text():
    text = 'a </script><script>alert(1)</script> <!-- <b>&amp; "q" \u2028 end'
    acts = fake_acts(text)
    doc = page.render(acts, meta(), saturation(acts), {"h": np.full((2, len(text)), 0.5, np.float32)}, pattern="<b>",
                      inside=np.array([ch == "b" for ch in text]))  # fmt: skip
    assert "<script>alert" not in doc and "<b>&amp;" not in doc
    assert doc.count("</script>") == 2 and doc.count("<script") == 2  # the data block and the script, nothing else
    assert not re.search(r"https?:|<link|@import|url\(|src=", doc)  # nothing to fetch: works offline
    assert "<code>&lt;b&gt;</code>" in doc  # the --find pattern, escaped
    data = page_data(doc)
    assert "".join(data["tokens"]) == text and data["format"] == page.FORMAT


def test_activations_survive_quantisation_within_half_a_step():
    acts = fake_acts("the cat sat on the mat. " * 4)
    data = page_data(page.render(acts, meta()))
    assert data["bits"] == 8  # small: full precision
    for sig in data["signals"]:
        v = acts.signals[sig["name"]]
        assert sig["kind"] == {"input": "gate", "forget": "gate", "output": "gate", "c": "free"}.get(sig["name"], "tanh")
        if sig["kind"] == "gate":
            assert (sig["lo"], sig["hi"]) == (0.0, 1.0)
        elif sig["kind"] == "free":
            assert sig["hi"] == pytest.approx(np.abs(v).max())
        back = dequantised(sig, acts.layers, acts.hidden, len(acts.tokens))
        step = (sig["hi"] - sig["lo"]) / sig["levels"]
        assert np.abs(back - v).max() <= step / 2 + 1e-6


def test_large_inspections_take_fewer_bits_to_stay_a_few_megabytes():
    """2,000 characters of a 2x256 LSTM: six signals, 6.1 million values."""
    text = ("It is a truth universally acknowledged, that a single man in possession of a good fortune, must be in want of a wife.\n" * 17)[:2000]
    acts = fake_acts(text, L=2, H=256, seed=1)
    doc = page.render(acts, meta(top_k=5), saturation(acts))
    data = page_data(doc)
    assert data["bits"] < 8 and len(doc.encode()) < 5_000_000
    sig = data["signals"][0]
    back = dequantised(sig, 2, 256, 2000)
    assert np.abs(back - acts.signals[sig["name"]]).max() <= (sig["hi"] - sig["lo"]) / sig["levels"] / 2 + 1e-6


def test_a_vanilla_rnn_page_names_its_saturation_and_shows_the_pre_activation():
    acts = fake_acts("the cat sat on the mat.", cell="rnn")
    m = meta(saturation_title="saturation of h = tanh(a)", saturation_low="< −0.9")
    doc = page.render(acts, m, saturation(acts))
    assert "saturation of h = tanh(a)" in doc and "mean &lt; −0.9" in doc
    assert [(s["name"], s["kind"]) for s in page_data(doc)["signals"]] == [("h", "tanh"), ("a", "free")]


def test_gradient_curve_is_an_svg_on_a_log_scale():
    acts = fake_acts("the cat sat on the mat. " * 3)
    T = len(acts.tokens)
    flow = {"h": np.stack([0.9 ** np.arange(T)[::-1], 0.5 ** np.arange(T)[::-1]]).astype(np.float32)}
    doc = page.render(acts, meta(), gradients=flow)
    svg = re.search(r'<section id="gradients">.*?</section>', doc, re.S).group(0)
    assert svg.count("<polyline") == 2 and ">1e0<" in svg and "×0.900 a step back" in svg and "×0.500 a step back" in svg


# ------------------------------------------------------------- in a browser


def browser() -> str | None:
    return next((p for p in map(shutil.which, BROWSERS) if p), None)


def open_in_browser(path: Path, fragment: str, tmp_path: Path) -> str:
    """The page's DOM after its script has run, from headless Chromium."""
    args = [browser(), "--headless", "--disable-gpu", "--no-first-run", f"--user-data-dir={tmp_path / 'profile'}",
            "--virtual-time-budget=20000", "--dump-dom", f"{path.resolve().as_uri()}#{fragment}"]  # fmt: skip
    if hasattr(os, "geteuid") and os.geteuid() == 0:
        args.insert(2, "--no-sandbox")  # Chromium refuses to run as root with its sandbox
    r = subprocess.run(args, capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stderr[-2000:]
    return r.stdout


@pytest.mark.skipif(browser() is None, reason="no Chromium or Chrome installed (apt-get install chromium) to open the page in")
def test_the_page_works_in_a_real_browser(runner, workdir, corpus_file):
    r = runner.invoke(app, ["train", str(corpus_file), *TINY, "--steps", "30", "--device", "cpu", "--quiet", "--name", "tiny"])
    assert r.exit_code == 0, r.output
    text = "The cat sat on the mat. A dog ran under a log slowly!\nBig red cat ran."
    r = runner.invoke(app, ["inspect", "tiny", "--text", text, "--find", "[a-z]at", "--html", "page.html"])
    assert r.exit_code == 0, r.output
    no_traceback(r.output)
    assert re.search(r"wrote page\.html \(\d+\.\d MB\)", r.stderr)
    dom = open_in_browser(workdir / "page.html", "selftest", workdir)
    m = re.search(r'<pre id="selftest"[^>]*>(.*?)</pre>', dom, re.S)
    assert m and m.group(1), dom[-3000:]
    result = json.loads(html.unescape(m.group(1)))
    assert result["errors"] == [] and result["ok"], result
    assert result["changed"] > 0  # another unit, other colours
    assert result["tip_has_top_prediction"] and result["find_row_picks"] is True
    assert result["spans"] == len(text)
    assert "Big red cat" in re.sub(r"<[^>]+>", "", dom)  # the text is on the page, a span per character


def test_inspect_writes_a_page_for_a_vanilla_rnn(runner, workdir, corpus_file):
    r = runner.invoke(app, ["train", str(corpus_file), *TINY, "--cell", "rnn", "--steps", "5", "--device", "cpu", "--quiet", "--name", "r"])
    assert r.exit_code == 0, r.output
    r = runner.invoke(app, ["inspect", "r", "--text", "The cat sat on the mat.", "--unit", "3", "--html", "r.html"])
    assert r.exit_code == 0, r.output
    doc = (workdir / "r.html").read_text(encoding="utf-8")
    data = page_data(doc)
    assert data["select"] == {"what": "h", "layer": 0, "unit": 3} and [s["name"] for s in data["signals"]] == ["h", "a"]
    assert "no gates in a vanilla RNN" in doc and 'id="gradients"' in doc and "<polyline" in doc
