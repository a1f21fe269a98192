"""The chapter's other cells in the app: a real tiny training of each, watched live."""

from __future__ import annotations

import pytest
from helpers import until

from charrnn.config import DataConfig, ModelConfig, TrainConfig
from charrnn.training import checkpoint


@pytest.mark.parametrize(
    "cell, options, signals",
    [("leaky", {"delays": (1, 2)}, ("h", "candidate")), ("esn", {}, ("h", "a")), ("jordan", {"feedback": "model"}, ("h", "a", "fed"))],
)
async def test_each_kind_trains_in_the_app_and_shows_its_signals(tmp_path, corpus_file, cell, options, signals):
    from textual.widgets import Static

    from charrnn.data.corpus import prepare
    from charrnn.training.trainer import Trainer
    from charrnn.tui.app import CharRNNApp
    from charrnn.tui.widgets import Heatmap

    data = DataConfig(paths=(str(corpus_file),))
    corpus = prepare(data, tmp_path / "ck")
    model = ModelConfig(cell=cell, layers=1, hidden=16, embed=8, options=options)
    tcfg = TrainConfig(seq_len=16, batch_size=4, eval_every=50, eval_tokens=256, sample_chars=0, steps=100_000, device="cpu")
    app = CharRNNApp(lambda sinks, stop: Trainer(model, data, tcfg, corpus, tmp_path / "ck" / cell, sinks=sinks, stop=stop), root=tmp_path / "ck")
    async with app.run_test(size=(100, 30)) as pilot:
        await pilot.press("2")
        await until(pilot, lambda: app.screen.probe is not None, timeout=60, what="a frame")
        assert app.screen.probe.acts.cell == cell and app.screen.signals == signals
        assert app.screen.probe.grad_flow["h"].shape[0] == 1
        bar = str(app.screen.query_one("#act-bar", Static).render())
        assert ("τ 1 ·" in bar) == (cell == "leaky"), bar  # unit 0 is the fastest leaky unit
        await pilot.press("s")
        assert app.screen.sel_signal == signals[1] and app.screen.query_one(Heatmap).kind == ("tanh" if cell == "leaky" else "free")
        await pilot.press("down")
        if cell == "leaky":
            assert "τ 1.36 ·" in str(app.screen.query_one("#act-bar", Static).render())  # 100^(1/15)
        await pilot.press("q")
        await until(pilot, lambda: not app.is_running, timeout=60, what="exit")
    assert checkpoint.load(tmp_path / "ck" / cell / "last.pt").model_config.cell == cell
