"""A tree run in the app: the trainer probes a tree, the activations screen lays out
its nodes (heatmap across, the tree itself below, the gradient by depth), and
evaluations without bits/char still draw a validation curve."""

from __future__ import annotations

import io
import math

import numpy as np
from rich.console import Console
from scripted import until

from charrnn.config import DataConfig, ModelConfig, TrainConfig
from charrnn.data.listops import make_listops
from charrnn.data.trees import format_listops
from charrnn.inspect.treetrace import TreeActivations
from charrnn.tasks.tree import TreeTask
from charrnn.training.telemetry import EvalEvent, ListSink, ProbeEvent
from charrnn.training.trainer import Trainer
from charrnn.tui import messages as m
from charrnn.tui.activations_screen import ActivationsScreen
from charrnn.tui.app import CharRNNApp
from charrnn.tui.widgets import Chart, Heatmap, TokenText

PROBE = "[MAX 2 9 [MIN 4 7 ] 0 ]"


def text_of(renderable) -> str:
    console = Console(width=100, file=io.StringIO(), color_system=None)
    console.print(renderable)
    return console.file.getvalue()


class Probing(ListSink):
    wants_probes = True


def tree_frames(tmp_path) -> list[ProbeEvent]:
    train, _ = make_listops(seed=2, n_train=300, n_val=0, train_depth=2, val_depth=2, max_args=4)
    f = tmp_path / "trees.tsv"
    f.write_text("".join(f"{e.label}\t{format_listops(e.tree)}\n" for e in train), encoding="utf-8")
    data = DataConfig(paths=(str(f),))
    model = ModelConfig(cell="treelstm", layers=2, hidden=16, embed=8, task="tree")
    sink = Probing()
    t = Trainer(model, data, TrainConfig(steps=4, batch_size=16, eval_every=2, device="cpu"), TreeTask.open(data, tmp_path, None),
                tmp_path / "run", sinks=[sink], probe_text=PROBE)  # fmt: skip
    t.run()
    return sink.of(ProbeEvent)


async def test_the_activations_screen_lays_out_a_tree(tmp_path):
    frames = tree_frames(tmp_path)
    acts = frames[-1].payload.acts
    assert isinstance(acts, TreeActivations) and acts.tokens == ("MAX", "2", "9", "MIN", "4", "7", "0")
    assert acts.signals["h"].shape == (2, 7, 16) and frames[-1].payload.grad_flow["c"].shape == (2, 3)  # by depth 0..2
    app = CharRNNApp(root=tmp_path)
    async with app.run_test(size=(100, 30)) as pilot:
        await pilot.press("2")
        screen = app.screen
        assert isinstance(screen, ActivationsScreen)
        app.post_message(m.ProbeFrame(frames[-1]))
        await until(pilot, lambda: screen.probe is not None, what="a frame")
        heat, nodes = screen.query_one(Heatmap), screen.query_one("#tree-nodes")
        assert heat.tokens == acts.tokens and "nodes across" in heat.border_title
        assert nodes.display and not screen.query_one(TokenText).display
        shown = text_of(nodes.content)
        assert "MIN → " in shown and "└── 0 → " in shown
        assert "by depth" in screen.query_one("#grad", Chart).border_title
        await pilot.press("s", "s", "s")  # h -> c -> input -> forget: NaN at the root draws, and says nothing false
        assert screen.sel_signal == "forget" and math.isnan(acts.signals["forget"][0, 0, 0])

        e = EvalEvent(step=4, train_loss=None, val_loss=1.2, val_bpc=None, val_ppl=3.3, tokens=10, chars=300.0, elapsed_s=1.0,
                      chars_per_s=1e4, best=True, metrics={"accuracy": 0.5})  # fmt: skip
        app.post_message(m.EvalUpdate(e))
        await until(pilot, lambda: app.state.val_pts, what="a validation point")
        assert np.isclose(app.state.val_pts[-1][1], 1.2 / math.log(2) / 30)  # nats spread over the trees' characters
        assert "accuracy 50.0%" in app.state.log[-1][0]
