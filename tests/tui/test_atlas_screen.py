"""The atlas screen (4): the loaded checkpoint's atlas over its run's validation text,
the saturation scatter in braille, and search by example marked with [ and ]."""

from __future__ import annotations

import io

import torch
from rich.console import Console
from scripted import no_threads_left, until

from charrnn.config import DataConfig, ModelConfig
from charrnn.data.tokenizer import CharTokenizer
from charrnn.models.lm import CharRNN
from charrnn.tasks.state import LMState
from charrnn.training import checkpoint
from charrnn.tui.app import CharRNNApp
from charrnn.tui.atlas_screen import AtlasScreen
from charrnn.tui.widgets import TokenText

CORPUS = 'print("a (b) c")\n    x = [1, 2]  # note\n' * 80


def run_with_corpus(tmp_path):
    """A complete checkpoint in tmp_path/checkpoints/atlas whose data config names a corpus file."""
    corpus = tmp_path / "code.txt"
    corpus.write_text(CORPUS, encoding="utf-8")
    tok = CharTokenizer(sorted(set(CORPUS)))
    cfg = ModelConfig(cell="rnn", layers=2, hidden=16, embed=8, vocab_size=tok.vocab_size)
    torch.manual_seed(0)
    model = CharRNN(cfg)
    with torch.no_grad():  # unit 5 of layer 0 reads "an opening parenthesis", and nothing else
        model.embed.weight[:, 0] = torch.tensor([3.0 if tok.decode([i]) == "(" else -3.0 for i in range(tok.vocab_size)])
        for w in (model.core.weight_ih_l0, model.core.weight_hh_l0):
            w[5] = 0.0
        model.core.weight_ih_l0[5, 0] = 1.0
        model.core.bias_ih_l0[5] = model.core.bias_hh_l0[5] = 0.0
    ck = checkpoint.Checkpoint(model_config=cfg, weights=model.state_dict(), task=LMState(tokenizer=tok.to_state()), step=3,
                               data_config=DataConfig(paths=(str(corpus),), val_frac=0.5))  # fmt: skip
    root = tmp_path / "checkpoints"
    checkpoint.save(root / "atlas" / "best.pt", ck)
    return root, root / "atlas"


async def test_the_atlas_screen_scores_units_and_searches(tmp_path):
    root, run = run_with_corpus(tmp_path)
    app = CharRNNApp(root=root, explore=str(run), explore_seed=1)
    async with app.run_test(size=(120, 40)) as pilot:
        await until(pilot, lambda: app.explorer is not None, what="the checkpoint to load")
        await pilot.press("4")
        screen = app.screen
        assert isinstance(screen, AtlasScreen)
        await until(pilot, lambda: screen.atlas is not None, 60, "the atlas")
        names = [f.name for f in screen.atlas.findings]
        assert "inside a string" in names and "indentation depth" in names and "inside double quotes" in names
        assert screen.atlas.tokens == len(CORPUS) // 2  # the validation half
        table = screen.query_one("#atlas-table")
        assert table.row_count == len(names)
        console = Console(width=120, file=io.StringIO(), color_system=None)
        console.print(screen.scatter)
        scatter = console.file.getvalue()
        assert "layer 0" in scatter and "layer 1" in scatter and any(0x2800 < ord(ch) <= 0x28FF for ch in scatter)
        text = screen.query_one("#atlas-text", TokenText)
        first = screen.unit
        assert text.tokens[:5] == tuple(CORPUS[:5]) and text.levels is not None
        await pilot.press("down")  # the next annotation colours the text by its own unit
        await until(pilot, lambda: screen.unit == screen.atlas.findings[1].best[0].unit, what="the second row's unit")
        assert screen.unit != first or screen.atlas.findings[1].best[0].unit == first
        for _ in range(9):  # 'print("a ' -> the cursor on the (
            await pilot.press("right")
        await pilot.press("left_square_bracket", "minus", "plus", "plus")
        assert screen.start == 9 and screen.cursor == 9 and screen.threshold == 0.35
        await pilot.press("right_square_bracket")
        await until(pilot, lambda: screen.search is not None, 60, "the search")
        assert screen.search.span == (9, 10) and screen.search.selected == "("
        assert (0, 5) in screen.search.units
        matches = screen.search.matches
        assert len(matches) == 10 and all(m.text == "(" for m in matches)  # the best ten of the other 39
        assert screen.query_one("#atlas-matches").option_count == 10
        box = screen.query_one("#atlas-matches")
        box.focus()
        box.highlighted = 2
        await pilot.press("enter")  # enter on a match moves the cursor there
        await until(pilot, lambda: screen.cursor == min(matches[2].start, len(text.tokens) - 1), what="the jump")
    await no_threads_left()
