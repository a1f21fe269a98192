"""The `charrnn` command: thin Typer commands that build configs and call the core.

Torch is imported inside the commands, never at module level, so that
`charrnn --help` answers at once. Every option's default comes from config.py.
Mistakes the user can fix (CharRNNError) end as one red line on stderr and
exit status 1; never a traceback.
"""

from __future__ import annotations

import functools
import os
import signal
import sys
import threading
import time
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

from .builtin import BUILTINS
from .config import (
    DEFAULT_CHECKPOINTS,
    DEFAULT_CORPUS,
    DEFAULT_SPM_VOCAB,
    DEFAULT_TIME,
    RESUMABLE as RESUMABLE_SETTINGS,
    Cell,
    DataConfig,
    Device,
    DocState,
    ModelConfig,
    Precision,
    SampleConfig,
    SpmType,
    TokenizerKind,
    TrainConfig,
    Unknown,
    to_dict,
)
from .errors import CharRNNError, ConfigError, PeerLostError

err = Console(stderr=True, highlight=False, soft_wrap=True)
out = Console(highlight=False, soft_wrap=True)


class _OneLineUsageErrors:
    """A nonsense option gets one line on stderr and exit status 2, like every other
    mistake, instead of click's usage box."""

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
    help="Train small recurrent language models on your own text, sample from them, and look inside.",
    no_args_is_help=True,
    add_completion=False,
    rich_markup_mode="rich",
    pretty_exceptions_enable=False,
)

M, D, TC, S = ModelConfig(), DataConfig(), TrainConfig(), SampleConfig()
P_CORPUS, P_MODEL, P_OPT, P_EVAL, P_OUT, P_HW = "Corpus", "Model", "Optimisation", "Evaluation", "Output", "Hardware"
P_SAMPLE = "Sampling"


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
        except OSError as e:
            where = f" {e.filename}" if e.filename else ""
            raise fail(f"could not read or write{where}: {e.strerror or e}.") from None
        except MemoryError:
            raise fail("out of memory; try a smaller --batch-size, --hidden or --seq-len.") from None

    return wrapper


# ------------------------------------------------------------------ train


@app.command(cls=Command)
@user_errors
def train(
    ctx: typer.Context,
    paths: Annotated[
        Optional[list[str]],
        typer.Argument(help=f"Text files, folders, or built-in corpora (see `charrnn corpora`). Default: {DEFAULT_CORPUS}.", show_default=False),
    ] = None,
    glob: Annotated[str, typer.Option(help="Files to take from folders.", rich_help_panel=P_CORPUS)] = D.glob,
    encoding: Annotated[str, typer.Option(help="Text encoding of the files.", rich_help_panel=P_CORPUS)] = D.encoding,
    errors: Annotated[str, typer.Option(help="On undecodable bytes: strict (stop), replace or ignore.", rich_help_panel=P_CORPUS)] = D.errors,
    doc_sep: Annotated[
        Optional[str],
        typer.Option(help="Split into documents: line, blank (blank lines), file, or a separator line such as %.", rich_help_panel=P_CORPUS),
    ] = D.doc_sep,
    val_frac: Annotated[float, typer.Option(help="Fraction held out for validation.", rich_help_panel=P_CORPUS)] = D.val_frac,
    tokenizer: Annotated[
        TokenizerKind, typer.Option(help="Characters, or sentencepiece subword tokens.", rich_help_panel=P_CORPUS)
    ] = TokenizerKind(D.tokenizer),
    vocab_size: Annotated[
        Optional[int],
        typer.Option(
            help=f"Sentencepiece vocabulary size (--tokenizer spm; {DEFAULT_SPM_VOCAB} when not given, lowered to fit a small corpus).",
            rich_help_panel=P_CORPUS,
        ),
    ] = D.vocab_size,
    spm_type: Annotated[SpmType, typer.Option(help="Sentencepiece model type (--tokenizer spm).", rich_help_panel=P_CORPUS)] = SpmType(
        D.spm_type
    ),
    cell: Annotated[Cell, typer.Option(help="Recurrent cell.", rich_help_panel=P_MODEL)] = Cell(M.cell),
    layers: Annotated[int, typer.Option(help="Stacked recurrent layers.", rich_help_panel=P_MODEL)] = M.layers,
    hidden: Annotated[int, typer.Option(help="Units per layer.", rich_help_panel=P_MODEL)] = M.hidden,
    embed: Annotated[int, typer.Option(help="Embedding size.", rich_help_panel=P_MODEL)] = M.embed,
    dropout: Annotated[float, typer.Option(help="Dropout between layers and before the output.", rich_help_panel=P_MODEL)] = M.dropout,
    seq_len: Annotated[int, typer.Option(help="Timesteps backpropagated through (truncated BPTT).", rich_help_panel=P_OPT)] = TC.seq_len,
    batch_size: Annotated[int, typer.Option(help="Streams per batch.", rich_help_panel=P_OPT)] = TC.batch_size,
    lr: Annotated[float, typer.Option(help="Peak learning rate (AdamW).", rich_help_panel=P_OPT)] = TC.lr,
    min_lr: Annotated[float, typer.Option(help="Learning rate at the end of the cosine decay.", rich_help_panel=P_OPT)] = TC.min_lr,
    warmup: Annotated[int, typer.Option(help="Steps of linear warmup.", rich_help_panel=P_OPT)] = TC.warmup,
    weight_decay: Annotated[float, typer.Option(help="AdamW weight decay on weight matrices.", rich_help_panel=P_OPT)] = TC.weight_decay,
    clip: Annotated[float, typer.Option(help="Clip the gradient norm to this.", rich_help_panel=P_OPT)] = TC.clip,
    steps: Annotated[Optional[int], typer.Option(help="Stop after this many steps.", rich_help_panel=P_OPT)] = TC.steps,
    epochs: Annotated[Optional[float], typer.Option(help="Stop after this many passes over the training split.", rich_help_panel=P_OPT)] = TC.epochs,
    time_: Annotated[
        Optional[str],
        typer.Option("--time", help=f"Stop after this wall-clock time (90s, 3m, 1h). {DEFAULT_TIME} when no limit is given.", rich_help_panel=P_OPT),
    ] = TC.time,
    doc_state: Annotated[DocState, typer.Option(help="At a document's end: reset the state, or carry it on.", rich_help_panel=P_OPT)] = DocState(
        TC.doc_state
    ),
    seed: Annotated[int, typer.Option(help="Random seed (same seed, same run on a CPU).", rich_help_panel=P_OPT)] = TC.seed,
    eval_every: Annotated[int, typer.Option(help="Evaluate, sample and checkpoint every N steps.", rich_help_panel=P_EVAL)] = TC.eval_every,
    eval_tokens: Annotated[int, typer.Option(help="Validation tokens scored during training.", rich_help_panel=P_EVAL)] = TC.eval_tokens,
    final_eval_tokens: Annotated[int, typer.Option(help="Validation tokens scored at the end.", rich_help_panel=P_EVAL)] = TC.final_eval_tokens,
    sample_chars: Annotated[int, typer.Option(help="Characters of sample shown at each evaluation (0: none).", rich_help_panel=P_EVAL)] = TC.sample_chars,
    name: Annotated[Optional[str], typer.Option(help="Run name (default: corpus-cell-time).", rich_help_panel=P_OUT)] = None,
    out_dir: Annotated[Optional[Path], typer.Option("--out", help="Run folder (default: CHECKPOINTS/NAME).", rich_help_panel=P_OUT)] = None,
    checkpoints: Annotated[Path, typer.Option(help="Where runs and the corpus cache live.", rich_help_panel=P_OUT)] = Path(DEFAULT_CHECKPOINTS),
    save_every: Annotated[Optional[int], typer.Option(help="Also checkpoint every N steps.", rich_help_panel=P_OUT)] = TC.save_every,
    resume: Annotated[Optional[str], typer.Option(help="Continue a run (folder or checkpoint file).", rich_help_panel=P_OUT)] = None,
    quiet: Annotated[bool, typer.Option("--quiet", "-q", help="Plain log lines instead of a progress bar.", rich_help_panel=P_OUT)] = False,
    tui: Annotated[bool, typer.Option("--tui", help="Watch training in the interactive terminal app.", rich_help_panel=P_OUT)] = False,
    device: Annotated[Device, typer.Option(help="Where to train.", rich_help_panel=P_HW)] = Device(TC.device),
    precision: Annotated[Precision, typer.Option(help="auto: bf16 autocast on GPUs and on CPUs with native bf16, else fp32; or fp32, bf16, fp16 (CUDA).", rich_help_panel=P_HW)] = Precision(TC.precision),
    threads: Annotated[Optional[int], typer.Option(help="CPU threads (default: torch's choice).", rich_help_panel=P_HW)] = TC.threads,
) -> None:
    """Train a character-level RNN, LSTM or GRU language model."""
    data = DataConfig(
        paths=tuple(paths or [DEFAULT_CORPUS]), glob=glob, encoding=encoding, errors=errors, doc_sep=doc_sep, val_frac=val_frac,
        tokenizer=tokenizer.value, vocab_size=vocab_size, spm_type=spm_type.value,
    )  # fmt: skip
    model = ModelConfig(cell=cell.value, layers=layers, hidden=hidden, embed=embed, dropout=dropout)
    tcfg = TrainConfig(
        seq_len=seq_len, batch_size=batch_size, lr=lr, min_lr=min_lr, warmup=warmup, weight_decay=weight_decay, clip=clip,
        steps=steps, epochs=epochs, time=time_, eval_every=eval_every, eval_tokens=eval_tokens,
        final_eval_tokens=final_eval_tokens, sample_chars=sample_chars, save_every=save_every, doc_state=doc_state.value,
        seed=seed, device=device.value, precision=precision.value, threads=threads,
    )  # fmt: skip
    given = {p.name for p in ctx.command.params if ctx.get_parameter_source(p.name).name == "COMMANDLINE"}
    run(data, model, tcfg, given, name=name, out_dir=out_dir, root=checkpoints, resume=resume, quiet=quiet, tui=tui)


# train's parameters a resumed run may change: the settings in config.RESUMABLE
# (`--time` is the parameter time_), where the corpus now lies, and how to show it
RESUMABLE = {"time_" if f == "time" else f for f in RESUMABLE_SETTINGS} | {"paths", "checkpoints", "quiet", "tui", "resume", "out_dir"}


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
) -> None:
    """`charrnn train` after parsing: plan the run, then train it in this process
    (or in the TUI), joined to the other processes when torchrun started us."""
    data.validate()
    model.validate()
    tcfg.validate()
    from . import distributed, plan

    if tui and distributed.launched():
        raise ConfigError("--tui runs in a single process; drop it under torchrun.")
    d = distributed.init(tcfg.device)  # a no-op unless started by torchrun
    clean = False
    try:
        if resume is not None:
            fixed = sorted(given - RESUMABLE - {"name"})
            if fixed:
                opts = ", ".join("--" + f.rstrip("_").replace("_", "-") for f in fixed)
                raise ConfigError(f"{opts} cannot change when resuming; a resumed run keeps its own settings.")
            changes = {f: getattr(tcfg, f) for f in RESUMABLE_SETTINGS if (f + "_" if f == "time" else f) in given}
            p = plan.resume_run(resume, root, changes, data.paths if "paths" in given else None, out_dir)
        else:
            p = plan.new_run(data, model, tcfg, root, name, out_dir, d)
        corpus = plan.open_corpus(p, d)
        if tui:
            _train_in_app(p, corpus)
        else:
            _train_here(p, corpus, quiet, d)
        clean = True
    except RuntimeError as e:
        if not (d.active and distributed.is_peer_error(e)):
            raise
        raise PeerLostError(
            "another process of this run stopped, so this one stops too; the launcher's report says which and why. "
            "The last checkpoint is intact: continue with --resume."
        ) from None
    finally:
        distributed.shutdown(clean)


def _train_in_app(p: Any, corpus: Any) -> None:
    from . import plan
    from .tui.app import train_in_app

    # The app owns the training thread, its sinks and its stop event.
    result = train_in_app(lambda sinks, stop: plan.trainer(p, sinks, stop, corpus), root=p.root)
    if result is not None:
        how = "stopped" if result.stopped_by == "interrupt" else "done"
        out.print(f"{how} at step {result.step:,}; checkpoints in {result.run_dir} (continue: charrnn train --resume {result.run_dir})")
    if result is not None and result.stopped_by == "interrupt":
        raise typer.Exit(130)


def _train_here(p: Any, corpus: Any, quiet: bool, d: Any) -> None:
    from . import plan

    console = err if quiet else out
    from .console import PlainSink, RichSink

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

    trainer = plan.trainer(p, [sink], stop, corpus, d)
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


# ----------------------------------------------------------------- sample


@app.command(cls=Command)
@user_errors
def sample(
    run_or_checkpoint: Annotated[Optional[str], typer.Argument(help="A run folder or checkpoint file (default: the newest run).", show_default=False)] = None,
    prime: Annotated[str, typer.Option(help="Text to start from; it is printed first.", rich_help_panel=P_SAMPLE)] = S.prime,
    temperature: Annotated[float, typer.Option(help="Softmax temperature; 0 picks the most likely token.", rich_help_panel=P_SAMPLE)] = S.temperature,
    top_k: Annotated[Optional[int], typer.Option(help="Sample among the k most likely tokens only.", rich_help_panel=P_SAMPLE)] = S.top_k,
    top_p: Annotated[Optional[float], typer.Option(help="Sample from the smallest set with this much probability.", rich_help_panel=P_SAMPLE)] = S.top_p,
    length: Annotated[int, typer.Option(help="At most this many characters after the prime.", rich_help_panel=P_SAMPLE)] = S.length,
    num: Annotated[int, typer.Option(help="How many samples.", rich_help_panel=P_SAMPLE)] = S.num,
    seed: Annotated[Optional[int], typer.Option(help="Random seed (default: a new one, printed to stderr).", rich_help_panel=P_SAMPLE)] = S.seed,
    stop: Annotated[Optional[list[str]], typer.Option(help="Stop at this string (repeatable); it is not printed.", rich_help_panel=P_SAMPLE)] = None,
    no_stop: Annotated[bool, typer.Option("--no-stop", help="Run past the end-of-document token.", rich_help_panel=P_SAMPLE)] = False,
    unknown: Annotated[Unknown, typer.Option(help="Prime characters the model never saw: error, or skip them.", rich_help_panel=P_SAMPLE)] = Unknown(S.unknown),
    checkpoints: Annotated[Path, typer.Option(help="Where runs live.", rich_help_panel=P_OUT)] = Path(DEFAULT_CHECKPOINTS),
    device: Annotated[Device, typer.Option(help="Where to run the model.", rich_help_panel=P_HW)] = Device.cpu,
) -> None:
    """Generate text from a trained model, streaming it as it comes."""
    cfg = SampleConfig(
        prime=prime, temperature=temperature, top_k=top_k, top_p=top_p, length=length, num=num, seed=seed,
        stop=tuple(stop or ()), stop_at_eos=not no_stop, unknown=unknown.value,
    ).validate()  # fmt: skip
    import torch

    from . import checkpoint
    from .config import from_dict
    from .sample import eos_text, generate, new_seed
    from .train import pick_device

    path = checkpoint.find(run_or_checkpoint, checkpoints)
    ck = checkpoint.load(path)
    model, tok = checkpoint.model_from(ck, path)
    model.to(pick_device(device.value))
    doc_sep = from_dict(DataConfig, ck.get("data_config", {})).doc_sep
    tok.encode(cfg.prime, unknown=cfg.unknown)  # unknown characters: fail before printing anything
    seed_used = cfg.seed if cfg.seed is not None else new_seed()
    gen = torch.Generator().manual_seed(seed_used)
    for i in range(cfg.num):
        if i:
            sys.stdout.write("\n\n")
        for piece in generate(model, tok, cfg, gen, eos_text(doc_sep)):
            sys.stdout.write(piece)
            sys.stdout.flush()
    sys.stdout.write("\n")
    sys.stdout.flush()
    if cfg.seed is None:
        err.print(f"[dim]seed {seed_used} (pass --seed {seed_used} to get this text again)[/]")


# ------------------------------------------------------------------- info


@app.command(cls=Command)
@user_errors
def info(
    run_or_checkpoint: Annotated[Optional[str], typer.Argument(help="A run folder or checkpoint file (default: the newest run).", show_default=False)] = None,
    checkpoints: Annotated[Path, typer.Option(help="Where runs live.")] = Path(DEFAULT_CHECKPOINTS),
    as_json: Annotated[bool, typer.Option("--json", help="Print one JSON object instead of a table.")] = False,
) -> None:
    """Show a checkpoint: config, vocabulary, parameters, steps, validation loss."""
    from . import checkpoint
    from .report import describe

    path = checkpoint.find(run_or_checkpoint, checkpoints, prefer=checkpoint.LAST)
    describe(path, checkpoint.load(path), out, as_json)


# ---------------------------------------------------------------- corpora


@app.command(cls=Command)
@user_errors
def corpora() -> None:
    """List the built-in corpora (made from this Python installation, never downloaded)."""
    from rich.table import Table

    t = Table(box=None, pad_edge=False)
    t.add_column("name", style="bold")
    t.add_column("what")
    for b in BUILTINS.values():
        default = " (default)" if b.name == DEFAULT_CORPUS else ""
        t.add_row(b.name + default, b.description)
    out.print(t)
    out.print("Train on one with: charrnn train NAME")


# Commands that live in modules of their own register themselves on `app` here.
from . import inspect_cli  # noqa: E402,F401
from . import tui_cli  # noqa: E402,F401


def main() -> None:
    app()
