"""`charrnn predict`: what a trained classifier, encoder-decoder or tree model answers.

One input per text argument, per line of --file, or per line of standard input
(when neither is given and it is not a terminal; read as it arrives, so a stream
of inputs gets a stream of answers). For each input the first line printed
starts with the answer (a label, an output string), so scripts can read it; the
task's details (probabilities as bars, as the text arrives, beams, attention
maps, a tree of node values) follow, drawn by the task's view: in a terminal
always, into a pipe only when asked for (--trace, --top, --attention-map), so a
pipe gets one line per input. `--json` writes JSON Lines: one object per input,
flushed as it is answered.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Annotated, Iterator, Optional

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
    as_json: Annotated[bool, typer.Option("--json", help="Print one JSON object per input instead, one a line (JSON Lines).", rich_help_panel=P_SHOW)] = False,
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
    from ..tasks.use import PredictOptions
    from ..training import checkpoint

    path = checkpoint.find(run_or_checkpoint, checkpoints)
    ck = checkpoint.load(path)
    model, _ = checkpoint.model_from(ck, path)
    spec = task_spec(ck.task_name)
    opts = PredictOptions(trace=trace, beam=beam, top=top, attention_map=attention_map, temperature=temperature, seed=seed)
    predictor = spec.load().Use.predictor(ck.task, model, opts)
    inputs = _inputs(texts, file)
    from ..views import prediction_view

    view = None
    asked = trace or top > 1 or attention_map  # details a pipe gets too
    if not as_json and (out.is_terminal or asked):
        view = prediction_view(spec.name)
    drawn = False
    for text in inputs:
        p = predictor.predict(text)
        if as_json:
            sys.stdout.write(json.dumps({"input": text, **p.json}, ensure_ascii=False) + "\n")
            sys.stdout.flush()
            continue
        parts = list(view(p, opts)) if view is not None and p.details is not None else []
        if drawn and parts:  # a blank line between inputs drawn at length
            out.print()
        out.print(p.line, markup=False, highlight=False)
        for part in parts:
            out.print(part)
        drawn = bool(parts)
        sys.stdout.flush()


def _inputs(texts: list[str] | None, file: Path | None) -> Iterator[str]:
    """The inputs, one at a time: standard input is read line by line as it arrives."""
    if texts:
        yield from texts
        return
    if file is not None:
        try:
            raw = file.read_bytes().decode("utf-8-sig")
        except UnicodeDecodeError as e:
            raise ConfigError(f"{file} is not valid UTF-8 at byte {e.start}; predict reads UTF-8 text.") from None
        lines: Iterator[str] = iter(raw.replace("\r\n", "\n").replace("\r", "\n").split("\n"))
    elif not sys.stdin.isatty():
        lines = _stdin_lines()
    else:
        raise ConfigError("give the inputs: as arguments, with --file, or one per line on standard input.")
    n = 0
    for line in lines:
        line = line.rstrip("\r\n")
        if line.strip():
            n += 1
            yield line
    if not n:
        raise ConfigError("no inputs: the file or standard input held no non-empty line.")


def _stdin_lines() -> Iterator[str]:
    """Standard input's lines as they arrive (`for line in sys.stdin` would wait for a block), strict UTF-8."""
    stream = getattr(sys.stdin, "buffer", None)
    if stream is None:  # a text stream (a test's, say)
        yield from iter(sys.stdin.readline, "")
        return
    for n, raw in enumerate(iter(stream.readline, b""), 1):
        try:
            yield raw.decode("utf-8-sig" if n == 1 else "utf-8")
        except UnicodeDecodeError as e:
            raise ConfigError(f"standard input is not valid UTF-8 (line {n}, byte {e.start}); predict reads UTF-8 text.") from None
