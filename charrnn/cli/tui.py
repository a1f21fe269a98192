"""The `charrnn tui` command: open the terminal app.

Free of torch and textual at import time, so that `charrnn --help` stays fast.
`charrnn train ... --tui` reaches the same app through train.run().
"""

from __future__ import annotations

from typing import Annotated, Optional

import typer

from ..config import ModelConfig
from ..runconfig import build_configs
from . import complete
from .common import DEFAULT_ROOT, TC, CheckpointsOpt, Command, M, NameOpt, app, fail, given_options, user_errors
from .declared import option_type
from .train import run

CellOpt, LayersOpt, HiddenOpt = option_type("cell"), option_type("layers"), option_type("hidden")
StepsOpt, TimeOpt, DeviceOpt = option_type("steps"), option_type("time"), option_type("device")


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
    time: TimeOpt = TC.time,
    name: NameOpt = None,
    checkpoints: CheckpointsOpt = DEFAULT_ROOT,
    device: DeviceOpt = TC.device,
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
        values = {"cell": cell, "layers": layers, "hidden": hidden, "steps": steps, "time": time, "device": device}
        data, model, tcfg = build_configs({k: v for k, v in values.items() if k in given}, paths=corpus)
        run(data, model, tcfg, given, name=name, out_dir=None, root=checkpoints, resume=None, quiet=False, tui=True)
        return
    from ..tui.app import open_app
    from ..tui.runs import RunRequest

    request = RunRequest(
        fields={"cell": cell, "layers": layers, "hidden": hidden}, name=name, device=getattr(device, "value", device),
        limit=str(steps) if steps else (time or ""),
    )  # fmt: skip
    ModelConfig(cell=cell, layers=layers, hidden=hidden).validate()
    open_app(explore=run_or_checkpoint, root=checkpoints, request=request)
