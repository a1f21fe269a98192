"""The `charrnn tui` command: open the terminal app.

Free of torch and textual at import time, so that `charrnn --help` stays fast.
`charrnn train ... --tui` reaches the same app through train.run().
"""

from __future__ import annotations

from typing import Annotated, Optional

import typer

from ..config import DataConfig, Device, ModelConfig, TrainConfig
from . import complete
from .common import (
    DEFAULT_ROOT,
    TC,
    CellOpt,
    CheckpointsOpt,
    Command,
    DeviceOpt,
    HiddenOpt,
    LayersOpt,
    M,
    NameOpt,
    StepsOpt,
    TimeOpt,
    app,
    fail,
    given_options,
    user_errors,
)
from .train import run


@app.command(cls=Command)
@user_errors
def tui(
    ctx: typer.Context,
    run_or_checkpoint: Annotated[
        Optional[str], typer.Argument(help="A run folder or checkpoint to explore (and resume with r).", show_default=False, autocompletion=complete.run_names)
    ] = None,
    corpus: Annotated[
        Optional[list[str]],
        typer.Option(help="Start training at once on these files, folders or built-in corpus (repeatable).", show_default=False),
    ] = None,
    cell: CellOpt = M.cell,
    layers: LayersOpt = M.layers,
    hidden: HiddenOpt = M.hidden,
    steps: StepsOpt = TC.steps,
    time_: TimeOpt = TC.time,
    name: NameOpt = None,
    checkpoints: CheckpointsOpt = DEFAULT_ROOT,
    device: DeviceOpt = Device(TC.device),
) -> None:
    """Open the terminal app: train and watch a model learn, look at its activations, explore a checkpoint.

    With --corpus it starts training at once (every option of `charrnn train` is
    there as `charrnn train ... --tui`); with a run it opens that run's explore
    screen; with neither it opens empty, ready for a run chosen in the app.
    """
    if corpus and run_or_checkpoint:
        raise fail("give a run to explore, or --corpus to train on, not both.")
    if corpus:
        given = given_options(ctx)
        data = DataConfig(paths=tuple(corpus))
        model = ModelConfig(cell=cell, layers=layers, hidden=hidden)
        tcfg = TrainConfig(steps=steps, time=time_, device=device.value)
        run(data, model, tcfg, given, name=name, out_dir=None, root=checkpoints, resume=None, quiet=False, tui=True)
        return
    from ..tui.app import open_app
    from ..tui.runs import RunRequest

    request = RunRequest(
        cell=cell, layers=layers, hidden=hidden, name=name, device=device.value,
        limit=str(steps) if steps else (time_ or ""),
    )  # fmt: skip
    ModelConfig(cell=cell, layers=layers, hidden=hidden).validate()
    open_app(explore=run_or_checkpoint, root=checkpoints, request=request)
