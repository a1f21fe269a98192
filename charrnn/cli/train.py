"""`charrnn train`: options into configs, then a run planned, trained and shown.

Every option that configures the run is declared once, on its config, kind or
task (spec.option), and generated into this command (cli/declared.py), grouped in
panels (Task, Corpus, Model, Cell options, Optimisation, Evaluation, Output,
Hardware) so `--help` stays readable as kinds and tasks bring their own. The
options given (typed, or in a --config file) become the configs through
runconfig.build_configs, the one builder; a kind's or task's own settings travel
in `ModelConfig.options`, and one that does not fit the chosen cell or task is a
one-line error. Only the command's own options (--name, --out, --resume, ...)
are declared here.
"""

from __future__ import annotations

import signal
import threading
from pathlib import Path
from typing import Annotated, Any, Optional

import typer
from rich.markup import escape

from ..config import DEFAULT_CORPUS, DataConfig, ModelConfig, TrainConfig, option_flag
from ..config import RESUMABLE as RESUMABLE_SETTINGS
from ..errors import ConfigError, PeerLostError
from ..runconfig import build_configs
from ..tasks import task_spec
from . import complete
from .common import DEFAULT_ROOT, P_OUT, CheckpointsOpt, Command, NameOpt, app, err, out
from .declared import Generated, own


def _train(values: dict[str, Any], given: set[str], face: dict[str, Any]) -> None:
    data, model, tcfg = build_configs(values)
    run(data, model, tcfg, given, name=face["name"], out_dir=face["out_dir"], root=face["checkpoints"], resume=face["resume"],
        quiet=face["quiet"], tui=face["tui"], tensorboard=face["tensorboard"] or face["tensorboard_dir"] is not None,
        tensorboard_dir=face["tensorboard_dir"])  # fmt: skip


# train's own parameters; every other option is generated from its declaration (cli/declared.py)
OWN = [
    own("paths", Annotated[Optional[list[str]], typer.Argument(
        help=f"Text files, folders, or built-in corpora (see `charrnn corpora`). Default: {DEFAULT_CORPUS}.", show_default=False,
        autocompletion=complete.corpora)]),
    own("name", NameOpt),
    own("out_dir", Annotated[Optional[Path], typer.Option("--out", help="Run folder (default: CHECKPOINTS/NAME).", rich_help_panel=P_OUT)]),
    own("checkpoints", CheckpointsOpt, DEFAULT_ROOT),
    own("resume", Annotated[Optional[str], typer.Option(help="Continue a run (folder or checkpoint file).", rich_help_panel=P_OUT,
                                                        autocompletion=complete.run_names)]),
    own("quiet", Annotated[bool, typer.Option("--quiet", "-q", help="Plain log lines instead of a progress bar.", rich_help_panel=P_OUT)], False),
    own("tui", Annotated[bool, typer.Option("--tui", help="Watch training in the interactive terminal app.", rich_help_panel=P_OUT)], False),
    own("tensorboard", Annotated[bool, typer.Option("--tensorboard", help="Also write TensorBoard logs to RUN/tensorboard: the metrics.jsonl scalars, the samples, gate saturation at each evaluation (pip install \"charrnn[tensorboard]\").", rich_help_panel=P_OUT)], False),
    own("tensorboard_dir", Annotated[Optional[Path], typer.Option(help="Write the TensorBoard logs to DIR/NAME instead (implies --tensorboard).", metavar="DIR", rich_help_panel=P_OUT, show_default=False)]),
]  # fmt: skip

train = Generated("train", "Train a recurrent network: a language model by default (--task lm), of any cell kind (--cell).", OWN, _train)
app.command("train", cls=Command)(train)


# train's parameters a resumed run may change: the settings in config.RESUMABLE,
# where the corpus now lies, and how to show it
RESUMABLE = set(RESUMABLE_SETTINGS) | {"paths", "checkpoints", "quiet", "tui", "resume", "out_dir", "tensorboard", "tensorboard_dir"}


def run(
    data: DataConfig,
    model: ModelConfig,
    tcfg: TrainConfig,
    given: set[str],
    name: str | None,
    out_dir: Path | None,
    root: Path,
    resume: str | None,
    quiet: bool,
    tui: bool = False,
    tensorboard: bool = False,
    tensorboard_dir: Path | None = None,
) -> None:
    """`charrnn train` after parsing: plan the run, then train it in this process
    (or in the TUI), joined to the other processes when torchrun started us."""
    data.validate()
    model.validate()
    tcfg.validate()
    unused = sorted(set(task_spec(model.task).unused) & given) if resume is None else []
    if unused:
        flags = ", ".join(option_flag(u) for u in unused)
        raise ConfigError(f"{flags} {'does' if len(unused) == 1 else 'do'} not fit --task {model.task}.")
    from ..runtime import distributed
    from ..data import window  # (numpy: not for --help)
    from ..training import plan

    if tui and distributed.launched():
        raise ConfigError("--tui runs in a single process; drop it under torchrun.")
    logs = _log_sinks(tensorboard, tensorboard_dir)  # a missing extra: one line, before anything starts
    d = distributed.init(tcfg.device)  # a no-op unless started by torchrun
    clean = False
    try:
        if resume is not None:
            fixed = sorted(given - RESUMABLE - {"name"})
            if fixed:
                opts = ", ".join(option_flag(f) for f in fixed)
                raise ConfigError(f"{opts} cannot change when resuming; a resumed run keeps its own settings.")
            changes = {f: getattr(tcfg, f) for f in RESUMABLE_SETTINGS if f in given}
            p = plan.resume_run(resume, root, changes, data.paths if "paths" in given else None, out_dir)
        else:
            p = plan.new_run(data, model, tcfg, root, name, out_dir, d, given=given)
            if d.main and (line := window.note(data.paths, p.train.seq_len)):  # a long-range corpus the window cannot span
                err.print(f"[yellow]{escape(line)}[/]")
        opened = plan.open_data(p, d)
        if tui:
            _train_in_app(p, opened, logs)
        else:
            _train_here(p, opened, quiet, d, logs)
        clean = True
    except RuntimeError as e:
        if not (d.active and distributed.is_peer_error(e)):
            raise
        raise PeerLostError(
            "another process of this run stopped, so this one stops too; the launcher's report says which and why. "
            "The last checkpoint is intact: continue with --resume."
        ) from None
    finally:
        for sink in logs:
            sink.close()
        distributed.shutdown(clean)


def _log_sinks(tensorboard: bool, tensorboard_dir: Path | None) -> list[Any]:
    """The sinks that write logs besides metrics.jsonl (the trainer calls them on rank 0 alone)."""
    if not tensorboard:
        return []
    from ..training.tensorboard import TensorBoardSink

    return [TensorBoardSink(tensorboard_dir)]


def _train_in_app(p: Any, opened: Any, logs: list[Any]) -> None:
    from ..training import plan
    from ..tui.app import train_in_app

    # The app owns the training thread, its sinks and its stop event.
    result, quit_by_user = train_in_app(lambda sinks, stop: plan.trainer(p, [*sinks, *logs], stop, opened), root=p.root)
    if result is not None:
        how = "stopped" if result.stopped_by == "interrupt" else "done"
        out.print(escape(f"{how} at step {result.step:,}; checkpoints in {result.run_dir} (continue: charrnn train --resume {result.run_dir})"))
    if result is not None and result.stopped_by == "interrupt" and not quit_by_user:
        raise typer.Exit(130)  # q (or x, then q) is a deliberate stop after a clean save: 0; a signal stays 130


def _train_here(p: Any, opened: Any, quiet: bool, d: Any, logs: list[Any]) -> None:
    from ..training import plan
    from ..views.progress import PlainSink, RichSink

    console = err if quiet else out
    sink = PlainSink(console) if quiet else RichSink(console)
    stop = threading.Event()

    def on_signal(signum: int, frame: Any) -> None:
        if stop.is_set():
            # Under torchrun a Ctrl-C reaches each worker twice (from the terminal and
            # forwarded by the launcher): there, only the launcher's own timeout kills.
            if not d.active:
                raise KeyboardInterrupt
            return
        stop.set()
        if d.main:
            console.print("[yellow]stopping: saving a checkpoint (Ctrl-C again to quit at once)[/]")

    trainer = plan.trainer(p, [sink, *logs], stop, opened, d)
    old_int = signal.signal(signal.SIGINT, on_signal)
    old_term = signal.signal(signal.SIGTERM, on_signal)
    try:
        result = trainer.run()
    finally:
        if not d.active:  # under torchrun the launcher's SIGTERM may still come: keep catching it
            signal.signal(signal.SIGINT, old_int)
            signal.signal(signal.SIGTERM, old_term)
        if isinstance(sink, RichSink):
            sink.close()
    if result.stopped_by == "interrupt":
        raise typer.Exit(130)  # stopped by the user: the checkpoint is saved, but the run did not finish
