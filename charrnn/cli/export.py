"""`charrnn export`: a run's language model as safetensors, ONNX or TorchScript (training/export.py)."""

from __future__ import annotations

import enum
from pathlib import Path
from typing import Annotated, Optional

import typer
from rich.markup import escape

from .common import DEFAULT_ROOT, P_OUT, CheckpointsOpt, Command, RunArg, app, out, user_errors


class Format(str, enum.Enum):
    safetensors = "safetensors"
    onnx = "onnx"
    torchscript = "torchscript"


@app.command(cls=Command)
@user_errors
def export(
    run_or_checkpoint: RunArg = None,
    format_: Annotated[
        Format,
        typer.Option("--format", help="safetensors: the weights (PyTorch's own names for rnn, lstm, gru); onnx or torchscript: "
                     "one timestep of the model, (token, state) -> (logits, state).", rich_help_panel=P_OUT),
    ] = Format.safetensors,  # fmt: skip
    out_dir: Annotated[
        Optional[Path], typer.Option("--out", help="Folder to write to (default: the run's folder/export).", rich_help_panel=P_OUT, show_default=False)
    ] = None,
    checkpoints: CheckpointsOpt = DEFAULT_ROOT,
) -> None:
    """Write a language model for other programs: the weights or its per-step graph, with config.json and the tokenizer beside them."""
    from ..training.export import export as write

    done = write(run_or_checkpoint, format_.value, out_dir, checkpoints)
    out.print(f"exported the {done.cell} model of step {done.step:,} as {format_.value} to {escape(str(done.folder))}/:")
    for f in done.files:
        out.print(f"  {escape(f.name)} ({f.stat().st_size:,} bytes)")
