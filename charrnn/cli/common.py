"""What every command shares: the Typer app, one-line errors, and option declarations.

Torch is imported inside the commands, never at module level, so that
`charrnn --help` answers at once. Every option's default comes from config.py.
Mistakes the user can fix (CharRNNError) end as one red line on stderr and
exit status 1; a nonsense option as one line and status 2; never a traceback.

Options that configure a run are declared once, on their configs, kinds and
tasks (spec.option), and generated into each command (declared.py); the few
options of the faces themselves that several commands share are declared here,
as `Annotated` types.
"""

from __future__ import annotations

import functools
import os
from pathlib import Path
from typing import Annotated, Any, Callable, Optional

import typer
from rich.console import Console
from rich.markup import escape
from typer.core import TyperCommand, TyperGroup

try:  # typer >= 0.17 carries its own copy of click
    from typer._click.exceptions import UsageError
except ImportError:  # pragma: no cover
    from click.exceptions import UsageError

from ..config import DEFAULT_CHECKPOINTS, ModelConfig, SampleConfig, TrainConfig, Unknown
from ..errors import CharRNNError, PeerLostError
from . import complete
from ..spec import P_CELL, P_CORPUS, P_EVAL, P_HW, P_MODEL, P_OPT, P_OUT, P_SAMPLE, P_TASK  # noqa: F401  (the panels, for commands)

err = Console(stderr=True, highlight=False, soft_wrap=True)
out = Console(highlight=False, soft_wrap=True)


class _OneLineUsageErrors:
    """A nonsense option gets one line on stderr and exit status 2, like every other
    mistake, instead of click's usage box. Help text is shown literally: Typer reads it as
    Rich markup, which would swallow `[h_left; h_right]` in a kind's description."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)  # type: ignore[call-arg]
        for obj in (self, *getattr(self, "params", ())):
            for attr in ("help", "short_help", "epilog"):
                text = getattr(obj, attr, None)
                if isinstance(text, str):
                    setattr(obj, attr, escape(text))

    def make_context(self, info_name, args, parent=None, **extra):  # type: ignore[no-untyped-def]
        try:
            return super().make_context(info_name, args, parent=parent, **extra)  # type: ignore[misc]
        except UsageError as e:
            raise _usage(e, info_name) from None


def _usage(e: UsageError, name: str | None) -> Exception:
    if type(e).__name__ == "NoArgsIsHelpError":
        return e
    path = e.ctx.command_path if e.ctx is not None else name
    err.print(f"[red]error:[/] {escape(e.format_message())} (see {escape(str(path))} --help)")
    return typer.Exit(2)


class Command(_OneLineUsageErrors, TyperCommand):
    pass


class Group(_OneLineUsageErrors, TyperGroup):
    def resolve_command(self, ctx, args):  # type: ignore[no-untyped-def]
        try:
            return super().resolve_command(ctx, args)
        except UsageError as e:
            raise _usage(e, ctx.info_name) from None


app = typer.Typer(
    cls=Group,
    name="charrnn",
    help="Train small recurrent networks on your own text, sample from them, and look inside.",
    no_args_is_help=True,
    add_completion=True,  # --install-completion, --show-completion (docs/completion.md)
    rich_markup_mode="rich",
    pretty_exceptions_enable=False,
)


def fail(message: str, code: int = 1, every_rank: bool = False) -> typer.Exit:
    rank = os.environ.get("RANK", "0")
    if rank == "0":  # under torchrun, rank 0 speaks for all
        err.print(f"[red]error:[/] {escape(message)}")
    elif every_rank:
        err.print(f"[red]error (rank {rank}):[/] {escape(message)}")
    return typer.Exit(code)


def user_errors(fn: Callable) -> Callable:
    """Catch the user's mistakes at the command edge: one line, non-zero exit."""

    @functools.wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return fn(*args, **kwargs)
        except PeerLostError as e:
            raise fail(str(e), every_rank=True) from None
        except CharRNNError as e:
            raise fail(str(e)) from None
        except KeyboardInterrupt:
            raise fail("interrupted.", 130) from None
        except EOFError as e:  # never let click take it for an aborted prompt ("Aborted.")
            raise fail(f"a file or standard input ended early{f' ({e})' if str(e) else ''}.") from None
        except OSError as e:
            where = f" {e.filename}" if e.filename else ""
            raise fail(f"could not read or write{where}: {e.strerror or e}.") from None
        except MemoryError:
            raise fail("out of memory; try a smaller --batch-size, --hidden or --seq-len.") from None

    return wrapper


def given_options(ctx: typer.Context) -> set[str]:
    """The parameters the user typed (not left at their defaults)."""
    return {p.name for p in ctx.command.params if p.name and ctx.get_parameter_source(p.name).name == "COMMANDLINE"}


# ------------------------------------------------------------ shared options
# (the options that configure a run are declared on their configs, kinds and tasks,
# and generated into each command by cli/declared.py; these are the faces' own)

M, TC, S = ModelConfig(), TrainConfig(), SampleConfig()

RunArg = Annotated[
    Optional[str],
    typer.Argument(help="A run folder or checkpoint file (default: the newest run).", show_default=False, autocompletion=complete.run_names),
]
CheckpointsOpt = Annotated[Path, typer.Option(help="Where runs (and the corpus cache) live.", rich_help_panel=P_OUT)]
NameOpt = Annotated[Optional[str], typer.Option(help="Run name (default: corpus-cell-time).", rich_help_panel=P_OUT)]
UnknownOpt = Annotated[Unknown, typer.Option(help="Characters the model never saw: error, or skip them.")]
DEFAULT_ROOT = Path(DEFAULT_CHECKPOINTS)
