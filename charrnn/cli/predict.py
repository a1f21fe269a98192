"""`charrnn predict`: what a trained classifier, encoder-decoder or tree model answers.

One input per text argument, per line of --file, or per line of standard input
(when neither is given and it is not a terminal). For each input the first line
printed starts with the answer (a label, an output string), so scripts can read
it; the task's details (probabilities as the text arrives, beams, attention
maps, a tree of node values) follow on request, drawn by the task's view.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Annotated, Optional

import typer

from ..errors import ConfigError
from . import complete
from .common import DEFAULT_ROOT, CheckpointsOpt, Command, app, out, user_errors

P_IN, P_SHOW = "Input", "What to show"


@app.command(cls=Command)
@user_errors
def predict(
    run_or_checkpoint: Annotated[str, typer.Argument(help="A run folder or checkpoint file.", show_default=False, autocompletion=complete.run_names)],
    texts: Annotated[Optional[list[str]], typer.Argument(help="The inputs (default: --file, else standard input, one per line).", show_default=False)] = None,
    file: Annotated[Optional[Path], typer.Option("--file", "-f", help="Read inputs from this UTF-8 file, one per line.", rich_help_panel=P_IN, show_default=False)] = None,
    trace: Annotated[bool, typer.Option("--trace", help="Show how the prediction moves as each character arrives (classify).", rich_help_panel=P_SHOW)] = False,
    beam: Annotated[Optional[int], typer.Option(help="Beam search with this width (seq2seq).", rich_help_panel=P_SHOW)] = None,
    top: Annotated[int, typer.Option(help="How many beams to list with their log-probabilities (seq2seq).", rich_help_panel=P_SHOW)] = 1,
    attention_map: Annotated[bool, typer.Option("--attention-map", help="Draw the attention weights, source across, output down (seq2seq).", rich_help_panel=P_SHOW)] = False,
    temperature: Annotated[Optional[float], typer.Option(help="Sample the output at this temperature instead of searching (seq2seq).", rich_help_panel=P_SHOW)] = None,
    seed: Annotated[Optional[int], typer.Option(help="Random seed for --temperature.", rich_help_panel=P_SHOW)] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print one JSON object per input instead.", rich_help_panel=P_SHOW)] = False,
    checkpoints: CheckpointsOpt = DEFAULT_ROOT,
) -> None:
    """Answer inputs with a trained classifier, encoder-decoder or tree model: the answer first on each line."""
    if texts and file is not None:
        raise ConfigError("give the inputs as arguments or with --file, not both.")
    if top < 1 or (beam is not None and beam < 1):
        raise ConfigError("--beam and --top must be at least 1.")
    if top > 1 and beam is None:
        raise ConfigError("--top lists beams: give --beam K too (K >= --top).")
    if beam is not None and top > beam:
        raise ConfigError(f"--top {top} is more than the beam keeps (--beam {beam}).")
    from ..tasks import task_spec
    from ..tasks.base import PredictOptions
    from ..training import checkpoint

    path = checkpoint.find(run_or_checkpoint, checkpoints)
    ck = checkpoint.load(path)
    model, _ = checkpoint.model_from(ck, path)
    spec = task_spec(ck.task_name)
    opts = PredictOptions(trace=trace, beam=beam, top=top, attention_map=attention_map, temperature=temperature, seed=seed)
    predictor = spec.load().predictor(ck.task, model, opts)
    inputs = _inputs(texts, file)
    from ..views import prediction_view

    view = None if as_json else prediction_view(spec.name)
    for i, text in enumerate(inputs):
        p = predictor.predict(text)
        if as_json:
            out.print_json(json.dumps({"input": text, **p.json}))
            continue
        out.print(p.line, markup=False, highlight=False)
        parts = list(view(p, opts)) if view is not None and p.details is not None else []
        for part in parts:
            out.print(part)
        if parts and i < len(inputs) - 1:  # a blank line between inputs drawn at length
            out.print()


def _inputs(texts: list[str] | None, file: Path | None) -> list[str]:
    if texts:
        return list(texts)
    if file is not None:
        try:
            raw = file.read_bytes().decode("utf-8-sig")
        except UnicodeDecodeError as e:
            raise ConfigError(f"{file} is not valid UTF-8 at byte {e.start}; predict reads UTF-8 text.") from None
    elif not sys.stdin.isatty():
        raw = sys.stdin.read()
    else:
        raise ConfigError("give the inputs: as arguments, with --file, or one per line on standard input.")
    lines = [line for line in raw.replace("\r\n", "\n").replace("\r", "\n").split("\n") if line.strip()]
    if not lines:
        raise ConfigError("no inputs: the file or standard input held no non-empty line.")
    return lines
