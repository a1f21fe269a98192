"""The `charrnn tui` command: open the terminal app.

Kept apart from cli.py and free of torch and textual at import time, so that
`charrnn --help` stays fast. `charrnn train ... --tui` reaches the same app
through cli.run().
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Optional

import typer

from .cli import P_MODEL, P_OPT, P_OUT, Command, app, fail, run, user_errors
from .config import (
    DEFAULT_CHECKPOINTS,
    Cell,
    DataConfig,
    Device,
    ModelConfig,
    TrainConfig,
)

M, TC = ModelConfig(), TrainConfig()


@app.command(cls=Command)
@user_errors
def tui(
    ctx: typer.Context,
    run_or_checkpoint: Annotated[
        Optional[str], typer.Argument(help="A run folder or checkpoint to explore (and resume with r).", show_default=False)
    ] = None,
    corpus: Annotated[
        Optional[list[str]],
        typer.Option(help="Start training at once on these files, folders or built-in corpus (repeatable).", show_default=False),
    ] = None,
    cell: Annotated[Cell, typer.Option(help="Recurrent cell.", rich_help_panel=P_MODEL)] = Cell(M.cell),
    layers: Annotated[int, typer.Option(help="Stacked recurrent layers.", rich_help_panel=P_MODEL)] = M.layers,
    hidden: Annotated[int, typer.Option(help="Units per layer.", rich_help_panel=P_MODEL)] = M.hidden,
    steps: Annotated[Optional[int], typer.Option(help="Stop after this many steps.", rich_help_panel=P_OPT)] = TC.steps,
    time_: Annotated[
        Optional[str], typer.Option("--time", help="Stop after this wall-clock time (90s, 3m, 1h).", rich_help_panel=P_OPT)
    ] = TC.time,
    name: Annotated[Optional[str], typer.Option(help="Run name (default: corpus-cell-time).", rich_help_panel=P_OUT)] = None,
    checkpoints: Annotated[Path, typer.Option(help="Where runs and the corpus cache live.", rich_help_panel=P_OUT)] = Path(
        DEFAULT_CHECKPOINTS
    ),
    device: Annotated[Device, typer.Option(help="Where to train.")] = Device(TC.device),
) -> None:
    """Open the terminal app: train and watch a model learn, look at its activations, explore a checkpoint.

    With --corpus it starts training at once (every option of `charrnn train` is
    there as `charrnn train ... --tui`); with a run it opens that run's explore
    screen; with neither it opens empty, ready for a run chosen in the app.
    """
    if corpus and run_or_checkpoint:
        raise fail("give a run to explore, or --corpus to train on, not both.")
    if corpus:
        given = {p.name for p in ctx.command.params if ctx.get_parameter_source(p.name).name == "COMMANDLINE"}
        data = DataConfig(paths=tuple(corpus))
        model = ModelConfig(cell=cell.value, layers=layers, hidden=hidden)
        tcfg = TrainConfig(steps=steps, time=time_, device=device.value)
        run(data, model, tcfg, given, name=name, out_dir=None, root=checkpoints, resume=None, quiet=False, tui=True)
        return
    from .tui.app import open_app
    from .tui.runs import RunRequest

    request = RunRequest(
        cell=cell.value, layers=layers, hidden=hidden, name=name, device=device.value,
        limit=str(steps) if steps else (time_ or ""),
    )  # fmt: skip
    ModelConfig(cell=cell.value, layers=layers, hidden=hidden).validate()
    open_app(explore=run_or_checkpoint, root=checkpoints, request=request)
