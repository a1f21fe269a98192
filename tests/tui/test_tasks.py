"""The app on the tasks that answer once per text: a classifier and an encoder-decoder train
in it for real; the train screen shows their metrics instead of bits per character, and the
activations screen draws their answer for the probe text (the class probabilities as the
characters arrive; the output and its attention map), and follows a probe text the user types."""

from __future__ import annotations

import random

from scripted import no_threads_left, until

from charrnn.config import DataConfig, ModelConfig, TrainConfig
from charrnn.training import plan
from charrnn.tui import messages as m
from charrnn.tui.activations_screen import ActivationsScreen
from charrnn.tui.app import CharRNNApp


def factory(root, data: DataConfig, model: ModelConfig):
    cfg = TrainConfig(batch_size=8, eval_every=10, eval_tokens=300, warmup=3, steps=100_000, device="cpu")
    p = plan.new_run(data, model, cfg, root, "run")
    return lambda sinks, stop: plan.trainer(p, sinks, stop)


def panel_text(app) -> str:
    from rich.console import Console

    console = Console(width=120, record=True, file=open("/dev/null", "w"))
    console.print(app.screen.query_one("#task-view").content)
    return console.export_text()


async def watch(app, messages, *needles: str, typed: str | None = None) -> str:
    async with app.run_test(size=(120, 40), message_hook=messages.append) as pilot:
        await until(pilot, lambda: any(isinstance(x, m.EvalUpdate) for x in messages), timeout=60, what="an evaluation")
        app.redraw(force=True)
        stats = str(app.screen.query_one("#stats").render())
        await pilot.press("2")
        assert isinstance(app.screen, ActivationsScreen)
        await until(pilot, lambda: app.screen.probe is not None and app.screen.query_one("#task-view").display, timeout=60, what="a frame")
        text = panel_text(app)
        for needle in needles:
            assert needle in text, text
        if typed is not None:  # the probe text the user types is what the next frame answers for
            app.set_probe_text(typed)
            await until(pilot, lambda: app.screen.probe is not None and app.screen.probe.acts.text == typed, timeout=60, what="the new text")
            await pilot.pause(0.2)
            app.redraw(force=True)
            assert typed in panel_text(app).replace(" ", "")
        await pilot.press("q")
        await until(pilot, lambda: not app.is_running, timeout=60, what="exit")
    await no_threads_left()
    return stats


async def test_a_classifier_in_the_app(tmp_path):
    rng = random.Random(0)
    rows = [f"{lab}\t{''.join(rng.choice(chars) for _ in range(rng.randint(5, 20)))}"
            for lab, chars in (rng.choice([("up", "abcd"), ("down", "cdef")]) for _ in range(120))]  # fmt: skip
    (tmp_path / "docs.tsv").write_text("\n".join(rows) + "\n", encoding="utf-8")
    data = DataConfig(paths=(str(tmp_path / "docs.tsv"),))
    model = ModelConfig(cell="gru", layers=1, hidden=16, embed=8, task="classify")
    messages: list = []
    app = CharRNNApp(factory(tmp_path, data, model), root=tmp_path)
    stats = await watch(app, messages, "as the text arrives", "up", "down", typed="abcdabcd")
    assert "accuracy" in stats and "n-gram Bayes" in stats and "nats/document" in stats and "bits/char" not in stats


async def test_an_encoder_decoder_with_attention_in_the_app(tmp_path):
    rng = random.Random(0)
    words = ["".join(rng.choice("abcde") for _ in range(rng.randint(1, 5))) for _ in range(200)]
    (tmp_path / "rev.tsv").write_text("".join(f"{w}\t{w[::-1]}\n" for w in words), encoding="utf-8")
    data = DataConfig(paths=(str(tmp_path / "rev.tsv"),))
    model = ModelConfig(cell="lstm", layers=1, hidden=16, embed=8, task="seq2seq", options={"attention": "additive"})
    messages: list = []
    app = CharRNNApp(factory(tmp_path, data, model), root=tmp_path)
    stats = await watch(app, messages, "attention (greedy)", "each row sums to 1", typed="abcab")
    assert "exact match" in stats and "bits/char" in stats
    frame = [x for x in messages if isinstance(x, m.ProbeFrame)][-1].event.payload
    attention = frame.prediction.details.attention
    assert attention.shape == (len(frame.prediction.details.steps), len(frame.acts.tokens))
    assert abs(attention.sum(1) - 1).max() < 1e-4


async def test_a_labelled_language_model_traces_under_the_label_chosen(tmp_path):
    """b on the activations screen reaches the training thread: its next frame is traced
    under that label (the run's Use holds the label the trainer probes under)."""
    rng = random.Random(0)
    rows = [f"{lab}\t{''.join(rng.choice(chars) for _ in range(rng.randint(5, 20)))}"
            for lab, chars in (rng.choice([("up", "abcd "), ("down", "cdef ")]) for _ in range(120))]  # fmt: skip
    (tmp_path / "docs.tsv").write_text("\n".join(rows) + "\n", encoding="utf-8")
    data = DataConfig(paths=(str(tmp_path / "docs.tsv"),), label_from="tsv")
    app = CharRNNApp(factory(tmp_path, data, ModelConfig(cell="gru", layers=1, hidden=16, embed=8)), root=tmp_path)
    async with app.run_test(size=(120, 40)) as pilot:
        await pilot.press("2")
        await until(pilot, lambda: app.screen.probe is not None, timeout=60, what="a frame")
        assert app.screen.probe.label is None and app.screen.probe.labels == ("down", "up")
        await pilot.press("b")
        await until(pilot, lambda: app.screen.probe.label == "down", timeout=60, what="a frame under the label")
        await pilot.press("b")
        await until(pilot, lambda: app.screen.probe.label == "up", timeout=60, what="a frame under the next label")
        await pilot.press("q")
        await until(pilot, lambda: not app.is_running, timeout=60, what="exit")
    await no_threads_left()
